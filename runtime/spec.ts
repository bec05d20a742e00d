// Image config + run flags → an OCI runtime-spec config.json, with Docker's semantics: ENTRYPOINT +
// CMD (an --entrypoint drops the image's CMD; arguments replace CMD), Env merged by key with a
// default PATH, HOSTNAME and HOME, WorkingDir, User resolved against the container's own
// /etc/passwd and /etc/group (read without following symlinks out of the rootfs), Docker's default
// capabilities, masked and read-only /proc and /sys paths, device rules, and cgroup limits.
import { closeSync, constants, existsSync, fstatSync, lstatSync, openSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { posix } from 'node:path';
import type { ImageConfig } from './image-store.js';
import { HeldDir, resolveInView, walkHeld } from './in-root.js';
import { defaultSeccompProfile, type SeccompProfile } from './seccomp.js';

export class SpecError extends Error {}

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Every capability Linux knows, in the order of their numbers (CAP_CHOWN is 0). */
export const CAPABILITIES = [
  'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP', 'LINUX_IMMUTABLE',
  'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW', 'IPC_LOCK', 'IPC_OWNER', 'SYS_MODULE', 'SYS_RAWIO',
  'SYS_CHROOT', 'SYS_PTRACE', 'SYS_PACCT', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE', 'SYS_RESOURCE', 'SYS_TIME',
  'SYS_TTY_CONFIG', 'MKNOD', 'LEASE', 'AUDIT_WRITE', 'AUDIT_CONTROL', 'SETFCAP', 'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG',
  'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ', 'PERFMON', 'BPF', 'CHECKPOINT_RESTORE',
].map((c) => `CAP_${c}`);

/** "net_admin", "NET_ADMIN", "CAP_NET_ADMIN" → "CAP_NET_ADMIN"; "all" → "ALL". */
export function capabilityName(c: string): string {
  const n = c.trim().toUpperCase();
  if (n === 'ALL') return n;
  const cap = n.startsWith('CAP_') ? n : `CAP_${n}`;
  if (!CAPABILITIES.includes(cap)) throw new SpecError(`unknown capability: "${c}"`);
  return cap;
}

/**
 * --cap-add and --cap-drop on top of a base set, as docker does it: ALL among the adds is every
 * capability but the dropped ones; ALL among the drops is only the added ones; otherwise the base
 * minus the drops plus the adds (an add wins over a drop of the same one).
 */
export function tweakCapabilities(base: readonly string[], add: string[] = [], drop: string[] = [], available: readonly string[] = CAPABILITIES): string[] {
  const adds = add.map(capabilityName);
  const drops = drop.map(capabilityName);
  for (const a of adds) {
    if (a !== 'ALL' && !available.includes(a)) throw new SpecError(`capability ${a} cannot be given here: this kernel does not know it, or berth itself runs without it`);
  }
  if (adds.includes('ALL')) return available.filter((c) => !drops.includes(c));
  const kept = drops.includes('ALL') ? [] : base.filter((c) => !drops.includes(c));
  return [...new Set([...kept, ...adds])];
}

/**
 * Capabilities that let a container's root reach the host when nothing else holds them back: mounts
 * (a cgroup release_agent, a devtmpfs), kernel modules, raw I/O, open_by_handle_at. The seccomp filter
 * lets through the calls a capability governs (docker's does too, and leans on AppArmor); berth has no
 * AppArmor profile, so run and create warn about them.
 */
export const HOST_REACHING_CAPABILITIES = ['CAP_SYS_ADMIN', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_DAC_READ_SEARCH'];

/** The capabilities a container can get here: those this kernel knows that berth's own bounding set has. */
export function availableCapabilities(): string[] {
  let last = CAPABILITIES.length - 1;
  let bounding = (1n << 64n) - 1n;
  try { last = Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim()); } catch { /* keep every known one */ }
  try { bounding = BigInt(`0x${/^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]}`); } catch { /* as above */ }
  return CAPABILITIES.filter((_, i) => i <= last && (bounding >> BigInt(i)) & 1n);
}

/** Docker's default capability set. */
export const DEFAULT_CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
] as const;

export const MASKED_PATHS = [
  '/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats',
  '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap',
];
export const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

export interface SpecMount { destination: string; type?: string; source?: string; options?: string[] }

export interface UserSpec { uid: number; gid: number; additionalGids?: number[]; umask?: number; username?: string }

