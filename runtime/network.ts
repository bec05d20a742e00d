// Docker's default bridge network: a host bridge (berth0, 10.66.0.1/16), one network namespace per
// container made before it starts (so any executor joins it by path: runc, crun and builtin.pl),
// a veth pair from the bridge to the container's eth0, a default route through the bridge, and
// outbound NAT (MASQUERADE) for traffic leaving the host. iproute2 (`ip`) and iptables do the work.
//
// Addresses are handed out through files: /run/berth/ipam/berth0/<ip> holds a lease (the container's
// id and the pid of the process keeping its network: its supervisor, or a foreground run's CLI),
// written under a flock shared by all processes and berth roots (they all use the one bridge). /run
// is emptied by a reboot together with the namespaces, so nothing stale survives one; the address of
// a keeper that was killed is taken back (with its namespace) when the address is needed.
//
// A container joins one network when it starts (eth0, with the default route) and may be connected
// to more (`berth network connect`): each another veth (eth1, eth2 …) into the same namespace with an
// address on that bridge, leased in that bridge's directory for the same keeper. A container's
// /etc/hosts names the members of every user-defined network it is on.
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pidAlive, procStartTime } from './process.js';

const run = promisify(execFile);

/** A bridge: the default one (berth0), or a user-defined network's (networks.ts), whose containers find each other by name. */
export interface BridgeNetwork { name: string; gateway: string; prefixLen: number }

/** An IPv4 subnet "a.b.c.d/n" (prefix 8 to 28): its base address, prefix and gateway (the first address). */
export function parseSubnet(text: string, what: string): { base: string; prefixLen: number; gateway: string } {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(text);
  const prefixLen = m ? Number(m[5]) : NaN;
  if (!m || prefixLen < 8 || prefixLen > 28 || m.slice(1, 5).some((o) => Number(o) > 255)) {
    throw new NetworkError(`${what} ${text}: expected an IPv4 subnet such as 10.66.0.0/16 (prefix 8 to 28)`);
  }
  const base = (toInt(m.slice(1, 5).join('.')) & mask(prefixLen)) >>> 0;
  return { base: toIp(base), prefixLen, gateway: toIp(base + 1) };
}

/** The default bridge network (BERTH_BRIDGE_SUBNET=a.b.c.d/n moves it, e.g. when 10.66/16 is taken). */
export function bridgeNetwork(env: NodeJS.ProcessEnv = process.env): BridgeNetwork {
  const { gateway, prefixLen } = parseSubnet(env['BERTH_BRIDGE_SUBNET'] ?? '10.66.0.0/16', 'BERTH_BRIDGE_SUBNET');
  return { name: 'berth0', gateway, prefixLen };
}

export interface NetworkAttachment {
  /** The bind-mounted namespace the container joins. */
  netns: string;
  ip: string;
  gateway: string;
  prefixLen: number;
  mac: string;
  bridge: string;
}

export class NetworkError extends Error {}

const RUN_DIR = '/run/berth';
const IPAM_DIR = join(RUN_DIR, 'ipam');

export function netnsName(id: string): string { return `berth-${id.slice(0, 16)}`; }
export function netnsPath(id: string): string { return `/run/netns/${netnsName(id)}`; }
function hostVeth(id: string): string { return `vb${id.slice(0, 10)}`; } // IFNAMSIZ: 15 characters

function toInt(ip: string): number { return ip.split('.').reduce((n, o) => n * 256 + Number(o), 0); }
function toIp(n: number): string { return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.'); }
function mask(prefixLen: number): number { return (0xffffffff << (32 - prefixLen)) >>> 0; }
/** Docker's scheme: 02:42 and then the four bytes of the address, so a MAC never clashes on the bridge. */
export function macFor(ip: string): string {
  return ['02', '42', ...ip.split('.').map((o) => Number(o).toString(16).padStart(2, '0'))].join(':');
}

/** A program the bridge needs is not installed: say which package brings it. */
function missing(program: string, pkg: string, e: unknown): NetworkError | undefined {
  if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return undefined;
  return new NetworkError(`the bridge network needs ${program} (Debian package ${pkg}): install it, or run with --network none or host`);
}

async function ip(args: string[], batch?: string[]): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = execFile('ip', batch ? [...args, '-batch', '-'] : args, (e, _out, err) => {
      if (e) reject(missing('ip', 'iproute2', e) ?? new NetworkError(`ip ${args.join(' ')}: ${(err || e.message).trim()}`)); else resolve();
    });
    child.stdin!.on('error', () => undefined); // ip gone (or never there): the callback says why
    if (batch) child.stdin!.end(`${batch.join('\n')}\n`);
  });
}

