// One typed Config in the spirit of distribution's config.yml. Sources, weakest first:
// built-in defaults < YAML file < REGISTRY_<SECTION>_<KEY> env vars < command-line flags.
// Every key is checked against SCHEMA, so a typo is a startup error, not a silent default.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import {
  DISTRIBUTION_ONLY_HEALTH, DISTRIBUTION_ONLY_HTTP, DISTRIBUTION_ONLY_ROOT, DISTRIBUTION_ONLY_TLS, distributionOnly,
} from './config-distribution.js';
import { ALLOWED_ALGORITHMS } from './auth/algorithms.js';
import { endpointsFrom } from './notifications/config.js';
import type { NotificationsConfig } from './notifications/index.js';
import { isTree, type Tree } from './config-tree.js';

// map: names to scalars (log.fields); headers: names to a value or a list (http.headers); any: judged
// by config-distribution.ts. These three come from the file only, not from env vars.
type Leaf = 'string' | 'int' | 'bool' | 'duration' | 'strings' | 'map' | 'headers' | 'any';
type Schema = { [key: string]: Leaf | Schema };

const DRIVER_SCHEMAS: Record<string, Schema> = {
  filesystem: { rootdirectory: 'string' },
  s3: {
    bucket: 'string', region: 'string', regionendpoint: 'string', forcepathstyle: 'bool', rootdirectory: 'string',
    accesskey: 'string', secretkey: 'string', sessiontoken: 'string', chunksize: 'int', redirect: 'bool', secure: 'bool',
    maxattempts: 'int', readtimeout: 'duration',
  },
};

const anyOf = (keys: readonly string[]): Schema => Object.fromEntries(keys.map((k) => [k, 'any']));

const SCHEMA: Schema = {
  version: 'string',
  log: { level: 'string', fields: 'map', formatter: 'string', accesslog: { disabled: 'bool' }, hooks: 'any' },
  http: {
    addr: 'string', host: 'string', draintimeout: 'duration', idletimeout: 'duration', trustedproxies: 'strings',
    headers: 'headers', relativeurls: 'bool', secret: 'string',
    debug: { addr: 'string', prometheus: { enabled: 'bool', path: 'string' } },
    tls: {
      certificate: 'string', key: 'string', selfsigned: 'bool', names: 'strings', directory: 'string',
      clientcas: 'strings', minimumtls: 'string', ...anyOf(DISTRIBUTION_ONLY_TLS),
    },
    ...anyOf(DISTRIBUTION_ONLY_HTTP),
  },
  storage: {
    ...DRIVER_SCHEMAS,
    delete: { enabled: 'bool' },
    redirect: { disable: 'bool' },
    maintenance: {
      uploadpurging: { enabled: 'bool', age: 'duration', interval: 'duration', dryrun: 'bool' },
      readonly: { enabled: 'bool' },
    },
    // distribution's caches and tag lookup tuning: berth needs neither (accepted, no effect)
    cache: { blobdescriptor: 'string', blobdescriptorsize: 'int', layerinfo: 'string' },
    tag: { concurrencylimit: 'int' },
  },
  health: { storagedriver: { enabled: 'bool', interval: 'duration', threshold: 'int' }, ...anyOf(DISTRIBUTION_ONLY_HEALTH) },
  notifications: { events: { includereferences: 'bool' }, endpoints: 'any' },
  ...anyOf(DISTRIBUTION_ONLY_ROOT),
  crossmount: { automatic: 'bool' },
  auth: {
    maxloginfailures: 'int',
    htpasswd: { realm: 'string', path: 'string' },
    token: {
      realm: 'string', service: 'string', issuer: 'string', rootcertbundle: 'string', jwks: 'string',
      signingalgorithms: 'strings', autoredirect: 'bool', autoredirectpath: 'string',
      builtin: 'bool', htpasswd: 'string', signingkey: 'string', signingcert: 'string', algorithm: 'string',
      expiration: 'duration', refreshexpiration: 'duration', statedirectory: 'string',
    },
    access: { path: 'string' },
  },
};