export interface RuntimeSpec {
  ociVersion: string;
  process: {
    terminal: boolean;
    user: UserSpec;
    args: string[];
    env: string[];
    cwd: string;
    capabilities: { bounding: string[]; effective: string[]; permitted: string[]; inheritable: string[]; ambient: string[] };
    noNewPrivileges: boolean;
    rlimits?: Rlimit[];
  };
  root: { path: string; readonly: boolean };
  hostname: string;
  mounts: SpecMount[];
  linux: {
    namespaces: Array<{ type: string; path?: string }>;
    devices?: SpecDevice[];
    maskedPaths: string[];
    readonlyPaths: string[];
    /** the seccomp filter (absent: none) */
    seccomp?: SeccompProfile;
    cgroupsPath?: string;
    resources: {
      devices: Array<{ allow: boolean; type?: string; major?: number; minor?: number; access: string }>;
      /** swap is memory + swap, as docker's --memory-swap (-1: unlimited); reservation a soft limit. */
      memory?: { limit?: number; swap?: number; reservation?: number };
      /** quota/period: --cpus; shares: --cpu-shares; cpus/mems: --cpuset-cpus/--cpuset-mems ("0-2,4"). */
      cpu?: { quota?: number; period?: number; shares?: number; cpus?: string; mems?: string };
      pids?: { limit: number };
    };
  };
  annotations?: Record<string, string>;
}

export interface VolumeMount {
  source: string;
  destination: string;
  readonly?: boolean;
  /** A volume (not a host path): its name, whether it is anonymous, and whether the image's files are copied into it when empty. */
  volume?: { name: string; anonymous: boolean; copyUp: boolean };
}

export interface RunOptions {
  /** Arguments after the image name (replace CMD). */
  args?: string[];
  /** --entrypoint: a string (the empty string clears the image's ENTRYPOINT). */
  entrypoint?: string;
  /** -e / --env-file, in order: "K=V" sets, "K" alone takes the value from `hostEnv` (or is dropped). */
  env?: string[];
  hostEnv?: NodeJS.ProcessEnv;
  workdir?: string;
  user?: string;
  hostname?: string;
  tty?: boolean;
  readOnly?: boolean;
  /** --tmpfs PATH[:OPTIONS] */
  tmpfs?: string[];
  volumes?: VolumeMount[];
  /** bridge: the container joins `netnsPath`, made and wired to the bridge before it starts (network.ts). */
  network?: 'none' | 'host' | 'bridge';
  netnsPath?: string;
  memory?: number;
  /** --memory-swap: memory plus swap in bytes, -1 for unlimited (needs --memory). */
  memorySwap?: number;
  /** --memory-reservation: a soft limit the kernel reclaims towards under pressure. */
  memoryReservation?: number;
  cpus?: number;
  /** --cpu-shares: the relative CPU weight (1024 is everyone's default). */
  cpuShares?: number;
  /** --cpuset-cpus / --cpuset-mems: "0-2,4". */
  cpusetCpus?: string;
  cpusetMems?: string;
  pidsLimit?: number;
  cgroupsPath?: string;
  /** Host files bind-mounted at /etc/hosts, /etc/hostname, /etc/resolv.conf. */
  etcFiles?: { hosts?: string; hostname?: string; resolvConf?: string };
  /** --shm-size in bytes (default 64 MiB). */
  shmSize?: number;
  /** --ulimit, parsed (parseUlimit); UNLIMITED for -1. */
  ulimits?: Rlimit[];
  /** --group-add: more groups, by gid or by a name in the container's /etc/group. */
  groupAdd?: string[];
  /** --init: this host program (a static tini) runs as PID 1 at /dev/init and starts the command. */
  init?: string;
  /** --device: host devices made in the container, and allowed by its devices cgroup. */
  devices?: SpecDevice[];
  deviceRules?: Array<{ allow: boolean; type: string; major: number; minor: number; access: string }>;
  /** --cap-add and --cap-drop (names with or without CAP_, any case; ALL). */
  capAdd?: string[];
  capDrop?: string[];
  /** Docker leaves no_new_privs off; berth turns it on unless told otherwise (--security-opt no-new-privileges=false). */
  noNewPrivileges?: boolean;
  /**
   * --privileged: every capability this host can give, every host device (and the devices cgroup
   * open), /sys and /sys/fs/cgroup writable, nothing masked. --cap-add/--cap-drop are ignored, as docker does.
   */
  privileged?: boolean;
  /** --security-opt seccomp=unconfined: false (no filter); otherwise berth's default one, unless --privileged. */
  seccomp?: false;
  /** --security-opt systempaths=unconfined: /proc and /sys paths neither masked nor read-only. */
  unmaskPaths?: boolean;
  /** --cgroupns: a cgroup namespace of its own (private: its cgroups are the root it sees) or the host's. */
  cgroupns?: 'private' | 'host';
  /** --security-opt as given (inspect shows them; security-opts.ts reads them into the fields above). */
  securityOpt?: string[];
  /** The rootfs path written to config.json (default "rootfs", relative to the bundle). */
  rootPath?: string;
  annotations?: Record<string, string>;
}

