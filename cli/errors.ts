// CLI errors: one line on stderr and a distinct exit code; a stack trace only with BERTH_DEBUG=1.
// One usage error for the whole CLI (exit code 2), shared with the client library.
export { UsageError } from '../client/errors.js';

export function fail(e: unknown): never {
  const err = e as Error & { exitCode?: number };
  process.stderr.write(`berth: ${err?.message?.split('\n').join('\n  ') ?? String(e)}\n`);
  if (process.env.BERTH_DEBUG) process.stderr.write(`${err?.stack}\n`);
  process.exit(err?.exitCode ?? 1);
}
