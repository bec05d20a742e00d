// Flags every client command shares (transport, auth file, output), and turning them into a ClientContext.
// Only light modules are imported here at top level; the client itself loads inside actions.
import { collect, Option, type Command } from './commander.js';
import type { ClientContext } from '../client/context.js';
import { ClientError, UsageError } from '../client/errors.js';
import { describeLocation, type Location } from '../client/location.js';
import { parsePlatform, type Platform } from '../client/platform.js';
import { createProgress, type Progress } from '../client/progress.js';

export interface TransportFlags { insecure?: boolean; caCert?: string[]; authfile?: string; retries?: string }
export interface OutputFlags { quiet?: boolean; json?: boolean }
export interface TransferFlags { jobs?: string; platform?: string; all?: boolean; referrers?: boolean }


export function transportOptions(cmd: Command): Command {
  return cmd
    .option('--insecure', 'allow plain HTTP and unverified TLS (always allowed for localhost, 127.0.0.0/8 and ::1)')
    .option('--ca-cert <file>', 'trust this PEM CA certificate (repeatable; certs.d directories are read too)', collect)
    .option('--authfile <file>', 'credentials file (default: podman\'s auth.json files, then $DOCKER_CONFIG/config.json or ~/.docker/config.json)')
    .addOption(new Option('--retries <n>', 'retries for 5xx, 429 and broken connections').default('4').hideHelp());
}

export function outputOptions(cmd: Command): Command {
  return cmd
    .option('-q, --quiet', 'print nothing but errors (and the result, for commands that print one)')
    .option('--json', 'print the result as JSON on stdout');
}

export function transferOptions(cmd: Command, opts: { all?: boolean } = { all: true }): Command {
  cmd.option('-j, --jobs <n>', 'blobs transferred in parallel', '4')
    .option('--platform <os/arch[/variant]>', 'which platform to take from a multi-platform image (default: this machine\'s)')
    .option('--referrers', 'also copy the manifests that refer to the image (signatures, SBOMs, attestations)');
  if (opts.all) cmd.option('-a, --all', 'copy every platform of a multi-platform image, and the index');
  return cmd;
}

function positiveInt(v: string | undefined, name: string, def: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${name} must be a non-negative integer, not "${v}"`);
  return n;
}

/** Loads the client (HTTP transport, auth, layouts) only when a command needs it: start-up stays cheap. */
export async function clientContext(flags: TransportFlags): Promise<ClientContext> {
  const env = process.env;
  const retries = positiveInt(flags.retries, '--retries', 4);
  const { ClientContext } = await import('../client/context.js');
  return new ClientContext({
    insecure: flags.insecure,
    caCerts: flags.caCert,
    authFile: flags.authfile,
    retries,
    // test and tuning knobs
    ...(env.BERTH_RETRY_BASE_MS ? { retryBaseMs: Number(env.BERTH_RETRY_BASE_MS) } : {}),
    ...(env.BERTH_MONOLITHIC_MAX ? { monolithicMax: Number(env.BERTH_MONOLITHIC_MAX) } : {}),
    ...(env.BERTH_CHUNK_SIZE ? { chunkSize: Number(env.BERTH_CHUNK_SIZE) } : {}),
  });
}

export function transferSettings(flags: TransferFlags): { jobs: number; platform?: Platform; all: boolean; referrers: boolean } {
  const jobs = positiveInt(flags.jobs, '--jobs', 4);
  if (jobs < 1) throw new UsageError('--jobs must be at least 1');
  if (flags.all && flags.platform) throw new UsageError('--all and --platform exclude each other');
  return { jobs, ...(flags.platform ? { platform: parsePlatform(flags.platform) } : {}), all: !!flags.all, referrers: !!flags.referrers };
}

export function progressFor(flags: OutputFlags): Progress {
  return createProgress({ quiet: flags.quiet, json: flags.json });
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** A status line on stderr unless --quiet/--json. */
export function say(flags: OutputFlags, line: string): void {
  if (!flags.quiet && !flags.json) process.stderr.write(`${line}\n`);
}

export function requireRegistry(loc: Location, what: string): asserts loc is Extract<Location, { kind: 'registry' }> {
  if (loc.kind !== 'registry') throw new ClientError(`${what} must be a registry reference, not ${describeLocation(loc)}`, 2);
}

/** -n/--page-size of tags and catalog: a positive whole number, or nothing (the registry's default). */
export function pageSizeOption(value: string | undefined): { pageSize?: number } {
  if (value === undefined) return {};
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--page-size ${value}: expected a positive whole number`);
  return { pageSize: n };
}
