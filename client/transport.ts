// HTTP to one registry: ping /v2/ (choosing https, or http for insecure registries), answer Basic
// and Bearer challenges (tokens cached per scope set, fetched again when they expire or a 401 says
// so), retry 5xx / 429 (Retry-After) / broken connections with exponential backoff, follow redirects
// without sending Authorization to another host. Bodies are never buffered except small replies
// (manifests, JSON), which are capped.
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { rootCertificates } from 'node:tls';
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { pipeline } from 'node:stream/promises';
import { apiHost } from '../oci/image-reference.js';
import type { Credentials } from './auth-config.js';
import { parseChallenges, type Challenge } from './challenge.js';
import { ClientError, DeniedError, ExitCode, IntegrityError, NetworkError, NotFoundError, UnauthorizedError, UnsupportedError } from './errors.js';
import { isInsecureRegistry, tlsSettings, type TlsSettings } from './tls.js';

export const USER_AGENT = 'berth/0.1.0';
/** Largest JSON/manifest reply read into memory. */
export const MAX_SMALL_BODY = 4 * 1024 * 1024 + 64 * 1024;

export type Method = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';

export interface TransportOptions {
  /** Allow plain HTTP and unverified TLS for this registry (loopback registries always are). */
  insecure?: boolean;
  /** Extra insecure registries (hosts or IPv4 CIDRs). */
  insecureRegistries?: string[];
  /** PEM files with extra CAs to trust. */
  caCerts?: string[];
  /** Where credentials come from; called at most once, lazily. */
  credentials?: () => Promise<Credentials | undefined>;
  /** Attempts after the first for retryable failures. Default 4. */
  retries?: number;
  /** First backoff delay; doubles each time, with jitter. Default 250 ms. */
  retryBaseMs?: number;
  /** Longest Retry-After waited for; a reply asking for longer fails at once with the registry's message. Default 15 s. */
  maxRetryAfterMs?: number;
  /** Socket idle timeout. Default 120 s. */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** Called before each retry (for progress / logs). */
  onRetry?: (info: { attempt: number; delayMs: number; reason: string }) => void;
  /**
   * Ask token servers for a refresh token along with a password login (`offline_token=true`, as
   * docker login does); one that comes back is kept in `identityToken`.
   */
  offlineToken?: boolean;
}

export interface RequestSpec {
  method: Method;
  /** A path on the registry ("/v2/…", with query) or an absolute URL (upload locations). */
  path: string;
  /** Token scopes this request needs: "repository:a/b:pull", "registry:catalog:*". */
  scopes: string[];
  headers?: Record<string, string>;
  /** Called once per attempt, so a retry sends the body again from the start. */
  body?: () => Readable | Buffer;
  /** Do not retry (the body cannot be produced twice). */
  noRetry?: boolean;
}

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  /** The final URL (after redirects): Location headers resolve against it. */
  url: URL;
}
export interface BufferedReply extends Reply { body: Buffer }
export interface StreamReply extends Reply { stream: Readable }

interface CachedToken { value: string; expiresAt: number }

const RETRYABLE_STATUS = new Set([429, 500, 502, 503, 504]);
const RETRYABLE_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'ESOCKETTIMEDOUT', 'ECONNABORTED', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'ERR_STREAM_PREMATURE_CLOSE', 'ERR_GOT_REQUEST_ERROR', 'ERR_REQUEST_BODY']);
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 10;
const CONNECT_TIMEOUT_MS = 30_000;
/** GET /v2/ is trivial: silence this long means the registry is not answering (docker's ping gives up after 15 s too). */
const PING_TIMEOUT_MS = 15_000;

function codeError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}
const TLS_CODES = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|EPROTO|SSL/;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function errCode(e: unknown): string {
  const err = e as { code?: string; cause?: { code?: string } };
  return err?.code ?? err?.cause?.code ?? '';
}

/** Retry-After in ms (seconds or an HTTP date), or undefined. */
export function retryAfterMs(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  if (/^\s*\d+(\.\d+)?\s*$/.test(v)) return Math.round(Number(v) * 1000);
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}

