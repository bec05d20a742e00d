import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, generateKeyPairSync, X509Certificate, type KeyObject } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import forge from 'node-forge';
import { exportJWK, SignJWT } from 'jose';
import request from 'supertest';
import { createApp } from '../../../server/app.js';
import { createAuth } from '../../../server/auth/index.js';
import { pathLenConstraint } from '../../../server/auth/keys.js';
import { FilesystemAdapter } from '../../../storage-adapters/filesystem.js';
import { tempDir } from '../../helpers/registry.js';
import { authFixture, basic, PASSWORDS, tokenConfig } from '../../helpers/auth.js';

interface Issued { cert: forge.pki.Certificate; key: forge.pki.rsa.PrivateKey }

function makeCert(subject: string, issuer?: Issued, isCA = false, keyUsage = true, pathLen?: number): Issued {
  // Node generates the key (fast, native); node-forge builds and signs the certificate.
  const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keys = {
    privateKey: forge.pki.privateKeyFromPem(pair.privateKey.export({ type: 'pkcs1', format: 'pem' }) as string) as forge.pki.rsa.PrivateKey,
    publicKey: forge.pki.publicKeyFromPem(pair.publicKey.export({ type: 'spki', format: 'pem' }) as string) as forge.pki.rsa.PublicKey,
  };
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = String(Math.floor(Math.random() * 1e9));
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 86_400_000);
  cert.setSubject([{ name: 'commonName', value: subject }]);
  cert.setIssuer([{ name: 'commonName', value: issuer ? issuer.cert.subject.getField('CN').value : subject }]);
  cert.setExtensions([{ name: 'basicConstraints', cA: isCA, ...(pathLen !== undefined ? { pathLenConstraint: pathLen } : {}) }, ...(keyUsage ? [{ name: 'keyUsage', keyCertSign: isCA, digitalSignature: true }] : [])]);
  cert.sign(issuer?.key ?? keys.privateKey, forge.md.sha256.create());
  return { cert, key: keys.privateKey };
}

const der64 = (c: forge.pki.Certificate) => forge.util.encode64(forge.asn1.toDer(forge.pki.certificateToAsn1(c)).getBytes());
const nodeKey = (k: forge.pki.rsa.PrivateKey) => createPrivateKey(forge.pki.privateKeyToPem(k));