/** An absolute container path, normalised, without a trailing slash. */
function containerPath(p: string): string {
  const n = posix.normalize(p);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

function envKey(kv: string): string {
  const i = kv.indexOf('=');
  return i < 0 ? kv : kv.slice(0, i);
}

/** Merges env lists by key; later entries win, first position is kept (like Docker). */
export function mergeEnv(...lists: string[][]): string[] {
  const order: string[] = [];
  const values = new Map<string, string>();
  for (const list of lists) {
    for (const kv of list) {
      const k = envKey(kv);
      if (!k) throw new SpecError(`invalid environment variable "${kv}"`);
      if (!values.has(k)) order.push(k);
      values.set(k, kv);
    }
  }
  return order.map((k) => values.get(k)!);
}

/** -e semantics: "K=V" as is; "K" takes the host's value, or is dropped when the host has none. */
export function resolveEnvFlags(flags: string[], hostEnv: NodeJS.ProcessEnv = process.env): string[] {
  const out: string[] = [];
  for (const f of flags) {
    if (f.includes('=')) {
      if (f.startsWith('=')) throw new SpecError(`invalid environment variable "${f}"`);
      out.push(f);
    } else if (f.trim() !== '' && hostEnv[f] !== undefined) out.push(`${f}=${hostEnv[f]}`);
  }
  return out;
}

/** --env-file: one variable per line; blank lines and lines starting with # are skipped. */
export function parseEnvFile(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/^\s+/, '');
    if (line === '' || line.startsWith('#')) continue;
    const k = envKey(line);
    if (k === '' || /\s/.test(k)) throw new SpecError(`invalid line in env file: "${raw.slice(0, 100)}"`);
    out.push(line);
  }
  return out;
}

/** "512m", "1g", "1048576", "64k" → bytes. */
export function parseBytes(text: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*([bkmgt]?)b?$/i.exec(text.trim());
  if (!m) throw new SpecError(`invalid size "${text}": use a number with an optional unit b, k, m, g`);
  const mult = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2]!.toLowerCase()]!;
  const n = Math.floor(Number(m[1]) * mult);
  if (!Number.isSafeInteger(n)) throw new SpecError(`invalid size "${text}": too large`);
  return n;
}

/** The process arguments: Docker's ENTRYPOINT/CMD rules. */
export function processArgs(config: ImageConfig['config'] = {}, opts: Pick<RunOptions, 'args' | 'entrypoint'> = {}): string[] {
  let entrypoint = config.Entrypoint ?? [];
  let cmd = config.Cmd ?? [];
  if (opts.entrypoint !== undefined) {
    entrypoint = opts.entrypoint === '' ? [] : [opts.entrypoint];
    cmd = []; // --entrypoint resets the image's CMD
  }
  if (opts.args && opts.args.length) cmd = opts.args;
  const args = [...entrypoint, ...cmd];
  if (args.length === 0) throw new SpecError('no command specified: the image has no ENTRYPOINT or CMD, give a command after the image name');
  return args;
}

// ---- files inside the rootfs, without escaping it -------------------------------------------------

/** Resolves `path` inside `root` as the container would see it (symlinks resolved within root). */
export async function resolveInRoot(root: string, path: string): Promise<string> {
  return (await resolveInView({ root, mounts: [] }, path)).host;
}

/**
 * A regular file of the container's (its /etc/passwd, say), read through held directories: a running
 * container swapping a directory for a symlink meanwhile cannot lead the read to the host's files.
 */
async function readInRoot(root: string, path: string): Promise<string | undefined> {
  let top: HeldDir;
  try { top = new HeldDir(openSync(root, constants.O_RDONLY | constants.O_DIRECTORY), '/', true); } catch { return undefined; }
  try {
    const { dir, name } = walkHeld({ root: top, mounts: [] }, path);
    try {
      if (name === undefined) return undefined; // a directory
      const fd = openSync(dir.at(name), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
      try { return fstatSync(fd).isFile() ? readFileSync(fd, 'utf8') : undefined; } finally { closeSync(fd); }
    } finally { dir.close(); }
  } catch { return undefined; } finally { top.close(); }
}

interface PasswdEntry { name: string; uid: number; gid: number; home: string }
interface GroupEntry { name: string; gid: number; members: string[] }

function parsePasswd(text: string | undefined): PasswdEntry[] {
  return (text ?? '').split('\n').map((l) => l.split(':')).filter((f) => f.length >= 7 && /^[0-9]+$/.test(f[2]!) && /^[0-9]+$/.test(f[3]!))
    .map((f) => ({ name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5]! }));
}

function parseGroup(text: string | undefined): GroupEntry[] {
  return (text ?? '').split('\n').map((l) => l.split(':')).filter((f) => f.length >= 4 && /^[0-9]+$/.test(f[2]!))
    .map((f) => ({ name: f[0]!, gid: Number(f[2]), members: f[3]!.split(',').filter(Boolean) }));
}

const ID = /^[0-9]+$/;