/** Reads a stream into memory, refusing more than `max` bytes. For small JSON replies only. */
export async function readSmall(stream: Readable, max = MAX_SMALL_BODY): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const chunk of stream) {
    n += (chunk as Buffer).length;
    if (n > max) { stream.destroy(); throw new ClientError(`reply larger than ${max} bytes`, ExitCode.Failure); }
    parts.push(chunk as Buffer);
  }
  return Buffer.concat(parts, n);
}

function drain(stream: Readable): void {
  stream.on('error', () => { /* ignored: we do not want this body */ });
  stream.resume();
}

/** One line from an OCI error body: "CODE: message (detail)". */
export function describeErrorBody(body: Buffer): { code?: string; text: string } {
  try {
    const doc = JSON.parse(body.toString('utf8')) as { errors?: { code?: string; message?: string; detail?: unknown }[] };
    const e = doc.errors?.[0];
    if (e) {
      const detail = e.detail === undefined || e.detail === null || e.detail === '' ? '' : ` (${typeof e.detail === 'string' ? e.detail : JSON.stringify(e.detail)})`;
      return { code: e.code, text: `${e.code ?? 'ERROR'}: ${e.message ?? ''}${detail}`.slice(0, 500) };
    }
  } catch { /* not JSON */ }
  const text = body.toString('utf8').replace(/\s+/g, ' ').trim().slice(0, 200);
  return { text };
}

/** The ClientError for an unexpected reply. `what` says what was being done: "pull manifest a/b:v1". */
export function replyError(what: string, status: number, body: Buffer = Buffer.alloc(0)): ClientError {
  const { code, text } = describeErrorBody(body);
  const msg = `${what}: ${status}${text ? ` ${text}` : ''}`;
  if (status === 401) return new UnauthorizedError(`${msg} (run "berth login" for this registry)`, code);
  if (status === 403 || code === 'DENIED') return new DeniedError(msg, code);
  if (status === 404 || code?.endsWith('_UNKNOWN')) return new NotFoundError(msg, code);
  if (status === 405 || code === 'UNSUPPORTED') return new UnsupportedError(msg, code);
  if (code === 'DIGEST_INVALID' || code === 'SIZE_INVALID') return new IntegrityError(msg);
  return new ClientError(msg, ExitCode.Failure, code);
}

export class Transport {
  /** "https" or "http", once ping() decided. */
  private scheme?: 'https' | 'http';
  private pinging?: Promise<void>;
  private challenge?: Challenge;
  private creds?: Promise<Credentials | undefined>;
  private readonly tokens = new Map<string, CachedToken>();
  private readonly tokenFetches = new Map<string, Promise<CachedToken>>();
  /** The refresh token a token server gave for the password (with `offlineToken`). */
  identityToken?: string;
  readonly insecure: boolean;
  readonly host: string;
  private readonly tls: TlsSettings;

  constructor(readonly registry: string, private readonly opts: TransportOptions = {}) {
    this.host = apiHost(registry);
    this.insecure = isInsecureRegistry(registry, { insecure: opts.insecure, extra: opts.insecureRegistries, env: opts.env });
    this.tls = tlsSettings(this.host, { caCerts: opts.caCerts, env: opts.env });
  }

  private get retries(): number { return this.opts.retries ?? 4; }

  private backoff(attempt: number): number {
    const base = (this.opts.retryBaseMs ?? 250) * 2 ** attempt;
    return Math.round(Math.min(base, 10_000) * (0.5 + Math.random() / 2));
  }

  /**
   * The wait before retrying a reply: its Retry-After, else backoff. undefined when the registry asks for longer
   * than maxRetryAfterMs: that is a rate limit to report now (as docker does), not to sit through in silence.
   */
  private retryDelay(attempt: number, headers: IncomingHttpHeaders): number | undefined {
    const asked = retryAfterMs(headers['retry-after']);
    if (asked === undefined) return this.backoff(attempt);
    return asked <= (this.opts.maxRetryAfterMs ?? 15_000) ? asked : undefined;
  }

  /** Node's https options for this registry (verification, extra CAs, client certificate). */
  private tlsOptions(): Record<string, unknown> {
    return {
      rejectUnauthorized: !this.insecure,
      ...(this.tls.ca ? { ca: [...rootCertificates, ...this.tls.ca] } : {}),
      ...(this.tls.cert ? { cert: this.tls.cert, key: this.tls.key } : {}),
    };
  }