const AUTH_MODES = ['htpasswd', 'token'];

const STORAGE_NON_DRIVER = new Set(['delete', 'redirect', 'maintenance', 'cache', 'tag']);
const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export interface Config {
  /** fields: added to every log line; accessLog: one line per request. */
  log: { level: string; fields: Record<string, unknown>; accessLog: boolean };
  http: { host: string | undefined; port: number; addr: string; draintimeoutMs: number; idletimeoutMs: number; publicHost?: string;
    /** Proxies whose X-Forwarded-For/-Proto are believed (express's "trust proxy"): addresses or CIDR ranges. */
    trustedProxies: string[];
    /** Sent with every response (e.g. X-Content-Type-Options: nosniff). */
    headers: Record<string, string[]>;
    /** A second, plain-HTTP listener with /debug/health and, when enabled, the Prometheus metrics. */
    debug?: { host: string | undefined; port: number; metricsPath?: string };
    tls?: { certificate: string; key: string }; selfSigned?: { directory: string; names: string[] };
    /** CA files that client certificates must chain to (mutual TLS); none: no client certificates asked. */
    clientCAs: string[];
    minTls: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3' };
  /** storage.maintenance.readonly: writes and deletes get 405, uploads are not purged. */
  readOnly: boolean;
  /** health.storagedriver: the storage is checked every intervalMs; `threshold` failures in a row make the registry unhealthy. */
  health: { storage?: { intervalMs: number; threshold: number } };
  /** Webhooks: events of pushes, pulls, mounts and deletes POSTed to these endpoints. */
  notifications: NotificationsConfig;
  /** Keys of a distribution config that berth accepts and ignores, to log at start. */
  notes: string[];
  storage: { driver: string; options: Record<string, unknown> };
  delete: { enabled: boolean };
  uploadPurging: { enabled: boolean; ageMs: number; intervalMs: number; dryrun: boolean };
  crossmount: { automatic: boolean };
  auth: AuthConfig;
}

export interface TokenConfig {
  /** Where clients get tokens; undefined = this registry's own /auth/token. */
  realm?: string;
  service: string;
  issuer: string;
  rootcertbundle?: string;
  jwks?: string;
  /** Serve the built-in issuer at /auth/token. */
  builtin: boolean;
  htpasswd?: string;
  signingkey: string;
  signingcert?: string;
  algorithm: 'ES256' | 'RS256';
  /** Algorithms tokens may be signed with (auth.token.signingalgorithms); all of ALLOWED_ALGORITHMS when unset. */
  signingAlgorithms?: string[];
  /** auth.token.autoredirect: the realm is this path on the host each client asked for. */
  autoRedirectPath?: string;
  expirationSec: number;
  refreshExpirationSec: number;
  statedirectory: string;
}

export interface AuthConfig {
  mode: 'none' | 'htpasswd' | 'token';
  /** htpasswd mode */
  realm: string;
  htpasswd?: string;
  /** access rules file (both modes) */
  access?: string;
  token?: TokenConfig;
  /** Failed sign-ins a client address may make per minute before it gets 429 (0: no limit; default 20). */
  maxLoginFailures?: number;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

export const DEFAULTS = {
  version: '0.1',
  log: { level: 'info' },
  http: { addr: ':5000', draintimeout: '30s' },
  storage: { filesystem: { rootdirectory: './data' }, delete: { enabled: false } },
};

export function parseDuration(input: string | number): number {
  if (typeof input === 'number') return input * 1000; // bare numbers are seconds
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(input); m; m = re.exec(input)) {
    total += Number(m[1]) * units[m[2]!]!;
    consumed = re.lastIndex;
  }
  if (consumed === 0 || consumed !== input.length) throw new Error(`"${input}" is not a duration like 30s, 5m or 168h`);
  return total;
}

export function parseAddr(addr: string): { host: string | undefined; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(addr);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) throw new Error(`"${addr}" is not host:port (e.g. :5000, 127.0.0.1:5077, [::1]:5000)`);
  return { host: m[1] ?? (m[2] || undefined), port };
}

