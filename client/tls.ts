// Which registries may be reached over plain HTTP / unverified TLS, and which CAs and client
// certificates to use for the others, following docker:
//  - insecure: localhost, 127.0.0.0/8 and ::1 always; `--insecure`; BERTH_INSECURE_REGISTRIES
//    (comma-separated hosts or IPv4 CIDRs); "insecure-registries" in /etc/docker/daemon.json; and,
//    as podman and skopeo do, `insecure = true` entries of containers-registries.conf(5).
//  - certs.d: <dir>/<host[:port]>/*.crt are CAs, *.cert + *.key a client certificate, for dirs
//    /etc/docker/certs.d, /etc/containers/certs.d, ~/.config/containers/certs.d (BERTH_CERTS_D overrides).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { parse as parseToml } from 'smol-toml';
import { isIP } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ClientError, ExitCode } from './errors.js';

export interface TlsSettings {
  ca?: string[];
  cert?: string;
  key?: string;
}

function hostOnly(registry: string): string {
  if (registry.startsWith('[')) return registry.slice(1, registry.indexOf(']'));
  const colon = registry.lastIndexOf(':');
  return colon >= 0 && registry.indexOf(':') === colon ? registry.slice(0, colon) : registry;
}

function ipv4ToInt(ip: string): number {
  return ip.split('.').reduce((n, o) => (n << 8) + Number(o), 0) >>> 0;
}

function inCidr(ip: string, cidr: string): boolean {
  const [net, bitsText] = cidr.split('/');
  const bits = Number(bitsText);
  if (!net || isIP(net) !== 4 || isIP(ip) !== 4 || !Number.isInteger(bits) || bits < 0 || bits > 32) return false;
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  return (ipv4ToInt(ip) & mask) === (ipv4ToInt(net) & mask);
}

/** localhost, 127.0.0.0/8, ::1: plain HTTP is allowed without asking, as docker does. */
export function isLoopback(registry: string): boolean {
  const h = hostOnly(registry).toLowerCase();
  return h === 'localhost' || h.endsWith('.localhost') || h === '::1' || inCidr(h, '127.0.0.0/8');
}

function daemonJsonInsecure(path = '/etc/docker/daemon.json'): string[] {
  try {
    const doc = JSON.parse(readFileSync(path, 'utf8')) as { 'insecure-registries'?: unknown };
    const list = doc['insecure-registries'];
    return Array.isArray(list) ? list.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}

/**
 * The registries.conf files podman reads: $CONTAINERS_REGISTRIES_CONF alone when set; else the
 * user's ~/.config/containers/registries.conf instead of /etc/containers/registries.conf, then the
 * drop-ins of registries.conf.d (the system's, then the user's) in name order.
 */
export function registriesConfFiles(env: NodeJS.ProcessEnv = process.env): string[] {
  if (env.CONTAINERS_REGISTRIES_CONF) return [env.CONTAINERS_REGISTRIES_CONF];
  const user = join(env.HOME || homedir(), '.config', 'containers');
  const files = [existsSync(join(user, 'registries.conf')) ? join(user, 'registries.conf') : '/etc/containers/registries.conf'];
  for (const dir of ['/etc/containers/registries.conf.d', join(user, 'registries.conf.d')]) {
    try { files.push(...readdirSync(dir).filter((n) => n.endsWith('.conf')).sort().map((n) => join(dir, n))); } catch { /* none */ }
  }
  return files;
}

/**
 * Insecure entries of registries.conf: v2 `[[registry]]` tables with `insecure = true` (keyed by
 * `prefix`, else `location`; a `*.domain` wildcard host is allowed), where a later file's table
 * for the same prefix replaces an earlier one (drop-ins override, as in podman), and v1's
 * `[registries.insecure] registries = [...]`. berth decides per registry host, so a table for a
 * namespace inside a registry (`host/team`) does not make the whole host insecure and is skipped.
 * An unreadable or malformed file counts as none: it can only make berth stricter.
 */
export function registriesConfInsecure(files: string[]): string[] {
  const tables = new Map<string, boolean>();
  const v1: string[] = [];
  for (const f of files) {
    let doc: Record<string, unknown>;
    try { doc = parseToml(readFileSync(f, 'utf8')) as Record<string, unknown>; } catch { continue; }
    for (const t of Array.isArray(doc.registry) ? doc.registry as Array<Record<string, unknown>> : []) {
      const key = typeof t.prefix === 'string' && t.prefix ? t.prefix : typeof t.location === 'string' ? t.location : '';
      if (key) tables.set(key, t.insecure === true);
    }
    const list = (doc.registries as { insecure?: { registries?: unknown } } | undefined)?.insecure?.registries;
    if (Array.isArray(list)) v1.push(...list.filter((x): x is string => typeof x === 'string'));
  }
  return [...[...tables].filter(([, insecure]) => insecure).map(([key]) => key), ...v1].filter((entry) => !entry.includes('/'));
}

export function isInsecureRegistry(registry: string, opts: { insecure?: boolean; extra?: string[]; env?: NodeJS.ProcessEnv } = {}): boolean {
  if (opts.insecure || isLoopback(registry)) return true;
  const env = opts.env ?? process.env;
  const list = [
    ...(opts.extra ?? []),
    ...(env.BERTH_INSECURE_REGISTRIES ?? '').split(',').map((s) => s.trim()).filter(Boolean),
    ...daemonJsonInsecure(env.BERTH_DOCKER_DAEMON_JSON),
    ...registriesConfInsecure(registriesConfFiles(env)),
  ];
  const host = hostOnly(registry);
  return list.some((entry) => entry === registry || entry === host
    || (entry.startsWith('*.') && host.endsWith(entry.slice(1)))
    || (entry.includes('/') && inCidr(host, entry)));
}

export function certsDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  if (env.BERTH_CERTS_D) return env.BERTH_CERTS_D.split(':').filter(Boolean);
  return ['/etc/docker/certs.d', '/etc/containers/certs.d', join(env.HOME || homedir(), '.config', 'containers', 'certs.d')];
}

/** CA bundles and client certificate for a registry, from --ca-cert files and certs.d. */
export function tlsSettings(registry: string, opts: { caCerts?: string[]; env?: NodeJS.ProcessEnv } = {}): TlsSettings {
  const out: TlsSettings = {};
  const ca: string[] = [];
  const read = (p: string) => {
    try { return readFileSync(p, 'utf8'); } catch (e) {
      throw new ClientError(`cannot read certificate ${p}: ${(e as Error).message}`, ExitCode.Usage);
    }
  };
  for (const f of opts.caCerts ?? []) ca.push(read(f));
  for (const base of certsDirs(opts.env)) {
    const dir = join(base, registry.replace(/[[\]]/g, (c) => c));
    if (!existsSync(dir)) continue;
    let names: string[];
    try { names = readdirSync(dir).sort(); } catch { continue; }
    for (const n of names) {
      if (n.endsWith('.crt')) ca.push(read(join(dir, n)));
      else if (n.endsWith('.cert') && !out.cert) {
        const key = join(dir, `${n.slice(0, -'.cert'.length)}.key`);
        if (!existsSync(key)) throw new ClientError(`client certificate ${join(dir, n)} has no matching .key`, ExitCode.Usage);
        out.cert = read(join(dir, n));
        out.key = read(key);
      }
    }
  }
  if (ca.length) out.ca = ca;
  return out;
}
