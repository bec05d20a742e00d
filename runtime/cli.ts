// Runtime commands of the `berth` CLI. cli/index.ts calls registerRuntime(program).
//   berth images [REPOSITORY] [-q] [--no-trunc] [--json]   images in the local store (shared with `berth pull`)
//   berth run --rm [flags] IMAGE [COMMAND [ARG...]]        a foreground container, removed when it exits
import { readFile } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import type { Command } from 'commander';
import { NotFoundError, UsageError } from '../client/errors.js';
import { localStoreDir } from '../client/location.js';
import { OciRuntimeExecutor } from './executors/oci-runtime.js';
import { RuntimeImageStore, type ImageSummary } from './image-store.js';
import { runEphemeral } from './run.js';
import { defaultRuntimeRoot, OverlaySnapshotter } from './snapshotter.js';
import { parseBytes, parseEnvFile, type RunOptions, type VolumeMount } from './spec.js';

function humanSize(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
  return `${i === 0 ? v : v.toPrecision(3).replace(/\.?0+$/, '')}${units[i]}`;
}

export function humanAge(iso: string | undefined, now = Date.now()): string {
  if (!iso) return 'N/A';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return 'N/A';
  const s = Math.max(0, Math.round((now - t) / 1000));
  const steps: Array<[number, string]> = [[60, 'second'], [60, 'minute'], [24, 'hour'], [7, 'day'], [4.35, 'week'], [12, 'month'], [Infinity, 'year']];
  let v = s;
  for (const [k, unit] of steps) {
    if (v < k) return v <= 1 && unit === 'second' ? 'Less than a second ago' : `${Math.floor(v)} ${unit}${Math.floor(v) === 1 ? '' : 's'} ago`;
    v /= k;
  }
  return 'N/A';
}

function shortId(d: string, noTrunc: boolean): string {
  return noTrunc ? d : d.replace(/^sha256:/, '').slice(0, 12);
}

