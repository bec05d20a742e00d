// Builds the configured authentication mode: none, htpasswd (Basic) or token (Bearer JWT,
// optionally with the built-in issuer at /auth/token).
import type { Router } from 'express';
import { join } from 'node:path';
import type { AuthConfig } from '../config.js';
import { authenticatedUsersMayDoEverything, RulesFile, type AccessPolicy } from './access-rules.js';
import { CredentialChecker, HtpasswdAuthenticator, TokenAuthenticator, noAuth, type Authenticator } from './authenticator.js';
import { Htpasswd } from './htpasswd.js';
import { LoginThrottle } from './login-throttle.js';
import { loadOrCreateSigningKey, TrustStore } from './keys.js';
import { Revocations } from './revocations.js';
import { tokenRouter } from './token-issuer.js';

export interface Auth {
  authenticator: Authenticator;
  /** Mounted at /auth/token when the built-in issuer is on. */
  tokenRouter?: Router;
  warnings: string[];
}

export class AuthSetupError extends Error {}

function load<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw new AuthSetupError(`${what}: ${(e as Error).message}`);
  }
}

/** `warn` hears of what goes wrong later: an htpasswd or rules file that cannot be read again. */
export async function createAuth(config: AuthConfig, warn?: (message: string) => void): Promise<Auth> {
  const warnings: string[] = [];
  const policy: AccessPolicy = config.access ? load('auth.access.path', () => new RulesFile(config.access!, warn)) : authenticatedUsersMayDoEverything;
  if (config.mode === 'none') return { authenticator: noAuth, warnings };

  if (config.mode === 'htpasswd') {
    const users = load('auth.htpasswd.path', () => new Htpasswd(config.htpasswd!, warn));
    warnings.push(...users.warnings);
    return { authenticator: new HtpasswdAuthenticator(new CredentialChecker(users, new LoginThrottle(config.maxLoginFailures ?? 20)), policy, config.realm), warnings };
  }

  const t = config.token!;
  const trust = new TrustStore();
  if (t.jwks) load('auth.token.jwks', () => trust.addJwksFile(t.jwks!));
  if (t.rootcertbundle) load('auth.token.rootcertbundle', () => trust.addRootBundle(t.rootcertbundle!));
  const settings = { issuer: t.issuer, service: t.service, ...(t.signingAlgorithms ? { algorithms: t.signingAlgorithms } : {}) };
  if (!t.builtin) {
    return { authenticator: new TokenAuthenticator({ ...settings, realm: t.realm, autoRedirectPath: t.autoRedirectPath, trust, policy: config.access ? policy : undefined }), warnings };
  }
  const users = load('auth.token.htpasswd', () => new Htpasswd(t.htpasswd!, warn));
  warnings.push(...users.warnings);
  let key;
  try {
    key = await loadOrCreateSigningKey(t.signingkey, t.algorithm, t.signingcert);
  } catch (e) {
    throw new AuthSetupError(`auth.token.signingkey: ${(e as Error).message}`);
  }
  trust.addKey(key.kid, key.publicKey);
  const router = tokenRouter({
    key, trust, settings, users: new CredentialChecker(users, new LoginThrottle(config.maxLoginFailures ?? 20)), policy,
    revocations: new Revocations(join(t.statedirectory, 'revocations.json')),
    ttlSeconds: t.expirationSec, refreshTtlSeconds: t.refreshExpirationSec,
  });
  return { authenticator: new TokenAuthenticator({ ...settings, realm: t.realm, autoRedirectPath: t.autoRedirectPath, trust, policy }), tokenRouter: router, warnings };
}
