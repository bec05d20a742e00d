// `berth run` and `berth create`: a container from an image and docker's run flags. As with docker,
// an image the local store lacks is pulled first (--pull missing; also always or never), its
// report on stderr so that stdout keeps only what the command itself prints (a container ID).
import type { StdioOptions } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { collect } from '../cli/commander.js';
import { NotFoundError, UsageError } from '../client/errors.js';
import { transportOptions, type TransportFlags } from '../cli/client-options.js';
import { defaultRoot, runtimeModules as mods } from './cli-modules.js';
import { healthConfig, type HealthFlags } from './health.js';
import { parseLabels } from './labels.js';
import { parseSecurityOpts, SecurityOptError } from './security-opts.js';
import { signalName } from './process.js';
import type { Output } from './cli.js';
import type { RunOptions, SpecDevice, VolumeMount } from './spec.js';
import type { VolumeFlag } from './volumes.js';

/** The flags run and create share (all of docker create's that berth has). */
interface CreateFlags extends TransportFlags, LimitFlags {
  rm?: boolean; interactive?: boolean; tty?: boolean; name?: string; restart?: string; logDriver?: string; logOpt?: string[]; env?: string[]; envFile?: string[]; workdir?: string; user?: string; entrypoint?: string; hostname?: string;
  network: string; publish?: string[]; publishAll?: boolean; addHost?: string[]; dns?: string[]; dnsSearch?: string[]; dnsOption?: string[]; networkAlias?: string[]; volume?: string[]; tmpfs?: string[]; readOnly?: boolean; runtime: string;
  pull: string; quiet?: boolean; stopSignal?: string; stopTimeout?: string; label?: string[]; capAdd?: string[]; capDrop?: string[];
  shmSize?: string; ulimit?: string[]; groupAdd?: string[]; init?: boolean; device?: string[]; privileged?: boolean; securityOpt?: string[]; mount?: string[]; cgroupns?: string;
  healthCmd?: string; healthInterval?: string; healthTimeout?: string; healthRetries?: string; healthStartPeriod?: string; healthcheck?: boolean;
}
interface RunFlags extends CreateFlags { detach?: boolean; detachKeys?: string }


/** The flags run, create and exec share for the process: -e, --env-file, -w, -u. */
export function processFlagOptions(cmd: Command): Command {
  return cmd
    .option('-e, --env <KEY=VALUE>', 'set an environment variable (KEY alone: take it from here)', collect)
    .option('--env-file <file>', 'read environment variables from a file', collect)
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .option('-u, --user <user[:group]>', 'user name or uid, optionally with group');
}

/** -e and --env-file in order: the files' variables first, then each -e. */
export async function envFromFlags(f: { env?: string[]; envFile?: string[] }): Promise<string[]> {
  const m = await mods();
  const env: string[] = [];
  for (const file of f.envFile ?? []) {
    let text;
    try { text = await readFile(file, 'utf8'); } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new UsageError(`--env-file ${file}: ${err.code === 'ENOENT' ? 'no such file' : err.code === 'EISDIR' ? 'is a directory' : err.message}`);
    }
    env.push(...m.parseEnvFile(text));
  }
  env.push(...f.env ?? []);
  return env;
}

