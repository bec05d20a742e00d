// Docker's default bridge network: a host bridge (berth0, 10.66.0.1/16), one network namespace per
// container made before it starts (so any executor joins it by path: runc, crun and builtin.pl),
// a veth pair from the bridge to the container's eth0, a default route through the bridge, and
// outbound NAT (MASQUERADE) for traffic leaving the host. iproute2 (`ip`) and iptables do the work.
//
// Addresses are handed out through files: /run/berth/ipam/berth0/<ip> made with O_EXCL holds the
// container's id. That is atomic across processes and berth roots (they all share the one bridge),
// and /run is emptied by a reboot together with the namespaces, so nothing stale survives one. A file
// whose container has no namespace any more (its supervisor was killed) is taken back after a grace.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, open, readdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface BridgeNetwork { name: string; gateway: string; prefixLen: number }

/** The one bridge network (BERTH_BRIDGE_SUBNET=a.b.c.d/n moves it, e.g. when 10.66/16 is taken). */
export function bridgeNetwork(env: NodeJS.ProcessEnv = process.env): BridgeNetwork {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(env['BERTH_BRIDGE_SUBNET'] ?? '10.66.0.0/16');
  const prefixLen = m ? Number(m[5]) : NaN;
  if (!m || prefixLen < 8 || prefixLen > 28 || m.slice(1, 5).some((o) => Number(o) > 255)) {
    throw new NetworkError(`BERTH_BRIDGE_SUBNET=${env['BERTH_BRIDGE_SUBNET']}: expected an IPv4 subnet such as 10.66.0.0/16 (prefix 8 to 28)`);
  }
  const base = (toInt(m.slice(1, 5).join('.')) & mask(prefixLen)) >>> 0;
  return { name: 'berth0', gateway: toIp(base + 1), prefixLen };
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

const IPAM_DIR = '/run/berth/ipam';
/** How long an address file may exist without its namespace (a connect in progress) before it is taken back. */
const STALE_MS = 30_000;

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

/** An iptables rule added once (checked first, so several processes converge on one copy). */
async function ensureRule(table: string, chain: string, rule: string[]): Promise<void> {
  try { await run('iptables', ['-w', '-t', table, '-C', chain, ...rule]); } catch (e) {
    const absent = missing('iptables', 'iptables', e);
    if (absent) throw absent;
    await iptables(['-t', table, '-A', chain, ...rule]);
  }
}

/** Makes the bridge with its address, forwarding and NAT when missing; several processes may race here. */
export async function ensureBridge(net: BridgeNetwork): Promise<void> {
  // once set up (until a reboot empties /run), a start costs no iptables call
  const ready = join('/run/berth', `${net.name}.ready`);
  if (existsSync(ready) && existsSync(`/sys/class/net/${net.name}`) && (await readFile(ready, 'utf8').catch(() => '')) === `${net.gateway}/${net.prefixLen}`) return;
  const subnet = `${toIp((toInt(net.gateway) & mask(net.prefixLen)) >>> 0)}/${net.prefixLen}`;
  if (!existsSync(`/sys/class/net/${net.name}`)) {
    await ip(['link', 'add', net.name, 'type', 'bridge']).catch((e: Error) => { if (!existsSync(`/sys/class/net/${net.name}`)) throw e; });
    await ip(['link', 'set', net.name, 'addrgenmode', 'none']).catch(() => undefined);
  }
  await ip(['addr', 'replace', `${net.gateway}/${net.prefixLen}`, 'dev', net.name]);
  await ip(['link', 'set', net.name, 'up']);
  if ((await readFile('/proc/sys/net/ipv4/ip_forward', 'utf8')).trim() !== '1') await writeFile('/proc/sys/net/ipv4/ip_forward', '1\n');
  await ensureRule('nat', 'POSTROUTING', ['-s', subnet, '!', '-o', net.name, '-j', 'MASQUERADE']);
  // a FORWARD policy of DROP (docker's, say) must still let the bridge out and its replies back in
  await ensureRule('filter', 'FORWARD', ['-i', net.name, '-j', 'ACCEPT']);
  await ensureRule('filter', 'FORWARD', ['-o', net.name, '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', 'ACCEPT']);
  await mkdir('/run/berth', { recursive: true, mode: 0o700 });
  await writeFile(ready, `${net.gateway}/${net.prefixLen}`);
}

/** Takes the lowest free address of the subnet for `id`. */
async function allocate(net: BridgeNetwork, id: string): Promise<string> {
  const dir = join(IPAM_DIR, net.name);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const first = ((toInt(net.gateway) & mask(net.prefixLen)) >>> 0) + 2;
  const last = ((toInt(net.gateway) | ~mask(net.prefixLen)) >>> 0) - 1; // before the broadcast address
  for (let tries = 0; tries < 3; tries++) {
    const used = new Set(await readdir(dir));
    for (let n = first; n <= last; n++) {
      const addr = toIp(n);
      if (used.has(addr)) {
        if (!(await reclaimStale(join(dir, addr)))) continue;
      }
      try {
        const fh = await open(join(dir, addr), 'wx', 0o600);
        await fh.writeFile(id);
        await fh.close();
        return addr;
      } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e; }
    }
  }
  throw new NetworkError(`the ${net.name} network has no free address left`);
}

