#!/usr/bin/env node
// The one `berth` command. Each subcommand lives in its own file and registers itself here.
import { Command, CommanderError } from 'commander';
import { registerServe } from './serve.js';
import { registerAuth } from './auth.js';
import { fail, UsageError } from './errors.js';

const program = new Command();
program
  .name('berth')
  .description('berth: an OCI container registry, with its own client and runtime')
  .version('0.1.0')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

registerServe(program);
registerAuth(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) process.exit(e.exitCode);
  fail(e);
}
export { UsageError };
