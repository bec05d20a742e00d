// Kept (detached) containers: their state on disk under <root>/containers/<id>/ and the
// operations on them. Layout of one container directory:
//   container.json  what it was created from (image, name, runtime, restart policy) — written once
//   state.json      what it is doing (status, pids, exit code, restart count) — the supervisor writes it
//   config.json     the OCI bundle's spec; rootfs/ its mounted overlay; hostname, hosts, resolv.conf
//   <id>-json.log   stdout/stderr as docker json-file lines ({"log","stream","time"}), rotated to .1, .2 … (max-file)
//   stop-requested  made by stop/kill/rm: the restart policy no longer applies
//   restart-requested  made by restart of a --rm container: its supervisor does not remove it at the stop
// A supervisor (supervisor.ts), one per container, runs it under the OCI runtime and owns state.json.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, createReadStream, existsSync, fstatSync, openSync, renameSync, writeSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NotFoundError, UsageError } from '../client/errors.js';
import type { Executor, ExecutorRef } from './executors/executor.js';
import { executorFromRef } from './executors/index.js';
import { ImageNotFoundError, type ResolvedImage, type RuntimeImageStore } from './image-store.js';
import { containerParent } from './init-layer.js';
import { mountAll, unmount } from './mount.js';
import type { OverlaySnapshotter } from './snapshotter.js';
import { healthConfig, type HealthConfig, type HealthFlags, type HealthState } from './health.js';
import { lockHolder, takeLock } from '../client/pid-lock.js';
import { pidAlive, procStartTime, signalName } from './process.js';
import { writeEtcFiles, type EtcOptions } from './etc-files.js';
import { disconnect, netnsPath, releaseExtras, type NetworkAttachment } from './network.js';
import { bridgeFor } from './networks.js';
import { portsToPublish, type PortMapping, type PublishOptions } from './ports.js';
import { buildSpec, capabilityName, specJson, type RunOptions } from './spec.js';
import { copyUpVolumes, materializeVolumes, removeAnonymousVolumes } from './volumes.js';
import type { LogDriver } from './log-driver.js';

export { pidAlive, procStartTime } from './process.js';

export type RestartPolicy = { name: 'no' | 'always' | 'unless-stopped' } | { name: 'on-failure'; maximumRetryCount: number };

export function parseRestartPolicy(text: string): RestartPolicy {
  if (text === 'no' || text === 'always' || text === 'unless-stopped') return { name: text };
  const m = /^on-failure(?::(\d+))?$/.exec(text);
  if (m) return { name: 'on-failure', maximumRetryCount: m[1] !== undefined ? Number(m[1]) : 0 };
  throw new UsageError(`--restart ${text}: expected no, always, on-failure[:N] or unless-stopped`);
}

export interface ContainerConfig {
  id: string;
  name: string;
  image: string;
  imageDigest: string;
  /** The image ID (its config's digest), as `berth images` shows it. */
  imageId?: string;
  command: string[];
  created: string;
  restartPolicy: RestartPolicy;
  runtime: ExecutorRef;
  /** Remove the container when it ends for good (run --rm). */
  autoRemove?: boolean;
  /**
   * Kept by the CLI of a foreground `run --rm` (run.ts), not by a supervisor: its output goes to that
   * terminal, with no log file or attach socket, and that CLI removes it at its end.
   */
  foreground?: boolean;
  /** Its anonymous volumes (rm -v and --rm remove those no other container uses). */
  volumes?: string[];
  snapshotKey: string;
  /**
   * The log driver (absent: json-file; local is json-file lines with the local driver's limits; none
   * keeps no log), its max-size, and max-file: how many files in all, the one written included (absent: 2).
   */
  log: { driver?: LogDriver; maxSize: number; maxFiles?: number };
  /** -t: a terminal, which the supervisor's pty host provides. */
  tty?: boolean;
  /** -i: stdin stays open, fed by attached clients. */
  interactive?: boolean;
  /** `run -i` in the foreground: the container's stdin closes when the attached client's does (docker's StdinOnce). */
  stdinOnce?: boolean;
  /** --network (containers made before bridge networking have none recorded: theirs was none or host, as the spec says). */
  network?: 'none' | 'host' | 'bridge';
  /** A user-defined network (networks.ts), with network set to bridge; and its --network-alias names. */
  networkName?: string;
  aliases?: string[];
  /** Networks added by `berth network connect` ("bridge" for the default one), joined at each start after the first. */
  extraNetworks?: ExtraNetwork[];
  /** -p and -P, as asked (a host port 0 is chosen at each start). */
  ports?: PortMapping[];
  /** --add-host and --dns… (the supervisor writes hosts again with the address of each start). */
  etc?: EtcOptions;
  /** What stop sends first (--stop-signal, else the image's STOPSIGNAL; TERM when absent), and how long it waits before KILL (--stop-timeout; 10 s when absent, -1 for ever). */
  stopSignal?: string;
  stopTimeout?: number;
  /** The image's labels with -l/--label on top. */
  labels?: Record<string, string>;
  /** --cap-add and --cap-drop as given (the bundle has the resulting set). */
  capAdd?: string[];
  capDrop?: string[];
  /** --privileged, and --security-opt as given. */
  privileged?: boolean;
  securityOpt?: string[];
  /** The image's HEALTHCHECK with the --health-* flags on top (none: no checks). */
  healthcheck?: HealthConfig;
}

export type ContainerStatus = 'created' | 'running' | 'restarting' | 'exited';

