// Who is calling, and may they do what this request needs? One implementation per mode:
// none (everything allowed), htpasswd (HTTP Basic) and token (Docker token spec, Bearer JWTs).
import { createHash } from 'node:crypto';
import type { Request } from 'express';
import { RegistryError } from '../errors.js';
import type { AccessPolicy } from './access-rules.js';
import type { Htpasswd } from './htpasswd.js';
import { LoginThrottle } from './login-throttle.js';
import type { TrustStore } from './keys.js';
import { covers, formatScope, type Access } from './scope.js';
import { InvalidTokenError, verifyAccessToken, type TokenSettings } from './tokens.js';

export interface Principal {
  /** The signed-in user; undefined for anonymous callers. */
  user?: string;
  can(type: string, name: string, action: string): boolean;
  /** Whether the catalog shows this repository to the caller. */
  seesInCatalog(name: string): boolean;
}

export interface Authenticator {
  readonly mode: 'none' | 'htpasswd' | 'token';
  /**
   * Resolves the caller; throws 401/403 RegistryErrors (with challenges) when `needed` is not allowed.
   * `wanted` is access the request can use but does without (a mount's source): a token challenge
   * asks for it too, so clients fetch one token that covers both.
   */
  authorize(req: Request, needed: Access[], wanted?: Access[]): Promise<Principal>;
}

export const noAuth: Authenticator = {
  mode: 'none',
  authorize: async () => ({ can: () => true, seesInCatalog: () => true }),
};

function parseBasic(header: string | undefined): { user: string; password: string } | undefined {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/**
 * Verifies Basic credentials with a short-lived cache (bcrypt on every blob request would dominate), and
 * throttles the failures of each client address (`client`: the request's address, see http.trustedproxies).
 */
export class CredentialChecker {
  #cache = new Map<string, number>();
  constructor(readonly users: Htpasswd, private readonly throttle = new LoginThrottle(0), private readonly ttlMs = 60_000) {}

  async check(header: string | undefined, client: string): Promise<string | undefined | false> {
    const creds = parseBasic(header);
    if (!creds) return header ? false : undefined;
    const key = createHash('sha256').update(`${creds.user}\0${creds.password}\0${this.users.fingerprint(creds.user) ?? ''}`).digest('base64');
    const until = this.#cache.get(key);
    if (until && until > Date.now()) return creds.user;
    return this.throttle.oneAtATime(client, async () => {
      const wait = this.throttle.retryAfter(client);
      if (wait > 0) {
        throw new RegistryError('TOOMANYREQUESTS', undefined, { headers: { 'Retry-After': String(wait) }, message: `too many failed sign-ins from this address; try again in ${wait} s` });
      }
      if (!(await this.users.verify(creds.user, creds.password))) {
        this.throttle.failed(client);
        return false;
      }
      if (this.#cache.size > 10_000) this.#cache.clear();
      this.#cache.set(key, Date.now() + this.ttlMs);
      return creds.user;
    });
  }
}

function policyPrincipal(user: string | undefined, policy: AccessPolicy): Principal {
  const can = (type: string, name: string, action: string) => policy.allowed(user, type, name).some((a) => a === action || a === '*');
  return { user, can, seesInCatalog: (name) => can('repository', name, 'pull') };
}

/** A challenge parameter as an RFC 9110 quoted-string. */
function quoted(value: string): string {
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** host[:port]: a DNS name or an IP address (IPv6 in brackets). */
const HOST_HEADER = /^(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;

export class HtpasswdAuthenticator implements Authenticator {
  readonly mode = 'htpasswd';
  constructor(private readonly checker: CredentialChecker, private readonly policy: AccessPolicy, private readonly realm: string) {}

  async authorize(req: Request, needed: Access[]): Promise<Principal> {
    const challenge = { 'WWW-Authenticate': `Basic realm=${quoted(this.realm)}, charset="UTF-8"` };
    const user = await this.checker.check(req.headers.authorization, req.ip ?? '');
    if (user === false) throw new RegistryError('UNAUTHORIZED', undefined, { headers: challenge, message: 'invalid username or password' });
    const principal = policyPrincipal(user, this.policy);
    const missing = needed.filter((a) => !a.actions.every((act) => principal.can(a.type, a.name, act)));
    if (user === undefined && (missing.length > 0 || needed.length === 0)) {
      throw new RegistryError('UNAUTHORIZED', missing.map(formatScope), { headers: challenge });
    }
    if (missing.length) throw new RegistryError('DENIED', missing.map(formatScope));
    return principal;
  }
}

export interface TokenAuthOptions extends TokenSettings {
  /** The token endpoint clients are sent to; by default this registry's own /auth/token. */
  realm?: string;
  /** auth.token.autoredirect: the realm is this path on the host the client asked for (an issuer behind the same host). */
  autoRedirectPath?: string;
  trust: TrustStore;
  /** When the registry issues its own tokens it knows the rules, and filters the catalog with them. */
  policy?: AccessPolicy;
}

export class TokenAuthenticator implements Authenticator {
  readonly mode = 'token';
  constructor(private readonly opts: TokenAuthOptions) {}

  /** The configured realm, else this registry's /auth/token at the Host asked for (if it is a host name, not a payload). */
  realmFor(req: Request): string {
    if (this.opts.realm && this.opts.autoRedirectPath === undefined) return this.opts.realm;
    const host = req.headers.host;
    return `${req.protocol}://${host && HOST_HEADER.test(host) ? host : 'localhost'}${this.opts.autoRedirectPath ?? '/auth/token'}`;
  }

  #challenge(req: Request, needed: Access[], error?: string, wanted: Access[] = []): Record<string, string> {
    let value = `Bearer realm=${quoted(this.realmFor(req))},service=${quoted(this.opts.service)}`;
    const scopes = [...needed, ...wanted];
    if (scopes.length) value += `,scope=${quoted(scopes.map(formatScope).join(' '))}`;
    if (error) value += `,error=${quoted(error)}`;
    return { 'WWW-Authenticate': value };
  }

  async authorize(req: Request, needed: Access[], wanted: Access[] = []): Promise<Principal> {
    const m = /^Bearer\s+([A-Za-z0-9._~+/=-]+)\s*$/i.exec(req.headers.authorization ?? '');
    if (!m) {
      throw new RegistryError('UNAUTHORIZED', needed.length ? needed.map(formatScope) : undefined, { headers: this.#challenge(req, needed, undefined, wanted) });
    }
    let verified;
    try {
      verified = await verifyAccessToken(m[1]!, this.opts.trust, this.opts);
    } catch (e) {
      if (!(e instanceof InvalidTokenError)) throw e;
      throw new RegistryError('UNAUTHORIZED', { reason: e.message }, { headers: this.#challenge(req, needed, 'invalid_token', wanted), message: 'invalid token' });
    }
    const missing = needed.filter((a) => !a.actions.every((act) => covers(verified.access, a.type, a.name, act)));
    if (missing.length) {
      throw new RegistryError('UNAUTHORIZED', { missing: missing.map(formatScope) }, {
        headers: this.#challenge(req, needed, 'insufficient_scope', wanted), message: 'the token does not grant this access',
      });
    }
    const policy = this.opts.policy;
    return {
      user: verified.subject,
      can: (type, name, action) => covers(verified.access, type, name, action),
      // A token only lists the catalog resource; which names show is the rules' business.
      seesInCatalog: (name) => !policy || policy.allowed(verified.subject, 'repository', name).includes('pull'),
    };
  }
}