/**
 * Resolves a Docker --user / USER value ("name", "uid", "name:group", "uid:gid") against the
 * container's /etc/passwd and /etc/group. Numeric ids need no entry; names must exist.
 */
export async function resolveUser(rootfs: string, user: string | undefined): Promise<UserSpec & { home: string }> {
  const spec = user && user !== '' ? user : '0';
  const [u, g, ...rest] = spec.split(':') as [string, string | undefined];
  if (rest.length || u === '') throw new SpecError(`invalid user ${JSON.stringify(spec)}: expected USER[:GROUP] (names or numbers)`);
  const passwd = parsePasswd(await readInRoot(rootfs, '/etc/passwd'));
  const groups = parseGroup(await readInRoot(rootfs, '/etc/group'));
  let entry: PasswdEntry | undefined;
  let uid: number;
  if (ID.test(u)) {
    uid = Number(u);
    entry = passwd.find((p) => p.uid === uid);
  } else {
    entry = passwd.find((p) => p.name === u);
    if (!entry) throw new SpecError(`unable to find user ${u}: no matching entries in passwd file`);
    uid = entry.uid;
  }
  let gid = entry?.gid ?? 0;
  if (g !== undefined && g !== '') {
    if (ID.test(g)) gid = Number(g);
    else {
      const grp = groups.find((x) => x.name === g);
      if (!grp) throw new SpecError(`unable to find group ${g}: no matching entries in group file`);
      gid = grp.gid;
    }
  }
  if (uid > 0xfffffffe || gid > 0xfffffffe) throw new SpecError(`user ${spec}: id out of range`);
  const additional = g === undefined && entry
    ? [...new Set(groups.filter((x) => x.members.includes(entry!.name) && x.gid !== gid).map((x) => x.gid))]
    : [];
  return {
    uid, gid, ...(additional.length ? { additionalGids: additional } : {}), ...(entry ? { username: entry.name } : {}),
    home: entry?.home || '/',
  };
}

// ---- --device -----------------------------------------------------------------------------------

export interface SpecDevice { path: string; type: 'c' | 'b'; major: number; minor: number; fileMode: number; uid: number; gid: number }

/**
 * docker's --device HOST[:CONTAINER][:PERMISSIONS] (permissions of r, w, m; default rwm): the host
 * device's type and numbers, the node to make in the container, and the devices cgroup rule.
 */
export function parseDevice(text: string): { device: SpecDevice; rule: { allow: boolean; type: string; major: number; minor: number; access: string } } {
  const parts = text.split(':');
  let perms = 'rwm';
  if (parts.length > 1 && /^[rwm]+$/.test(parts.at(-1)!)) perms = parts.pop()!;
  if (parts.length > 2 || !parts[0]) throw new SpecError(`--device ${text}: expected HOST[:CONTAINER][:PERMISSIONS]`);
  const host = parts[0];
  const inside = parts[1] ?? host;
  if (!host.startsWith('/') || !inside.startsWith('/')) throw new SpecError(`--device ${text}: the paths must be absolute`);
  let st;
  try { st = statSync(host); } catch (e) { throw new SpecError(`--device ${text}: ${(e as Error).message}`); }
  if (!st.isCharacterDevice() && !st.isBlockDevice()) throw new SpecError(`--device ${text}: ${host} is not a device`);
  // glibc's major()/minor() of st_rdev
  const { major, minor } = deviceNumbers(st.rdev);
  const type = st.isCharacterDevice() ? 'c' : 'b';
  return {
    device: { path: containerPath(inside), type, major, minor, fileMode: st.mode & 0o777, uid: st.uid, gid: st.gid },
    rule: { allow: true, type, major, minor, access: [...new Set(perms)].join('') },
  };
}

/** glibc's major()/minor() of an st_rdev. */
function deviceNumbers(rdev: number): { major: number; minor: number } {
  const r = BigInt(rdev);
  return { major: Number(((r >> 8n) & 0xfffn) | ((r >> 32n) & ~0xfffn)), minor: Number((r & 0xffn) | ((r >> 12n) & ~0xffn)) };
}

/** What every container's /dev has anyway (made by the executor, or a symlink into its own devpts). */
const STANDARD_DEVICES = new Set(['/dev/null', '/dev/zero', '/dev/full', '/dev/random', '/dev/urandom', '/dev/tty', '/dev/ptmx', '/dev/console']);
/** Directories of /dev that are the container's own mounts, or never hold devices to pass on (containerd's list). */
const SKIPPED_DEV_DIRS = new Set(['pts', 'shm', 'fd', 'mqueue', '.lxc', '.lxd-mounts', '.udev']);