function containerOptions(cmd: Command): Command {
  cmd
    .helpOption('--help', 'display help for command') // -h is --hostname, as in Docker
    .argument('<image>', 'an image reference (pulled when the local store lacks it) or an image ID')
    .argument('[command...]', 'the command and its arguments (replace the image CMD)')
    .passThroughOptions()
    .option('--rm', 'remove the container when it exits')
    .option('--name <name>', 'a name for the container')
    .option('--restart <policy>', 'no, always, on-failure[:N] or unless-stopped (not with --rm in the foreground)', 'no')
    .option('--log-driver <driver>', 'json-file (the default), local (json-file lines, by default 20 MB × 5 files) or none (no log: berth logs refuses)')
    .option('--log-opt <option>', 'log options: max-size=SIZE (json-file default 10m), max-file=N (files in all, json-file default 2)', collect);
  processFlagOptions(cmd)
    .option('--entrypoint <cmd>', 'override the image ENTRYPOINT ("" clears it)')
    .option('-h, --hostname <name>', 'container host name')
    .option('--network <network>', "bridge (berth0, with NAT out; docker's default), a network made by berth network create (its containers find each other by name), none (only a loopback) or host", 'bridge')
    .option('--network-alias <name>', 'another name the container has on its user-defined network', collect)
    .option('-p, --publish <[ip:][hostPort:]port[/proto]>', 'publish a container port (tcp or udp) on the host (bridge network)', collect)
    .option('-P, --publish-all', 'publish every port the image EXPOSEs, each on a free host port')
    .option('--add-host <name:ip>', 'add a line to /etc/hosts (ip may be host-gateway: the host, as the container reaches it)', collect)
    .option('--dns <ip>', "a name server for /etc/resolv.conf (replaces the host's)", collect)
    .option('--dns-search <domain>', 'a search domain for /etc/resolv.conf', collect)
    .option('--dns-option <option>', 'an options entry for /etc/resolv.conf', collect)
    .option('-v, --volume <src:ctr[:opts]>', 'a host directory (/host:/ctr[:ro]), a named volume (name:/ctr[:ro|nocopy]) or a new anonymous volume (/ctr)', collect)
    .option('--tmpfs <path[:options]>', 'mount a tmpfs', collect)
    .option('--mount <type=…,source=…,target=…>', 'a mount in docker\'s long form: type=bind|volume|tmpfs, source, target, readonly, volume-nocopy, tmpfs-size, tmpfs-mode', collect)
    .option('--read-only', 'mount the root filesystem read-only')
    .option('-i, --interactive', 'keep stdin open (fed by the attached CLI; with -d by berth attach)')
    .option('-t, --tty', 'give the container a terminal')
    .option('--shm-size <bytes>', 'size of /dev/shm, e.g. 256m (default 64m)')
    .option('--ulimit <type=soft[:hard]>', 'a resource limit, e.g. nofile=1024:2048 (-1: unlimited)', collect)
    .option('--group-add <group>', 'another group for the process: a gid, or a name from the container\'s /etc/group', collect)
    .option('--device <host[:container][:rwm]>', 'a host device in the container, e.g. /dev/fuse (permissions: r, w, m; default rwm)', collect)
    .option('--init', 'run a small init (tini) as PID 1: it forwards signals to the command and reaps zombies')
    .option('--health-cmd <command>', 'a health check: a shell command run in the container every interval (exit 0: healthy)')
    .option('--health-interval <duration>', 'time between checks, e.g. 30s (default: the image\'s, else 30s)')
    .option('--health-timeout <duration>', 'a check running longer fails (default 30s)')
    .option('--health-retries <n>', 'failures in a row that make it unhealthy (default 3)')
    .option('--health-start-period <duration>', 'failures this soon after the start do not count (default 0s)')
    .option('--no-healthcheck', 'no health check, not even the image\'s')
    .option('--cap-add <cap>', 'add a Linux capability to docker\'s default set (e.g. NET_ADMIN; ALL for every one)', collect)
    .option('--cap-drop <cap>', 'drop a Linux capability (ALL: keep only those --cap-add adds)', collect)
    .option('--privileged', 'every capability, every host device, /sys writable, nothing masked, no no_new_privs, no seccomp filter (the container\'s root is the host\'s)')
    .option('--cgroupns <mode>', 'private (a cgroup namespace of its own: its cgroups are the root it sees) or host (default: private on cgroup v2 hosts, host on v1, as docker)')
    .option('--security-opt <option>', 'no-new-privileges[=true|false] (on by default in berth), systempaths=unconfined, seccomp=unconfined (no seccomp filter); apparmor=unconfined, label=disable (berth loads no such profile)', collect)
    .option('-l, --label <key=value>', 'set a label on the container (over the image\'s labels)', collect)
    .option('--stop-signal <signal>', 'the signal stop sends first (default: the image\'s STOPSIGNAL, else SIGTERM)')
    .option('--stop-timeout <seconds>', 'how long stop waits before SIGKILL (default 10; -1: no SIGKILL)')
    .option('--runtime <name>', 'executor: builtin, runc, crun or auto (runc or crun when installed, else builtin)', 'auto')
    .option('--pull <policy>', 'missing (pull the image when the local store lacks it), always or never', 'missing')
    .option('-q, --quiet', 'print nothing about pulling the image');
  return transportOptions(limitFlagOptions(cmd));
}

