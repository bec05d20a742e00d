// Registry credentials, stored the way docker and podman store them:
//   docker: $DOCKER_CONFIG/config.json or ~/.docker/config.json, `auths` (base64 "user:pass"),
//           `credsStore` (one docker-credential-<name> program for everything), `credHelpers` (per registry)
//   podman: $REGISTRY_AUTH_FILE, ${XDG_RUNTIME_DIR}/containers/auth.json, ~/.config/containers/auth.json
// Lookups try every file in that order (an explicit --authfile first); login writes docker's file
// (or --authfile) atomically with mode 0600, keeping every other key as it was.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { DEFAULT_REGISTRY, DOCKER_HUB_AUTH_KEY, normalizeRegistryHost } from '../oci/image-reference.js';
import { ClientError } from './errors.js';

export type Credentials =
  | { username: string; password: string }
  /** An OAuth2 refresh token (docker's "identitytoken", or a helper's "<token>" user). */
  | { identityToken: string; username?: string }
  /** A bearer token to send as-is ("registrytoken"). */
  | { registryToken: string };

export interface AuthConfigOptions {
  /** An explicit auth file (--authfile): looked up first and written instead of docker's file. */
  authFile?: string;
  env?: NodeJS.ProcessEnv;
}

interface AuthEntry { auth?: string; username?: string; password?: string; identitytoken?: string; registrytoken?: string; email?: string }
interface ConfigFile { auths?: Record<string, AuthEntry>; credsStore?: string; credHelpers?: Record<string, string>; [k: string]: unknown }

export class AuthConfigError extends ClientError {}

function env(opts: AuthConfigOptions): NodeJS.ProcessEnv { return opts.env ?? process.env; }

function home(e: NodeJS.ProcessEnv): string { return e.HOME || homedir(); }

/** docker's config.json path ($DOCKER_CONFIG/config.json or ~/.docker/config.json). */
export function dockerConfigPath(opts: AuthConfigOptions = {}): string {
  const e = env(opts);
  return join(e.DOCKER_CONFIG || join(home(e), '.docker'), 'config.json');
}

/** Every file credentials are looked up in, in order. */
export function authFilePaths(opts: AuthConfigOptions = {}): string[] {
  const e = env(opts);
  const out: string[] = [];
  if (opts.authFile) out.push(opts.authFile);
  if (e.REGISTRY_AUTH_FILE) out.push(e.REGISTRY_AUTH_FILE);
  if (e.XDG_RUNTIME_DIR) out.push(join(e.XDG_RUNTIME_DIR, 'containers', 'auth.json'));
  out.push(join(e.XDG_CONFIG_HOME || join(home(e), '.config'), 'containers', 'auth.json'));
  out.push(dockerConfigPath(opts));
  return [...new Set(out)];
}

/** The file login writes to. */
export function writableAuthFile(opts: AuthConfigOptions = {}): string {
  return opts.authFile ?? dockerConfigPath(opts);
}

async function readConfig(path: string): Promise<ConfigFile | undefined> {
  let text: string;
  try { text = await readFile(path, 'utf8'); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw new AuthConfigError(`cannot read ${path}: ${(e as Error).message}`);
  }
  if (text.trim() === '') return {};
  let doc: unknown;
  try {
    doc = JSON.parse(text) as unknown;
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new Error('not a JSON object');
  } catch (e) {
    throw new AuthConfigError(`${path} is not valid JSON: ${(e as Error).message}`);
  }
  // (written back on login, a wrong shape would be made worse)
  for (const key of ['auths', 'credHelpers'] as const) {
    const v = (doc as ConfigFile)[key];
    if (v !== undefined && (typeof v !== 'object' || v === null || Array.isArray(v))) throw new AuthConfigError(`${path}: "${key}" is not an object`);
  }
  return doc as ConfigFile;
}