/** What express's "trust proxy" takes: an address, a CIDR range, or one of proxy-addr's names. */
function isProxyAddress(p: string): boolean {
  if (['loopback', 'linklocal', 'uniquelocal'].includes(p)) return true;
  const [ip, prefix, ...rest] = p.split('/');
  const family = isIP(ip ?? '');
  if (!family || rest.length) return false;
  return prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128));
}


function coerce(leaf: Leaf, value: unknown, where: string, problems: string[]): unknown {
  const fromEnv = typeof value === 'string';
  switch (leaf) {
    case 'string': if (typeof value === 'string' || typeof value === 'number') return String(value); break;
    case 'int': {
      const n = fromEnv ? Number(value) : value;
      if (typeof n === 'number' && Number.isInteger(n) && n >= 0) return n;
      break;
    }
    case 'bool':
      if (typeof value === 'boolean') return value;
      if (fromEnv && /^(true|false|1|0|yes|no)$/i.test(value)) return /^(true|1|yes)$/i.test(value);
      break;
    case 'duration':
      try { parseDuration(value as string | number); return value; } catch (e) { problems.push(`${where}: ${(e as Error).message}`); return undefined; }
    case 'strings':
      if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value;
      if (fromEnv) return value.split(',').map((s) => s.trim()).filter(Boolean);
      break;
    case 'map':
      if (isTree(value) && Object.values(value).every((v) => ['string', 'number', 'boolean'].includes(typeof v))) return value;
      break;
    case 'headers': return httpHeaders(value, where, problems);
    case 'any': return value;
  }
  const expected = { int: 'a non-negative integer', bool: 'true or false', map: 'a mapping of names to values' }[leaf as string] ?? `a ${leaf}`;
  problems.push(`${where}: expected ${expected}, got ${JSON.stringify(value)}`);
  return undefined;
}

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** http.headers: names to a value or a list of values (distribution writes lists), each one Node can send. */
function httpHeaders(value: unknown, where: string, problems: string[]): Record<string, string[]> | undefined {
  if (!isTree(value)) { problems.push(`${where}: expected a mapping of header names to values`); return undefined; }
  const out: Record<string, string[]> = {};
  for (const [name, v] of Object.entries(value)) {
    const values = (Array.isArray(v) ? v : [v]).map((x) => (typeof x === 'number' || typeof x === 'boolean' ? String(x) : x));
    if (!HEADER_NAME.test(name)) problems.push(`${where}: "${name}" is not a header name`);
    // what Node's http and fetch can send (tab, printable ASCII, Latin-1): any other character made
    // every response a 500 (http.headers) or crashed the server at its first event (notification headers)
    else if (!values.every((x) => typeof x === 'string' && !/[^\t\x20-\x7e\x80-\xff]/.test(x))) problems.push(`${where}.${name}: values must be strings on one line, of printable ASCII or Latin-1 characters`);
    else out[name] = values as string[];
  }
  return out;
}

/** Checks a parsed YAML tree against SCHEMA, coercing leaves; unknown keys are problems. */
function validateTree(tree: unknown, schema: Schema, path: string, problems: string[]): Tree {
  const out: Tree = {};
  if (tree === null || tree === undefined) return out;
  if (!isTree(tree)) { problems.push(`${path || 'config'}: expected a mapping`); return out; }
  for (const [key, value] of Object.entries(tree)) {
    const where = path ? `${path}.${key}` : key;
    const sub = schema[key];
    if (sub === undefined) { problems.push(`${where}: unknown key`); continue; }
    if (typeof sub === 'string') {
      if (value !== null && value !== undefined) out[key] = coerce(sub, value, where, problems);
    } else {
      out[key] = validateTree(value, sub, where, problems);
    }
  }
  return out;
}

/** REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY → ['storage','filesystem','rootdirectory'] */
function applyEnv(tree: Tree, env: NodeJS.ProcessEnv, problems: string[]): void {
  // Selectors (REGISTRY_STORAGE=s3, REGISTRY_AUTH=token) go last: they drop the other choices' keys.
  const selector = (n: string) => n === 'REGISTRY_STORAGE' || n === 'REGISTRY_AUTH';
  const entries = Object.entries(env).sort(([a], [b]) => Number(selector(a)) - Number(selector(b)));
  for (const [name, value] of entries) {
    if (!name.startsWith('REGISTRY_') || value === undefined) continue;
    const parts = name.slice('REGISTRY_'.length).toLowerCase().split('_');
    if (parts.length === 1 && parts[0] === 'storage') { // REGISTRY_STORAGE=s3 picks the driver
      const storage = (isTree(tree.storage) ? tree.storage : (tree.storage = {})) as Tree;
      for (const k of Object.keys(storage)) if (!STORAGE_NON_DRIVER.has(k) && k !== value) delete storage[k];
      if (!DRIVER_SCHEMAS[value]) problems.push(`${name}: unknown storage driver "${value}" (known: ${Object.keys(DRIVER_SCHEMAS).join(', ')})`);
      else storage[value] ??= {};
      continue;
    }
    if (parts.length === 1 && parts[0] === 'auth') { // REGISTRY_AUTH=token|htpasswd|none picks the mode
      const auth = (isTree(tree.auth) ? tree.auth : (tree.auth = {})) as Tree;
      for (const k of Object.keys(auth)) if (AUTH_MODES.includes(k) && k !== value) delete auth[k];
      if (value !== 'none' && !AUTH_MODES.includes(value)) problems.push(`${name}: unknown auth mode "${value}" (none, htpasswd, token)`);
      else if (value !== 'none') auth[value] ??= {};
      else tree.auth = { ...auth, none: true };
      continue;
    }
    const leaf = leafAt(parts);
    if (!leaf) { problems.push(`${name}: no such configuration key`); continue; }
    let node = tree;
    for (const key of parts.slice(0, -1)) node = (isTree(node[key]) ? node[key] : (node[key] = {})) as Tree;
    node[parts[parts.length - 1]!] = coerce(leaf, value, name, problems);
  }
}

function leafAt(parts: string[]): Leaf | undefined {
  let s: Schema | Leaf | undefined = SCHEMA;
  for (const p of parts) {
    if (typeof s !== 'object') return undefined;
    s = s[p];
  }
  return typeof s === 'string' && !['map', 'headers', 'any'].includes(s) ? s : undefined;
}

function merge(base: Tree, over: Tree): Tree {
  const out: Tree = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = isTree(v) && isTree(out[k]) ? merge(out[k] as Tree, v) : v;
  return out;
}

export interface LoadOptions {
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Flag values in the YAML shape, e.g. { http: { addr: '127.0.0.1:5077' } }. */
  overrides?: Tree;
}