export function registerRunCommands(program: Command, out: Output): void {
  // `berth run IMAGE CMD -x` must hand "-x" to CMD: that needs options positional at the top level
  program.enablePositionalOptions();
  const run = program.command('run')
    .description('run a command in a new container: in the foreground (kept afterwards, unless --rm) or detached (-d)');
  containerOptions(run)
    .option('-d, --detach', 'run in the background under a supervisor and print the container ID')
    .option('--detach-keys <keys>', 'the keys that detach, e.g. ctrl-a,d (default ctrl-p,ctrl-q)')
    .action(async (image: string, command: string[], f: RunFlags) => {
      // Without --rm the container is kept, as with Docker: under its supervisor, detached (-d) or with
      // the CLI attached: to its log, or with -i/-t to its attach socket (keys, terminal, live output)
      const kept = f.detach || !f.rm;
      // (with --log-driver none there is no log to follow: the socket carries the output)
      const socketAttached = !f.detach && !f.rm && (!!f.interactive || !!f.tty || f.logDriver === 'none');
      const s = await setUp(image, command, f, !!kept);
      const { m, root, snapshots, executor } = s;
      const detachKeys = f.detachKeys !== undefined ? m.parseDetachKeys(f.detachKeys) : undefined;
      if (kept) {
        const c = await m.createContainer({
          ...s.create,
          // docker's StdinOnce: a foreground run -i ends the container's stdin with the CLI's
          ...(f.interactive ? { interactive: true, stdinOnce: !f.detach } : {}),
          starting: true, // no prune or start of another CLI comes between
        });
        try {
          await m.startSupervisor(root, c, { waitAttach: socketAttached });
        } catch (e) {
          await m.removeContainer(root, snapshots, c, true).catch(() => undefined);
          throw e;
        } finally { await m.releaseStartLock(c); }
        if (f.detach) out.write(`${c.config.id}\n`);
        else if (socketAttached) process.exitCode = await m.attachToSocket(root, c, { stdin: !!f.interactive, detachKeys });
        else process.exitCode = await m.attachUntilExit(root, c);
        return;
      }
      const ac = new AbortController();
      const stop = () => ac.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      process.once('SIGHUP', stop); // a closed terminal: the container and its network go too
      const raw = !!f.tty && !!f.interactive && process.stdin.isTTY;
      if (raw) process.stdin.setRawMode(true); // keys go to the container's terminal as typed
      try {
        // runc and crun take the terminal from their stdin even without -i; the built-in one reads it only with -i
        const stdinFlows = f.interactive || (f.tty && executor.name !== 'builtin');
        const stdio: StdioOptions = [stdinFlows ? 'inherit' : 'ignore', 'inherit', 'inherit'];
        // (this CLI keeps the container: ps, exec, stop… see it meanwhile)
        const { restartPolicy: _policy, autoRemove: _rm, logDriver: _driver, logMaxSize: _log, logMaxFiles: _files, ...create } = s.create;
        const r = await m.runEphemeral({ ...create, stdio, signal: ac.signal });
        process.exitCode = r.code;
      } finally {
        if (raw) process.stdin.setRawMode(false);
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        process.off('SIGHUP', stop);
      }
    });

  const create = program.command('create')
    .description('create a container without starting it (berth start it later, -a to attach); print its ID');
  containerOptions(create)
    .action(async (image: string, command: string[], f: CreateFlags) => {
      const s = await setUp(image, command, f, true);
      const c = await s.m.createContainer({ ...s.create, ...(f.interactive ? { interactive: true } : {}) });
      out.write(`${c.config.id}\n`);
    });
}