/** --privileged: the host's device nodes under /dev, as docker passes them (symlinks and the standard ones left out). */
export function hostDevices(dir = '/dev'): SpecDevice[] {
  const out: SpecDevice[] = [];
  let names: string[];
  try { names = readdirSync(dir); } catch { return out; } // (a directory gone meanwhile)
  for (const name of names.sort()) {
    const path = `${dir}/${name}`;
    let st;
    try { st = lstatSync(path); } catch { continue; }
    if (st.isDirectory()) {
      if (!(dir === '/dev' && SKIPPED_DEV_DIRS.has(name))) out.push(...hostDevices(path));
      continue;
    }
    if ((!st.isCharacterDevice() && !st.isBlockDevice()) || STANDARD_DEVICES.has(path)) continue;
    out.push({ path, type: st.isCharacterDevice() ? 'c' : 'b', ...deviceNumbers(st.rdev), fileMode: st.mode & 0o777, uid: st.uid, gid: st.gid });
  }
  return out;
}

// ---- --init and --ulimit ------------------------------------------------------------------------

/** Where --init's program appears: in the container's /dev tmpfs, so it leaves nothing in its files (podman uses /run). */
export const INIT_PATH = '/dev/init';

/** docker's docker-init is tini, linked statically so that it runs in any image; Debian's tini package has it. */
export function findInit(): string {
  const found = ['/usr/bin/tini-static', '/usr/libexec/docker/docker-init', '/usr/bin/docker-init'].find((p) => existsSync(p));
  if (!found) throw new SpecError('--init needs a static tini: install Debian\'s tini package (it has /usr/bin/tini-static)');
  return found;
}

export interface Rlimit { type: string; soft: number; hard: number }

/** RLIM_INFINITY. config.json must carry it as 2^64-1, which a JS number cannot hold: specJson writes it. */
export const UNLIMITED = -1;

const RLIMITS = ['cpu', 'fsize', 'data', 'stack', 'core', 'rss', 'nproc', 'nofile', 'memlock', 'as', 'locks', 'sigpending', 'msgqueue', 'nice', 'rtprio', 'rttime'];

/** The Linux number of an RLIMIT_* type (the order of RLIMITS). */
export function rlimitNumber(type: string): number {
  return RLIMITS.indexOf(type.replace(/^RLIMIT_/, '').toLowerCase());
}

/** docker's --ulimit TYPE=SOFT[:HARD] (-1: unlimited). */
export function parseUlimit(text: string): Rlimit {
  const m = /^([a-z]+)=(-?[0-9]+)(?::(-?[0-9]+))?$/.exec(text.trim());
  if (!m) throw new SpecError(`--ulimit ${text}: expected TYPE=SOFT[:HARD], e.g. nofile=1024:2048`);
  if (!RLIMITS.includes(m[1]!)) throw new SpecError(`--ulimit ${text}: unknown type ${m[1]} (one of ${RLIMITS.join(', ')})`);
  const value = (v: string) => {
    const n = Number(v);
    if (n === -1) return UNLIMITED;
    if (n < 0 || !Number.isSafeInteger(n)) throw new SpecError(`--ulimit ${text}: ${v} is not a limit (-1 for unlimited)`);
    return n;
  };
  const soft = value(m[2]!);
  const hard = m[3] === undefined ? soft : value(m[3]);
  const rank = (n: number) => (n === UNLIMITED ? Infinity : n);
  if (rank(soft) > rank(hard)) throw new SpecError(`--ulimit ${text}: the soft limit must not be above the hard one`);
  return { type: `RLIMIT_${m[1]!.toUpperCase()}`, soft, hard };
}

/** config.json's text: rlimits that are UNLIMITED become 18446744073709551615, as runc and crun read them. */
export function specJson(spec: RuntimeSpec): string {
  return JSON.stringify(spec, null, 2).replace(/^(\s*"(?:soft|hard)": )-1(,?)$/gm, '$118446744073709551615$2');
}

// ---- mounts ------------------------------------------------------------------------------------

/** --tmpfs PATH[:OPTIONS] → a mount (Docker's defaults: noexec, nosuid, nodev). */
/** --tmpfs options taken without a value (what every executor turns into mount flags). */
const TMPFS_FLAGS = new Set(['ro', 'rw', 'exec', 'noexec', 'suid', 'nosuid', 'dev', 'nodev', 'atime', 'noatime', 'nodiratime', 'relatime', 'strictatime', 'private', 'rprivate']);