export function loadConfig(opts: LoadOptions = {}): Config {
  const problems: string[] = [];
  let fileTree: Tree = {};
  if (opts.file) {
    let text: string;
    try { text = readFileSync(opts.file, 'utf8'); } catch (e) { throw new ConfigError([`cannot read ${opts.file}: ${(e as Error).message}`]); }
    let parsed: unknown;
    try { parsed = parseYaml(text); } catch (e) { throw new ConfigError([`${opts.file} is not valid YAML: ${(e as Error).message.split('\n')[0]}`]); }
    fileTree = validateTree(parsed, SCHEMA, '', problems);
  }
  const envTree: Tree = {};
  applyEnv(envTree, opts.env ?? {}, problems);
  const overrides = validateTree(opts.overrides ?? {}, SCHEMA, '', problems);

  // A driver named by a stronger source replaces the weaker sources' driver section.
  const layers = [DEFAULTS as Tree, fileTree, envTree, overrides];
  let tree: Tree = {};
  for (const layer of layers) {
    const storage = isTree(layer.storage) ? layer.storage : {};
    const drivers = Object.keys(storage).filter((k) => !STORAGE_NON_DRIVER.has(k));
    if (drivers.length > 0 && isTree(tree.storage)) {
      const current = tree.storage;
      const kept: Tree = {};
      for (const [k, v] of Object.entries(current)) if (STORAGE_NON_DRIVER.has(k) || drivers.includes(k)) kept[k] = v;
      tree = { ...tree, storage: kept };
    }
    const auth = isTree(layer.auth) ? layer.auth : {};
    const modes = Object.keys(auth).filter((k) => AUTH_MODES.includes(k) || k === 'none');
    if (modes.length > 0 && isTree(tree.auth)) {
      const kept: Tree = {};
      for (const [k, v] of Object.entries(tree.auth)) if (!(AUTH_MODES.includes(k) || k === 'none') || modes.includes(k)) kept[k] = v;
      tree = { ...tree, auth: kept };
    }
    tree = merge(tree, layer);
  }
  return finish(tree, problems);
}

