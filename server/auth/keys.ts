// Token signing keys (generated on first start and persisted) and the set of keys the
// registry trusts: its own, a JWKS file, and x5c chains that end in a root certificate bundle.
import { X509Certificate, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { calculateJwkThumbprint, exportJWK, type JWK, type JWSHeaderParameters } from 'jose';

export type SigningAlgorithm = 'ES256' | 'RS256';

export interface SigningKey {
  alg: SigningAlgorithm;
  kid: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** base64 DER certificate chain, leaf first, when signing with a certificate. */
  x5c?: string[];
}

export class KeyError extends Error {}

export async function loadOrCreateSigningKey(path: string, alg: SigningAlgorithm, certPath?: string): Promise<SigningKey> {
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    const { privateKey } = alg === 'ES256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : generateKeyPairSync('rsa', { modulusLength: 2048 });
    pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const tmp = `${path}.tmp-${process.pid}`;
    writeFileSync(tmp, pem, { mode: 0o600, flag: 'w' });
    renameSync(tmp, path);
  }
  const privateKey = createPrivateKey(pem);
  const publicKey = createPublicKey(privateKey);
  const keyAlg: SigningAlgorithm = privateKey.asymmetricKeyType === 'ec' ? 'ES256' : 'RS256';
  if (privateKey.asymmetricKeyType !== 'ec' && privateKey.asymmetricKeyType !== 'rsa') {
    throw new KeyError(`${path}: the token signing key must be an EC P-256 or RSA key`);
  }
  if (keyAlg !== alg) throw new KeyError(`${path} holds an ${privateKey.asymmetricKeyType!.toUpperCase()} key but auth.token.algorithm is ${alg}`);
  const kid = await calculateJwkThumbprint(await exportJWK(publicKey));
  let x5c: string[] | undefined;
  if (certPath) {
    const chain = splitPem(readFileSync(certPath, 'utf8')).map((p) => new X509Certificate(p));
    if (!chain[0]?.publicKey.equals(publicKey)) throw new KeyError(`${certPath}: the first certificate does not match the signing key`);
    x5c = chain.map((c) => c.raw.toString('base64'));
  }
  return { alg, kid, privateKey, publicKey, x5c };
}

export function splitPem(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

export class TokenKeyError extends Error {}

/** A DER length at `i`: its value and where the content starts. */
function derLength(der: Buffer, i: number): { len: number; at: number } {
  const first = der[i]!;
  if (first < 0x80) return { len: first, at: i + 1 };
  const n = first & 0x7f;
  if (n === 0 || n > 4) throw new TokenKeyError('malformed certificate extension');
  let len = 0;
  for (let k = 1; k <= n; k++) len = len * 256 + der[i + k]!;
  return { len, at: i + 1 + n };
}

/**
 * The pathLenConstraint of a certificate's basicConstraints (Node's X509Certificate has only `ca`):
 * how many CA certificates may follow it towards the leaf. Undefined: no limit.
 */
export function pathLenConstraint(cert: X509Certificate): number | undefined {
  const der = cert.raw;
  const oid = Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x13]); // 2.5.29.19 basicConstraints
  const found = der.indexOf(oid);
  if (found < 0) return undefined;
  let i = found + oid.length;
  if (der[i] === 0x01) i += 2 + der[i + 1]!; // critical BOOLEAN
  if (der[i] !== 0x04) throw new TokenKeyError('malformed basicConstraints');
  const octets = derLength(der, i + 1);
  if (der[octets.at] !== 0x30) throw new TokenKeyError('malformed basicConstraints');
  const seq = derLength(der, octets.at + 1);
  let j = seq.at;
  const end = seq.at + seq.len;
  if (j < end && der[j] === 0x01) j += 2 + der[j + 1]!; // cA BOOLEAN
  if (j >= end || der[j] !== 0x02) return undefined;
  const int = derLength(der, j + 1);
  if (int.len < 1 || int.len > 4) throw new TokenKeyError('malformed pathLenConstraint');
  let n = 0;
  for (let k = 0; k < int.len; k++) n = n * 256 + der[int.at + k]!;
  return n;
}