/** Writes a file atomically: temp file in the same directory → fsync → rename → fsync dir. */
async function writeConfig(path: string, doc: ConfigFile): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(`${JSON.stringify(doc, null, '\t')}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw new AuthConfigError(`cannot write ${path}: ${(e as Error).message}`);
  }
  const dir = await open(dirname(path), 'r');
  try { await dir.sync(); } finally { await dir.close(); }
}

/** The registry a config.json `auths` key names ("https://index.docker.io/v1/" → docker.io). */
export function keyToRegistry(key: string): string | undefined {
  try { return normalizeRegistryHost(key); } catch { return undefined; }
}

/** The key login writes for a registry (docker's, so docker reads it back). */
export function registryToKey(registry: string): string {
  return registry === DEFAULT_REGISTRY ? DOCKER_HUB_AUTH_KEY : registry;
}

function findEntry(doc: ConfigFile, registry: string): [string, AuthEntry] | undefined {
  for (const [key, entry] of Object.entries(doc.auths ?? {})) {
    if (keyToRegistry(key) === registry && entry && typeof entry === 'object') return [key, entry];
  }
  return undefined;
}

function decodeEntry(entry: AuthEntry, where: string): Credentials | undefined {
  if (entry.identitytoken) return { identityToken: entry.identitytoken, ...(entry.username ? { username: entry.username } : {}) };
  if (entry.registrytoken) return { registryToken: entry.registrytoken };
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) throw new AuthConfigError(`${where}: "auth" is not base64 of "username:password"`);
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  if (entry.username && entry.password) return { username: entry.username, password: entry.password };
  return undefined;
}

function helperFor(doc: ConfigFile, registry: string): string | undefined {
  for (const [key, helper] of Object.entries(doc.credHelpers ?? {})) {
    if (keyToRegistry(key) === registry && helper) return helper;
  }
  return doc.credsStore || undefined;
}

/** Credentials for a registry, or undefined when none are configured anywhere. */
export async function getCredentials(registry: string, opts: AuthConfigOptions = {}): Promise<Credentials | undefined> {
  for (const path of authFilePaths(opts)) {
    const doc = await readConfig(path);
    if (!doc) continue;
    const perRegistry = Object.entries(doc.credHelpers ?? {}).find(([k]) => keyToRegistry(k) === registry)?.[1];
    if (perRegistry) {
      const c = await helperGet(perRegistry, registry, opts);
      if (c) return c;
      continue;
    }
    const found = findEntry(doc, registry);
    if (found) {
      const c = decodeEntry(found[1], `${path} auths["${found[0]}"]`);
      if (c) return c;
    }
    if (doc.credsStore) {
      const c = await helperGet(doc.credsStore, registry, opts);
      if (c) return c;
    }
  }
  return undefined;
}

/** What login stores: a password, or (as docker does when the token server gives one) a refresh token instead. */
export type StoredCredentials = { username: string; password: string } | { username: string; identityToken: string };

/** Stores credentials (login). Returns where they went: a file path or "docker-credential-<helper>". */
export async function storeCredentials(registry: string, creds: StoredCredentials, opts: AuthConfigOptions = {}): Promise<string> {
  const path = writableAuthFile(opts);
  const doc = (await readConfig(path)) ?? {};
  const key = registryToKey(registry);
  const helper = helperFor(doc, registry);
  const auths = { ...(doc.auths ?? {}) };
  for (const k of Object.keys(auths)) if (keyToRegistry(k) === registry && k !== key) delete auths[k];
  if (helper) {
    await helperStore(helper, registry, creds, opts);
    // docker keeps an empty entry so `docker info`/logout know about the registry
    if (doc.credsStore === helper) auths[key] = {};
    doc.auths = auths;
    await writeConfig(path, doc);
    return `docker-credential-${helper}`;
  }
  // docker's shape: a refresh token goes in "identitytoken", next to "auth" = base64("user:")
  const password = 'password' in creds ? creds.password : '';
  auths[key] = { ...(auths[key] ?? {}), auth: Buffer.from(`${creds.username}:${password}`, 'utf8').toString('base64') };
  if ('identityToken' in creds) auths[key]!.identitytoken = creds.identityToken;
  else delete auths[key]!.identitytoken;
  delete auths[key]!.password;
  delete auths[key]!.username;
  doc.auths = auths;
  await writeConfig(path, doc);
  return path;
}

/** Removes stored credentials (logout) from every file and helper that has them. True if any were found. */
export async function removeCredentials(registry: string, opts: AuthConfigOptions = {}): Promise<boolean> {
  let found = false;
  for (const path of authFilePaths(opts)) {
    const doc = await readConfig(path);
    if (!doc) continue;
    let changed = false;
    const helper = helperFor(doc, registry);
    if (helper) {
      if (await helperErase(helper, registry, opts)) found = true;
    }
    for (const k of Object.keys(doc.auths ?? {})) {
      if (keyToRegistry(k) === registry) { delete doc.auths![k]; changed = true; found = true; }
    }
    if (changed) await writeConfig(path, doc);
  }
  return found;
}

// ---------------------------------------------------------------------------------------------
// docker-credential-* helpers: `get`/`erase` read the server URL on stdin, `store` reads JSON.

function helperServer(registry: string): string {
  return registryToKey(registry);
}

function runHelper(helper: string, action: string, input: string, opts: AuthConfigOptions): Promise<{ code: number | null; stdout: string; stderr: string }> {
  if (!/^[A-Za-z0-9._-]+$/.test(helper)) return Promise.reject(new AuthConfigError(`invalid credential helper name "${helper.slice(0, 100)}"`));
  const program = `docker-credential-${helper}`;
  return new Promise((resolve, reject) => {
    const child = spawn(program, [action], { env: env(opts), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('error', (e) => {
      reject(new AuthConfigError((e as NodeJS.ErrnoException).code === 'ENOENT'
        ? `credential helper ${program} is configured but not installed`
        : `credential helper ${program}: ${e.message}`));
    });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.on('error', () => { /* the helper may exit before reading */ });
    child.stdin.end(input);
  });
}

const NOT_FOUND = /credentials not found|not found in native keychain|no credentials/i;

async function helperGet(helper: string, registry: string, opts: AuthConfigOptions): Promise<Credentials | undefined> {
  const r = await runHelper(helper, 'get', helperServer(registry), opts);
  if (r.code !== 0) {
    if (NOT_FOUND.test(r.stdout + r.stderr)) return undefined;
    throw new AuthConfigError(`credential helper docker-credential-${helper} get failed: ${(r.stderr || r.stdout).trim().split('\n')[0]}`);
  }
  let doc: { Username?: string; Secret?: string };
  try { doc = JSON.parse(r.stdout) as typeof doc; } catch { throw new AuthConfigError(`credential helper docker-credential-${helper} printed invalid JSON`); }
  if (!doc.Secret) return undefined;
  if (doc.Username === '<token>') return { identityToken: doc.Secret };
  return { username: doc.Username ?? '', password: doc.Secret };
}

async function helperStore(helper: string, registry: string, creds: StoredCredentials, opts: AuthConfigOptions): Promise<void> {
  // a refresh token is stored under the user "<token>", as docker does (and helperGet reads back)
  const doc = 'identityToken' in creds
    ? { ServerURL: helperServer(registry), Username: '<token>', Secret: creds.identityToken }
    : { ServerURL: helperServer(registry), Username: creds.username, Secret: creds.password };
  const r = await runHelper(helper, 'store', JSON.stringify(doc), opts);
  if (r.code !== 0) throw new AuthConfigError(`credential helper docker-credential-${helper} store failed: ${(r.stderr || r.stdout).trim().split('\n')[0]}`);
}

async function helperErase(helper: string, registry: string, opts: AuthConfigOptions): Promise<boolean> {
  const r = await runHelper(helper, 'erase', helperServer(registry), opts);
  if (r.code === 0) return true;
  if (NOT_FOUND.test(r.stdout + r.stderr)) return false;
  throw new AuthConfigError(`credential helper docker-credential-${helper} erase failed: ${(r.stderr || r.stdout).trim().split('\n')[0]}`);
}
