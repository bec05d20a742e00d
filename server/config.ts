// One typed Config in the spirit of distribution's config.yml. Sources, weakest first:
// built-in defaults < YAML file < REGISTRY_<SECTION>_<KEY> env vars < command-line flags.
// Every key is checked against SCHEMA, so a typo is a startup error, not a silent default.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';

type Leaf = 'string' | 'int' | 'bool' | 'duration' | 'strings';
type Schema = { [key: string]: Leaf | Schema };

const DRIVER_SCHEMAS: Record<string, Schema> = {
  filesystem: { rootdirectory: 'string' },
  s3: {
    bucket: 'string', region: 'string', regionendpoint: 'string', forcepathstyle: 'bool', rootdirectory: 'string',
    accesskey: 'string', secretkey: 'string', sessiontoken: 'string', chunksize: 'int', redirect: 'bool', secure: 'bool',
    maxattempts: 'int', readtimeout: 'duration',
  },
};

const SCHEMA: Schema = {
  version: 'string',
  log: { level: 'string' },
  http: {
    addr: 'string', host: 'string', draintimeout: 'duration', idletimeout: 'duration', trustedproxies: 'strings',
    tls: { certificate: 'string', key: 'string', selfsigned: 'bool', names: 'strings', directory: 'string' },
  },
  storage: {
    ...DRIVER_SCHEMAS,
    delete: { enabled: 'bool' },
    redirect: { disable: 'bool' },
    maintenance: { uploadpurging: { enabled: 'bool', age: 'duration', interval: 'duration', dryrun: 'bool' } },
  },
  crossmount: { automatic: 'bool' },
  auth: {
    maxloginfailures: 'int',
    htpasswd: { realm: 'string', path: 'string' },
    token: {
      realm: 'string', service: 'string', issuer: 'string', rootcertbundle: 'string', jwks: 'string',
      builtin: 'bool', htpasswd: 'string', signingkey: 'string', signingcert: 'string', algorithm: 'string',
      expiration: 'duration', refreshexpiration: 'duration', statedirectory: 'string',
    },
    access: { path: 'string' },
  },
};

const AUTH_MODES = ['htpasswd', 'token'];

const STORAGE_NON_DRIVER = new Set(['delete', 'redirect', 'maintenance']);
const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export interface Config {
  log: { level: string };
  http: { host: string | undefined; port: number; addr: string; draintimeoutMs: number; idletimeoutMs: number; publicHost?: string;
    /** Proxies whose X-Forwarded-For/-Proto are believed (express's "trust proxy"): addresses or CIDR ranges. */
    trustedProxies: string[];
    tls?: { certificate: string; key: string }; selfSigned?: { directory: string; names: string[] } };
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

type Tree = Record<string, unknown>;
const isTree = (v: unknown): v is Tree => typeof v === 'object' && v !== null && !Array.isArray(v);

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
  }
  problems.push(`${where}: expected ${leaf === 'int' ? 'a non-negative integer' : leaf === 'bool' ? 'true or false' : `a ${leaf}`}, got ${JSON.stringify(value)}`);
  return undefined;
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
  return typeof s === 'string' ? s : undefined;
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

  const purging = ((storage.maintenance as Tree | undefined)?.uploadpurging ?? {}) as Tree;
  const auth = authConfig((tree.auth ?? {}) as Tree, driver === 'filesystem' ? String(options.rootdirectory ?? './data') : undefined, problems);
  if (tls.selfsigned && tls.certificate) problems.push('http.tls: give either certificate/key or selfsigned, not both');
  const tlsDir = String(tls.directory ?? join(driver === 'filesystem' ? String(options.rootdirectory ?? './data') : '.', '_tls'));
  if (problems.length) throw new ConfigError(problems);
  return {
    log: { level },
    http: {
      host, port, addr, draintimeoutMs: parseDuration((http.draintimeout as string) ?? '30s'),
      idletimeoutMs: parseDuration((http.idletimeout as string) ?? '120s'),
      publicHost: http.host as string | undefined,
      trustedProxies: (http.trustedproxies as string[] | undefined) ?? [],
      tls: tls.certificate ? { certificate: String(tls.certificate), key: String(tls.key) } : undefined,
      selfSigned: tls.selfsigned ? { directory: tlsDir, names: (tls.names as string[] | undefined) ?? [] } : undefined,
    },
    // the adapter takes the read timeout in milliseconds
    storage: { driver, options: driver === 's3' && options.readtimeout !== undefined ? { ...options, readtimeout: parseDuration(options.readtimeout as string | number) } : options },
    delete: { enabled: Boolean((storage.delete as Tree | undefined)?.enabled) },
    uploadPurging: {
      enabled: purging.enabled === undefined ? true : Boolean(purging.enabled),
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
      expirationSec: parseDuration((t.expiration as string) ?? '5m') / 1000,
      refreshExpirationSec: parseDuration((t.refreshexpiration as string) ?? '720h') / 1000,
      statedirectory,
    },
  };
}
