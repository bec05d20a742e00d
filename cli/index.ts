#!/usr/bin/env -S node --
// (`node --`: Node 20 acts on an --env-file anywhere in its arguments, even after the script, and
// would load the NODE_OPTIONS such a file sets; `run --env-file` is berth's, for the container.)
// The one `berth` command. Each subcommand lives in its own file and registers itself here.
import { Command, CommanderError } from './commander.js';
import { registerServe } from './serve.js';
import { registerLogin } from './login.js';
import { registerPull } from './pull.js';
import { registerPush } from './push.js';
import { registerCopy } from './copy.js';
import { registerTags } from './tags.js';
import { registerCatalog } from './catalog.js';
import { registerInspect } from './inspect.js';
import { registerDigest } from './digest.js';
import { registerTag } from './tag.js';
import { registerDelete } from './delete.js';
import { registerAuth } from './auth.js';
import { registerGc } from './gc.js';
import { registerSave } from './save.js';
import { registerLoad } from './load.js';
import { registerRuntime } from '../runtime/cli.js';
import { registerHousekeeping } from '../runtime/housekeeping-cli.js';
import { registerNetworkCommands } from '../runtime/network-cli.js';
import { fail, UsageError } from './errors.js';

const program = new Command();
program
  .name('berth')
  .description('berth: an OCI container registry, with its own client and runtime')
  .version('0.1.0')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

registerServe(program);
registerLogin(program);
registerPull(program);
registerPush(program);
registerCopy(program);
registerTags(program);
registerCatalog(program);
registerInspect(program);
registerDigest(program);
registerTag(program);
registerDelete(program);
registerAuth(program);
registerGc(program);
registerSave(program);
registerLoad(program);
registerRuntime(program);
registerHousekeeping(program);
registerNetworkCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  // commander's own errors (an unknown flag or command, a missing argument) are usage errors: exit 2; its help and version, 0
  if (e instanceof CommanderError) process.exit(e.exitCode === 0 ? 0 : 2);
  fail(e);
}
export { UsageError };