async function iptables(args: string[]): Promise<void> {
  try { await run('iptables', ['-w', ...args]); } catch (e) {
    throw missing('iptables', 'iptables', e) ?? new NetworkError(`iptables ${args.join(' ')}: ${((e as { stderr?: string }).stderr || (e as Error).message).trim()}`);
  }
}

/** An iptables rule added once (checked first; callers hold the network lock, so there is one copy); FORWARD rules go first, as docker's. */
async function ensureRule(table: string, chain: string, rule: string[], insert = false): Promise<void> {
  if (await hasRule(table, chain, rule)) return;
  await iptables(['-t', table, insert ? '-I' : '-A', chain, ...rule]);
}

async function hasRule(table: string, chain: string, rule: string[]): Promise<boolean> {
  try { await run('iptables', ['-w', '-t', table, '-C', chain, ...rule]); return true; } catch (e) {
    const absent = missing('iptables', 'iptables', e);
    if (absent) throw absent;
    return false;
  }
}

/**
 * Runs `fn` holding an exclusive flock(1) (util-linux, Essential in Debian) on berth's network lock:
 * bridge set-up and address handout are serialised across processes, and the lock goes with its
 * holder even on SIGKILL (the holder is a child whose stdin is this process's pipe).
 */
async function withNetworkLock<T>(fn: () => Promise<T>): Promise<T> {
  await mkdir(RUN_DIR, { recursive: true, mode: 0o700 });
  const holder = spawn('flock', ['-x', join(RUN_DIR, 'network.lock'), 'sh', '-c', 'echo locked; exec cat >/dev/null'], { stdio: ['pipe', 'pipe', 'ignore'] });
  try {
    await new Promise<void>((resolve, reject) => {
      holder.stdout!.once('data', () => resolve());
      holder.once('error', (e) => reject(missing('flock', 'util-linux', e) ?? e));
      holder.once('exit', (code) => reject(new NetworkError(`flock on ${RUN_DIR}/network.lock ended with ${code}`)));
    });
    return await fn();
  } finally {
    holder.stdin!.end();
  }
}

function subnetOf(net: BridgeNetwork): { base: number; prefixLen: number; text: string } {
  const base = (toInt(net.gateway) & mask(net.prefixLen)) >>> 0;
  return { base, prefixLen: net.prefixLen, text: `${toIp(base)}/${net.prefixLen}` };
}

/** The host's IPv4 routes with a destination (not the default one): their subnet and device. */
async function hostRoutes(): Promise<Array<{ dest: string; prefixLen: number; dev: string }>> {
  let text: string;
  try { text = (await run('ip', ['-4', '-o', 'route', 'show'])).stdout; } catch (e) { throw missing('ip', 'iproute2', e) ?? e; }
  return text.split('\n').flatMap((line) => {
    const m = /^(\d+\.\d+\.\d+\.\d+)(?:\/(\d+))?\s.*?\bdev\s+(\S+)/.exec(line);
    return m ? [{ dest: m[1]!, prefixLen: m[2] === undefined ? 32 : Number(m[2]), dev: m[3]! }] : [];
  });
}

/** A route of the host (other than the bridge's own) that the bridge's subnet overlaps. */
export async function overlappingRoute(net: BridgeNetwork): Promise<{ dest: string; prefixLen: number; dev: string } | undefined> {
  const mine = subnetOf(net);
  return (await hostRoutes()).find((r) => {
    if (r.dev === net.name) return false;
    const common = Math.min(mine.prefixLen, r.prefixLen);
    return ((toInt(r.dest) & mask(common)) >>> 0) === ((mine.base & mask(common)) >>> 0);
  });
}