/** The `berth images` table (Docker's columns). */
export function formatImages(images: ImageSummary[], opts: { quiet?: boolean; noTrunc?: boolean; now?: number } = {}): string {
  if (opts.quiet) return [...new Set(images.map((i) => shortId(i.id, !!opts.noTrunc)))].map((l) => `${l}\n`).join('');
  const rows = [['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE']];
  for (const i of images) {
    rows.push([i.repository, i.tag, shortId(i.id, !!opts.noTrunc), i.error ? 'unreadable' : humanAge(i.created, opts.now), i.error ? '-' : humanSize(i.size)]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => `${r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]! + 3))).join('')}\n`).join('');
}

export interface Output { write(text: string): unknown }

/** Adds the runtime commands; `out` is where they print (stdout; tests pass their own). */
export function registerRuntime(program: Command, out: Output = process.stdout): void {
  program
    .command('images')
    .description('list the images in the local store (where `berth pull` puts them)')
    .argument('[repository]', 'only this repository, e.g. busybox or localhost:5000/team/app')
    .option('-q, --quiet', 'only image IDs')
    .option('--no-trunc', 'full image IDs')
    .option('--json', 'print the list as JSON')
    .action(async (repository: string | undefined, flags: { quiet?: boolean; trunc?: boolean; json?: boolean }) => {
      let images: ImageSummary[] = [];
      try {
        images = await (await RuntimeImageStore.open({ create: false })).list();
      } catch (e) {
        if (!(e instanceof NotFoundError)) throw e; // no store yet: no images
      }
      if (repository) {
        const want = repository.replace(/:[^/:]*$/, '');
        images = images.filter((i) => i.repository === want || i.name.startsWith(`${want}:`) || i.name === want);
      }
      if (flags.json) out.write(`${JSON.stringify({ store: localStoreDir(), images }, null, 2)}\n`);
      else out.write(formatImages(images, { quiet: !!flags.quiet, noTrunc: flags.trunc === false }));
    });

  const collect = (v: string, prev: string[] = []) => [...prev, v];
  // `berth run IMAGE CMD -x` must hand "-x" to CMD: that needs options positional at the top level
  program.enablePositionalOptions();
  program
    .command('run')
    .helpOption('--help', 'display help for command') // -h is --hostname, as in Docker
    .description('run a command in a new container (foreground; --rm is required for now)')
    .argument('<image>', 'an image in the local store (berth pull it first)')
    .argument('[command...]', 'the command and its arguments (replace the image CMD)')
    .passThroughOptions()
    .option('--rm', 'remove the container when it exits')
    .option('-e, --env <KEY=VALUE>', 'set an environment variable (KEY alone: take it from here)', collect)
    .option('--env-file <file>', 'read environment variables from a file', collect)
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .option('-u, --user <user[:group]>', 'user name or uid, optionally with group')
    .option('--entrypoint <cmd>', 'override the image ENTRYPOINT ("" clears it)')
    .option('-h, --hostname <name>', 'container host name')
    .option('--network <mode>', 'none (an empty network namespace) or host', 'none')
    .option('-v, --volume <host:ctr[:ro]>', 'bind-mount a host directory', collect)
    .option('--tmpfs <path[:options]>', 'mount a tmpfs', collect)
    .option('--read-only', 'mount the root filesystem read-only')
    .option('-m, --memory <bytes>', 'memory limit, e.g. 64m')
    .option('--cpus <n>', 'CPU quota, e.g. 1.5')
    .option('--pids-limit <n>', 'maximum number of processes')
    .option('--runtime <name>', 'OCI runtime binary to use', 'runc')
    .action(async (image: string, command: string[], f: RunFlags) => {
      if (!f.rm) throw new UsageError('berth run keeps no containers yet: add --rm (detached and kept containers are not implemented)');
      const opts = await runOptions(command, f);
      const root = defaultRuntimeRoot();
      const executor = await OciRuntimeExecutor.find(resolvePath(root, 'runtime', f.runtime), f.runtime);
      if (!executor) throw new UsageError(`the OCI runtime "${f.runtime}" is not installed (apt-get install ${f.runtime})`);
      const store = await RuntimeImageStore.open({ create: false });
      const snapshots = await OverlaySnapshotter.open(root);
      const ac = new AbortController();
      const stop = () => ac.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        const r = await runEphemeral({ store, snapshots, executor, root, image, run: opts, signal: ac.signal });
        process.exitCode = r.code;
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
    });
}

interface RunFlags {
  rm?: boolean; env?: string[]; envFile?: string[]; workdir?: string; user?: string; entrypoint?: string; hostname?: string;
  network: string; volume?: string[]; tmpfs?: string[]; readOnly?: boolean; memory?: string; cpus?: string; pidsLimit?: string; runtime: string;
}

/** Docker-style run flags → RunOptions (with clear errors for what is not supported). */
export async function runOptions(command: string[], f: Omit<RunFlags, 'runtime'>): Promise<RunOptions> {
  const env: string[] = [];
  for (const file of f.envFile ?? []) env.push(...parseEnvFile(await readFile(file, 'utf8')));
  env.push(...(f.env ?? []));
  if (f.network !== 'none' && f.network !== 'host') throw new UsageError(`--network ${f.network}: only none and host are supported`);
  const volumes: VolumeMount[] = (f.volume ?? []).map((v) => {
    const parts = v.split(':');
    if (parts.length < 2 || parts.length > 3 || (parts[2] !== undefined && parts[2] !== 'ro' && parts[2] !== 'rw')) {
      throw new UsageError(`-v ${v}: expected HOST:CONTAINER[:ro|rw]`);
    }
    if (!parts[0]!.startsWith('/') && !parts[0]!.startsWith('.')) throw new UsageError(`-v ${v}: named volumes are not supported yet; give a host path`);
    return { source: resolvePath(parts[0]!), destination: parts[1]!, readonly: parts[2] === 'ro' };
  });
  const num = (name: string, v: string | undefined, int: boolean) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0 || (int && !Number.isInteger(n))) throw new UsageError(`--${name} ${v}: expected a positive ${int ? 'integer' : 'number'}`);
    return n;
  };
  const memory = f.memory !== undefined ? parseBytes(f.memory) : undefined;
  const cpus = num('cpus', f.cpus, false);
  const pidsLimit = num('pids-limit', f.pidsLimit, true);
  return {
    ...(command.length ? { args: command } : {}),
    ...(f.entrypoint !== undefined ? { entrypoint: f.entrypoint } : {}),
    env,
    ...(f.workdir !== undefined ? { workdir: f.workdir } : {}),
    ...(f.user !== undefined ? { user: f.user } : {}),
    ...(f.hostname !== undefined ? { hostname: f.hostname } : {}),
    network: f.network,
    volumes,
    tmpfs: f.tmpfs ?? [],
    readOnly: !!f.readOnly,
    ...(memory !== undefined ? { memory } : {}),
    ...(cpus !== undefined ? { cpus } : {}),
    ...(pidsLimit !== undefined ? { pidsLimit } : {}),
  };
}