/** Resolves the key a token claims to be signed with, trusting only what was configured. */
export class TrustStore {
  #byKid = new Map<string, KeyObject>();
  #roots: X509Certificate[] = [];

  addKey(kid: string, key: KeyObject): void {
    this.#byKid.set(kid, key);
  }

  addJwksFile(path: string): void {
    const doc = JSON.parse(readFileSync(path, 'utf8')) as { keys?: JWK[] };
    if (!Array.isArray(doc.keys)) throw new KeyError(`${path}: expected a JWKS document {"keys":[…]}`);
    for (const jwk of doc.keys) {
      if (!jwk.kid) throw new KeyError(`${path}: every key needs a "kid"`);
      if (jwk.d) throw new KeyError(`${path}: key ${jwk.kid} is a private key; give public keys only`);
      this.#byKid.set(jwk.kid, createPublicKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' }));
    }
  }

  addRootBundle(path: string): void {
    const certs = splitPem(readFileSync(path, 'utf8')).map((p) => new X509Certificate(p));
    if (!certs.length) throw new KeyError(`${path}: no certificates found`);
    this.#roots.push(...certs);
  }

  /**
   * A kid naming a trusted key wins (the built-in issuer's tokens carry its kid and, with a signing
   * certificate, its chain too): only that key's holder can sign with it. Otherwise an x5c chain must
   * lead to a trusted root.
   */
  resolve(header: JWSHeaderParameters): KeyObject {
    const byKid = header.kid ? this.#byKid.get(header.kid) : undefined;
    if (byKid) return byKid;
    if (header.x5c) return this.#fromChain(header.x5c);
    throw new TokenKeyError('token is not signed by a trusted key');
  }

  #fromChain(x5c: string[]): KeyObject {
    if (!this.#roots.length) throw new TokenKeyError('token carries a certificate chain but no root certificates are trusted');
    if (!Array.isArray(x5c) || x5c.length === 0 || x5c.length > 10) throw new TokenKeyError('malformed x5c header');
    let chain: X509Certificate[];
    try {
      chain = x5c.map((c) => new X509Certificate(Buffer.from(c, 'base64')));
    } catch {
      throw new TokenKeyError('malformed certificate in x5c');
    }
    const now = Date.now();
    const current = (cert: X509Certificate) => Date.parse(cert.validFrom) <= now && Date.parse(cert.validTo) >= now;
    if (!chain.every(current)) throw new TokenKeyError('a certificate in the token chain is expired or not yet valid');
    // every certificate that issues another must be a CA (basicConstraints CA:TRUE), as openssl and Go
    // require: otherwise the holder of any ordinary certificate from the root could mint tokens
    // an issuer at position k has k - 1 CA certificates below it (the leaf is at 0); its pathLen bounds them
    const withinPathLen = (issuer: X509Certificate, k: number) => (pathLenConstraint(issuer) ?? Infinity) >= k - 1;
    for (let i = 0; i + 1 < chain.length; i++) {
      if (!chain[i + 1]!.ca) throw new TokenKeyError('a certificate in the token chain issues another but is not a CA');
      if (!withinPathLen(chain[i + 1]!, i + 1)) throw new TokenKeyError('the token certificate chain is longer than a CA in it allows (pathLen)');
      if (!chain[i]!.checkIssued(chain[i + 1]!) || !chain[i]!.verify(chain[i + 1]!.publicKey)) throw new TokenKeyError('the token certificate chain is broken');
    }
    const top = chain[chain.length - 1]!;
    const anchored = this.#roots.some((root) => root.raw.equals(top.raw)
      || (root.ca && current(root) && withinPathLen(root, chain.length) && top.checkIssued(root) && top.verify(root.publicKey)));
    if (!anchored) throw new TokenKeyError('the token certificate chain does not lead to a trusted root');
    return chain[0]!.publicKey;
  }
}