export function parseTmpfs(text: string): SpecMount {
  const colon = text.indexOf(':');
  const destination = colon < 0 ? text : text.slice(0, colon);
  if (!destination.startsWith('/')) throw new SpecError(`--tmpfs ${text}: the path must be absolute`);
  const extra = colon < 0 ? [] : text.slice(colon + 1).split(',').filter(Boolean);
  const options = ['noexec', 'nosuid', 'nodev'];
  for (const o of extra) {
    const [key, value] = o.split('=', 2) as [string, string | undefined];
    const valid = value === undefined ? TMPFS_FLAGS.has(key)
      : key === 'size' ? /^[0-9]+[kmgKMG%]?$/.test(value)
        : key === 'mode' ? /^[0-7]{1,4}$/.test(value)
          : ['uid', 'gid', 'nr_inodes', 'nr_blocks'].includes(key) && /^[0-9]+[kmgKMG]?$/.test(value);
    if (!valid) throw new SpecError(`--tmpfs ${text}: "${o}" is not a tmpfs option (size=N[k|m|g|%], mode=OCTAL, uid=, gid=, nr_inodes=, ro, rw, exec, suid, dev, noatime …)`);
    const opposite: Record<string, string> = { exec: 'noexec', suid: 'nosuid', dev: 'nodev' };
    if (opposite[o]) options.splice(options.indexOf(opposite[o]!), 1);
    options.push(o);
  }
  return { destination: containerPath(destination), type: 'tmpfs', source: 'tmpfs', options: [...new Set(options)] };
}