/** Refuses a subnet that overlaps a route of the host (its LAN, a VPN): the bridge's route would take that traffic. */
export async function checkNoOverlap(net: BridgeNetwork): Promise<void> {
  const r = await overlappingRoute(net);
  if (r) throw new NetworkError(`the bridge subnet ${subnetOf(net).text} overlaps the host's route to ${r.dest}/${r.prefixLen} (dev ${r.dev}): set BERTH_BRIDGE_SUBNET to a free one, or run with --network none or host`);
}

/**
 * A bridge's FORWARD rules, in the order they are inserted (each at the top): replies back in; the
 * bridge out to the world; but not into another berth bridge (networks are isolated, as docker's);
 * within itself, everything.
 */
function forwardRules(bridge: string): string[][] {
  return [
    ['-o', bridge, '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', 'ACCEPT'],
    ['-i', bridge, '-j', 'ACCEPT'],
    ['-i', bridge, '-o', 'berth+', '-j', 'DROP'],
    ['-i', bridge, '-o', bridge, '-j', 'ACCEPT'],
  ];
}

/** Removes a bridge with its rules and address leases (a user-defined network's, on network rm). */
export async function removeBridge(net: BridgeNetwork): Promise<void> {
  await withNetworkLock(async () => {
    for (const rule of forwardRules(net.name)) while (await hasRule('filter', 'FORWARD', rule)) await iptables(['-D', 'FORWARD', ...rule]);
    const nat = ['-s', subnetOf(net).text, '!', '-o', net.name, '-j', 'MASQUERADE'];
    while (await hasRule('nat', 'POSTROUTING', nat)) await iptables(['-t', 'nat', '-D', 'POSTROUTING', ...nat]);
    if (existsSync(`/sys/class/net/${net.name}`)) await ip(['link', 'delete', net.name]);
    await rm(join(RUN_DIR, `${net.name}.ready`), { force: true });
    await rm(join(IPAM_DIR, net.name), { recursive: true, force: true });
  });
}

/** Makes the bridge with its address, forwarding and NAT when missing. */
export async function ensureBridge(net: BridgeNetwork): Promise<void> {
  // set up already (the marker lives in /run, emptied by a reboot with the bridge): one check that NAT is still there
  const ready = join(RUN_DIR, `${net.name}.ready`);
  const nat = ['-s', subnetOf(net).text, '!', '-o', net.name, '-j', 'MASQUERADE'];
  const marker = `v2 ${subnetOf(net).text}`; // v2: with the isolation rule
  const isReady = async () => existsSync(`/sys/class/net/${net.name}`) && (await readFile(ready, 'utf8').catch(() => '')) === marker && await hasRule('nat', 'POSTROUTING', nat);
  if (await isReady()) return;
  await withNetworkLock(async () => {
    if (await isReady()) return;
    if (!existsSync(`/sys/class/net/${net.name}`)) {
      await checkNoOverlap(net);
      await ip(['link', 'add', net.name, 'type', 'bridge']);
      await ip(['link', 'set', net.name, 'addrgenmode', 'none']).catch(() => undefined);
    }
    await ip(['addr', 'replace', `${net.gateway}/${net.prefixLen}`, 'dev', net.name]);
    await ip(['link', 'set', net.name, 'up']);
    if ((await readFile('/proc/sys/net/ipv4/ip_forward', 'utf8')).trim() !== '1') {
      // as docker does: the host did not route before, so it routes only what berth lets through
      await iptables(['-P', 'FORWARD', 'DROP']);
      await writeFile('/proc/sys/net/ipv4/ip_forward', '1\n');
    }
    await ensureRule('nat', 'POSTROUTING', nat);
    // the bridge out, and its replies back in (a FORWARD policy of DROP, docker's or ours, lets nothing else through)
    for (const rule of forwardRules(net.name)) await ensureRule('filter', 'FORWARD', rule, true);
    await writeFile(ready, marker);
  });
}

/**
 * What a container's /etc/hosts is made of: its own lines, and (on a user-defined network) the names
 * others find it by. `extra`: a network connected after the start, whose base gives way to the first's.
 */