/** Checks the flags, makes sure the image is here (--pull) and opens what a new container needs. */
async function setUp(image: string, command: string[], f: CreateFlags, kept: boolean) {
  const m = await mods();
  const restartPolicy = m.parseRestartPolicy(f.restart ?? 'no');
  if (f.rm && restartPolicy.name !== 'no') throw new UsageError('--restart and --rm exclude each other'); // (only --rm runs are not kept)
  const { driver: logDriver, maxSize: logMaxSize, maxFiles: logMaxFiles } = (await import('./log-driver.js')).parseLogFlags(f.logDriver, f.logOpt ?? []);
  if (!kept && f.logOpt?.length) throw new UsageError('--log-opt needs a kept container: drop --rm, or add -d');
  const root = defaultRoot();
  // a user-defined network is a bridge of its own
  const asked = f.network === 'default' ? 'bridge' : f.network;
  const networkName = ['none', 'host', 'bridge'].includes(asked) ? undefined : (await m.findNetwork(root, asked)).name;
  if (f.networkAlias?.length && !networkName) throw new UsageError('--network-alias needs a user-defined network (berth network create)');
  m.checkAliases('--network-alias', f.networkAlias ?? []);
  const publish = (f.publish ?? []).flatMap((p) => m.parsePublish(p));
  const etc = { addHosts: (f.addHost ?? []).map((h) => m.parseAddHost(h)), dns: f.dns ?? [], dnsSearch: f.dnsSearch ?? [], dnsOptions: f.dnsOption ?? [] };
  m.checkDnsFlags(etc);
  const labels = parseLabels(f.label);
  const stopSignal = f.stopSignal !== undefined ? signalName(f.stopSignal) : undefined;
  let stopTimeout: number | undefined;
  if (f.stopTimeout !== undefined) {
    stopTimeout = Number(f.stopTimeout);
    if (!Number.isInteger(stopTimeout) || stopTimeout < -1) throw new UsageError(`--stop-timeout ${f.stopTimeout}: expected whole seconds (-1: wait for as long as it takes)`);
  }
  let caps: string[];
  try { caps = m.tweakCapabilities(m.DEFAULT_CAPABILITIES, f.capAdd, f.capDrop, m.availableCapabilities()); } catch (e) { throw new UsageError((e as Error).message); }
  // (docker ignores --cap-add/--cap-drop with --privileged, which has them all and no seccomp or AppArmor either)
  const risky = f.privileged ? [] : caps.filter((c) => m.HOST_REACHING_CAPABILITIES.includes(c));
  if (risky.length) process.stderr.write(`berth: warning: ${risky.join(', ')} can let the container's root reach the host: berth's seccomp filter lets through the calls a capability governs, as docker's does, and berth has no AppArmor profile to hold them back\n`);
  if (!f.privileged && f.securityOpt?.some((o) => /^systempaths[=:]unconfined$/.test(o.trim()))) {
    process.stderr.write('berth: warning: systempaths=unconfined lets the container\'s root write /proc/sys and /proc/sysrq-trigger, which are the host\'s (no user namespace, no AppArmor profile)\n');
  }
  const health: HealthFlags = {
    healthCmd: f.healthCmd, healthInterval: f.healthInterval, healthTimeout: f.healthTimeout, healthRetries: f.healthRetries,
    healthStartPeriod: f.healthStartPeriod, healthcheck: f.healthcheck,
  };
  healthConfig({ Test: ['CMD', 'checked'] }, health); // the flags' own errors before any pull
  const executor = await m.pickExecutor(root, f.runtime);
  // every flag checked before a pull that may take long (-v NAME:/path makes the volume NAME already)
  const run = await runOptions(command, { ...f, network: networkName ? 'bridge' : asked }).catch((e: Error) => {
    throw e instanceof m.SpecError ? new UsageError(e.message) : e;
  });
  if (f.tty) run.tty = true;
  await ensureImage(image, f);
  const store = await m.RuntimeImageStore.open({ create: false }).catch((e: Error) => {
    throw e instanceof NotFoundError ? new m.ImageNotFoundError(`image ${image} is not in the local store: there is none yet at ${m.localStoreDir()}; pull it first`) : e;
  });
  const snapshots = await m.OverlaySnapshotter.open(root);
  return {
    m, root, store, snapshots, executor,
    create: {
      root, store, snapshots, executor, image, run, restartPolicy, publish, publishAll: !!f.publishAll, etc,
      ...(networkName ? { networkName, aliases: f.networkAlias ?? [] } : {}),
      ...(f.name !== undefined ? { name: f.name } : {}),
      logDriver, ...(logMaxSize !== undefined ? { logMaxSize } : {}), ...(logMaxFiles !== undefined ? { logMaxFiles } : {}), ...(f.rm ? { autoRemove: true } : {}),
      ...(stopSignal !== undefined ? { stopSignal } : {}), ...(stopTimeout !== undefined ? { stopTimeout } : {}),
      ...(Object.keys(labels).length ? { labels } : {}), health,
    },
  };
}