function defaultMounts(network: RunOptions['network'], shmSize?: number, privileged = false): SpecMount[] {
  if (!shmSize) shmSize = 64 * 1024 * 1024; // docker's default, also for --shm-size 0
  const ro = privileged ? [] : ['ro']; // a privileged container may write to /sys and its cgroups, as with docker
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${shmSize}`] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    // a new net namespace may mount its own sysfs; with the host's network it is bind-mounted read-only
    network === 'host'
      ? { destination: '/sys', type: 'bind', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', ...ro] }
      : { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', ...ro] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', ...ro] },
  ];
}

const DEVICE_RULES: RuntimeSpec['linux']['resources']['devices'] = [
  { allow: false, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }, // null
  { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' }, // zero
  { allow: true, type: 'c', major: 1, minor: 7, access: 'rwm' }, // full
  { allow: true, type: 'c', major: 1, minor: 8, access: 'rwm' }, // random
  { allow: true, type: 'c', major: 1, minor: 9, access: 'rwm' }, // urandom
  { allow: true, type: 'c', major: 5, minor: 0, access: 'rwm' }, // tty
  { allow: true, type: 'c', major: 5, minor: 1, access: 'rwm' }, // console
  { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' }, // ptmx
  { allow: true, type: 'c', major: 136, access: 'rwm' }, // pts/*
];

/** --memory, --memory-swap and --memory-reservation, with docker's checks. */
function memoryResources(opts: RunOptions): RuntimeSpec['linux']['resources']['memory'] {
  const { memory: limit, memorySwap: swap, memoryReservation: reservation } = opts;
  if (limit !== undefined && !(limit >= 6 * 1024 * 1024)) throw new SpecError('minimum memory limit allowed is 6MB');
  if (swap !== undefined) {
    if (limit === undefined) throw new SpecError('--memory-swap needs --memory: it is the limit of memory and swap together');
    if (swap !== -1 && swap < limit) throw new SpecError('--memory-swap must be at least --memory (it counts memory and swap together; -1: unlimited swap)');
  }
  if (reservation !== undefined && limit !== undefined && reservation > limit) throw new SpecError('--memory-reservation must be below --memory');
  if (limit === undefined && reservation === undefined) return undefined;
  return { ...(limit !== undefined ? { limit } : {}), ...(swap !== undefined ? { swap } : {}), ...(reservation !== undefined ? { reservation } : {}) };
}

/** The limits part of config.json's resources (memory, cpu, pids) for these flags, with docker's checks. */
export function limitsFor(opts: RunOptions): Pick<RuntimeSpec['linux']['resources'], 'memory' | 'cpu' | 'pids'> {
  const memory = memoryResources(opts);
  const cpu = cpuResources(opts);
  return { ...(memory ? { memory } : {}), ...(cpu ? { cpu } : {}), ...(opts.pidsLimit !== undefined && opts.pidsLimit > 0 ? { pids: { limit: opts.pidsLimit } } : {}) };
}

/** The flags that would give these limits back (what `update` starts from). */
export function limitFlags(res: RuntimeSpec['linux']['resources']): Pick<RunOptions, 'memory' | 'memorySwap' | 'memoryReservation' | 'cpus' | 'cpuShares' | 'cpusetCpus' | 'cpusetMems' | 'pidsLimit'> {
  const { memory: m, cpu: c, pids: p } = res;
  return {
    ...(m?.limit !== undefined ? { memory: m.limit } : {}), ...(m?.swap !== undefined ? { memorySwap: m.swap } : {}),
    ...(m?.reservation !== undefined ? { memoryReservation: m.reservation } : {}),
    ...(c?.quota !== undefined ? { cpus: c.quota / (c.period ?? 100_000) } : {}), ...(c?.shares !== undefined ? { cpuShares: c.shares } : {}),
    ...(c?.cpus ? { cpusetCpus: c.cpus } : {}), ...(c?.mems ? { cpusetMems: c.mems } : {}), ...(p ? { pidsLimit: p.limit } : {}),
  };
}

/** The resource flags' own errors, before anything is pulled or made (buildSpec checks them again). */
export function checkResources(opts: RunOptions): void {
  limitsFor(opts);
}

/** "0-2,4" as the kernel takes a cpu or memory-node list; every one of them must be on this host. */
function checkCpuList(flag: string, list: string, available: number | undefined): void {
  if (!/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(list)) throw new SpecError(`${flag} ${list}: expected a list such as 0-2,4`);
  for (const part of list.split(',')) {
    const [a, b = a] = part.split('-').map(Number) as [number, number?];
    if (b! < a) throw new SpecError(`${flag} ${list}: ${part} is not a range`);
    if (available !== undefined && b! >= available) throw new SpecError(`${flag} ${list}: requested ${part}, but this host has ${flag === '--cpuset-cpus' ? 'CPUs' : 'memory nodes'} 0-${available - 1}`);
  }
}

/** --cpus, --cpu-shares, --cpuset-cpus and --cpuset-mems. */
function cpuResources(opts: RunOptions): RuntimeSpec['linux']['resources']['cpu'] {
  const cpu: NonNullable<RuntimeSpec['linux']['resources']['cpu']> = {};
  if (opts.cpus !== undefined) {
    if (!(opts.cpus > 0)) throw new SpecError(`invalid --cpus ${opts.cpus}`);
    Object.assign(cpu, { quota: Math.round(opts.cpus * 100_000), period: 100_000 });
  }
  if (opts.cpuShares !== undefined && opts.cpuShares !== 0) { // (0: the default weight, as docker takes it)
    if (!Number.isInteger(opts.cpuShares) || opts.cpuShares < 2 || opts.cpuShares > 262_144) throw new SpecError(`--cpu-shares ${opts.cpuShares}: expected 2 to 262144 (1024 is the default)`);
    cpu.shares = opts.cpuShares;
  }
  if (opts.cpusetCpus !== undefined) {
    checkCpuList('--cpuset-cpus', opts.cpusetCpus, cpuCount());
    cpu.cpus = opts.cpusetCpus;
  }
  if (opts.cpusetMems !== undefined) {
    checkCpuList('--cpuset-mems', opts.cpusetMems, nodeCount());
    cpu.mems = opts.cpusetMems;
  }
  return Object.keys(cpu).length ? cpu : undefined;
}

/** The highest number in a kernel list ("0-3,8") plus one. */
function listSize(text: string): number | undefined {
  const ends = text.trim().split(',').filter(Boolean).map((p) => Number(p.split('-').at(-1)));
  return ends.length && ends.every(Number.isInteger) ? Math.max(...ends) + 1 : undefined;
}
const cpuCount = (): number | undefined => { try { return listSize(readFileSync('/sys/devices/system/cpu/online', 'utf8')); } catch { return undefined; } };
const nodeCount = (): number | undefined => { try { return listSize(readFileSync('/sys/devices/system/node/online', 'utf8')); } catch { return 1; } };

/** --hostname: dot-separated labels of letters, digits and inner hyphens, at most 64 characters (the kernel's limit). */
export function checkHostname(hostname: string): void {
  const label = '[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?';
  if (hostname.length > 64 || !new RegExp(`^${label}(?:\\.${label})*$`).test(hostname)) throw new SpecError(`invalid hostname ${JSON.stringify(hostname)}`);
}

/** Builds config.json for a container whose root filesystem is mounted at `rootfs`. */
export async function buildSpec(image: ImageConfig, rootfs: string, opts: RunOptions = {}): Promise<RuntimeSpec> {
  const cfg = image.config ?? {};
  const args = processArgs(cfg, opts);
  const hostname = opts.hostname ?? 'berth';
  checkHostname(hostname);
  const user = await resolveUser(rootfs, opts.user ?? cfg.User);
  if (opts.groupAdd?.length) {
    const groups = parseGroup(await readInRoot(rootfs, '/etc/group'));
    const extra = opts.groupAdd.map((g) => {
      if (ID.test(g) && Number(g) <= 0xfffffffe) return Number(g);
      const found = groups.find((x) => x.name === g);
      if (!found) throw new SpecError(`--group-add ${g}: no such group in the container's /etc/group`);
      return found.gid;
    });
    user.additionalGids = [...new Set([...(user.additionalGids ?? []), ...extra])];
  }
  let cwd = opts.workdir ?? cfg.WorkingDir ?? '/';
  if (cwd === '') cwd = '/';
  if (opts.workdir !== undefined && !opts.workdir.startsWith('/')) throw new SpecError(`the working directory "${opts.workdir}" is not absolute`);
  cwd = posix.normalize(posix.join('/', cwd));

  const base = [`PATH=${DEFAULT_PATH}`, `HOSTNAME=${hostname}`];
  const env = mergeEnv(
    base,
    opts.tty ? ['TERM=xterm'] : [],
    cfg.Env ?? [],
    resolveEnvFlags(opts.env ?? [], opts.hostEnv),
  );
  const withHome = env.some((e) => envKey(e) === 'HOME') ? env : [...env, `HOME=${user.home}`];

  const defaults = defaultMounts(opts.network, opts.shmSize, opts.privileged);
  const etc = opts.etcFiles ?? {};
  // writable even under --read-only, as docker keeps them: they are the container's own files, not the image's
  const etcMount = (destination: string, source: string | undefined) => {
    if (source) defaults.push({ destination, type: 'bind', source, options: ['rbind', 'rprivate'] });
  };
  etcMount('/etc/hosts', etc.hosts);
  etcMount('/etc/hostname', etc.hostname);
  etcMount('/etc/resolv.conf', etc.resolvConf);
  const userMounts: SpecMount[] = (opts.tmpfs ?? []).map(parseTmpfs);
  for (const v of opts.volumes ?? []) {
    if (!v.destination.startsWith('/')) throw new SpecError(`volume destination "${v.destination}" is not absolute`);
    if (containerPath(v.destination) === '/') throw new SpecError('a volume cannot be mounted on /');
    userMounts.push({ destination: containerPath(v.destination), type: 'bind', source: v.source, options: ['rbind', 'rprivate', v.readonly ? 'ro' : 'rw'] });
  }
  const taken = new Set<string>();
  for (const m of userMounts) {
    if (taken.has(m.destination)) throw new SpecError(`duplicate mount point: ${m.destination}`);
    taken.add(m.destination);
  }
  // a user mount on a default destination (say --tmpfs /dev/shm or -v …:/etc/hosts) replaces the default
  const mounts = [...defaults.filter((m) => !taken.has(m.destination)), ...userMounts];
  if (opts.init) mounts.push({ destination: INIT_PATH, type: 'bind', source: opts.init, options: ['rbind', 'ro', 'nosuid', 'nodev'] });

  const caps = opts.privileged ? availableCapabilities()
    : opts.capAdd?.length || opts.capDrop?.length ? tweakCapabilities(DEFAULT_CAPABILITIES, opts.capAdd, opts.capDrop, availableCapabilities())
      : [...DEFAULT_CAPABILITIES];
  const resources: RuntimeSpec['linux']['resources'] = {
    devices: opts.privileged ? [{ allow: true, access: 'rwm' }] : [...DEVICE_RULES.map((d) => ({ ...d })), ...(opts.deviceRules ?? [])],
  };
  // --device on top of --privileged puts the node where asked (the host's ones stay where they are)
  const devices = opts.privileged ? [...hostDevices().filter((h) => !opts.devices?.some((d) => d.path === h.path)), ...(opts.devices ?? [])] : opts.devices ?? [];
  const unmasked = opts.privileged || opts.unmaskPaths;
  Object.assign(resources, limitsFor(opts));

  const namespaces: RuntimeSpec['linux']['namespaces'] = [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }];
  if (opts.network === 'bridge' && !opts.netnsPath) throw new SpecError('the bridge network needs the namespace path to join');
  if (opts.network !== 'host') namespaces.push(opts.network === 'bridge' ? { type: 'network', path: opts.netnsPath! } : { type: 'network' });
  if (opts.cgroupns === 'private') namespaces.push({ type: 'cgroup' });

  return {
    ociVersion: '1.0.2',
    process: {
      terminal: !!opts.tty,
      user: { uid: user.uid, gid: user.gid, ...(user.additionalGids ? { additionalGids: user.additionalGids } : {}), umask: 0o022 },
      args: opts.init ? [INIT_PATH, '--', ...args] : args,
      env: withHome,
      cwd,
      capabilities: {
        bounding: caps,
        // like Docker since 20.10: a non-root user starts with no effective/permitted capabilities
        effective: user.uid === 0 ? caps : [],
        permitted: user.uid === 0 ? caps : [],
        inheritable: [],
        ambient: [],
      },
      noNewPrivileges: opts.noNewPrivileges ?? true,
      ...(opts.ulimits?.length ? { rlimits: opts.ulimits } : {}),
    },
    root: { path: opts.rootPath ?? 'rootfs', readonly: !!opts.readOnly },
    hostname,
    mounts,
    linux: {
      namespaces,
      ...(devices.length ? { devices } : {}),
      maskedPaths: unmasked ? [] : [...MASKED_PATHS],
      readonlyPaths: unmasked ? [] : [...READONLY_PATHS],
      ...(opts.privileged || opts.seccomp === false ? {} : { seccomp: defaultSeccompProfile(caps) }),
      ...(opts.cgroupsPath ? { cgroupsPath: opts.cgroupsPath } : {}),
      resources,
    },
    ...(opts.annotations ? { annotations: opts.annotations } : {}),
  };
}