  /**
   * One HTTP exchange over node:http(s) (keep-alive through the global agents); resolves once the
   * response headers are in, following up to 10 redirects. A redirect to another origin never
   * carries Authorization; 303 turns into a GET without body. Timeouts: 30 s to connect, then
   * `timeoutMs` (120 s) of socket inactivity. The reply's stream is the raw response.
   */
  private exchange(url: URL, method: Method, headers: Record<string, string>, body?: Readable | Buffer, redirects = 0, idleMs = this.opts.timeoutMs ?? 120_000): Promise<StreamReply> {
    const trace = process.env.BERTH_TRACE_HTTP ? (line: string) => process.stderr.write(`${line}\n`) : undefined;
    return new Promise<StreamReply>((resolve, reject) => {
      const h: Record<string, string> = { 'user-agent': USER_AGENT, ...headers };
      if (Buffer.isBuffer(body) && h['content-length'] === undefined) h['content-length'] = String(body.length);
      let req: ClientRequest;
      let settled = false;
      const fail = (e: Error) => {
        if (settled) return;
        settled = true;
        trace?.(`! ${method} ${url.href} ${errCode(e)} ${e.message}`);
        if (body && !Buffer.isBuffer(body)) body.destroy();
        reject(e);
      };
      try {
        const options = { method, headers: h, ...(url.protocol === 'https:' ? this.tlsOptions() : {}) };
        req = url.protocol === 'https:' ? httpsRequest(url, options) : httpRequest(url, options);
      } catch (e) { reject(e); return; }
      trace?.(`> ${method} ${url.href}${headers.range ? ` range=${headers.range}` : ''}`);
      req.setTimeout(idleMs, () => req.destroy(codeError(`Timeout awaiting 'socket' for ${idleMs}ms`, 'ETIMEDOUT')));
      req.once('socket', (socket) => {
        if (!socket.connecting) return;
        const timer = setTimeout(() => req.destroy(codeError(`Timeout awaiting 'connect' for ${CONNECT_TIMEOUT_MS}ms`, 'ETIMEDOUT')), CONNECT_TIMEOUT_MS);
        const clear = () => clearTimeout(timer);
        socket.once('connect', clear);
        socket.once('close', clear);
      });
      req.on('error', fail);
      req.once('response', (res: IncomingMessage) => {
        const status = res.statusCode ?? 0;
        trace?.(`< ${status} ${method} ${url.href}`);
        // later errors of the exchange (a reset mid-body) reach whoever reads the body
        req.off('error', fail);
        req.on('error', (e) => res.destroy(e));
        if (settled) { res.destroy(); return; }
        const location = res.headers.location;
        if (REDIRECTS.has(status) && location) {
          const rewrite = status === 303 && method !== 'GET' && method !== 'HEAD';
          if (!rewrite && body !== undefined && !Buffer.isBuffer(body)) {
            // a streamed body cannot be sent twice: the caller gets the redirect as the reply
            settled = true;
            resolve({ status, headers: res.headers, url, stream: res });
            return;
          }
          drain(res);
          settled = true;
          let to: URL;
          try { to = new URL(location, url); } catch { reject(codeError(`invalid redirect location ${location.slice(0, 200)}`, 'ERR_INVALID_URL')); return; }
          if (redirects >= MAX_REDIRECTS) { reject(codeError(`Redirected ${MAX_REDIRECTS} times. Aborting.`, 'ERR_TOO_MANY_REDIRECTS')); return; }
          const next = { ...headers };
          let nextMethod = method;
          let nextBody = body;
          if (rewrite) {
            nextMethod = 'GET';
            nextBody = undefined;
            delete next['content-length'];
          }
          // Never send our Authorization to another origin.
          if (to.origin !== url.origin) delete next.authorization;
          this.exchange(to, nextMethod, next, nextBody, redirects + 1, idleMs).then(resolve, reject);
          return;
        }
        settled = true;
        resolve({ status, headers: res.headers, url, stream: res });
      });
      if (body === undefined) req.end();
      else if (Buffer.isBuffer(body)) req.end(body);
      else {
        pipeline(body, req).catch((e: Error) => {
          // the body could not be produced or sent: fail the exchange (retryable, unless the body
          // source itself gave a ClientError), and never leave the request half-sent
          req.destroy();
          fail(e instanceof ClientError ? e : codeError(`request body: ${e.message}`, errCode(e) || 'ERR_REQUEST_BODY'));
        });
      }
    });
  }

