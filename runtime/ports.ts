// Published ports (-p, -P): docker's userland proxy. For each mapping a host socket listens and
// relays to the container's address on the bridge: TCP connection by connection (half-closes
// kept), UDP datagram by datagram with one upstream socket per client (idle ones closed). It lives
// in the process that keeps the container (its supervisor, or the CLI of a foreground run --rm).
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { isIP } from 'node:net';
import { connect as tcpConnect, createServer, type Server } from 'node:net';
import { UsageError } from '../client/errors.js';

export type Protocol = 'tcp' | 'udp';

export interface PortMapping {
  /** The host address to listen on; '' is every address (0.0.0.0). */
  hostIp: string;
  /** 0: any free port, chosen when the container starts. */
  hostPort: number;
  containerPort: number;
  protocol: Protocol;
}

function port(text: string, what: string, flag: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > 65535) throw new UsageError(`-p ${flag}: invalid ${what} port "${text}"`);
  return n;
}

function range(text: string, what: string, flag: string): number[] {
  const [a, b] = text.split('-');
  const from = port(a!, what, flag);
  const to = b === undefined ? from : port(b, what, flag);
  if (to < from) throw new UsageError(`-p ${flag}: invalid ${what} port range "${text}"`);
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/** One -p: [[HOST_IP:][HOST_PORT]:]CONTAINER_PORT[/tcp|udp], ports or equal-sized ranges (8000-8001:80-81). */
export function parsePublish(flag: string): PortMapping[] {
  const slash = flag.lastIndexOf('/');
  const protocol = slash >= 0 ? flag.slice(slash + 1) : 'tcp';
  if (protocol !== 'tcp' && protocol !== 'udp') throw new UsageError(`-p ${flag}: the protocol must be tcp or udp`);
  let rest = slash >= 0 ? flag.slice(0, slash) : flag;
  let hostIp = '';
  const v6 = /^\[([^\]]+)\]:(.*)$/.exec(rest);
  if (v6) { hostIp = v6[1]!; rest = v6[2]!; } else {
    const parts = rest.split(':');
    if (parts.length > 3) throw new UsageError(`-p ${flag}: expected [[HOST_IP:][HOST_PORT]:]CONTAINER_PORT[/PROTOCOL]`);
    if (parts.length === 3) { hostIp = parts[0]!; rest = `${parts[1]}:${parts[2]}`; }
  }
  if (hostIp && !isIP(hostIp)) throw new UsageError(`-p ${flag}: "${hostIp}" is not an IP address`);
  const colon = rest.lastIndexOf(':');
  const hostPart = colon >= 0 ? rest.slice(0, colon) : '';
  const containerPorts = range(colon >= 0 ? rest.slice(colon + 1) : rest, 'container', flag);
  const hostPorts = hostPart ? range(hostPart, 'host', flag) : containerPorts.map(() => 0);
  if (hostPorts.length !== containerPorts.length) throw new UsageError(`-p ${flag}: the host and container port ranges differ in size`);
  return containerPorts.map((containerPort, i) => ({ hostIp, hostPort: hostPorts[i]!, containerPort, protocol }));
}

/** -P: every port the image EXPOSEs ("80/tcp", "53/udp"), each on a free host port. */
export function publishAll(exposed: Record<string, unknown> | undefined): PortMapping[] {
  return Object.keys(exposed ?? {}).flatMap((k) => {
    const m = /^(\d+)(?:\/(tcp|udp))?$/.exec(k);
    return m ? [{ hostIp: '', hostPort: 0, containerPort: Number(m[1]), protocol: (m[2] ?? 'tcp') as Protocol }] : [];
  });
}

/** docker port's format: 80/tcp -> 0.0.0.0:32768 */
export function formatMapping(p: PortMapping): string {
  const ip = p.hostIp || '0.0.0.0';
  return `${p.containerPort}/${p.protocol} -> ${ip.includes(':') ? `[${ip}]` : ip}:${p.hostPort}`;
}

/** How long a UDP client's upstream socket lives without traffic, and how many clients a port keeps at once. */
const UDP_IDLE_MS = 90_000;
const UDP_MAX_CLIENTS = 1024;

export class PortProxy {
  private constructor(readonly bound: PortMapping[], private readonly closers: Array<() => void>) {}