export interface ContainerState {
  status: ContainerStatus;
  pid?: number; // the executor process (e.g. runc run) of the current attempt
  supervisorPid?: number;
  supervisorStartTime?: string;
  exitCode?: number;
  startedAt?: string;
  finishedAt?: string;
  restartCount: number;
  error?: string;
  /** On the bridge network while its supervisor runs: its address, and the host ports its -p got. */
  network?: NetworkAttachment;
  ports?: PortMapping[];
  /** With a health check, while it runs (health.ts). */
  health?: HealthState;
}

export interface Container {
  config: ContainerConfig;
  state: ContainerState;
  dir: string;
  /** Its keeper removed it (--rm) while this process waited on it; state is the last one seen. */
  removed?: boolean;
}

export const DEFAULT_LOG_MAX_SIZE = 10 * 1024 * 1024;

export interface ExtraNetwork { name: string; aliases?: string[] }

export function containersDir(root: string): string { return join(root, 'containers'); }
export function containerDir(root: string, id: string): string { return join(containersDir(root), id); }
export function logPath(dir: string, id: string): string { return join(dir, `${id}-json.log`); }

/** Writes JSON through a temporary file and rename(2): readers never see half a file. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`);
  await rename(tmp, path);
}

/** Is the supervisor recorded in a state still the same live process? */
export function supervisorAlive(s: ContainerState): boolean {
  if (!pidAlive(s.supervisorPid)) return false;
  return s.supervisorStartTime === undefined || procStartTime(s.supervisorPid!) === s.supervisorStartTime;
}

export async function loadContainer(root: string, id: string): Promise<Container> {
  const dir = containerDir(root, id);
  const config = JSON.parse(await readFile(join(dir, 'container.json'), 'utf8')) as ContainerConfig;
  let state: ContainerState;
  try { state = JSON.parse(await readFile(join(dir, 'state.json'), 'utf8')) as ContainerState; } catch { state = { status: 'created', restartCount: 0 }; }
  // a supervisor that died without recording the end (killed, host reboot): the container is not running
  if ((state.status === 'running' || state.status === 'restarting') && !supervisorAlive(state)) {
    state = { ...state, status: 'exited', exitCode: state.exitCode ?? 255, error: state.error ?? 'supervisor is gone' };
  }
  return { config, state, dir };
}

/** All kept containers (directories without container.json — foreground runs — are skipped). */
export async function listContainers(root: string): Promise<Container[]> {
  const out: Container[] = [];
  for (const id of await readdir(containersDir(root)).catch(() => [] as string[])) {
    try { out.push(await loadContainer(root, id)); } catch { /* not a kept container */ }
  }
  return out.sort((a, b) => b.config.created.localeCompare(a.config.created));
}

