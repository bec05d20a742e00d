// The container's /etc/hostname, /etc/hosts and /etc/resolv.conf: files in its bundle directory,
// bind-mounted over the image's, as docker does. --add-host adds names to hosts (host-gateway is the
// host as the container reaches it); --dns, --dns-search and --dns-option replace the host's lines.
import { readFile, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { UsageError } from '../client/errors.js';
import { bridgeNetwork, type Member } from './network.js';

export type NetworkMode = 'none' | 'host' | 'bridge';

export interface EtcOptions {
  /** --add-host NAME:IP, in order (IP may be host-gateway). */
  addHosts?: Array<{ name: string; ip: string }>;
  dns?: string[];
  dnsSearch?: string[];
  dnsOptions?: string[];
}

const HOST_NAME = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/;

/** One --add-host: NAME:IP (docker's form; IP may be IPv6, or host-gateway). */
export function parseAddHost(flag: string): { name: string; ip: string } {
  const colon = flag.indexOf(':');
  const name = flag.slice(0, colon);
  const ip = flag.slice(colon + 1);
  if (colon < 0 || !HOST_NAME.test(name)) throw new UsageError(`--add-host ${flag}: expected NAME:IP`);
  if (ip !== 'host-gateway' && !isIP(ip)) throw new UsageError(`--add-host ${flag}: "${ip}" is not an IP address (or host-gateway)`);
  return { name, ip };
}

/** --network-alias (and network connect --alias): a host name, since it becomes a word of other containers' /etc/hosts. */
export function checkAliases(flag: string, aliases: string[]): void {
  for (const a of aliases) if (!HOST_NAME.test(a)) throw new UsageError(`${flag} ${JSON.stringify(a)}: expected a host name (letters, digits, dots and dashes)`);
}

/** --dns: addresses only; --dns-search and --dns-option: one word each (they become lines of resolv.conf). */
export function checkDnsFlags(o: EtcOptions): void {
  for (const d of o.dns ?? []) if (!isIP(d)) throw new UsageError(`--dns ${d}: not an IP address`);
  for (const [flag, list] of [['--dns-search', o.dnsSearch], ['--dns-option', o.dnsOptions]] as const) {
    for (const v of list ?? []) if (!/^[^\s#;]+$/.test(v)) throw new UsageError(`${flag} ${v}: expected one word`);
  }
}

const LOOPBACK_NAMESERVER = /^\s*nameserver\s+(127\.|::1\s*$)/;

/** What the container's /etc/resolv.conf holds: the host's, without loopback name servers it could not reach (docker's fallback when none is left). */
export function containerResolvConf(host: string, network: NetworkMode, o: EtcOptions = {}): string {
  let lines = host.split('\n').filter((l) => l.trim() && (network === 'host' || !LOOPBACK_NAMESERVER.test(l)));
  const replace = (key: string, values: string[] | undefined, joined: boolean) => {
    if (!values?.length) return;
    lines = lines.filter((l) => !new RegExp(`^\\s*${key}\\s`).test(l));
    lines.push(...(joined ? [`${key} ${values.join(' ')}`] : values.map((v) => `${key} ${v}`)));
  };
  replace('nameserver', o.dns, false);
  replace('search', o.dnsSearch, true);
  replace('options', o.dnsOptions, true);
  if (network !== 'host' && !lines.some((l) => /^\s*nameserver\s/.test(l))) lines.push('nameserver 8.8.8.8', 'nameserver 8.8.4.4');
  return lines.length ? `${lines.join('\n')}\n` : '';
}

/**
 * The container's /etc/hosts: its own address (or 127.0.1.1 without one) names it; then the
 * --add-host names (host-gateway: `hostGateway`, the host as the container reaches it).
 */
export function hostsFile(hostname: string, addr: string | undefined, addHosts: EtcOptions['addHosts'] = [], hostGateway = bridgeNetwork().gateway): string {
  const extra = addHosts.map((h) => `${h.ip === 'host-gateway' ? hostGateway : h.ip}\t${h.name}\n`).join('');
  return `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n${addr ?? '127.0.1.1'}\t${hostname}\n${extra}`;
}

/**
 * Writes the bundle's hostname, hosts and resolv.conf (bind-mounted over the container's /etc ones)
 * and returns their paths. A bridge container's hosts is written again when it is connected, with
 * its address (network.ts connect).
 */
export async function writeEtcFiles(dir: string, hostname: string, network: NetworkMode, o: EtcOptions = {}): Promise<{ hostname: string; hosts: string; resolvConf: string }> {
  const files = { hostname: join(dir, 'hostname'), hosts: join(dir, 'hosts'), resolvConf: join(dir, 'resolv.conf') };
  await writeFile(files.hostname, `${hostname}\n`);
  await writeFile(files.hosts, hostsFile(hostname, undefined, o.addHosts, network === 'host' ? '127.0.0.1' : undefined));
  let host = await readFile('/etc/resolv.conf', 'utf8').catch(() => '');
  // systemd-resolved's stub (127.0.0.53) is out of the container's reach: its upstream servers are not, as docker finds them
  if (network !== 'host' && !host.split('\n').some((l) => /^\s*nameserver\s/.test(l) && !LOOPBACK_NAMESERVER.test(l))) {
    host = await readFile('/run/systemd/resolve/resolv.conf', 'utf8').catch(() => host);
  }
  await writeFile(files.resolvConf, containerResolvConf(host, network, o));
  return files;
}

/** A bridge container's hosts file as network.ts keeps it: its lines with its address, and the names others find it by. */
export function hostsMember(hostsPath: string, hostname: string, names: string[], addHosts: EtcOptions['addHosts'], gateway: string): (ip: string) => Member {
  return (ip) => ({ hosts: hostsPath, names, base: hostsFile(hostname, ip, addHosts, gateway) });
}
