// berth's built-in executor: runs an OCI bundle with nothing beyond a stock Debian. Node reads
// config.json, creates the container's cgroups and writes their limits, and hands a plan to
// builtin.pl, which makes the syscalls Node has no binding for: new pid/mount/uts/ipc/net
// namespaces, the mounts (their targets stay container paths, which builtin.pl finds inside the
// rootfs as it mounts each: no symlink leads out of it), pivot_root (not chroot), Docker's default
// capabilities, no_new_privs, the user, then exec.
//
// State per container under <stateRoot>/<id>/: plan, pid (the host pid of the container's init,
// written by builtin.pl) and cgroups.json (the cgroup directories to remove at delete).
import type { ChildProcess, StdioOptions } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { dirname, join, posix, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pidAlive, procStartTime } from '../process.js';
import { CAPABILITIES, rlimitNumber, type Rlimit, type RuntimeSpec, type SpecMount, type UserSpec } from '../spec.js';
import type { SeccompProfile } from '../seccomp.js';
import { compileSeccomp } from './seccomp-bpf.js';
import { spawnWrapped, type ExecProcess, type Executor, type ExecutorRef, type Limits } from './executor.js';

/** Capability names → the two 32-bit halves of a mask. */
export function capabilityMask(names: string[]): { lo: number; hi: number } {
  let lo = 0;
  let hi = 0;
  for (const n of names) {
    const i = CAPABILITIES.indexOf(n.startsWith('CAP_') ? n : `CAP_${n}`);
    if (i < 0) throw new Error(`unknown capability ${n}`);
    if (i < 32) lo = (lo | (1 << i)) >>> 0;
    else hi = (hi | (1 << (i - 32))) >>> 0;
  }
  return { lo, hi };
}

const MOUNT_FLAGS: Record<string, number> = {
  ro: 1, nosuid: 2, nodev: 4, noexec: 8, noatime: 1024, nodiratime: 2048, relatime: 1 << 21, strictatime: 1 << 24,
};
const IGNORED_OPTIONS = new Set(['rw', 'bind', 'rbind', 'private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave', 'suid', 'dev', 'exec', 'atime']);
const MS_BIND = 4096;
const MS_REC = 16384;
const MS_REMOUNT = 32;
const MS_RDONLY = 1;
const MS_NOSUID_NODEV_NOEXEC = 2 | 4 | 8;

/** A plan of NUL-terminated fields (builtin.pl reads it); a record is a key and its fields. */
class Plan {
  private parts: string[] = [];
  add(key: string, ...fields: Array<string | number>): this {
    for (const f of [key, ...fields]) {
      const s = String(f);
      if (s.includes('\0')) throw new Error(`a NUL byte in ${key}`);
      this.parts.push(s);
    }
    return this;
  }
  text(): string { return this.parts.map((p) => `${p}\0`).join(''); }
}

// ---- cgroups -----------------------------------------------------------------------------------

const CGROUP_ROOT = '/sys/fs/cgroup';
const unified = () => existsSync(join(CGROUP_ROOT, 'cgroup.controllers'));

interface CgroupSetup { dirs: string[]; procs: string[]; devicesLimited: boolean }

async function writeCg(dir: string, file: string, value: string | number): Promise<void> {
  try { await writeFile(join(dir, file), String(value)); } catch (e) {
    throw new Error(`cgroup ${join(dir, file)} = ${value}: ${(e as Error).message}`);
  }
}

/** pids.max for a spec's limit: runc's reading, where 0 or less (update's -1) is no limit. */
const pidsMax = (limit: number): number | 'max' => (limit > 0 ? limit : 'max');

/** cgroup v2's cpu.weight for v1's cpu.shares (runc's conversion: 2…262144 onto 1…10000). */
export function cpuWeight(shares: number): number {
  return 1 + Math.floor(((shares - 2) * 9999) / 262_142);
}

/**
 * Creates the container's cgroups (v1 controllers, or the v2 tree) and writes the spec's limits.
 * With limitsOnly (update of a running container) the devices cgroup is left as it is.
 */