describe('token auth with an external issuer (JWKS and x5c chains to a root bundle)', () => {
  let dir: string;
  let app: ReturnType<typeof createApp>;
  let ca: Issued;
  let leaf: Issued;
  let jwksKey: KeyObject;
  const service = 'berth-test';
  const issuer = 'external-issuer';
  const access = [{ type: 'repository', name: 'team/app', actions: ['pull'] }];

  const sign = (key: KeyObject, header: Record<string, unknown>) => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ access }).setProtectedHeader({ alg: 'RS256', ...header })
      .setIssuer(issuer).setAudience(service).setSubject('ci').setIssuedAt(now).setExpirationTime(now + 300).sign(key);
  };
  const pull = (t: string) => request(app).get('/v2/team/app/tags/list').set('Authorization', `Bearer ${t}`);

  before(async () => {
    dir = await tempDir('berth-ext-');
    ca = makeCert('test root', undefined, true);
    leaf = makeCert('token signer', ca);
    await writeFile(join(dir, 'ca.pem'), forge.pki.certificateToPem(ca.cert));
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    jwksKey = privateKey;
    const jwk = { ...(await exportJWK(createPublicKey(privateKey))), kid: 'ext-key-1', alg: 'RS256' };
    await writeFile(join(dir, 'keys.jwks'), JSON.stringify({ keys: [jwk] }));
    const auth = await createAuth({ mode: 'token', realm: 'berth', token: tokenConfig(dir, {
      builtin: false, realm: 'https://auth.example/token', issuer, service,
      rootcertbundle: join(dir, 'ca.pem'), jwks: join(dir, 'keys.jwks'),
    }) });
    assert.equal(auth.tokenRouter, undefined, 'no built-in issuer');
    app = createApp({}, { storage: new FilesystemAdapter({ rootdirectory: join(dir, 'data') }), auth });
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('the challenge points at the external realm', async () => {
    const res = await request(app).get('/v2/');
    assert.equal(res.headers['www-authenticate'], 'Bearer realm="https://auth.example/token",service="berth-test"');
  });

  it('auth.token.signingalgorithms narrows the accepted algorithms; auth.token.autoredirect sends clients to the host they asked', async () => {
    const narrowed = await createAuth({ mode: 'token', realm: 'berth', token: tokenConfig(dir, {
      builtin: false, realm: 'https://auth.example/token', issuer, service, jwks: join(dir, 'keys.jwks'),
      signingAlgorithms: ['ES256'], autoRedirectPath: '/auth/token/',
    }) });
    const strict = createApp({}, { storage: new FilesystemAdapter({ rootdirectory: join(dir, 'data') }), auth: narrowed });
    const token = await sign(jwksKey, { kid: 'ext-key-1' });
    assert.equal((await pull(token)).status, 404, 'RS256 is accepted by default (and the repository is empty)');
    const refused = await request(strict).get('/v2/team/app/tags/list').set('Authorization', `Bearer ${token}`);
    assert.equal(refused.status, 401);
    assert.match(refused.headers['www-authenticate']!, /error="invalid_token"/);
    const challenge = await request(strict).get('/v2/').set('Host', 'registry.example:5000');
    assert.match(challenge.headers['www-authenticate']!, /^Bearer realm="http:\/\/registry\.example:5000\/auth\/token\/"/);
  });

  it('accepts a token signed by a JWKS key (by kid)', async () => {
    const res = await pull(await sign(jwksKey, { kid: 'ext-key-1' }));
    assert.equal(res.status, 404, res.text); // authorized; the repository simply does not exist
    assert.equal(res.body.errors[0].code, 'NAME_UNKNOWN');
  });

  it('accepts a token whose x5c chain leads to the trusted root', async () => {
    const res = await pull(await sign(nodeKey(leaf.key), { x5c: [der64(leaf.cert)] }));
    assert.equal(res.status, 404);
    const withCa = await pull(await sign(nodeKey(leaf.key), { x5c: [der64(leaf.cert), der64(ca.cert)] }));
    assert.equal(withCa.status, 404);
  });

  it('refuses an x5c chain from another root', async () => {
    const otherCa = makeCert('other root', undefined, true);
    const otherLeaf = makeCert('token signer', otherCa);
    const res = await pull(await sign(nodeKey(otherLeaf.key), { x5c: [der64(otherLeaf.cert), der64(otherCa.cert)] }));
    assert.equal(res.status, 401);
    assert.match(res.headers['www-authenticate']!, /error="invalid_token"/);
  });

  it('accepts a chain through an intermediate CA, and refuses one where an ordinary certificate issued the signer', async () => {
    const intermediate = makeCert('intermediate', ca, true);
    const signer = makeCert('signer', intermediate);
    assert.equal((await pull(await sign(nodeKey(signer.key), { x5c: [der64(signer.cert), der64(intermediate.cert)] }))).status, 404);
    // an ordinary CA:FALSE certificate from the trusted root (with no keyUsage, as many TLS certificates):
    // whoever holds its key must not become an issuer
    const ordinary = makeCert('www.example', ca, false, false);
    const forged = makeCert('forged signer', ordinary);
    const res = await pull(await sign(nodeKey(forged.key), { x5c: [der64(forged.cert), der64(ordinary.cert)] }));
    assert.equal(res.status, 401);
    assert.match(res.headers['www-authenticate']!, /error="invalid_token"/);
  });

  it('a CA\'s pathLen bounds the CAs below it', async () => {
    const one = makeCert('pathlen 0', ca, true, true, 0);
    const two = makeCert('below pathlen 0', one, true);
    const signer = makeCert('deep signer', two);
    assert.equal(pathLenConstraint(new X509Certificate(forge.pki.certificateToPem(one.cert))), 0);
    assert.equal(pathLenConstraint(new X509Certificate(forge.pki.certificateToPem(ca.cert))), undefined);
    const res = await pull(await sign(nodeKey(signer.key), { x5c: [der64(signer.cert), der64(two.cert), der64(one.cert)] }));
    assert.equal(res.status, 401);
    // directly below the pathlen-0 CA: allowed
    const near = makeCert('near signer', one);
    assert.equal((await pull(await sign(nodeKey(near.key), { x5c: [der64(near.cert), der64(one.cert)] }))).status, 404);
  });

  it('the built-in issuer signing with a certificate (signingcert) accepts its own tokens', async () => {
    const signer = makeCert('berth issuer', ca);
    const keyPath = join(dir, 'issuer-key.pem');
    const certPath = join(dir, 'issuer-chain.pem');
    await writeFile(keyPath, nodeKey(signer.key).export({ type: 'pkcs8', format: 'pem' }) as string);
    await writeFile(certPath, forge.pki.certificateToPem(signer.cert) + forge.pki.certificateToPem(ca.cert));
    const f = await authFixture('token', { signingkey: keyPath, signingcert: certPath, algorithm: 'RS256' });
    try {
      const got = await request(f.app).get('/auth/token?service=berth-test&scope=repository:alice/app:pull').set('Authorization', basic('alice', PASSWORDS.alice));
      assert.equal(got.status, 200, got.text);
      assert.ok(JSON.parse(Buffer.from(got.body.token.split('.')[0], 'base64url').toString()).x5c, 'the token carries the chain');
      const res = await request(f.app).get('/v2/alice/app/tags/list').set('Authorization', `Bearer ${got.body.token}`);
      assert.equal(res.status, 404, res.text);
      assert.equal(res.body.errors[0].code, 'NAME_UNKNOWN');
    } finally {
      await rm(f.dir, { recursive: true, force: true });
    }
  });

  it('refuses a token signed by another key presenting the trusted leaf certificate', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    assert.equal((await pull(await sign(privateKey, { x5c: [der64(leaf.cert)] }))).status, 401);
  });

  it('refuses a token signed with a key too weak for its algorithm (401, not a crash)', async () => {
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const jwk = { ...(await exportJWK(weak.publicKey)), kid: 'weak' };
    await writeFile(join(dir, 'weak.jwks'), JSON.stringify({ keys: [jwk] }));
    const auth = await createAuth({ mode: 'token', realm: 'berth', token: tokenConfig(dir, {
      builtin: false, realm: 'https://auth.example/token', issuer, service, jwks: join(dir, 'weak.jwks') }) });
    const weakApp = createApp({}, { storage: new FilesystemAdapter({ rootdirectory: join(dir, 'data') }), auth });
    const now = Math.floor(Date.now() / 1000);
    // jose refuses to sign with a short key, so sign by hand
    const head = Buffer.from(JSON.stringify({ alg: 'RS256', kid: 'weak' })).toString('base64url');
    const body = Buffer.from(JSON.stringify({ iss: issuer, aud: service, exp: now + 60, access })).toString('base64url');
    const { createSign } = await import('node:crypto');
    const sig = createSign('RSA-SHA256').update(`${head}.${body}`).sign(weak.privateKey).toString('base64url');
    const res = await request(weakApp).get('/v2/team/app/tags/list').set('Authorization', `Bearer ${head}.${body}.${sig}`);
    assert.equal(res.status, 401);
  });

  it('refuses an unknown kid', async () => {
    assert.equal((await pull(await sign(jwksKey, { kid: 'nope' }))).status, 401);
  });
});
