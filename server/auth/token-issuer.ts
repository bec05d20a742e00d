// The built-in token server (Docker token spec + its OAuth2 form): GET with Basic or no
// credentials, POST grant_type=password|refresh_token. It grants the intersection of what
// was asked and what the rules allow: fewer actions, never an error, when rights are missing.
import express, { type Request, type Response, type Router } from 'express';
import { RegistryError } from '../errors.js';
import type { AccessPolicy } from './access-rules.js';
import type { CredentialChecker } from './authenticator.js';
import type { SigningKey, TrustStore } from './keys.js';
import type { Revocations } from './revocations.js';
import { parseScopes, type Access } from './scope.js';
import { InvalidTokenError, signAccessToken, signRefreshToken, verifyRefreshToken, type TokenSettings } from './tokens.js';

export interface IssuerOptions {
  key: SigningKey;
  trust: TrustStore;
  settings: TokenSettings;
  users: CredentialChecker;
  policy: AccessPolicy;
  revocations: Revocations;
  ttlSeconds: number;
  refreshTtlSeconds: number;
}

function asList(v: unknown): string[] {
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).map(String);
}

export function grantFor(policy: AccessPolicy, user: string | undefined, requested: Access[]): Access[] {
  const granted: Access[] = [];
  for (const r of requested) {
    const allowed = policy.allowed(user, r.type, r.name);
    const actions = allowed.includes('*') ? r.actions : r.actions.filter((a) => allowed.includes(a));
    if (actions.length) granted.push({ type: r.type, name: r.name, actions });
  }
  return granted;
}

export function tokenRouter(o: IssuerOptions): Router {
  const router = express.Router();
  const badRequest = (message: string) => new RegistryError('UNSUPPORTED', undefined, { status: 400, message });
  const basicChallenge = { 'WWW-Authenticate': 'Basic realm="berth token service", charset="UTF-8"' };

  const checkService = (service: unknown) => {
    if (service !== undefined && service !== o.settings.service) throw badRequest(`unknown service "${String(service).slice(0, 100)}"`);
  };

  const respond = async (res: Response, user: string | undefined, scopes: string[], offline: boolean, refreshToken?: string) => {
    const access = grantFor(o.policy, user, parseScopes(scopes));
    const { token, issuedAt } = await signAccessToken(o.key, o.settings, user ?? '', access, o.ttlSeconds);
    const body: Record<string, unknown> = { token, access_token: token, expires_in: o.ttlSeconds, issued_at: issuedAt.toISOString() };
    if (refreshToken) body.refresh_token = refreshToken;
    else if (offline && user !== undefined) {
      body.refresh_token = await signRefreshToken(o.key, o.settings, user, o.users.users.fingerprint(user)!, o.refreshTtlSeconds, o.revocations.generation(user));
    }
    res.setHeader('Cache-Control', 'no-store');
    res.status(200).json(body);
  };

  router.get('/', async (req: Request, res: Response) => {
    checkService(req.query.service);
    const user = await o.users.check(req.headers.authorization, req.ip ?? '');
    if (user === false) throw new RegistryError('UNAUTHORIZED', undefined, { headers: basicChallenge, message: 'invalid username or password' });
    if (user !== undefined && req.query.account !== undefined && req.query.account !== user) throw badRequest('account does not match the credentials');
    await respond(res, user, asList(req.query.scope), req.query.offline_token === 'true');
  });

  router.post('/', express.urlencoded({ extended: false, limit: '64kb' }), async (req: Request, res: Response) => {
    const form = (req.body ?? {}) as Record<string, unknown>;
    checkService(form.service);
    const scopes = asList(form.scope);
    if (form.grant_type === 'password') {
      const header = `Basic ${Buffer.from(`${String(form.username ?? '')}:${String(form.password ?? '')}`).toString('base64')}`;
      const user = await o.users.check(header, req.ip ?? '');
      if (!user) throw new RegistryError('UNAUTHORIZED', undefined, { message: 'invalid username or password' });
      await respond(res, user, scopes, form.access_type === 'offline');
      return;
    }
    if (form.grant_type === 'refresh_token') {
      const refresh = String(form.refresh_token ?? '');
      let claims;
      try {
        claims = await verifyRefreshToken(refresh, o.trust, o.settings);
      } catch (e) {
        if (e instanceof InvalidTokenError) throw new RegistryError('UNAUTHORIZED', { reason: e.message }, { message: 'invalid refresh token' });
        throw e;
      }
      if (o.users.users.fingerprint(claims.subject) !== claims.fingerprint || o.revocations.isRevoked(claims.subject, claims.issuedAt, claims.generation)) {
        throw new RegistryError('UNAUTHORIZED', { reason: 'revoked' }, { message: 'the refresh token was revoked' });
      }
      await respond(res, claims.subject, scopes, false, refresh);
      return;
    }
    throw badRequest(`unsupported grant_type "${String(form.grant_type ?? '').slice(0, 50)}" (password or refresh_token)`);
  });
  return router;
}