async function setupCgroups(id: string, res: Limits & Partial<Pick<RuntimeSpec['linux']['resources'], 'devices'>>, limitsOnly = false): Promise<CgroupSetup> {
  const out: CgroupSetup = { dirs: [], procs: [], devicesLimited: false };
  try { return await fillCgroups(out, id, res, limitsOnly); } catch (e) {
    // a limit the kernel refused: a new container's cgroups go again (an update's stay: they are in use)
    if (!limitsOnly) await removeCgroups(out.dirs).catch(() => undefined);
    throw e;
  }
}

async function fillCgroups(out: CgroupSetup, id: string, res: Limits & Partial<Pick<RuntimeSpec['linux']['resources'], 'devices'>>, limitsOnly: boolean): Promise<CgroupSetup> {
  if (unified()) {
    const parent = join(CGROUP_ROOT, 'berth');
    await mkdir(parent, { recursive: true });
    const available = (await readFile(join(CGROUP_ROOT, 'cgroup.controllers'), 'utf8')).split(/\s+/);
    const want = ['memory', 'pids', 'cpu', ...(res.cpu?.cpus || res.cpu?.mems ? ['cpuset'] : [])].filter((c) => available.includes(c));
    for (const c of want) await writeFile(join(CGROUP_ROOT, 'cgroup.subtree_control'), `+${c}`).catch(() => undefined);
    for (const c of want) await writeFile(join(parent, 'cgroup.subtree_control'), `+${c}`).catch(() => undefined);
    const dir = join(parent, id);
    await mkdir(dir, { recursive: true });
    out.dirs.push(dir);
    out.procs.push(join(dir, 'cgroup.procs'));
    const mem = res.memory;
    if (mem?.limit !== undefined) {
      await writeCg(dir, 'memory.max', mem.limit);
      // v2 counts swap apart: --memory-swap's total minus the memory (no swap unless asked)
      await writeCg(dir, 'memory.swap.max', mem.swap === -1 ? 'max' : (mem.swap ?? mem.limit) - mem.limit).catch(() => undefined);
    }
    if (mem?.reservation !== undefined) await writeCg(dir, 'memory.low', mem.reservation);
    if (res.pids) await writeCg(dir, 'pids.max', pidsMax(res.pids.limit));
    const cpu = res.cpu;
    if (cpu?.quota !== undefined) await writeCg(dir, 'cpu.max', `${cpu.quota} ${cpu.period ?? 100_000}`);
    if (cpu?.shares !== undefined) await writeCg(dir, 'cpu.weight', cpuWeight(cpu.shares));
    if (cpu?.cpus) await writeCg(dir, 'cpuset.cpus', cpu.cpus);
    if (cpu?.mems) await writeCg(dir, 'cpuset.mems', cpu.mems);
    return out; // v2 restricts devices only with eBPF: the caller drops CAP_MKNOD instead
  }
  // a cgroup only where it does something: devices always (CAP_MKNOD needs it), the others for
  // their limits — every cgroup.procs join is a cgroup migration, and each costs a few ms at start
  const ctl = async (name: string, configure?: (dir: string) => Promise<void>) => {
    const base = join(CGROUP_ROOT, name);
    if (!existsSync(join(base, 'cgroup.procs'))) return false;
    const dir = join(base, 'berth', id);
    await mkdir(dir, { recursive: true });
    out.dirs.push(dir);
    if (configure) await configure(dir);
    out.procs.push(join(dir, 'cgroup.procs'));
    return true;
  };
  const mem = res.memory;
  if (mem) await ctl('memory', async (dir) => {
    if (mem.limit !== undefined) {
      // no swap beyond the limit (unless asked): the limit means what it says. The kernel wants
      // memory ≤ memory+swap at every step, so a limit above the current memsw goes in after it.
      const memsw = join(dir, 'memory.memsw.limit_in_bytes');
      const total = mem.swap === -1 ? -1 : mem.swap ?? mem.limit;
      const raising = existsSync(memsw) && (total === -1 || Number(await readFile(memsw, 'utf8')) < mem.limit);
      if (raising) await writeCg(dir, 'memory.memsw.limit_in_bytes', total);
      await writeCg(dir, 'memory.limit_in_bytes', mem.limit);
      if (existsSync(memsw) && !raising) await writeCg(dir, 'memory.memsw.limit_in_bytes', total);
    }
    if (mem.reservation !== undefined) await writeCg(dir, 'memory.soft_limit_in_bytes', mem.reservation);
  });
  if (res.pids) await ctl('pids', async (dir) => { if (res.pids) await writeCg(dir, 'pids.max', pidsMax(res.pids.limit)); });
  const cpu = res.cpu;
  if (cpu?.quota !== undefined || cpu?.shares !== undefined) await ctl('cpu', async (dir) => {
    if (cpu.quota !== undefined) {
      await writeCg(dir, 'cpu.cfs_period_us', cpu.period ?? 100_000);
      await writeCg(dir, 'cpu.cfs_quota_us', cpu.quota);
    }
    if (cpu.shares !== undefined) await writeCg(dir, 'cpu.shares', cpu.shares);
  });
  if (cpu?.cpus || cpu?.mems) await ctl('cpuset', async (dir) => {
    // a v1 cpuset starts empty, and its parent too: berth/ takes the whole machine's sets first
    const base = join(CGROUP_ROOT, 'cpuset');
    for (const f of ['cpuset.cpus', 'cpuset.mems']) {
      const parent = join(base, 'berth', f);
      if (!(await readFile(parent, 'utf8')).trim()) await writeFile(parent, await readFile(join(base, f), 'utf8'));
    }
    await writeCg(dir, 'cpuset.cpus', cpu.cpus || (await readFile(join(base, 'berth', 'cpuset.cpus'), 'utf8')).trim());
    await writeCg(dir, 'cpuset.mems', cpu.mems || (await readFile(join(base, 'berth', 'cpuset.mems'), 'utf8')).trim());
  });
  if (limitsOnly) return out;
  out.devicesLimited = await ctl('devices', async (dir) => {
    await writeCg(dir, 'devices.deny', 'a');
    for (const d of res.devices ?? []) {
      if (!d.allow) continue;
      await writeCg(dir, 'devices.allow', `${d.type ?? 'a'} ${d.major ?? '*'}:${d.minor ?? '*'} ${d.access}`);
    }
  });
  return out;
}