  private baseUrl(): string {
    return `${this.scheme}://${this.host}`;
  }

  private resolveUrl(path: string): URL {
    return /^https?:\/\//i.test(path) ? new URL(path) : new URL(path, this.baseUrl());
  }

  /** GET /v2/: decides http vs https and learns the auth challenge. Idempotent. */
  ping(): Promise<void> {
    this.pinging ??= this.doPing().catch((e) => { this.pinging = undefined; throw e; });
    return this.pinging;
  }

  private async doPing(): Promise<void> {
    const schemes: ('https' | 'http')[] = this.insecure ? ['https', 'http'] : ['https'];
    for (let attempt = 0; ; attempt++) {
      let lastError: unknown;
      let retryDelay: number | undefined;
      for (const scheme of schemes) {
        let r: StreamReply;
        try {
          r = await this.exchange(new URL(`${scheme}://${this.host}/v2/`), 'GET', {}, undefined, 0, Math.min(PING_TIMEOUT_MS, this.opts.timeoutMs ?? PING_TIMEOUT_MS));
        } catch (e) {
          lastError = e;
          continue;
        }
        drain(r.stream);
        if (RETRYABLE_STATUS.has(r.status)) {
          lastError = new ClientError(`${this.registry}: GET /v2/ answered ${r.status}`);
          retryDelay = this.retryDelay(attempt, r.headers);
          break;
        }
        if (r.status === 404) throw new ClientError(`${this.registry} does not look like an OCI registry (GET /v2/ answered 404)`);
        this.scheme = scheme;
        this.challenge = pickChallenge(parseChallenges(r.headers['www-authenticate']));
        return;
      }
      // (a registry that lets GET /v2/ go unanswered is not tried again: that would take minutes)
      const silent = errCode(lastError) === 'ETIMEDOUT';
      if (attempt < this.retries && (retryDelay !== undefined || (RETRYABLE_CODES.has(errCode(lastError)) && !silent))) {
        const delay = retryDelay ?? this.backoff(attempt);
        this.opts.onRetry?.({ attempt: attempt + 1, delayMs: delay, reason: lastError instanceof ClientError ? lastError.message : errCode(lastError) });
        await sleep(delay);
        continue;
      }
      throw this.networkError(lastError);
    }
  }

  private networkError(e: unknown): ClientError {
    if (e instanceof ClientError) return e;
    const code = errCode(e);
    const msg = (e as Error)?.message ?? String(e);
    if (/wrong version number|packet length too long|http request/i.test(msg)) {
      // OpenSSL's words for a TLS handshake answered in plain HTTP
      return new NetworkError(`${this.registry}: the registry speaks plain HTTP, not HTTPS: mark it insecure (--insecure, "insecure-registries" in daemon.json, or insecure = true in registries.conf) if that is intended`);
    }
    if (TLS_CODES.test(code) || /certificate|SSL|TLS/i.test(msg)) {
      return new NetworkError(`${this.registry}: TLS error: ${msg.split('\n')[0]} (trust its CA with --ca-cert or certs.d, or mark it --insecure)`);
    }
    return new NetworkError(`cannot reach ${this.registry}: ${code ? `${code} ` : ''}${msg.split('\n')[0]}`.slice(0, 400));
  }

  private credentials(): Promise<Credentials | undefined> {
    this.creds ??= this.opts.credentials ? this.opts.credentials() : Promise.resolve(undefined);
    return this.creds;
  }

  /** The Authorization header for these scopes, or undefined when anonymous is all we can do. */
  private async authorization(scopes: string[]): Promise<string | undefined> {
    const c = this.challenge;
    if (!c) return undefined;
    const creds = await this.credentials();
    if (c.scheme === 'basic') {
      if (creds && 'username' in creds && 'password' in creds && creds.password !== undefined) {
        return `Basic ${Buffer.from(`${creds.username}:${creds.password}`, 'utf8').toString('base64')}`;
      }
      return undefined;
    }
    if (c.scheme !== 'bearer') return undefined;
    if (creds && 'registryToken' in creds) return `Bearer ${creds.registryToken}`;
    const key = [...new Set(scopes)].sort().join(' ');
    const cached = this.tokens.get(key);
    if (cached && cached.expiresAt > Date.now()) return `Bearer ${cached.value}`;
    let pending = this.tokenFetches.get(key);
    if (!pending) {
      pending = this.fetchToken(c, [...new Set(scopes)].sort(), creds).finally(() => this.tokenFetches.delete(key));
      this.tokenFetches.set(key, pending);
    }
    const token = await pending;
    this.tokens.set(key, token);
    return `Bearer ${token.value}`;
  }