function finish(tree: Tree, problems: string[]): Config {
  const log = (tree.log ?? {}) as Tree;
  const http = (tree.http ?? {}) as Tree;
  const storage = (tree.storage ?? {}) as Tree;
  const level = String(log.level ?? 'info');
  if (!LOG_LEVELS.includes(level)) problems.push(`log.level: "${level}" is not one of ${LOG_LEVELS.join(', ')}`);

  let host: string | undefined;
  let port = 5000;
  const addr = String(http.addr ?? ':5000');
  try { ({ host, port } = parseAddr(addr)); } catch (e) { problems.push(`http.addr: ${(e as Error).message}`); }

  const tls = (http.tls ?? {}) as Tree;
  if (Boolean(tls.certificate) !== Boolean(tls.key)) problems.push('http.tls: certificate and key must be given together');
  if (http.host !== undefined && !/^https?:\/\/[^/?#\s"\\]+(\/[^?#\s"\\]*)?$/.test(String(http.host))) {
    problems.push(`http.host: "${String(http.host)}" is not the registry's public URL (https://registry.example.com[:port])`);
  }

  for (const p of (http.trustedproxies as string[] | undefined) ?? []) {
    if (!isProxyAddress(p)) problems.push(`http.trustedproxies: "${p}" is not an address, a CIDR range (10.0.0.0/8) or loopback, linklocal, uniquelocal`);
  }

  const drivers = Object.keys(storage).filter((k) => !STORAGE_NON_DRIVER.has(k));
  if (drivers.length !== 1) problems.push(`storage: exactly one driver must be configured, found ${drivers.length ? drivers.join(', ') : 'none'}`);
  const driver = drivers[0] ?? 'filesystem';
  const options = (storage[driver] ?? {}) as Tree;
  if (driver === 'filesystem' && !options.rootdirectory) problems.push('storage.filesystem.rootdirectory: required');
  if (driver === 's3' && !options.bucket) problems.push('storage.s3.bucket: required');

  const maintenance = (storage.maintenance ?? {}) as Tree;
  const purging = (maintenance.uploadpurging ?? {}) as Tree;
  const readOnly = Boolean((maintenance.readonly as Tree | undefined)?.enabled);
  const debugTree = (http.debug ?? {}) as Tree;
  let debug: Config['http']['debug'];
  if (debugTree.addr !== undefined) {
    try {
      const prometheus = (debugTree.prometheus ?? {}) as Tree;
      const metricsPath = prometheus.enabled ? String(prometheus.path ?? '/metrics') : undefined;
      if (metricsPath !== undefined && !/^\/[A-Za-z0-9._~\/-]*$/.test(metricsPath)) throw new Error(`prometheus.path "${metricsPath}" is not a URL path`);
      debug = { ...parseAddr(String(debugTree.addr)), metricsPath };
    } catch (e) { problems.push(`http.debug: ${(e as Error).message}`); }
  }
  const TLS_VERSIONS = { 'tls1.0': 'TLSv1', 'tls1.1': 'TLSv1.1', 'tls1.2': 'TLSv1.2', 'tls1.3': 'TLSv1.3' } as const;
  const minTls = TLS_VERSIONS[String(tls.minimumtls ?? 'tls1.2') as keyof typeof TLS_VERSIONS];
  if (!minTls) problems.push(`http.tls.minimumtls: "${String(tls.minimumtls)}" is not one of ${Object.keys(TLS_VERSIONS).join(', ')}`);
  const clientCAs = (tls.clientcas as string[] | undefined) ?? [];
  if (clientCAs.length && !tls.certificate && !tls.selfsigned) problems.push('http.tls.clientcas: needs TLS (http.tls.certificate and key, or selfsigned)');
  const storageCheck = ((tree.health as Tree | undefined)?.storagedriver ?? {}) as Tree;
  const notificationsTree = (tree.notifications ?? {}) as Tree;
  const endpoints = endpointsFrom(notificationsTree.endpoints, problems,
    (v, where) => { try { return parseDuration(v as string | number); } catch (e) { problems.push(`${where}: ${(e as Error).message}`); return undefined; } },
    (v, where) => httpHeaders(v, where, problems));
  const compat = distributionOnly(tree);
  problems.push(...compat.problems);
  const auth = authConfig((tree.auth ?? {}) as Tree, driver === 'filesystem' ? String(options.rootdirectory ?? './data') : undefined, problems);
  if (tls.selfsigned && tls.certificate) problems.push('http.tls: give either certificate/key or selfsigned, not both');
  const tlsDir = String(tls.directory ?? join(driver === 'filesystem' ? String(options.rootdirectory ?? './data') : '.', '_tls'));
  if (problems.length) throw new ConfigError(problems);
  return {
    log: { level, fields: (log.fields as Record<string, unknown> | undefined) ?? {}, accessLog: !(log.accesslog as Tree | undefined)?.disabled },
    http: {
      host, port, addr, draintimeoutMs: parseDuration((http.draintimeout as string) ?? '30s'),
      idletimeoutMs: parseDuration((http.idletimeout as string) ?? '120s'),
      publicHost: http.host as string | undefined,
      trustedProxies: (http.trustedproxies as string[] | undefined) ?? [],
      tls: tls.certificate ? { certificate: String(tls.certificate), key: String(tls.key) } : undefined,
      selfSigned: tls.selfsigned ? { directory: tlsDir, names: (tls.names as string[] | undefined) ?? [] } : undefined,
      headers: (http.headers as Record<string, string[]> | undefined) ?? {},
      debug,
      clientCAs,
      minTls: minTls ?? 'TLSv1.2',
    },
    readOnly,
    health: storageCheck.enabled ? {
      // interval 0 is the default, as in distribution: a 0 ms check ran without pause and timed out every time
      storage: { intervalMs: parseDuration((storageCheck.interval as string | undefined) ?? '10s') || 10_000, threshold: Math.max(1, (storageCheck.threshold as number | undefined) ?? 1) },
    } : {},
    notifications: { endpoints, includeReferences: Boolean((notificationsTree.events as Tree | undefined)?.includereferences) },
    notes: compat.notes,
    // the adapter takes the read timeout in milliseconds
    storage: { driver, options: driver === 's3' && options.readtimeout !== undefined ? { ...options, readtimeout: parseDuration(options.readtimeout as string | number) } : options },
    delete: { enabled: Boolean((storage.delete as Tree | undefined)?.enabled) },
    uploadPurging: {
      // a read-only registry writes nothing, not even to purge abandoned uploads
      enabled: !readOnly && (purging.enabled === undefined ? true : Boolean(purging.enabled)),
      ageMs: parseDuration((purging.age as string) ?? '168h'),
      intervalMs: parseDuration((purging.interval as string) ?? '24h'),
      dryrun: Boolean(purging.dryrun),
    },
    auth,
    crossmount: { automatic: (tree.crossmount as Tree | undefined)?.automatic === undefined ? true : Boolean((tree.crossmount as Tree).automatic) },
  };
}

function authConfig(auth: Tree, fsRoot: string | undefined, problems: string[]): AuthConfig {
  const modes = Object.keys(auth).filter((k) => AUTH_MODES.includes(k));
  const access = ((auth.access ?? {}) as Tree).path as string | undefined;
  if (modes.length > 1) problems.push(`auth: configure one mode, found ${modes.join(', ')}`);
  const mode = (modes[0] ?? 'none') as AuthConfig['mode'];
  const maxLoginFailures = (auth.maxloginfailures as number | undefined) ?? 20;
  if (mode === 'none') return { mode, realm: 'berth', access, maxLoginFailures };
  if (mode === 'htpasswd') {
    const h = auth.htpasswd as Tree;
    if (!h.path) problems.push('auth.htpasswd.path: required (a bcrypt htpasswd file, e.g. from `berth auth htpasswd`)');
    return { mode, realm: String(h.realm ?? 'berth'), htpasswd: h.path as string | undefined, access, maxLoginFailures };
  }
  const t = auth.token as Tree;
  const builtin = t.builtin === undefined ? true : Boolean(t.builtin);
  const algorithm = String(t.algorithm ?? 'ES256');
  if (algorithm !== 'ES256' && algorithm !== 'RS256') problems.push(`auth.token.algorithm: "${algorithm}" is not ES256 or RS256`);
  if (builtin && !t.htpasswd) problems.push('auth.token.htpasswd: required for the built-in token issuer (the users who may sign in)');
  if (!builtin && !t.realm) problems.push('auth.token.realm: required when the built-in issuer is off (where clients get tokens)');
  if (!builtin && !t.rootcertbundle && !t.jwks) problems.push('auth.token: with an external issuer, give rootcertbundle or jwks (the keys to trust)');
  const signingAlgorithms = t.signingalgorithms as string[] | undefined;
  for (const a of signingAlgorithms ?? []) {
    if (!ALLOWED_ALGORITHMS.includes(a)) problems.push(`auth.token.signingalgorithms: "${a}" is not one of ${ALLOWED_ALGORITHMS.join(', ')} (asymmetric only)`);
  }
  if (signingAlgorithms && builtin && !signingAlgorithms.includes(algorithm)) problems.push(`auth.token.signingalgorithms: leaves out ${algorithm}, the built-in issuer's algorithm`);
  const statedirectory = String(t.statedirectory ?? (fsRoot ? join(fsRoot, '_auth') : ''));
  if (!statedirectory) problems.push('auth.token.statedirectory: required when storage is not the filesystem');
  return {
    mode, realm: 'berth', access, maxLoginFailures,
    token: {
      realm: t.realm as string | undefined,
      service: String(t.service ?? 'berth'),
      issuer: String(t.issuer ?? 'berth'),
      rootcertbundle: t.rootcertbundle as string | undefined,
      jwks: t.jwks as string | undefined,
      builtin,
      htpasswd: t.htpasswd as string | undefined,
      signingkey: String(t.signingkey ?? join(statedirectory, 'token-signing-key.pem')),
      signingcert: t.signingcert as string | undefined,
      algorithm: algorithm as 'ES256' | 'RS256',
      ...(signingAlgorithms ? { signingAlgorithms } : {}),
      ...(t.autoredirect ? { autoRedirectPath: String(t.autoredirectpath ?? '/auth/token/') } : {}),
      expirationSec: parseDuration((t.expiration as string) ?? '5m') / 1000,
      refreshExpirationSec: parseDuration((t.refreshexpiration as string) ?? '720h') / 1000,
      statedirectory,
    },
  };
}