  /** Binds every mapping (all or none: a port already in use fails the start, as with docker). */
  static async open(mappings: PortMapping[], target: string): Promise<PortProxy> {
    const bound: PortMapping[] = [];
    const closers: Array<() => void> = [];
    try {
      for (const m of mappings) {
        const listen = m.hostIp || '0.0.0.0';
        const hostPort = m.protocol === 'tcp' ? await tcpProxy(listen, m, target, closers) : await udpProxy(listen, m, target, closers);
        bound.push({ ...m, hostPort });
      }
    } catch (e) {
      for (const close of closers) close();
      throw e;
    }
    return new PortProxy(bound, closers);
  }

  close(): void { for (const close of this.closers) close(); }
}

function bindError(listen: string, m: PortMapping, e: Error): Error {
  const code = (e as NodeJS.ErrnoException).code;
  const why = code === 'EADDRINUSE' ? 'port is already allocated' : code === 'EADDRNOTAVAIL' ? 'no such address on this host' : e.message;
  return new UsageError(`Bind for ${listen}:${m.hostPort}/${m.protocol} failed: ${why}`);
}

async function tcpProxy(listen: string, m: PortMapping, target: string, closers: Array<() => void>): Promise<number> {
  const sockets = new Set<import('node:net').Socket>();
  const server: Server = createServer({ allowHalfOpen: true }, (client) => {
    const upstream = tcpConnect({ host: target, port: m.containerPort, allowHalfOpen: true });
    sockets.add(client).add(upstream);
    const done = () => { client.destroy(); upstream.destroy(); sockets.delete(client); sockets.delete(upstream); };
    client.on('error', done).on('close', done);
    upstream.on('error', done).on('close', done);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(bindError(listen, m, e)));
    server.listen({ host: listen, port: m.hostPort, exclusive: true }, resolve);
  });
  server.on('error', () => undefined);
  closers.push(() => { server.close(); for (const s of sockets) s.destroy(); });
  return (server.address() as import('node:net').AddressInfo).port;
}

async function udpProxy(listen: string, m: PortMapping, target: string, closers: Array<() => void>): Promise<number> {
  const server: UdpSocket = createSocket(isIP(listen) === 6 ? 'udp6' : 'udp4');
  // per client: its upstream socket, and what came before that socket was connected
  const upstreams = new Map<string, { socket: UdpSocket; timer: NodeJS.Timeout; early?: Buffer[] }>();
  const forget = (key: string) => {
    const u = upstreams.get(key);
    if (!u) return;
    clearTimeout(u.timer);
    u.socket.close();
    upstreams.delete(key);
  };
  server.on('message', (msg: Buffer, from: RemoteInfo) => {
    const key = `${from.address}|${from.port}`;
    let u = upstreams.get(key);
    if (!u) {
      if (upstreams.size >= UDP_MAX_CLIENTS) forget(upstreams.keys().next().value!); // the longest-known client makes room
      // connected: the kernel drops datagrams from anyone but the container's port, so none reaches a client as a reply
      const socket = createSocket('udp4');
      const entry: { socket: UdpSocket; timer: NodeJS.Timeout; early?: Buffer[] } = { socket, timer: setTimeout(() => forget(key), UDP_IDLE_MS), early: [] };
      socket.connect(m.containerPort, target, () => {
        for (const d of entry.early ?? []) socket.send(d);
        delete entry.early;
      });
      socket.on('message', (reply) => { server.send(reply, from.port, from.address); upstreams.get(key)?.timer.refresh(); });
      socket.on('error', () => forget(key));
      upstreams.set(key, u = entry);
    }
    u.timer.refresh();
    if (u.early) u.early.push(msg); else u.socket.send(msg);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(bindError(listen, m, e)));
    server.bind({ address: listen, port: m.hostPort, exclusive: true }, () => resolve());
  });
  server.on('error', () => undefined);
  closers.push(() => { for (const key of [...upstreams.keys()]) forget(key); server.close(); });
  return server.address().port;
}

/** -p and -P of a run, as asked. */
export interface PublishOptions { publish?: PortMapping[]; publishAll?: boolean }

/** The mappings a container gets: its -p, and with -P every port its image EXPOSEs. Only a bridge container has ports of its own. */
export function portsToPublish(network: string, o: PublishOptions, exposed: Record<string, unknown> | undefined): PortMapping[] {
  if (network !== 'bridge' && (o.publish?.length || o.publishAll)) throw new UsageError(`-p and -P need the bridge network, not --network ${network}`);
  const asked = o.publish ?? [];
  // a port that -p publishes already is not published again by -P
  const more = o.publishAll ? publishAll(exposed).filter((e) => !asked.some((p) => p.containerPort === e.containerPort && p.protocol === e.protocol)) : [];
  return [...asked, ...more];
}