export interface Member { hosts: string; names: string[]; base: string; extra?: boolean }

/** The process that keeps a container's network: its supervisor, or a foreground run's CLI. */
export interface Keeper { pid: number; start: string }

const thisProcess = (): Keeper => ({ pid: process.pid, start: procStartTime(process.pid) ?? '' });

/** Who holds an address: the container, and the process that keeps its network (a supervisor, or a foreground run's CLI). */
interface Lease { id: string; pid: number; start: string; member?: Member }

async function readLease(file: string): Promise<Lease | undefined> {
  try {
    const l = JSON.parse(await readFile(file, 'utf8')) as Lease;
    return typeof l.id === 'string' && typeof l.pid === 'number' ? l : undefined;
  } catch { return undefined; }
}

/** The lease's keeper still runs (a pid that was reused does not count). */
function keeperAlive(l: Lease): boolean {
  return pidAlive(l.pid) && procStartTime(l.pid) === l.start;
}

/** A lease kept by another live process. */
function heldElsewhere(l: Lease): boolean {
  return l.pid !== process.pid && keeperAlive(l);
}

/** The address files of a container (normally one). */
async function leasesOf(dir: string, id: string): Promise<Array<{ file: string; lease: Lease }>> {
  const out = [];
  for (const f of await readdir(dir).catch(() => [] as string[])) {
    const lease = await readLease(join(dir, f));
    if (lease?.id === id) out.push({ file: join(dir, f), lease });
  }
  return out;
}

/** Deletes a container's namespace and host veth (the peer goes with the namespace). */
async function teardown(id: string): Promise<void> {
  if (existsSync(netnsPath(id))) await ip(['netns', 'delete', netnsName(id)]);
  if (existsSync(`/sys/class/net/${hostVeth(id)}`)) await ip(['link', 'delete', hostVeth(id)]).catch(() => undefined);
}

/** Takes the lowest free address for `id` (the caller holds the network lock); an address whose keeper died is taken back. */
async function allocate(net: BridgeNetwork, id: string, member?: (ip: string) => Member, keeper: Keeper = thisProcess()): Promise<string> {
  const dir = join(IPAM_DIR, net.name);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const { base, prefixLen } = subnetOf(net);
  const last = ((base | ~mask(prefixLen)) >>> 0) - 1; // before the broadcast address
  const used = new Set(await readdir(dir));
  for (let n = base + 2; n <= last; n++) {
    const file = join(dir, toIp(n));
    if (used.has(toIp(n))) {
      const lease = await readLease(file);
      if (lease && keeperAlive(lease)) continue;
      if (lease) await teardown(lease.id); // its keeper was killed (a foreground run's CLI, a supervisor)
      await unlink(file).catch(() => undefined);
    }
    const fh = await open(file, 'wx', 0o600);
    await fh.writeFile(JSON.stringify({ id, pid: keeper.pid, start: keeper.start, ...(member ? { member: member(toIp(n)) } : {}) } satisfies Lease));
    await fh.close();
    return toIp(n);
  }
  throw new NetworkError(`the ${net.name} network has no free address left`);
}

/** This process's bridge set-up in progress: its concurrent connects wait for the one. */
let bridgeSetUp: Promise<void> | undefined;

/** Container ids are 64 hex digits; nothing else reaches an `ip` command line or a /run path. */
function checkId(id: string): void {
  if (!/^[0-9a-f]{64}$/.test(id)) throw new NetworkError(`not a container id: ${JSON.stringify(id)}`);
}