/**
 * docker run's --pull: "missing" pulls when the local store has no such image, "always" every time
 * (only what changed is fetched), "never" leaves the store alone. Image IDs (sha256:…) are never pulled.
 */
async function ensureImage(image: string, f: CreateFlags): Promise<void> {
  const m = await mods();
  if (!['missing', 'always', 'never'].includes(f.pull)) throw new UsageError(`--pull ${f.pull}: expected missing, always or never`);
  if (f.pull === 'never' || /^sha(256|512):/.test(image)) return;
  if (f.pull === 'missing') {
    try {
      await (await m.RuntimeImageStore.open({ create: false })).resolve(image);
      return;
    } catch (e) {
      // no store yet (NotFoundError), or no such image in it; anything else is the image's own problem
      if (!(e instanceof m.ImageNotFoundError) && !(e instanceof NotFoundError)) throw e;
    }
  }
  let src;
  try { src = m.parseLocation(image); } catch { return; } // not a reference: resolve() says what is wrong
  if (src.kind !== 'registry') return;
  const report = f.quiet ? { write: () => true } : process.stderr;
  if (f.pull === 'missing') report.write(`Unable to find image '${m.localName(src.ref)}' locally\n`);
  const { transfer } = await import('../cli/transfer.js');
  try {
    await transfer(src, { kind: 'local', ref: src.ref }, f, 'Pulled', report);
  } catch (e) {
    if (f.pull !== 'missing') throw e;
    const err = e as Error & { exitCode?: number };
    err.message = `image ${m.localName(src.ref)} is not in the local store, and pulling it failed: ${err.message}`;
    throw err;
  }
}

/** One --mount: a bind, a named or anonymous volume (as -v), or a tmpfs (as --tmpfs, returned as its text). */
async function mountFlag(root: string, text: string): Promise<VolumeMount | string> {
  const m = await mods();
  const p = (await import('./mount-flag.js')).parseMountFlag(text);
  if (p.type === 'tmpfs') return p.tmpfs;
  if (p.type === 'anonymous') return { source: '', destination: p.destination, readonly: p.readonly, volume: { name: '', anonymous: true, copyUp: !p.nocopy } };
  return asVolumeMount(await m.resolveVolume(root, p));
}

/** A resolved -v or --mount as the spec takes it. */
function asVolumeMount(r: VolumeFlag): VolumeMount {
  if (r.type === 'bind') return { source: r.source, destination: r.destination, readonly: r.readonly };
  return { source: r.source, destination: r.destination, readonly: r.readonly, volume: { name: r.name, anonymous: false, copyUp: r.copyUp } };
}