/** By name, full id or unique id prefix (Docker's lookup). */
export async function findContainer(root: string, ref: string): Promise<Container> {
  const all = await listContainers(root);
  const exact = all.find((c) => c.config.id === ref || c.config.name === ref || c.config.name === ref.replace(/^\//, ''));
  if (exact) return exact;
  const byPrefix = all.filter((c) => c.config.id.startsWith(ref));
  if (byPrefix.length === 1) return byPrefix[0]!;
  if (byPrefix.length > 1) throw new UsageError(`${ref}: more than one container matches; give more of the id`);
  throw new NotFoundError(`No such container: ${ref}`);
}

const ADJ = ['brave', 'calm', 'eager', 'fancy', 'gentle', 'happy', 'jolly', 'keen', 'lucid', 'merry', 'nifty', 'quiet', 'sharp', 'tender', 'vivid', 'witty'];
const NOUN = ['anchor', 'buoy', 'cabin', 'dock', 'galley', 'harbor', 'jetty', 'keel', 'mast', 'pier', 'quay', 'rudder', 'sail', 'tide', 'wharf', 'yard'];

export interface CreateOptions extends PublishOptions {
  /** A user-defined network to join (run.network is then bridge), and the extra names others find it by there. */
  networkName?: string;
  aliases?: string[];
  /** --add-host, --dns…: what the container's /etc/hosts and /etc/resolv.conf say. */
  etc?: EtcOptions;
  root: string;
  store: RuntimeImageStore;
  snapshots: OverlaySnapshotter;
  executor: Executor;
  image: string;
  name?: string;
  run: RunOptions;
  restartPolicy: RestartPolicy;
  logDriver?: LogDriver;
  logMaxSize?: number;
  logMaxFiles?: number;
  autoRemove?: boolean;
  interactive?: boolean;
  stdinOnce?: boolean;
  stopSignal?: string;
  stopTimeout?: number;
  labels?: Record<string, string>;
  /** run: the new container is listed already holding its start lock (releaseStartLock once started). */
  starting?: boolean;
  /** Kept by this process, a foreground run --rm (see ContainerConfig.foreground). */
  foreground?: boolean;
  /** Stops the unpack of the image's layers (a foreground run's Ctrl-C). */
  signal?: AbortSignal;
  /** --health-cmd and the like (over the image's HEALTHCHECK). */
  health?: HealthFlags;
}

/** What docker allows in a container name. */
const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** The image's STOPSIGNAL; one that is no signal is set aside with a note (docker's daemon does the same). */
function imageStopSignal(v: unknown): string {
  if (!v) return 'TERM';
  try { return signalName(String(v)); } catch {
    process.stderr.write(`berth: the image's STOPSIGNAL ${JSON.stringify(v)} is not a signal; SIGTERM stops this container\n`);
    return 'TERM';
  }
}

/** Fails with one clear line when an rmi or prune has deleted the image (or a blob of it) since it was resolved. */
async function assertImageKept(store: RuntimeImageStore, img: ResolvedImage): Promise<void> {
  if ((await store.layout.missingBlobs(img.manifest)).length) {
    throw new ImageNotFoundError(`image ${img.name} was removed (berth rmi or image prune) while the container was being created`);
  }
}

/**
 * Prepares the snapshot, mounts the rootfs and writes the bundle and container.json (status "created").
 * The container's snapshot is what makes it a user of its image for rmi and prune before container.json
 * exists; it is recorded under the index lock they decide and delete under, once the image is found
 * still there, so the image cannot go between the two. A create that lost the race fails.
 */
export async function createContainer(o: CreateOptions): Promise<Container> {
  if (o.name !== undefined && !NAME.test(o.name)) throw new UsageError(`--name ${o.name}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  const existing = await listContainers(o.root);
  if (o.name !== undefined && existing.some((c) => c.config.name === o.name)) {
    throw new UsageError(`the container name "${o.name}" is already in use; remove that container (berth rm) or choose another name`);
  }
  let name = o.name;
  while (name === undefined || existing.some((c) => c.config.name === name)) {
    name = `${ADJ[randomBytes(1)[0]! % ADJ.length]}_${NOUN[randomBytes(1)[0]! % NOUN.length]}_${randomBytes(2).toString('hex')}`;
  }
  const network = o.run.network ?? 'none';
  const img = await o.store.resolve(o.image);
  const stopSignal = o.stopSignal !== undefined ? signalName(o.stopSignal) : imageStopSignal(img.config.config?.StopSignal);
  const labels = { ...img.config.config?.Labels, ...o.labels };
  const healthcheck = healthConfig(img.config.config?.Healthcheck, o.health ?? {});
  const ports = portsToPublish(network, o, img.config.config?.ExposedPorts);
  // (a layer or its parent removed meanwhile fails the unpack: say why, not which piece went first)
  const { chainId } = await o.store.unpack(img, o.snapshots, o.signal ? { signal: o.signal } : {})
    .catch(async (e: Error) => { await assertImageKept(o.store, img); throw e; });
  const volumes = await materializeVolumes(o.root, o.run.volumes ?? [], img.config.config?.Volumes);
  const anonymous = volumes.filter((v) => v.volume?.anonymous).map((v) => v.volume!.name);
  const id = randomBytes(32).toString('hex');
  const key = `container-${id}`;
  const dir = containerDir(o.root, id);
  const rootfs = join(dir, 'rootfs');
  const hostname = o.run.hostname ?? id.slice(0, 12);
  await mkdir(rootfs, { recursive: true, mode: 0o700 });
  let mounted = false;
  let prepared = false;
  try {
    const parent = await containerParent(o.snapshots, chainId).catch(async (e: Error) => { await assertImageKept(o.store, img); throw e; });
    const mounts = await o.store.layout.withIndexLock(async () => {
      await assertImageKept(o.store, img);
      const m = await o.snapshots.prepare(key, parent, { labels: { 'berth.image': img.name, 'berth.imageDigest': img.manifest.digest, 'berth.container': id } });
      prepared = true;
      return m;
    });
    await mountAll(mounts, rootfs);
    mounted = true;
    await copyUpVolumes(rootfs, volumes);
    // (a bridge container's address comes with its start: the supervisor names it in hosts then)
    const etcFiles = await writeEtcFiles(dir, hostname, network, o.etc);
    const spec = await buildSpec(img.config, rootfs, {
      cgroupsPath: `/berth/${id}`,
      ...o.run,
      volumes,
      hostname,
      etcFiles,
      ...(network === 'bridge' ? { netnsPath: netnsPath(id) } : {}),
    });
    await writeFile(join(dir, 'config.json'), specJson(spec));
    const config: ContainerConfig = {
      id, name, image: img.name, imageDigest: img.manifest.digest, imageId: img.configDescriptor.digest,
      command: (spec.process?.args ?? []).slice(o.run.init ? 2 : 0), // (not /dev/init --, as docker shows it)
      created: new Date().toISOString(), restartPolicy: o.restartPolicy,
      runtime: o.executor.ref, snapshotKey: key,
      log: {
        ...(o.logDriver && o.logDriver !== 'json-file' ? { driver: o.logDriver } : {}),
        maxSize: o.logMaxSize ?? DEFAULT_LOG_MAX_SIZE, ...(o.logMaxFiles !== undefined ? { maxFiles: o.logMaxFiles } : {}),
      },
      ...(o.autoRemove ? { autoRemove: true } : {}),
      ...(o.foreground ? { foreground: true } : {}),
      ...(anonymous.length ? { volumes: anonymous } : {}),
      network,
      ...(o.networkName ? { networkName: o.networkName, ...(o.aliases?.length ? { aliases: o.aliases } : {}) } : {}),
      ...(ports.length ? { ports } : {}),
      ...(o.etc && Object.values(o.etc).some((v) => v?.length) ? { etc: o.etc } : {}),
      ...(o.run.tty ? { tty: true } : {}),
      ...(o.interactive ? { interactive: true } : {}),
      ...(o.interactive && o.stdinOnce ? { stdinOnce: true } : {}),
      ...(stopSignal !== 'TERM' ? { stopSignal } : {}),
      ...(o.stopTimeout !== undefined ? { stopTimeout: o.stopTimeout } : {}),
      ...(Object.keys(labels).length ? { labels } : {}),
      ...(o.run.capAdd?.length ? { capAdd: o.run.capAdd.map(capabilityName) } : {}),
      ...(o.run.capDrop?.length ? { capDrop: o.run.capDrop.map(capabilityName) } : {}),
      ...(o.run.privileged ? { privileged: true } : {}),
      ...(o.run.securityOpt?.length ? { securityOpt: o.run.securityOpt } : {}),
      ...(healthcheck ? { healthcheck } : {}),
    };
    await writeJsonAtomic(join(dir, 'state.json'), { status: 'created', restartCount: 0 } satisfies ContainerState);
    if (o.starting) await takeStartLock(dir);
    await writeJsonAtomic(join(dir, 'container.json'), config);
    return { config, state: { status: 'created', restartCount: 0 }, dir };
  } catch (e) {
    if (mounted) await unmount(rootfs).catch(() => unmount(rootfs, { lazy: true }).catch(() => undefined));
    if (prepared) await o.snapshots.remove(key).catch(() => undefined);
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    await removeAnonymousVolumes(o.root, anonymous).catch(() => undefined);
    throw e;
  }
}

/** logs and attach read what a supervisor keeps; the CLI keeping a foreground run --rm passes the output straight on. */
export function assertLogged(c: Container, what: string): void {
  if (c.config.foreground) throw new UsageError(`container ${c.config.name} runs in the foreground of a berth run --rm: its output goes to that terminal, and there is no log to ${what}`);
}

/**
 * A container run with -i or -t, or one that keeps no log (--log-driver none): its supervisor listens
 * on attach.sock, and clients attach there (not to the log).
 */
export function hasAttachSocket(c: Container): boolean {
  return c.config.tty === true || c.config.interactive === true || c.config.log?.driver === 'none';
}

/** berth logs: refused where there is no log to read. */
export function assertReadableLog(c: Container): void {
  assertLogged(c, 'read');
  if (c.config.log?.driver === 'none') throw new UsageError(`container ${c.config.name} was run with --log-driver none: configured logging driver does not support reading`);
}

export function supervisorScript(): string {
  return join(dirname(fileURLToPath(import.meta.url)), 'supervisor.js');
}

/**
 * Starts the container's supervisor as its own session (it outlives the CLI) and waits until it
 * reports. With `waitAttach` (a container with -i or -t that this CLI attaches to at once), the
 * supervisor starts the container only once a client is on its attach socket, so no output is missed;
 * this returns as soon as the socket listens.
 */
export async function startSupervisor(root: string, c: Container, o: { waitAttach?: boolean; timeoutMs?: number } = {}): Promise<Container> {
  const waitAttach = o.waitAttach === true && hasAttachSocket(c);
  const out = openSync(join(c.dir, 'supervisor.log'), 'a');
  try {
    const child = spawn(process.execPath, [supervisorScript(), root, c.config.id, ...(waitAttach ? ['--wait-attach'] : [])], { detached: true, stdio: ['ignore', out, out] });
    child.unref();
  } finally { closeSync(out); }
  const deadline = Date.now() + (o.timeoutMs ?? 10_000);
  for (;;) {
    const now = await loadContainer(root, c.config.id);
    // a supervisor that could not set the container up (a published port taken, say) leaves the reason
    if (now.state.supervisorPid && now.state.status === 'exited' && now.state.error) throw new UsageError(now.state.error);
    if (now.state.supervisorPid && (now.state.status !== 'created' || waitAttach)) return now;
    if (Date.now() > deadline) {
      const log = await readFile(join(c.dir, 'supervisor.log'), 'utf8').catch(() => '');
      throw new Error(`the supervisor of ${c.config.id.slice(0, 12)} did not start${log ? `: ${log.trim()}` : ''}`);
    }
    await sleep(20);
  }
}

export function sleep(ms: number): Promise<void> { return new Promise((r) => setTimeout(r, ms)); }

/** Polls until `done`; a container its keeper removed (--rm) meanwhile is done too, marked `removed`. */
async function waitFor(root: string, id: string, done: (c: Container) => boolean, timeoutMs: number, pollMs = 25): Promise<Container | undefined> {
  const deadline = Date.now() + timeoutMs;
  let last: Container | undefined;
  for (;;) {
    let c: Container;
    try { c = await loadContainer(root, id); } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || !last) throw e;
      return { ...last, removed: true };
    }
    if (done(c)) return c;
    if (Date.now() >= deadline) return undefined;
    last = c;
    await sleep(pollMs);
  }
}

/** Where a --rm container's exit code outlives it for a while: its keeper writes it before the removal. */
const exitRecord = (root: string, id: string) => join(root, 'exits', id);
const EXIT_RECORD_MS = 5 * 60_000;

/** Records a --rm container's exit code for `wait` (and forgets records older than a few minutes). */
export async function recordExit(root: string, id: string, code: number): Promise<void> {
  const dir = join(root, 'exits');
  await mkdir(dir, { recursive: true });
  await writeFile(exitRecord(root, id), String(code));
  for (const f of await readdir(dir).catch(() => [] as string[])) {
    const st = await stat(join(dir, f)).catch(() => undefined);
    if (st && Date.now() - st.mtimeMs > EXIT_RECORD_MS) await rm(join(dir, f), { force: true });
  }
}

/** docker wait: blocks until the container has ended for good (restarts included); answers its exit code. */
export async function waitContainer(root: string, c: Container): Promise<number> {
  // with --rm the exited state is the last one, though its keeper is still busy removing it
  const end = await waitFor(root, c.config.id, (x) => finished(x) || (x.state.status === 'exited' && x.config.autoRemove === true), Infinity, 50);
  if (end?.removed && end.state.status !== 'exited') {
    const recorded = Number(await readFile(exitRecord(root, c.config.id), 'utf8').catch(() => 'NaN'));
    if (Number.isInteger(recorded)) return recorded;
    throw new Error(`container ${c.config.name} was removed before its end was seen`);
  }
  return end?.state.exitCode ?? 0;
}

/** docker rename: the same rules as --name, and no other container may have the name. */
export async function renameContainer(root: string, c: Container, name: string): Promise<void> {
  if (!NAME.test(name)) throw new UsageError(`${name}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed in a container name`);
  if (name === c.config.name) return;
  if ((await listContainers(root)).some((o) => o.config.name === name)) throw new UsageError(`the container name "${name}" is already in use`);
  const now = await loadContainer(root, c.config.id);
  await writeJsonAtomic(join(c.dir, 'container.json'), { ...now.config, name });
}

const finished = (c: Container) => c.state.status === 'exited' && !supervisorAlive(c.state);
/** Nothing runs and nothing is about to: ended, or created (berth create) and never started. */
export const idle = (c: Container): boolean => (c.state.status === 'exited' || c.state.status === 'created') && !supervisorAlive(c.state) && !startingElsewhere(c);

export function runtimeOf(c: Container): Executor { return executorFromRef(c.config.runtime); }

async function requestStop(c: Container): Promise<void> {
  await writeFile(join(c.dir, 'stop-requested'), new Date().toISOString());
}

// ---- pause ----
// A marker file says "paused" (the supervisor owns state.json); every way out of a pause (unpause,
// stop, kill, rm -f, the container's end) thaws the container and removes it.

const pausedPath = (c: Pick<Container, 'dir'>) => join(c.dir, 'paused');

export function isPaused(c: Container): boolean {
  return c.state.status === 'running' && existsSync(pausedPath(c));
}

/** Freezes every process of a running container (docker pause). */
export async function pauseContainer(c: Container): Promise<void> {
  if (c.state.status !== 'running') throw new UsageError(`container ${c.config.name} is not running`);
  if (isPaused(c)) throw new UsageError(`container ${c.config.name} is already paused`);
  await writeFile(pausedPath(c), new Date().toISOString());
  try { await runtimeOf(c).pause(c.config.id); } catch (e) {
    await runtimeOf(c).resume(c.config.id).catch(() => undefined);
    await rm(pausedPath(c), { force: true });
    throw e;
  }
}

/** Thaws a paused container (docker unpause). */
export async function unpauseContainer(c: Container): Promise<void> {
  if (!isPaused(c)) throw new UsageError(`container ${c.config.name} is not paused`);
  await thaw(c);
}

/** Thaws the container if it was paused (a frozen process takes no signal, not even SIGKILL, until thawed). */
async function thaw(c: Container): Promise<void> {
  if (!existsSync(pausedPath(c))) return;
  await runtimeOf(c).resume(c.config.id);
  await rm(pausedPath(c), { force: true });
}

/** The pause marker of a container whose run has ended (supervisor, start). */
export async function clearPaused(dir: string): Promise<void> {
  await rm(pausedPath({ dir }), { force: true });
}

/**
 * The container's stop signal (SIGTERM unless configured), then SIGKILL after `timeoutSec` (default: its
 * --stop-timeout, else 10); returns once the supervisor recorded the exit.
 */
export async function stopContainer(root: string, c: Container, timeoutSec = c.config.stopTimeout ?? 10, signal = c.config.stopSignal ?? 'TERM'): Promise<Container> {
  if (timeoutSec < 0) timeoutSec = Infinity; // --stop-timeout -1
  try { await requestStop(c); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { ...c, removed: true }; // (--rm: its keeper removed it already)
    throw e;
  }
  const rt = runtimeOf(c);
  if (idle(c)) {
    // a supervisor killed outright (kill -9) left its executor and the container running, unseen: end what is left
    if (c.state.supervisorPid !== undefined) await rt.delete(c.config.id).catch(() => undefined);
    return c;
  }
  // between restarts there is nothing to signal (the supervisor sees stop-requested); right after the
  // supervisor spawned the runtime the container may not exist yet: keep trying until it takes
  let sent = await rt.kill(c.config.id, signal).then(() => true, () => false);
  await thaw(c); // the signal is delivered once it runs again (docker stop does the same)
  // (a --rm container that has exited is done, though its keeper is still removing it)
  const over = (x: Container) => finished(x) || (x.state.status === 'exited' && x.config.autoRemove === true);
  let done = await waitFor(root, c.config.id, (x) => {
    if (!sent && x.state.status === 'running') void rt.kill(c.config.id, signal).then(() => { sent = true; }, () => undefined);
    return over(x);
  }, timeoutSec * 1000);
  if (done) return done;
  // a pause that raced this stop may have frozen it after the thaw above: a frozen process takes no SIGKILL
  await rt.resume(c.config.id).catch(() => undefined);
  await rt.kill(c.config.id, 'KILL').catch(() => undefined);
  done = await waitFor(root, c.config.id, over, 10_000);
  if (done) return done;
  // the supervisor did not record it: end the supervisor itself (not a keeper that has recorded the end)
  const now = await loadContainer(root, c.config.id).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return { ...c, removed: true };
    throw e;
  });
  if (now.removed || now.state.status === 'exited') return now;
  if (supervisorAlive(now.state)) process.kill(now.state.supervisorPid!, 'SIGKILL');
  await rt.resume(c.config.id).catch(() => undefined);
  await rt.kill(c.config.id, 'KILL').catch(() => undefined);
  return (await waitFor(root, c.config.id, (x) => !supervisorAlive(x.state), 5000)) ?? now;
}

/** `berth container cp` holds this file while it works on the container's files (copy.ts). */
export const CP_LOCK = 'cp.lock';

/** A cp is working on this container (its lock's process runs): no start meanwhile. */
export function copyInProgress(c: Container): boolean {
  return lockHolder(join(c.dir, CP_LOCK)) !== undefined;
}

/**
 * Held from a start's decision to start until its supervisor has recorded itself in state.json, so
 * that two starts (or a start and an rm or a prune) of a container that is not running cannot both act.
 */
const START_LOCK = 'start.lock';

/** Another process is starting this container. */
function startingElsewhere(c: Pick<Container, 'dir'>): boolean {
  const holder = lockHolder(join(c.dir, START_LOCK));
  return holder !== undefined && holder !== process.pid;
}

/** Takes the start lock; when this process holds it already (run, until its start), that holder releases it. */
async function takeStartLock(dir: string): Promise<(() => Promise<void>) | undefined> {
  if (lockHolder(join(dir, START_LOCK)) === process.pid) return async () => undefined;
  try { return await takeLock(join(dir, START_LOCK)); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`No such container: ${basename(dir).slice(0, 12)} (removed meanwhile)`);
    throw e;
  }
}

/** Runs `fn` with the start lock held: no start, rm or prune of the container meanwhile. */
export async function withStartLock<T>(c: Container, fn: () => Promise<T>): Promise<T> {
  const release = await takeStartLock(c.dir);
  if (!release) throw new UsageError(`container ${c.config.name} is being started: try again`);
  try { return await fn(); } finally { await release(); }
}

/** Gives up the start lock a `starting` createContainer took. */
export async function releaseStartLock(c: Container): Promise<void> {
  await rm(join(c.dir, START_LOCK), { force: true });
}

/** Mounts a stopped container's rootfs again when it is not (as after a reboot). */
export async function ensureRootfsMounted(snapshots: OverlaySnapshotter, c: Container): Promise<void> {
  const rootfs = join(c.dir, 'rootfs');
  const mountinfo = await readFile('/proc/self/mountinfo', 'utf8');
  if (!mountinfo.split('\n').some((l) => l.split(' ')[4] === rootfs)) await mountAll(await snapshots.mounts(c.config.snapshotKey), rootfs);
}

/** Starts a stopped container again under a new supervisor (remounting its rootfs if needed, as after a reboot). */
export async function startContainer(root: string, snapshots: OverlaySnapshotter, c: Container, o: { waitAttach?: boolean } = {}): Promise<Container> {
  if (!idle(c)) return c; // running, restarting or being started: docker start is a no-op then
  if (c.config.foreground) throw new UsageError(`container ${c.config.name} was a foreground run --rm whose berth run ended before it could remove it: berth rm it`);
  if (copyInProgress(c)) throw new UsageError(`a cp into or out of ${c.config.name} is in progress: start it afterwards`);
  const release = await takeStartLock(c.dir);
  if (!release) return c; // another start got there first
  try {
    c = await loadContainer(root, c.config.id);
    if (!idle(c)) return c;
    await rm(join(c.dir, 'stop-requested'), { force: true });
    await rm(join(c.dir, RESTART_REQUESTED), { force: true });
    await clearPaused(c.dir);
    // runtime state left by a supervisor that died (its container may even run on): end it
    await runtimeOf(c).delete(c.config.id).catch(() => undefined);
    await ensureRootfsMounted(snapshots, c);
    const state: ContainerState = { status: 'created', restartCount: 0 };
    await writeJsonAtomic(join(c.dir, 'state.json'), state);
    return await startSupervisor(root, { ...c, state }, o);
  } finally { await release(); }
}

/** See restartContainer: the stop under way is a restart's, so a --rm container is kept. */
export const RESTART_REQUESTED = 'restart-requested';

/**
 * docker restart: stop (the stop signal, then SIGKILL after the timeout) and start again. A detached
 * --rm container is kept through it, as docker keeps it: its supervisor finds restart-requested and
 * leaves the removal (a CLI killed in between leaves it exited, for start or rm). A foreground one
 * belongs to the `berth run` that waits for its end.
 */
export async function restartContainer(root: string, snapshots: OverlaySnapshotter, c: Container, timeoutSec?: number): Promise<Container> {
  const gone = () => new NotFoundError(`No such container: ${c.config.name} (it was run with --rm and ended before the restart)`);
  if (c.config.autoRemove) {
    if (c.config.foreground) throw new UsageError(`container ${c.config.name} runs in the foreground of a berth run --rm, which removes it at its end: it cannot be restarted`);
    try { await writeFile(join(c.dir, RESTART_REQUESTED), new Date().toISOString()); } catch (e) {
      throw (e as NodeJS.ErrnoException).code === 'ENOENT' ? gone() : e;
    }
  }
  let stopped = await stopContainer(root, c, timeoutSec);
  if (c.config.autoRemove && !stopped.removed) {
    // stopContainer is done at "exited"; the supervisor decides about the removal after that
    stopped = await waitFor(root, c.config.id, (x) => !supervisorAlive(x.state), 60_000) ?? stopped;
  }
  if (stopped.removed) throw gone();
  return startContainer(root, snapshots, stopped);
}

/** Sends a signal (default KILL); the restart policy no longer applies (as after docker stop). */
export async function killContainer(c: Container, signal = 'KILL'): Promise<void> {
  const sig = signalName(signal);
  if (c.state.status !== 'running' && c.state.status !== 'restarting') throw new UsageError(`container ${c.config.name} is not running`);
  await requestStop(c);
  await runtimeOf(c).kill(c.config.id, sig);
  await thaw(c);
}

/** Removes a container: stopped (or, with force, killed), unmounted, its snapshot and directory deleted; with volumes (-v), its anonymous volumes too. */
export async function removeContainer(root: string, snapshots: OverlaySnapshotter, c: Container, force = false, volumes = false): Promise<void> {
  if (!idle(c) && !force) throw new UsageError(`container ${c.config.name} is ${c.state.status}: stop it first or use rm -f`);
  // no start may come between the check and the removal
  const release = await takeStartLock(c.dir);
  if (!release) throw new UsageError(`container ${c.config.name} is being started: try again, or use rm -f once it runs`);
  try {
    c = await loadContainer(root, c.config.id).catch((e: NodeJS.ErrnoException) => {
      throw e.code === 'ENOENT' ? new NotFoundError(`No such container: ${c.config.name} (removed meanwhile)`) : e;
    });
    if (!idle(c)) {
      if (!force) throw new UsageError(`container ${c.config.name} is ${c.state.status}: stop it first or use rm -f`);
      c = await stopContainer(root, c, 0, 'KILL'); // docker rm -f: SIGKILL, not the stop signal
      if (c.removed) return; // (--rm: its keeper removed it)
      if (c.config.autoRemove && supervisorAlive(c.state)) {
        // its keeper is removing it: wait for that (or take over if the keeper dies first)
        const after = await waitFor(root, c.config.id, (x) => !supervisorAlive(x.state), 60_000);
        if (!after) throw new UsageError(`container ${c.config.name} is still being removed by its --rm`);
        if (after.removed) return;
        c = after;
      }
    }
    await destroyContainer(snapshots, c);
  } finally { await release(); }
  if (volumes) await removeAnonymousVolumes(root, c.config.volumes ?? [], c.config.id);
}

/** Tears down an ended container: executor state, rootfs mount, snapshot, directory. */
export async function destroyContainer(snapshots: OverlaySnapshotter, c: Container, o: { lazyUnmount?: boolean } = {}): Promise<void> {
  await runtimeOf(c).delete(c.config.id).catch(() => undefined);
  // what a supervisor that was killed left (a failure here must not keep the container from going)
  if (c.config.network === 'bridge') {
    await bridgeFor(dirname(dirname(c.dir)), c.config.networkName ?? 'bridge').then((net) => disconnect(c.config.id, net))
      .catch((e: Error) => process.stderr.write(`berth: ${e.message}\n`));
    await releaseExtras(c.config.id).catch((e: Error) => process.stderr.write(`berth: ${e.message}\n`));
  }
  const rootfs = join(c.dir, 'rootfs');
  // lazily when its processes are surely gone: a synchronous umount costs ~20 ms of cache flushing
  if (o.lazyUnmount) await unmount(rootfs, { lazy: true }).catch(() => undefined);
  else await unmount(rootfs).catch(() => unmount(rootfs, { lazy: true }).catch(() => undefined));
  if (await snapshots.exists(c.config.snapshotKey)) await snapshots.remove(c.config.snapshotKey);
  await rm(c.dir, { recursive: true, force: true });
}

// ---- logs ----

/** The files of a container's log, oldest first: PATH.N-1 … PATH.1, then PATH (maxFiles in all). */
function logFiles(path: string, maxFiles = DEFAULT_LOG_FILES): string[] {
  return [...Array.from({ length: maxFiles - 1 }, (_, i) => `${path}.${maxFiles - 1 - i}`), path];
}

/** Two files: the one written and the one rotated out before it. */
export const DEFAULT_LOG_FILES = 2;

/**
 * Docker's json-file log driver: one JSON object per line. When a line would take the file past
 * maxSize, PATH.1 becomes PATH.2 and so on, PATH becomes PATH.1, and the oldest beyond maxFiles goes
 * (with maxFiles 1, PATH starts again empty).
 */
export class JsonFileLog {
  private fd: number;
  private size: number;
  private partial: Record<'stdout' | 'stderr', string> = { stdout: '', stderr: '' };

  constructor(private readonly path: string, private readonly maxSize: number, private readonly maxFiles = DEFAULT_LOG_FILES) {
    this.fd = openSync(path, 'a');
    this.size = fstatSync(this.fd).size;
  }

  write(stream: 'stdout' | 'stderr', chunk: string): void {
    const parts = (this.partial[stream] + chunk).split('\n');
    this.partial[stream] = parts.pop()!;
    for (const p of parts) this.line(stream, `${p}\n`);
    // a very long line without a newline is cut, as docker does at 16 KiB
    if (this.partial[stream].length >= 16384) { this.line(stream, this.partial[stream]); this.partial[stream] = ''; }
  }

  flush(): void {
    for (const s of ['stdout', 'stderr'] as const) if (this.partial[s]) { this.line(s, this.partial[s]); this.partial[s] = ''; }
  }

  private line(stream: 'stdout' | 'stderr', log: string): void {
    const b = Buffer.from(`${JSON.stringify({ log, stream, time: new Date().toISOString() })}\n`);
    if (this.size > 0 && this.size + b.length > this.maxSize) this.rotate();
    writeSync(this.fd, b);
    this.size += b.length;
  }

  private rotate(): void {
    closeSync(this.fd);
    const files = logFiles(this.path, this.maxFiles); // oldest first
    for (let i = 1; i < files.length; i++) {
      try { renameSync(files[i]!, files[i - 1]!); } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e; }
    }
    this.fd = openSync(this.path, this.maxFiles === 1 ? 'w' : 'a');
    this.size = 0;
  }

  close(): void { this.flush(); closeSync(this.fd); }
}

// ---- reading logs ----------------------------------------------------------------------------------

export interface LogLine { log: string; stream: 'stdout' | 'stderr'; time: string }

/** The complete lines of a log file, and how many bytes they span (a line being written is left out). */
async function readLines(path: string): Promise<{ lines: LogLine[]; bytes: number }> {
  const buf = await readFile(path).catch(() => Buffer.alloc(0));
  const bytes = buf.lastIndexOf(0x0a) + 1;
  const lines: LogLine[] = [];
  for (const l of buf.toString('utf8', 0, bytes).split('\n')) {
    if (!l) continue;
    try { lines.push(JSON.parse(l) as LogLine); } catch { /* not a log line */ }
  }
  return { lines, bytes };
}

export function formatLogLine(l: LogLine, timestamps: boolean): string {
  return timestamps ? `${l.time} ${l.log}` : l.log;
}

/** Where the log's current file ends: give it to streamLogs as `after` to follow only what comes next. */
export async function logEnd(c: Container): Promise<{ ino: number; bytes: number }> {
  const st = await stat(logPath(c.dir, c.config.id)).catch(() => undefined);
  return st ? { ino: st.ino, bytes: st.size } : { ino: 0, bytes: 0 };
}

/**
 * Prints the log (rotated file first); with follow, keeps printing until the container ends. With
 * `after` (a logEnd() taken earlier), nothing from before it is printed: only what was written since.
 */
export async function streamLogs(root: string, c: Container, o: { follow?: boolean; timestamps?: boolean; tail?: number; since?: number; until?: number; after?: { ino: number; bytes: number }; write: (s: string, stream: 'stdout' | 'stderr') => void; signal?: AbortSignal; pollMs?: number }): Promise<void> {
  const path = logPath(c.dir, c.config.id);
  // --since and --until (ms since the epoch): lines outside are left out; a follow ends once until has passed
  const inWindow = (l: LogLine) => {
    const t = Date.parse(l.time);
    return (o.since === undefined || t >= o.since) && (o.until === undefined || t <= o.until);
  };
  // the inode first: a rotation after it is noticed below, and then the new file is read from 0
  let ino = o.after ? o.after.ino : (await stat(path).catch(() => ({ ino: 0 }))).ino;
  const current = o.after ? { lines: [], bytes: o.after.bytes } : await readLines(path);
  const older = logFiles(path, c.config.log?.maxFiles).slice(0, -1);
  let lines = (o.after ? [] : [...(await Promise.all(older.map(readLines))).flatMap((f) => f.lines), ...current.lines]).filter(inWindow);
  if (o.tail !== undefined && o.tail >= 0) lines = o.tail === 0 ? [] : lines.slice(-o.tail);
  for (const l of lines) o.write(formatLogLine(l, !!o.timestamps), l.stream);
  if (!o.follow) return;
  // follow: read what is appended after the lines printed; after a rotation, the rest of the old
  // file (now PATH.1) first, then the new one from 0
  let offset = current.bytes;
  let partial = '';
  const readRange = (file: string, start: number, end: number) => new Promise<string>((resolve, reject) => {
    let s = '';
    createReadStream(file, { start, end: end - 1, encoding: 'utf8' }).on('data', (d) => { s += d; }).on('end', () => resolve(s)).on('error', reject);
  });
  const emit = (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop()!;
    for (const p of parts) {
      if (!p) continue;
      let l: LogLine;
      try { l = JSON.parse(p) as LogLine; } catch { continue; }
      if (inWindow(l)) o.write(formatLogLine(l, !!o.timestamps), l.stream);
    }
  };
  for (;;) {
    if (o.signal?.aborted) return;
    const now = await loadContainer(root, c.config.id).catch(() => undefined);
    const st = await stat(path).catch(() => undefined);
    if (st && st.ino !== ino) {
      const old = await stat(`${path}.1`).catch(() => undefined);
      if (old && old.ino === ino && old.size > offset) emit(await readRange(`${path}.1`, offset, old.size).catch(() => ''));
      ino = st.ino; offset = 0; partial = '';
    } else if (st && st.size < offset) {
      offset = 0; partial = '';
    }
    if (st && st.size > offset) {
      emit(await readRange(path, offset, st.size));
      offset = st.size;
      continue;
    }
    if (!now || finished(now) || (o.until !== undefined && Date.now() > o.until)) return;
    await sleep(o.pollMs ?? 100);
  }
}