/** Gives container `id` its namespace, attached to the bridge with an address and a default route; this process keeps it. */
export async function connect(id: string, net: BridgeNetwork = bridgeNetwork(), member?: (ip: string) => Member): Promise<NetworkAttachment> {
  checkId(id);
  await (bridgeSetUp ??= ensureBridge(net).finally(() => { bridgeSetUp = undefined; }));
  const addr = await withNetworkLock(async () => {
    for (const { file, lease } of await leasesOf(join(IPAM_DIR, net.name), id)) {
      if (heldElsewhere(lease)) throw new NetworkError(`container ${id.slice(0, 12)} is already connected by process ${lease.pid} (started twice?)`);
      await unlink(file);
    }
    await teardown(id); // what a killed keeper left behind
    return allocate(net, id, member);
  });
  const name = netnsName(id);
  const mac = macFor(addr);
  try {
    await ip(['netns', 'add', name]);
    await ip([], [
      `link add ${hostVeth(id)} type veth peer name eth0 address ${mac} netns ${name}`,
      `link set ${hostVeth(id)} addrgenmode none`,
      `link set ${hostVeth(id)} master ${net.name} up`,
    ]);
    await ip(['-n', name], [
      'link set lo up',
      `addr add ${addr}/${net.prefixLen} dev eth0`,
      'link set eth0 addrgenmode none', // IPv4 only, as docker's default bridge: no link-local IPv6 chatter
      'link set eth0 up',
      `route add default via ${net.gateway}`,
    ]);
    await withNetworkLock(refreshHosts);
  } catch (e) {
    await disconnect(id, net).catch(() => undefined);
    throw e;
  }
  return { netns: netnsPath(id), ip: addr, gateway: net.gateway, prefixLen: net.prefixLen, mac, bridge: net.name };
}

/** The host end of a container's veth on a network it was connected to after its start. */
function extraVeth(id: string, net: BridgeNetwork): string {
  return `vx${createHash('sha256').update(`${id} ${net.name}`).digest('hex').slice(0, 12)}`; // IFNAMSIZ: 15
}

/** The first ethN (N ≥ 1) free in the container's namespace. */
async function freeInterface(id: string): Promise<string> {
  let text: string;
  try { text = (await run('ip', ['-n', netnsName(id), '-o', 'link', 'show'])).stdout; } catch (e) {
    throw missing('ip', 'iproute2', e) ?? new NetworkError(`container ${id.slice(0, 12)} has no network namespace: ${((e as { stderr?: string }).stderr || (e as Error).message).trim()}`);
  }
  const used = new Set([...text.matchAll(/^\d+:\s+([^:@\s]+)/gm)].map((m) => m[1]));
  for (let n = 1; ; n++) if (!used.has(`eth${n}`)) return `eth${n}`;
}

/**
 * Connects a container whose namespace exists (it runs) to one more network: a veth from that bridge
 * into the namespace, an address, no route beyond the subnet (the default route stays the first
 * network's). `keeper` keeps the lease: the container's supervisor, which releases it at the end.
 */
export async function connectExtra(id: string, net: BridgeNetwork, member: (ip: string) => Member, keeper: Keeper = thisProcess()): Promise<NetworkAttachment & { ifname: string }> {
  checkId(id);
  if (!existsSync(netnsPath(id))) throw new NetworkError(`container ${id.slice(0, 12)} has no network namespace`);
  await ensureBridge(net);
  const veth = extraVeth(id, net);
  const addr = await withNetworkLock(async () => {
    for (const { file, lease } of await leasesOf(join(IPAM_DIR, net.name), id)) {
      if (keeperAlive(lease)) throw new NetworkError(`container ${id.slice(0, 12)} is already connected to ${net.name}`);
      await unlink(file);
    }
    if (existsSync(`/sys/class/net/${veth}`)) await ip(['link', 'delete', veth]).catch(() => undefined);
    return allocate(net, id, (a) => ({ ...member(a), extra: true }), keeper);
  });
  const mac = macFor(addr);
  let ifname = '';
  try {
    ifname = await freeInterface(id);
    await ip([], [
      `link add ${veth} type veth peer name ${ifname} address ${mac} netns ${netnsName(id)}`,
      `link set ${veth} addrgenmode none`,
      `link set ${veth} master ${net.name} up`,
    ]);
    await ip(['-n', netnsName(id)], [`addr add ${addr}/${net.prefixLen} dev ${ifname}`, `link set ${ifname} addrgenmode none`, `link set ${ifname} up`]);
    await withNetworkLock(refreshHosts);
  } catch (e) {
    await disconnectExtra(id, net).catch(() => undefined);
    throw e;
  }
  return { netns: netnsPath(id), ip: addr, gateway: net.gateway, prefixLen: net.prefixLen, mac, bridge: net.name, ifname };
}