/** One -v: HOST:CTR[:ro], NAME:CTR[:ro|nocopy] (made when missing) or just CTR (a new anonymous volume). */
async function volumeMount(root: string, v: string): Promise<VolumeMount> {
  const m = await mods();
  if (!v.includes(':')) {
    if (!v.startsWith('/')) throw new UsageError(`-v ${v}: expected HOST:CONTAINER[:ro], NAME:CONTAINER[:ro] or an absolute CONTAINER path`);
    // made with the container (volumes.ts materializeVolumes), so a run that fails before leaves none behind
    return { source: '', destination: v, volume: { name: '', anonymous: true, copyUp: true } };
  }
  return asVolumeMount(await m.resolveVolumeFlag(root, v));
}

function devicesOf(parsed: Array<{ device: SpecDevice; rule: NonNullable<RunOptions['deviceRules']>[number] }>): Pick<RunOptions, 'devices' | 'deviceRules'> {
  return parsed.length ? { devices: parsed.map((p) => p.device), deviceRules: parsed.map((p) => p.rule) } : {};
}

/** The limit flags run, create and update share (docker's names). */
export interface LimitFlags { memory?: string; memorySwap?: string; memoryReservation?: string; cpus?: string; cpuShares?: string; cpusetCpus?: string; cpusetMems?: string; pidsLimit?: string }

/** Adds the limit flags to a command. */
export function limitFlagOptions(cmd: Command): Command {
  return cmd
    .option('-m, --memory <bytes>', 'memory limit, e.g. 64m')
    .option('--memory-swap <bytes>', 'memory and swap together, e.g. 128m (-1: unlimited swap; default: no swap)')
    .option('--memory-reservation <bytes>', 'a soft memory limit the kernel reclaims towards under pressure')
    .option('--cpus <n>', 'CPU quota, e.g. 1.5')
    .option('-c, --cpu-shares <n>', 'relative CPU weight (the default is 1024)')
    .option('--cpuset-cpus <list>', 'the CPUs it may run on, e.g. 0-1 or 0,2')
    .option('--cpuset-mems <list>', 'the memory nodes it may use (NUMA), e.g. 0')
    .option('--pids-limit <n>', 'maximum number of processes (-1: unlimited)');
}

/** --pids-limit: a whole number; 0 or below (docker's -1) is no limit. */
function pidsLimit(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n)) throw new UsageError(`--pids-limit ${v}: expected a whole number (-1: unlimited)`);
  return n;
}

/** The limit flags, parsed (each only when given). */
export async function limitOptions(f: LimitFlags): Promise<Pick<RunOptions, 'memory' | 'memorySwap' | 'memoryReservation' | 'cpus' | 'cpuShares' | 'cpusetCpus' | 'cpusetMems' | 'pidsLimit'>> {
  const m = await mods();
  const num = (name: string, v: string | undefined, int: boolean) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0 || (int && !Number.isInteger(n))) throw new UsageError(`--${name} ${v}: expected a positive ${int ? 'integer' : 'number'}`);
    return n;
  };
  const bytes = (name: string, v: string | undefined) => {
    if (v === undefined) return undefined;
    try { return m.parseBytes(v); } catch (e) { throw new UsageError(`--${name} ${v}: ${(e as Error).message}`); }
  };
  const cpuShares = f.cpuShares === undefined ? undefined : Number(f.cpuShares);
  if (cpuShares !== undefined && !Number.isInteger(cpuShares)) throw new UsageError(`--cpu-shares ${f.cpuShares}: expected a whole number`);
  const out = {
    memory: bytes('memory', f.memory), memorySwap: f.memorySwap?.trim() === '-1' ? -1 : bytes('memory-swap', f.memorySwap),
    memoryReservation: bytes('memory-reservation', f.memoryReservation), cpus: num('cpus', f.cpus, false), cpuShares,
    cpusetCpus: f.cpusetCpus, cpusetMems: f.cpusetMems, pidsLimit: pidsLimit(f.pidsLimit),
  };
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== undefined));
}