/** Removes cgroup directories; the kernel refuses while a process is still leaving, so it retries briefly. */
async function removeCgroups(dirs: string[]): Promise<void> {
  for (const dir of dirs) {
    for (let i = 0; ; i++) {
      try { await rmdir(dir); break; } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') break;
        if (i >= 50) throw new Error(`cannot remove cgroup ${dir}: ${(e as Error).message}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }
}

/** cgroup.procs files of the cgroups a process is in (to put an exec'd process beside it). */
function cgroupProcsOf(pid: number): string[] {
  const out: string[] = [];
  for (const line of readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n')) {
    const m = /^\d+:([^:]*):(\/.*)$/.exec(line);
    if (!m) continue;
    const base = m[1] === '' ? (unified() ? CGROUP_ROOT : undefined) : join(CGROUP_ROOT, m[1]!.replace(/^name=/, ''));
    if (!base || m[1] === 'name=systemd' || m[1]!.includes(',')) continue;
    const p = join(base, m[2]!, 'cgroup.procs');
    if (existsSync(p)) out.push(p);
  }
  return out;
}

// ---- the plan ----------------------------------------------------------------------------------

function addProcess(plan: Plan, p: { args: string[]; env: string[]; cwd: string; user: UserSpec; caps: string[]; effective: string[]; nnp: boolean; tty: boolean; interactive: boolean; rlimits?: Rlimit[]; seccomp?: SeccompProfile }): void {
  for (const a of p.args) plan.add('arg', a);
  // config.json's RLIM_INFINITY (2^64-1) reads back as a float above 2^63
  const limit = (n: number) => (n < 0 || n >= 2 ** 63 ? 'unlimited' : String(n));
  for (const r of p.rlimits ?? []) plan.add('rlimit', rlimitNumber(r.type), limit(r.soft), limit(r.hard));
  for (const e of p.env) plan.add('env', e);
  plan.add('cwd', p.cwd).add('uid', p.user.uid).add('gid', p.user.gid).add('umask', (p.user.umask ?? 0o022).toString(8));
  for (const g of p.user.additionalGids ?? []) plan.add('group', g);
  const b = capabilityMask(p.caps);
  const e = capabilityMask(p.effective.filter((c) => p.caps.includes(c)));
  plan.add('bounding_lo', b.lo).add('bounding_hi', b.hi).add('effective_lo', e.lo).add('effective_hi', e.hi);
  if (p.nnp) plan.add('nnp', 1);
  if (p.seccomp) plan.add('seccomp', compileSeccomp(p.seccomp).toString('hex'));
  if (p.tty) plan.add('tty', 1);
  if (p.interactive) plan.add('interactive', 1);
}

function mountRecord(m: SpecMount): { type: string; source: string; flags: number; data: string; remount: number } {
  const opts = m.options ?? [];
  let flags = 0;
  const data: string[] = [];
  for (const o of opts) {
    if (MOUNT_FLAGS[o] !== undefined) flags |= MOUNT_FLAGS[o]!;
    else if (!IGNORED_OPTIONS.has(o)) data.push(o);
  }
  if (m.type === 'bind' || opts.includes('bind') || opts.includes('rbind')) {
    // a bind takes ro/nosuid/… only on a remount
    return { type: 'none', source: m.source ?? '', flags: MS_BIND | (opts.includes('rbind') ? MS_REC : 0), data: '', remount: flags };
  }
  return { type: m.type ?? 'none', source: m.source ?? 'none', flags, data: data.join(','), remount: 0 };
}

/** The container's capabilities: where the devices cgroup cannot hold mknod back, CAP_MKNOD goes, unless every device is allowed anyway (--privileged). */
function boundingCaps(spec: RuntimeSpec, devicesLimited: boolean): string[] {
  const allDevices = spec.linux.resources.devices.some((d) => d.allow && d.type === undefined && d.major === undefined && d.minor === undefined);
  return spec.process.capabilities.bounding.filter((c) => devicesLimited || allDevices || c !== 'CAP_MKNOD');
}

/**
 * The container's own cgroups at /sys/fs/cgroup, as runc shows them, so that programs that size
 * themselves by their limits (a JVM, Go's GOMAXPROCS helpers) find them: cgroup v2's directory of the
 * container bound there, or on v1 a tmpfs with each controller's directory of the container bound
 * under the controller's name (a controller it has no cgroup in is absent: it has no limit there).
 */
function addCgroupMounts(plan: Plan, target: string, dirs: string[], readonly: boolean): void {
  const ro = readonly ? MS_RDONLY : 0;
  if (unified()) {
    if (dirs[0]) plan.add('mount', 'none', dirs[0], target, MS_BIND, '', 'dir', MS_NOSUID_NODEV_NOEXEC | ro);
    return;
  }
  plan.add('mount', 'tmpfs', 'tmpfs', target, MS_NOSUID_NODEV_NOEXEC, 'mode=755', 'dir', 0);
  for (const d of dirs) {
    const controller = relative(CGROUP_ROOT, d).split('/')[0]!;
    plan.add('mount', 'none', d, posix.join(target, controller), MS_BIND, '', 'dir', MS_NOSUID_NODEV_NOEXEC | ro);
  }
  if (ro) plan.add('mount', 'none', 'none', target, MS_REMOUNT | MS_NOSUID_NODEV_NOEXEC | MS_RDONLY, '', 'dir', 0);
}

export async function buildRunPlan(spec: RuntimeSpec, rootfs: string, devicesLimited: boolean, procs: string[], interactive: boolean): Promise<string> {
  const plan = new Plan();
  plan.add('rootfs', rootfs).add('hostname', spec.hostname);
  const net = spec.linux.namespaces.find((n) => n.type === 'network');
  if (net?.path) plan.add('netnspath', net.path); // joined (the bridge network's, made beforehand)
  else if (net) plan.add('netns', 1); // a new, empty one
  if (spec.root.readonly) plan.add('readonly', 1);
  if (spec.linux.namespaces.some((n) => n.type === 'cgroup')) plan.add('cgroupns', 1);
  for (const m of spec.mounts) {
    // targets are container paths: builtin.pl finds each inside the rootfs when it mounts it (after the mounts
    // before it, which a path resolved here beforehand could not see: a volume with a symlink in it, a /proc)
    const target = posix.normalize(m.destination);
    if (m.type === 'cgroup') {
      addCgroupMounts(plan, target, procs.map((p) => dirname(p)), (m.options ?? []).includes('ro'));
      continue;
    }
    const r = mountRecord(m);
    let kind = 'dir';
    if (r.type === 'none' && (r.flags & MS_BIND)) {
      try { if (!statSync(r.source).isDirectory()) kind = 'file'; } catch (e) {
        throw new Error(`bind mount source ${r.source}: ${(e as Error).message}`);
      }
    }
    plan.add('mount', r.type, r.source, target, r.flags, r.data, kind, r.remount);
  }
  if (spec.mounts.some((m) => m.destination === '/dev' && m.type === 'tmpfs')) {
    for (const [name, major, minor] of [['null', 1, 3], ['zero', 1, 5], ['full', 1, 7], ['random', 1, 8], ['urandom', 1, 9], ['tty', 5, 0]] as const) {
      plan.add('device', `/dev/${name}`, 'c', major, minor, '0666');
    }
    for (const [target, link] of [['/proc/self/fd', 'fd'], ['/proc/self/fd/0', 'stdin'], ['/proc/self/fd/1', 'stdout'], ['/proc/self/fd/2', 'stderr'], ['pts/ptmx', 'ptmx'], ['/proc/kcore', 'core']]) {
      plan.add('symlink', target!, `/dev/${link!}`);
    }
  }
  // --device: made after the mounts, so a node under /dev lands in the container's /dev tmpfs
  for (const d of spec.linux.devices ?? []) {
    plan.add('device', posix.normalize(d.path), d.type, d.major, d.minor, (d.fileMode & 0o777).toString(8).padStart(4, '0'));
  }
  for (const p of spec.linux.maskedPaths) plan.add('mask', p);
  for (const p of spec.linux.readonlyPaths) plan.add('ropath', p);
  for (const p of procs) plan.add('cgroup', p);
  const caps = boundingCaps(spec, devicesLimited);
  addProcess(plan, {
    args: spec.process.args, env: spec.process.env, cwd: spec.process.cwd, user: spec.process.user, caps,
    effective: spec.process.capabilities.effective, nnp: spec.process.noNewPrivileges, tty: spec.process.terminal, interactive,
    ...(spec.process.rlimits ? { rlimits: spec.process.rlimits } : {}),
    ...(spec.linux.seccomp ? { seccomp: spec.linux.seccomp } : {}),
  });
  return plan.text();
}

export function builtinScript(): string {
  return join(dirname(fileURLToPath(import.meta.url)), 'builtin.pl');
}

export const PERL = '/usr/bin/perl';

export class BuiltinExecutor implements Executor {
  readonly name = 'builtin';
  constructor(readonly stateRoot: string) {}

  get ref(): ExecutorRef { return { name: this.name, stateRoot: this.stateRoot }; }

  /** Perl (Debian's Essential perl-base), root and a known syscall table (x86-64, arm64) are all it needs. */
  static available(): boolean { return existsSync(PERL) && process.getuid?.() === 0 && (process.arch === 'x64' || process.arch === 'arm64'); }

  private dir(id: string): string {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(id)) throw new Error(`invalid container id ${id}`);
    return join(this.stateRoot, id);
  }

  private spawnPerl(mode: 'run' | 'exec', plan: string, pidFile: string, stdio: StdioOptions, wrapper?: readonly string[], detached = false): ChildProcess {
    return spawnWrapped([PERL, builtinScript(), mode, plan, pidFile, process.arch], stdio, wrapper, detached);
  }

  async spawnRun(id: string, bundle: string, stdio: StdioOptions, wrapper?: readonly string[]): Promise<ChildProcess> {
    const spec = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8')) as RuntimeSpec;
    const rootfs = spec.root.path.startsWith('/') ? spec.root.path : join(bundle, spec.root.path);
    const dir = this.dir(id);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await rm(join(dir, 'pid'), { force: true });
    const cg = await setupCgroups(id, spec.linux.resources);
    await writeFile(join(dir, 'cgroups.json'), JSON.stringify(cg.dirs));
    const plan = join(dir, 'plan');
    // with a terminal, stdin is relayed only when the caller gives one (-i)
    const interactive = !(stdio === 'ignore' || (Array.isArray(stdio) && stdio[0] === 'ignore'));
    await writeFile(plan, await buildRunPlan(spec, rootfs, cg.devicesLimited, cg.procs, interactive), { mode: 0o600 });
    return this.spawnPerl('run', plan, join(dir, 'pid'), stdio, wrapper);
  }

  /** The host pid of the container's init, if that process still runs (a reused pid has another start time). */
  private initPid(id: string): number | undefined {
    try {
      const [text, start] = readFileSync(join(this.dir(id), 'pid'), 'utf8').trim().split(' ');
      const pid = Number(text);
      if (!Number.isInteger(pid) || pid <= 0 || !pidAlive(pid)) return undefined;
      return start && procStartTime(pid) !== start ? undefined : pid;
    } catch { return undefined; }
  }

  async spawnExec(id: string, bundle: string, proc: ExecProcess, stdio: StdioOptions, opts: { detached?: boolean } = {}): Promise<ChildProcess> {
    const target = this.initPid(id);
    if (!target) throw new Error(`container ${id.slice(0, 12)} is not running`);
    const spec = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8')) as RuntimeSpec;
    const cgDirs = JSON.parse(await readFile(join(this.dir(id), 'cgroups.json'), 'utf8').catch(() => '[]')) as string[];
    const plan = new Plan().add('target', target);
    for (const p of cgroupProcsOf(target)) plan.add('cgroup', p);
    const devicesLimited = cgDirs.some((d) => d.includes('/devices/'));
    const caps = boundingCaps(spec, devicesLimited);
    addProcess(plan, { ...proc, caps, effective: proc.user.uid === 0 ? caps : [], nnp: spec.process.noNewPrivileges,
      ...(spec.process.rlimits ? { rlimits: spec.process.rlimits } : {}), ...(spec.linux.seccomp ? { seccomp: spec.linux.seccomp } : {}) });
    const n = `exec-${process.pid}-${Date.now()}`;
    const planFile = join(this.dir(id), `${n}.plan`);
    await writeFile(planFile, plan.text(), { mode: 0o600 });
    const child = this.spawnPerl('exec', planFile, join(this.dir(id), `${n}.pid`), stdio, undefined, opts.detached);
    child.on('close', () => { void rm(planFile, { force: true }); void rm(join(this.dir(id), `${n}.pid`), { force: true }); });
    return child;
  }

  async kill(id: string, signal: string): Promise<void> {
    const pid = this.initPid(id);
    if (!pid) throw new Error(`container ${id.slice(0, 12)} is not running`);
    const sig = /^\d+$/.test(signal) ? Number(signal) : (`SIG${signal.toUpperCase().replace(/^SIG/, '')}` as NodeJS.Signals);
    process.kill(pid, sig);
  }

  /**
   * The freezer of a container: on cgroup v2 its own cgroup (cgroup.freeze); on v1 a freezer cgroup
   * made at the first pause, which every process of the container (those in its devices cgroup, which
   * v1 containers always have) is moved into until none is left outside; children follow their parent.
   */
  private async freezer(id: string, create: boolean): Promise<{ v2: boolean; dir: string; devices?: string } | undefined> {
    const cgFile = join(this.dir(id), 'cgroups.json');
    const dirs = JSON.parse(await readFile(cgFile, 'utf8').catch(() => '[]')) as string[];
    if (unified()) return dirs[0] ? { v2: true, dir: dirs[0] } : undefined;
    const dir = join(CGROUP_ROOT, 'freezer', 'berth', id);
    if (!create) return existsSync(dir) ? { v2: false, dir } : undefined;
    const devices = dirs.find((d) => d.includes('/devices/'));
    if (!existsSync(join(CGROUP_ROOT, 'freezer', 'cgroup.procs')) || !devices) throw new Error('pause needs the cgroup v1 freezer and devices controllers');
    await mkdir(dir, { recursive: true });
    if (!dirs.includes(dir)) await writeFile(cgFile, JSON.stringify([dir, ...dirs])); // removed first at delete
    await this.gather(id, dir, devices);
    return { v2: false, dir, devices };
  }

  /** Moves every process of the container's devices cgroup into its v1 freezer cgroup, until none is left outside. */
  private async gather(id: string, freezer: string, devices: string): Promise<void> {
    const pids = async (d: string) => (await readFile(join(d, 'cgroup.procs'), 'utf8')).split('\n').filter(Boolean);
    for (let round = 0; ; round++) {
      const inside = new Set(await pids(freezer));
      const outside = (await pids(devices)).filter((p) => !inside.has(p));
      if (!outside.length) return;
      if (round >= 50) throw new Error(`cannot gather the processes of ${id.slice(0, 12)} into its freezer`);
      for (const p of outside) await writeFile(join(freezer, 'cgroup.procs'), p).catch(() => undefined); // it may have exited
    }
  }

  /** New limits into the container's cgroups; a v1 controller it had no cgroup in gets one, and its processes. */
  async update(id: string, limits: Limits): Promise<void> {
    if (!this.initPid(id)) throw new Error(`container ${id.slice(0, 12)} is not running`);
    const cgFile = join(this.dir(id), 'cgroups.json');
    const before = JSON.parse(await readFile(cgFile, 'utf8').catch(() => '[]')) as string[];
    const cg = await setupCgroups(id, limits, true);
    const added = cg.dirs.filter((d) => !before.includes(d));
    if (!added.length) return;
    const devices = before.find((d) => d.includes('/devices/'));
    if (!devices) throw new Error(`container ${id.slice(0, 12)} has no devices cgroup to find its processes by`);
    await writeFile(cgFile, JSON.stringify([...before, ...added]));
    for (const d of added) await this.gather(id, d, devices);
  }

  async pause(id: string): Promise<void> {
    if (!this.initPid(id)) throw new Error(`container ${id.slice(0, 12)} is not running`);
    const f = await this.freezer(id, true);
    if (!f) throw new Error(`container ${id.slice(0, 12)} has no cgroup to freeze`);
    await writeCg(f.dir, f.v2 ? 'cgroup.freeze' : 'freezer.state', f.v2 ? '1' : 'FROZEN');
    // freezing is asynchronous: wait until the kernel says every task is frozen
    for (let i = 0; ; i++) {
      const frozen = f.v2
        ? /^frozen 1$/m.test(await readFile(join(f.dir, 'cgroup.events'), 'utf8'))
        : (await readFile(join(f.dir, 'freezer.state'), 'utf8')).trim() === 'FROZEN';
      if (frozen) break;
      if (i >= 250) throw new Error(`container ${id.slice(0, 12)} did not freeze`);
      await new Promise((r) => setTimeout(r, 20));
    }
    // an exec that was joining the container's cgroups while they were gathered may have landed outside
    // the freezer: move it in now (a task moved into a frozen cgroup freezes)
    if (f.devices) await this.gather(id, f.dir, f.devices);
  }

  async resume(id: string): Promise<void> {
    const f = await this.freezer(id, false);
    if (!f) return;
    try { await writeFile(join(f.dir, f.v2 ? 'cgroup.freeze' : 'freezer.state'), f.v2 ? '0' : 'THAWED'); } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`cannot thaw ${id.slice(0, 12)}: ${(e as Error).message}`);
    }
  }

  async delete(id: string): Promise<void> {
    const dir = this.dir(id);
    const pid = this.initPid(id);
    await this.resume(id).catch(() => undefined); // a frozen process does not die of SIGKILL until it is thawed
    if (pid) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      for (let i = 0; i < 100 && pidAlive(pid); i++) await new Promise((r) => setTimeout(r, 20));
    }
    const dirs = JSON.parse(await readFile(join(dir, 'cgroups.json'), 'utf8').catch(() => '[]')) as string[];
    await removeCgroups(dirs);
    await rm(dir, { recursive: true, force: true });
  }
}