/** Removes an address file whose container's namespace is gone (and has been for a while). */
async function reclaimStale(file: string): Promise<boolean> {
  try {
    const owner = (await readFile(file, 'utf8')).trim();
    if (!owner || existsSync(netnsPath(owner))) return false;
    if (Date.now() - (await stat(file)).mtimeMs < STALE_MS) return false;
    await unlink(file);
    return true;
  } catch { return false; }
}

/** Gives container `id` its namespace, attached to the bridge with an address and a default route. */
export async function connect(id: string, net: BridgeNetwork = bridgeNetwork()): Promise<NetworkAttachment> {
  await ensureBridge(net);
  await disconnect(id, net); // what a killed supervisor left behind
  const addr = await allocate(net, id);
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
  } catch (e) {
    await disconnect(id, net).catch(() => undefined);
    throw e;
  }
  return { netns: netnsPath(id), ip: addr, gateway: net.gateway, prefixLen: net.prefixLen, mac, bridge: net.name };
}

/** Removes the container's namespace (its veth goes with it) and frees its address; idempotent. */
export async function disconnect(id: string, net: BridgeNetwork = bridgeNetwork()): Promise<void> {
  if (existsSync(netnsPath(id))) await ip(['netns', 'delete', netnsName(id)]);
  if (existsSync(`/sys/class/net/${hostVeth(id)}`)) await ip(['link', 'delete', hostVeth(id)]).catch(() => undefined);
  const dir = join(IPAM_DIR, net.name);
  for (const f of await readdir(dir).catch(() => [] as string[])) {
    const owner = await readFile(join(dir, f), 'utf8').catch(() => '');
    if (owner.trim() === id) await unlink(join(dir, f)).catch(() => undefined);
  }
}

/** What the container's /etc/resolv.conf holds: the host's, without loopback name servers it could not reach (docker's fallback when none is left). */
export function containerResolvConf(host: string, network: 'none' | 'host' | 'bridge'): string {
  if (network === 'host') return host;
  const lines = host.split('\n').filter((l) => l.trim() && !/^\s*nameserver\s+(127\.|::1\s*$)/.test(l));
  if (!lines.some((l) => /^\s*nameserver\s/.test(l))) lines.push('nameserver 8.8.8.8', 'nameserver 8.8.4.4');
  return `${lines.join('\n').replace(/\n+$/, '')}\n`;
}

/** The container's /etc/hosts: its own address (or 127.0.1.1 without one) names it. */
export function hostsFile(hostname: string, addr?: string): string {
  return `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n${addr ?? '127.0.1.1'}\t${hostname}\n`;
}

/** Writes the bundle's hostname, hosts and resolv.conf (bind-mounted over the container's /etc ones) and returns their paths. */
export async function writeEtcFiles(dir: string, hostname: string, network: 'none' | 'host' | 'bridge', addr?: string): Promise<{ hostname: string; hosts: string; resolvConf: string }> {
  const files = { hostname: join(dir, 'hostname'), hosts: join(dir, 'hosts'), resolvConf: join(dir, 'resolv.conf') };
  await writeFile(files.hostname, `${hostname}\n`);
  await writeFile(files.hosts, hostsFile(hostname, addr));
  await writeFile(files.resolvConf, containerResolvConf(await readFile('/etc/resolv.conf', 'utf8').catch(() => ''), network));
  return files;
}