  private async fetchToken(c: Challenge, scopes: string[], creds: Credentials | undefined): Promise<CachedToken> {
    const realm = c.params.realm;
    if (!realm) throw new ClientError(`${this.registry}: Bearer challenge without a realm`);
    let url: URL;
    try { url = new URL(realm); } catch { throw new ClientError(`${this.registry}: invalid token realm "${realm.slice(0, 200)}"`); }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ClientError(`${this.registry}: token realm must be http(s)`);
    if (url.protocol === 'http:' && !this.insecure && !isInsecureRegistry(url.host, { env: this.opts.env })) {
      throw new ClientError(`${this.registry}: refusing to send credentials to a plain-HTTP token realm ${url.origin}`);
    }
    const headers: Record<string, string> = {};
    let method: Method = 'GET';
    let body: Buffer | undefined;
    if (creds && 'identityToken' in creds) {
      method = 'POST';
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.identityToken, client_id: 'berth' });
      if (c.params.service) form.set('service', c.params.service);
      if (scopes.length) form.set('scope', scopes.join(' '));
      body = Buffer.from(form.toString());
      headers['content-type'] = 'application/x-www-form-urlencoded';
    } else {
      if (c.params.service) url.searchParams.set('service', c.params.service);
      for (const s of scopes) url.searchParams.append('scope', s);
      if (creds && 'password' in creds) {
        url.searchParams.set('account', creds.username);
        if (this.opts.offlineToken) { url.searchParams.set('offline_token', 'true'); url.searchParams.set('client_id', 'berth'); }
        headers.authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password}`, 'utf8').toString('base64')}`;
      }
    }
    for (let attempt = 0; ; attempt++) {
      let r: StreamReply;
      try {
        r = await this.exchange(url, method, headers, body);
      } catch (e) {
        if (RETRYABLE_CODES.has(errCode(e)) && attempt < this.retries) { await sleep(this.backoff(attempt)); continue; }
        throw this.networkError(e);
      }
      const text = await readSmall(r.stream, 1 << 20).catch((e) => { throw this.networkError(e); });
      const delay = RETRYABLE_STATUS.has(r.status) && attempt < this.retries ? this.retryDelay(attempt, r.headers) : undefined;
      if (delay !== undefined) { await sleep(delay); continue; }
      if (r.status === 401) {
        throw new UnauthorizedError(creds && 'identityToken' in creds
          ? `${this.registry}: the stored login token was refused (revoked or expired): run "berth login ${this.registry}" again`
          : creds
          ? `${this.registry}: authentication failed: incorrect username or password`
          : `${this.registry}: authentication required (run "berth login ${this.registry}")`);
      }
      if (r.status === 403) throw new DeniedError(`${this.registry}: token server denied access to ${scopes.join(' ')}`);
      if (r.status !== 200) throw replyError(`${this.registry}: token request`, r.status, text);
      let doc: { token?: string; access_token?: string; expires_in?: number; issued_at?: string; refresh_token?: string };
      try { doc = JSON.parse(text.toString('utf8')) as typeof doc; } catch { throw new ClientError(`${this.registry}: token server sent invalid JSON`); }
      const value = doc.token || doc.access_token;
      if (!value) throw new ClientError(`${this.registry}: token server sent no token`);
      if (this.opts.offlineToken && typeof doc.refresh_token === 'string' && doc.refresh_token) this.identityToken = doc.refresh_token;
      const lifetime = (typeof doc.expires_in === 'number' && doc.expires_in > 0 ? doc.expires_in : 60) * 1000;
      const issued = doc.issued_at ? Date.parse(doc.issued_at) : NaN;
      const start = Number.isNaN(issued) || issued > Date.now() ? Date.now() : issued;
      // refresh a little early so a token never expires in flight
      const expiresAt = start + lifetime - Math.min(10_000, lifetime / 10);
      return { value, expiresAt };
    }
  }

  /**
   * Sends a request with auth and retries; resolves with the streamed reply (whatever its status:
   * callers decide what is an error). The caller must consume or destroy `stream`.
   */
  async stream(spec: RequestSpec): Promise<StreamReply> {
    await this.ping();
    let scopes = spec.scopes;
    let authRetried = false;
    for (let attempt = 0; ; attempt++) {
      const auth = await this.authorization(scopes);
      const headers = { ...spec.headers, ...(auth ? { authorization: auth } : {}) };
      let r: StreamReply;
      try {
        r = await this.exchange(this.resolveUrl(spec.path), spec.method, headers, spec.body?.());
      } catch (e) {
        const code = errCode(e);
        if (!spec.noRetry && RETRYABLE_CODES.has(code) && attempt < this.retries) {
          const delay = this.backoff(attempt);
          this.opts.onRetry?.({ attempt: attempt + 1, delayMs: delay, reason: code });
          await sleep(delay);
          continue;
        }
        throw this.networkError(e);
      }
      if (r.status === 401 && !authRetried) {
        authRetried = true;
        const challenge = pickChallenge(parseChallenges(r.headers['www-authenticate']));
        if (challenge) {
          const wanted = challenge.params.scope?.split(' ').filter(Boolean) ?? [];
          this.challenge = challenge;
          scopes = [...new Set([...scopes, ...wanted])];
          this.tokens.delete([...new Set(scopes)].sort().join(' '));
          if (auth || (await this.credentials()) || wanted.length) {
            drain(r.stream);
            attempt--; // an auth round trip is not a failure
            continue;
          }
        }
      }
      if (r.status === 401 && auth && (await this.credentials())) {
        // logged in, with a token for what the request needs, and still refused: the rights are missing
        // (logging in again would not help, so this is a denial, as docker reports it)
        const c = pickChallenge(parseChallenges(r.headers['www-authenticate']));
        if (c?.params.error === 'insufficient_scope') {
          drain(r.stream);
          throw new DeniedError(`${this.registry}: access denied: your login is not granted ${c.params.scope ?? scopes.join(' ')} (or the repository does not exist)`, 'DENIED');
        }
      }
      const delay = !spec.noRetry && RETRYABLE_STATUS.has(r.status) && attempt < this.retries ? this.retryDelay(attempt, r.headers) : undefined;
      if (delay !== undefined) {
        drain(r.stream);
        this.opts.onRetry?.({ attempt: attempt + 1, delayMs: delay, reason: `${r.status}` });
        await sleep(delay);
        continue;
      }
      return r;
    }
  }

  /** Like stream(), with the reply body read into memory (capped: JSON and manifests only). */
  async request(spec: RequestSpec, maxBody = MAX_SMALL_BODY): Promise<BufferedReply> {
    const r = await this.stream(spec);
    if (spec.method === 'HEAD') { drain(r.stream); return { ...r, body: Buffer.alloc(0) }; }
    let body: Buffer;
    try { body = await readSmall(r.stream, maxBody); } catch (e) {
      if (e instanceof ClientError) throw e;
      throw this.networkError(e);
    }
    return { status: r.status, headers: r.headers, url: r.url, body };
  }

  /**
   * Checks the credentials: GET /v2/ authenticated (a token without scopes for Bearer). Answers the
   * refresh token the token server gave, if any (with `offlineToken`).
   */
  async verifyCredentials(): Promise<{ identityToken?: string }> {
    const r = await this.request({ method: 'GET', path: '/v2/', scopes: [] });
    if (r.status === 401) throw new UnauthorizedError(`${this.registry}: login failed: incorrect username or password`);
    if (r.status !== 200) throw replyError(`${this.registry}: login`, r.status, r.body);
    return this.identityToken ? { identityToken: this.identityToken } : {};
  }

  /** How this registry answered the ping: "bearer", "basic" or "none". */
  async authScheme(): Promise<string> {
    await this.ping();
    return this.challenge?.scheme ?? 'none';
  }
}

function pickChallenge(challenges: Challenge[]): Challenge | undefined {
  return challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic');
}