/** Takes a running container off a network connected after its start: its veth and its address go. */
export async function disconnectExtra(id: string, net: BridgeNetwork): Promise<void> {
  checkId(id);
  const veth = extraVeth(id, net);
  if (existsSync(`/sys/class/net/${veth}`)) await ip(['link', 'delete', veth]);
  const leases = await leasesOf(join(IPAM_DIR, net.name), id);
  for (const { file } of leases) await unlink(file).catch(() => undefined);
  if (leases.length) await withNetworkLock(refreshHosts);
}

/**
 * At a container's end, after disconnect() of its first network took its namespace (and with it every
 * veth): the addresses it had on the others, unless another live process keeps them.
 */
export async function releaseExtras(id: string): Promise<void> {
  checkId(id);
  let released = 0;
  for (const dir of await readdir(IPAM_DIR).catch(() => [] as string[])) {
    for (const { file, lease } of await leasesOf(join(IPAM_DIR, dir), id)) {
      if (!lease.member?.extra || heldElsewhere(lease)) continue;
      await unlink(file).catch(() => undefined);
      released++;
    }
  }
  if (released) await withNetworkLock(refreshHosts);
}

/**
 * Removes the container's namespace (its veth goes with it) and frees its address; idempotent. A
 * network that another live process keeps (a second start of a running container) is left alone.
 */
export async function disconnect(id: string, net: BridgeNetwork = bridgeNetwork()): Promise<void> {
  checkId(id);
  const leases = await leasesOf(join(IPAM_DIR, net.name), id);
  if (leases.some((l) => heldElsewhere(l.lease))) return;
  await teardown(id);
  for (const { file } of leases) await unlink(file).catch(() => undefined);
  if (leases.length) await withNetworkLock(refreshHosts);
}

/** The containers on a bridge now: their ids, addresses and names. */
export async function members(net: BridgeNetwork): Promise<Array<{ id: string; ip: string; names: string[] }>> {
  const dir = join(IPAM_DIR, net.name);
  const out = [];
  for (const f of await readdir(dir).catch(() => [] as string[])) {
    const lease = await readLease(join(dir, f));
    if (lease && keeperAlive(lease)) out.push({ id: lease.id, ip: f, names: lease.member?.names ?? [] });
  }
  return out;
}

/**
 * Writes every member's /etc/hosts (the caller holds the network lock): its own lines (those of the
 * network it started on), and a line for each member of every user-defined network it is on (docker
 * resolves those names with its embedded DNS; berth's hosts files are rewritten in place, so running
 * containers see the change at once). Members of the default bridge have no names to give.
 */
async function refreshHosts(): Promise<void> {
  const byNet = new Map<string, Array<{ ip: string; lease: Lease & { member: Member } }>>();
  for (const dir of await readdir(IPAM_DIR).catch(() => [] as string[])) {
    const live = [];
    for (const f of await readdir(join(IPAM_DIR, dir)).catch(() => [] as string[])) {
      const lease = await readLease(join(IPAM_DIR, dir, f));
      if (lease?.member && keeperAlive(lease)) live.push({ ip: f, lease: lease as Lease & { member: Member } });
    }
    byNet.set(dir, live);
  }
  const hosts = new Map<string, { path: string; base: string; extra: boolean; nets: string[] }>();
  for (const [net, live] of byNet) {
    for (const { lease } of live) {
      const h = hosts.get(lease.id);
      if (!h) hosts.set(lease.id, { path: lease.member.hosts, base: lease.member.base, extra: !!lease.member.extra, nets: [net] });
      else {
        h.nets.push(net);
        if (h.extra && !lease.member.extra) Object.assign(h, { base: lease.member.base, extra: false });
      }
    }
  }
  for (const [id, h] of hosts) {
    const peers = new Set(h.nets.flatMap((net) => byNet.get(net)!
      .filter((p) => p.lease.id !== id && p.lease.member.names.length)
      .map((p) => `${p.ip}\t${p.lease.member.names.join(' ')}\n`)));
    await writeFile(h.path, h.base + [...peers].join('')).catch(() => undefined); // (a container gone meanwhile)
  }
}