/** Docker-style run flags → RunOptions (with clear errors for what is not supported). */
export async function runOptions(command: string[], f: Omit<CreateFlags, 'runtime' | 'pull'>): Promise<RunOptions> {
  const m = await mods();
  const env = await envFromFlags(f);
  const network = f.network === 'default' ? 'bridge' : f.network;
  if (network !== 'none' && network !== 'host' && network !== 'bridge') throw new UsageError(`network ${f.network} not found`);
  const volumes: VolumeMount[] = [];
  for (const v of f.volume ?? []) volumes.push(await volumeMount(defaultRoot(), v));
  const tmpfs = [...f.tmpfs ?? []];
  for (const t of tmpfs) (await mods()).parseTmpfs(t); // its options checked now, not by the kernel at the start
  if (f.hostname !== undefined) (await mods()).checkHostname(f.hostname);
  for (const text of f.mount ?? []) {
    const mount = await mountFlag(defaultRoot(), text);
    if (typeof mount === 'string') tmpfs.push(mount); else volumes.push(mount);
  }
  const limits = await limitOptions(f);
  const run: RunOptions = {
    ...(command.length ? { args: command } : {}),
    ...(f.entrypoint !== undefined ? { entrypoint: f.entrypoint } : {}),
    env,
    ...(f.workdir !== undefined ? { workdir: f.workdir } : {}),
    ...(f.user !== undefined ? { user: f.user } : {}),
    ...(f.hostname !== undefined ? { hostname: f.hostname } : {}),
    network,
    volumes,
    tmpfs,
    readOnly: !!f.readOnly,
    ...limits,
    ...(f.shmSize !== undefined ? { shmSize: m.parseBytes(f.shmSize) } : {}),
    ...(f.ulimit?.length ? { ulimits: f.ulimit.map((u) => m.parseUlimit(u)) } : {}),
    ...(f.groupAdd?.length ? { groupAdd: f.groupAdd } : {}),
    ...(f.init ? { init: m.findInit() } : {}),
    ...devicesOf((f.device ?? []).map((d) => m.parseDevice(d))),
    ...(f.capAdd?.length ? { capAdd: f.capAdd } : {}),
    ...(f.capDrop?.length ? { capDrop: f.capDrop } : {}),
    ...securityOf(f),
    cgroupns: cgroupnsMode(f.cgroupns),
  };
  m.checkResources(run);
  return run;
}

/** --cgroupns, with docker's default: private where the host has only cgroup v2, host on v1 and hybrid hosts. */
function cgroupnsMode(asked: string | undefined): 'private' | 'host' {
  const mode = asked ?? (existsSync('/sys/fs/cgroup/cgroup.controllers') ? 'private' : 'host');
  if (mode !== 'private' && mode !== 'host') throw new UsageError(`--cgroupns ${asked}: expected private or host`);
  return mode;
}

/** --privileged and --security-opt. A privileged container has no no_new_privs unless asked for (docker has it off anyway). */
function securityOf(f: Pick<CreateFlags, 'privileged' | 'securityOpt'>): Pick<RunOptions, 'privileged' | 'noNewPrivileges' | 'unmaskPaths' | 'seccomp' | 'securityOpt'> {
  let s;
  try { s = parseSecurityOpts(f.securityOpt); } catch (e) { throw e instanceof SecurityOptError ? new UsageError(e.message) : e; }
  const noNewPrivileges = s.noNewPrivileges ?? (f.privileged ? false : undefined);
  return {
    ...(f.privileged ? { privileged: true } : {}),
    ...(noNewPrivileges !== undefined ? { noNewPrivileges } : {}),
    ...(s.unmaskPaths ? { unmaskPaths: true } : {}),
    ...(s.seccompUnconfined ? { seccomp: false as const } : {}),
    ...(f.securityOpt?.length ? { securityOpt: f.securityOpt } : {}),
  };
}
