// JWTs for the Docker token spec: access tokens (the `access` claim) and refresh tokens.
// Verification trusts only configured keys and an allow-list of asymmetric algorithms, so
// "alg: none" and HS256-signed-with-the-public-key tokens are refused before anything else.
import { randomUUID } from 'node:crypto';
import { SignJWT, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import type { Access } from './scope.js';
import { TokenKeyError, type SigningKey, type TrustStore } from './keys.js';

import { ALLOWED_ALGORITHMS } from './algorithms.js';
export const CLOCK_LEEWAY_SECONDS = 60;

export interface TokenSettings {
  issuer: string;
  service: string;
  /** auth.token.signingalgorithms: the algorithms tokens may be signed with (a subset of ALLOWED_ALGORITHMS). */
  algorithms?: string[];
}

export class InvalidTokenError extends Error {}

export async function signAccessToken(key: SigningKey, s: TokenSettings, subject: string, access: Access[], ttlSeconds: number): Promise<{ token: string; issuedAt: Date }> {
  const now = Math.floor(Date.now() / 1000);
  const token = await new SignJWT({ access })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT', ...(key.x5c ? { x5c: key.x5c } : {}) })
    .setIssuer(s.issuer).setSubject(subject).setAudience(s.service)
    .setIssuedAt(now).setNotBefore(now - 1).setExpirationTime(now + ttlSeconds).setJti(randomUUID())
    .sign(key.privateKey);
  return { token, issuedAt: new Date(now * 1000) };
}

/**
 * Refresh tokens carry a fingerprint of the password hash (a password change revokes them) and the
 * user's revocation generation (`berth auth revoke` bumps it).
 */
export async function signRefreshToken(key: SigningKey, s: TokenSettings, subject: string, passwordFingerprint: string, ttlSeconds: number, generation = 0): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ use: 'refresh', pwf: passwordFingerprint, rgen: generation })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
    .setIssuer(s.issuer).setSubject(subject).setAudience(`${s.service}#refresh`)
    .setIssuedAt(now).setExpirationTime(now + ttlSeconds).setJti(randomUUID())
    .sign(key.privateKey);
}

async function verify(token: string, trust: TrustStore, issuer: string, audience: string, algorithms = ALLOWED_ALGORITHMS): Promise<JWTPayload> {
  try {
    const { payload } = await jwtVerify(token, (header) => trust.resolve(header), {
      algorithms, issuer, audience, clockTolerance: CLOCK_LEEWAY_SECONDS, requiredClaims: ['exp'],
    });
    return payload;
  } catch (e) {
    if (e instanceof TokenKeyError) throw new InvalidTokenError(e.message);
    if (e instanceof joseErrors.JWTExpired) throw new InvalidTokenError('token expired');
    if (e instanceof joseErrors.JWTClaimValidationFailed) throw new InvalidTokenError(`token claim "${e.claim}" is not valid: ${e.reason}`);
    if (e instanceof joseErrors.JOSEAlgNotAllowed) throw new InvalidTokenError('token signing algorithm not allowed');
    // Anything else jose throws (e.g. a key too weak for its algorithm) is still the token's fault.
    throw new InvalidTokenError('token is malformed or its signature does not verify');
  }
}

export interface VerifiedAccess { subject?: string; access: Access[] }

export async function verifyAccessToken(token: string, trust: TrustStore, s: TokenSettings): Promise<VerifiedAccess> {
  const payload = await verify(token, trust, s.issuer, s.service, s.algorithms);
  if (payload.use === 'refresh') throw new InvalidTokenError('a refresh token is not an access token');
  const access = payload.access ?? [];
  if (!Array.isArray(access) || !access.every((a) => a && typeof a.type === 'string' && typeof a.name === 'string'
    && Array.isArray(a.actions) && a.actions.every((x: unknown) => typeof x === 'string'))) {
    throw new InvalidTokenError('token "access" claim is malformed');
  }
  return { subject: typeof payload.sub === 'string' && payload.sub ? payload.sub : undefined, access: access as Access[] };
}

export async function verifyRefreshToken(token: string, trust: TrustStore, s: TokenSettings): Promise<{ subject: string; fingerprint: string; issuedAt: number; generation?: number }> {
  const payload = await verify(token, trust, s.issuer, `${s.service}#refresh`, s.algorithms);
  if (payload.use !== 'refresh' || typeof payload.sub !== 'string' || typeof payload.pwf !== 'string' || typeof payload.iat !== 'number'
    || (payload.rgen !== undefined && !Number.isSafeInteger(payload.rgen))) {
    throw new InvalidTokenError('not a refresh token');
  }
  return { subject: payload.sub, fingerprint: payload.pwf, issuedAt: payload.iat, ...(payload.rgen !== undefined ? { generation: payload.rgen as number } : {}) };
}
