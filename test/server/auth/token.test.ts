import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, createPublicKey } from 'node:crypto';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import request from 'supertest';
import { digestOf } from '../../../oci/digest.js';
import { MediaType } from '../../../oci/media-types.js';
import { loadOrCreateSigningKey, type SigningKey } from '../../../server/auth/keys.js';
import { Revocations } from '../../../server/auth/revocations.js';
import type { Access } from '../../../server/auth/scope.js';
import { errorCode, imageManifest } from '../../helpers/push.js';
import { authFixture, basic, PASSWORDS, writeHtpasswd, type AuthFixture } from '../../helpers/auth.js';

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

describe('token auth (Docker token spec) with the built-in issuer', () => {
  let f: AuthFixture;
  let key: SigningKey;
  const service = 'berth-test';
  const issuer = 'berth-test-issuer';

  async function token(auth: string | undefined, ...scopes: string[]): Promise<{ token: string; body: Record<string, unknown> }> {
    const q = new URLSearchParams({ service });
    for (const s of scopes) q.append('scope', s);
    const r = request(f.app).get(`/auth/token?${q}`);
    if (auth) r.set('Authorization', auth);
    const res = await r;
    assert.equal(res.status, 200, res.text);
    return { token: res.body.token, body: res.body };
  }

  function claims(t: string): { access: Access[]; sub: string; aud: string; iss: string } {
    return JSON.parse(Buffer.from(t.split('.')[1]!, 'base64url').toString());
  }

  async function craft(over: { access?: Access[]; iss?: string; aud?: string; exp?: number; nbf?: number; sub?: string }, signWith: SigningKey = key, kid = key.kid): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ access: over.access ?? [{ type: 'repository', name: 'alice/app', actions: ['pull', 'push'] }] })
      .setProtectedHeader({ alg: signWith.alg, kid })
      .setIssuer(over.iss ?? issuer).setAudience(over.aud ?? service).setSubject(over.sub ?? 'alice')
      .setIssuedAt(now).setNotBefore(over.nbf ?? now - 1).setExpirationTime(over.exp ?? now + 300)
      .sign(signWith.privateKey);
  }

  const pushBlob = (bearer: string, name: string, content: string) =>
    request(f.app).post(`/v2/${name}/blobs/uploads/?digest=${digestOf(content)}`).set('Authorization', `Bearer ${bearer}`)
      .set('Content-Type', 'application/octet-stream').send(Buffer.from(content));

  before(async () => {
    f = await authFixture('token');
    key = await loadOrCreateSigningKey(f.config.token!.signingkey, 'ES256');
  });
  after(() => rm(f.dir, { recursive: true, force: true }));

  it('revocations: a user named like an Object property ("__proto__", "constructor") is a user like any other', async () => {
    const r = new Revocations(join(f.dir, 'state', 'proto-revocations.json'));
    for (const user of ['__proto__', 'constructor', 'toString']) {
      assert.equal(r.generation(user), 0);
      assert.equal(r.isRevoked(user, 100, 0), false);
      r.revoke(user, 200);
      assert.equal(r.generation(user), 1);
      assert.equal(r.isRevoked(user, 300, 0), true, 'an older generation is void');
      assert.equal(r.isRevoked(user, 300, 1), false, 'the current one is good');
    }
    assert.equal(r.generation('alice'), 0, 'no one else is touched');
  });

  it('GET /v2/ without a token → 401 with Bearer realm and service', async () => {
    const res = await request(f.app).get('/v2/').set('Host', 'reg.example:5000');
    assert.equal(res.status, 401);
    assert.equal(res.headers['www-authenticate'], 'Bearer realm="http://reg.example:5000/auth/token",service="berth-test"');
    // a Host header that is no host name cannot write the challenge (and send credentials elsewhere)
    const forged = await request(f.app).get('/v2/').set('Host', 'evil.example",service="x');
    assert.equal(forged.headers['www-authenticate'], 'Bearer realm="http://localhost/auth/token",service="berth-test"');
  });

  it('a repository request without a token → 401 whose challenge names exactly the needed scope', async () => {
    const res = await request(f.app).post('/v2/alice/app/blobs/uploads/');
    assert.equal(res.status, 401);
    assert.match(res.headers['www-authenticate']!, /scope="repository:alice\/app:pull,push"$/);
  });

  it('a mount\'s challenge also asks for pull on the source, so one token can cover both', async () => {
    const res = await request(f.app).post(`/v2/alice/app/blobs/uploads/?mount=${digestOf('x')}&from=acme/src`);
    assert.equal(res.status, 401);
    assert.match(res.headers['www-authenticate']!, /scope="repository:alice\/app:pull,push repository:acme\/src:pull"$/);
  });

  it('the signing key was generated on first start, persisted (0600), and tokens carry its kid', async () => {
    const pem = await readFile(f.config.token!.signingkey, 'utf8');
    assert.match(pem, /BEGIN PRIVATE KEY/);
    const { token: t } = await token(basic('alice', PASSWORDS.alice), 'repository:alice/app:pull,push');
    const header = JSON.parse(Buffer.from(t.split('.')[0]!, 'base64url').toString());
    assert.equal(header.alg, 'ES256');
    assert.equal(header.kid, key.kid);
  });

  it('issues the intersection of what was asked and what is allowed', async () => {
    const { token: t, body } = await token(basic('alice', PASSWORDS.alice),
      'repository:alice/app:pull,push,delete', 'repository:bob/app:pull,push', 'repository:acme/x:push,delete', 'registry:catalog:*');
    assert.equal(body.access_token, t);
    assert.equal(body.expires_in, 300);
    assert.ok(typeof body.issued_at === 'string');
    const c = claims(t);
    assert.deepEqual(c.access, [
      { type: 'repository', name: 'alice/app', actions: ['pull', 'push', 'delete'] },
      { type: 'repository', name: 'acme/x', actions: ['push'] },
      { type: 'registry', name: 'catalog', actions: ['*'] },
    ]);
    assert.equal(c.sub, 'alice');
    assert.equal(c.aud, service);
    assert.equal(c.iss, issuer);
  });

  it('anonymous tokens get pull on public repositories only', async () => {
    const { token: t } = await token(undefined, 'repository:library/busybox:pull,push', 'repository:alice/app:pull');
    assert.deepEqual(claims(t).access, [{ type: 'repository', name: 'library/busybox', actions: ['pull'] }]);
  });

  it('crafted names in scopes are never granted', async () => {
    const { token: t } = await token(basic('alice', PASSWORDS.alice),
      'repository:alice/../bob:push', 'repository:alice/%2e%2e/bob:push', 'repository:ALICE/app:push', 'repository:alice//bob:push', 'repository:alice/app/:push');
    assert.deepEqual(claims(t).access, []);
  });

  it('wrong credentials at the token endpoint → 401; an unknown service → 400', async () => {
    const res = await request(f.app).get(`/auth/token?service=${service}`).set('Authorization', basic('alice', 'wrong'));
    assert.equal(res.status, 401);
    assert.equal((await request(f.app).get('/auth/token?service=other')).status, 400);
  });

  it('a valid token works for what it grants', async () => {
    const { token: t } = await token(basic('alice', PASSWORDS.alice), 'repository:alice/app:pull,push');
    assert.equal((await pushBlob(t, 'alice/app', 'hello')).status, 201);
    assert.equal((await request(f.app).get(`/v2/alice/app/blobs/${digestOf('hello')}`).set('Authorization', `Bearer ${t}`)).status, 200);
  });

  describe('refusals: 401 with the right challenge and nothing written', () => {
    async function refused(bearer: string, name = 'alice/app', expectError = 'invalid_token') {
      const content = `refused-${Math.random()}`;
      const res = await pushBlob(bearer, name, content);
      assert.equal(res.status, 401, res.text);
      assert.equal(errorCode(res), 'UNAUTHORIZED');
      assert.match(res.headers['www-authenticate']!, new RegExp(`error="${expectError}"`));
      const uploads = await readdir(join(f.dir, 'data', 'repositories', ...name.split('/'), '_uploads')).catch((): string[] => []);
      assert.deepEqual(uploads, [], 'no upload session was created');
      return res;
    }

    it('expired', async () => { await refused(await craft({ exp: Math.floor(Date.now() / 1000) - 3600 })); });
    it('not yet valid', async () => { await refused(await craft({ nbf: Math.floor(Date.now() / 1000) + 3600 })); });
    it('wrong audience', async () => { await refused(await craft({ aud: 'another-registry' })); });
    it('wrong issuer', async () => { await refused(await craft({ iss: 'evil-issuer' })); });

    it('alg none', async () => {
      const now = Math.floor(Date.now() / 1000);
      const t = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ iss: issuer, aud: service, sub: 'alice', exp: now + 300,
        access: [{ type: 'repository', name: 'alice/app', actions: ['push'] }] })}.`;
      await refused(t);
    });

    it('HS256 signed with the public key as the secret', async () => {
      const now = Math.floor(Date.now() / 1000);
      const head = b64({ alg: 'HS256', typ: 'JWT', kid: key.kid });
      const body = b64({ iss: issuer, aud: service, sub: 'alice', exp: now + 300, access: [{ type: 'repository', name: 'alice/app', actions: ['push'] }] });
      const pem = key.publicKey.export({ type: 'spki', format: 'pem' });
      const sig = createHmac('sha256', pem).update(`${head}.${body}`).digest('base64url');
      await refused(`${head}.${body}.${sig}`);
    });

    it('an untrusted key, even claiming the trusted kid', async () => {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const rogue: SigningKey = { alg: 'ES256', kid: key.kid, privateKey, publicKey: createPublicKey(privateKey) };
      await refused(await craft({}, rogue));
      await refused(await craft({}, rogue, 'rogue-kid'));
    });

    it('a tampered payload', async () => {
      const t = await craft({ access: [{ type: 'repository', name: 'alice/app', actions: ['pull'] }] });
      const [h, , s] = t.split('.');
      const forged = b64({ iss: issuer, aud: service, sub: 'alice', exp: Math.floor(Date.now() / 1000) + 300,
        access: [{ type: 'repository', name: 'alice/app', actions: ['push'] }] });
      await refused(`${h}.${forged}.${s}`);
    });

    it('a token for repository A used on B → insufficient_scope', async () => {
      const { token: t } = await token(basic('alice', PASSWORDS.alice), 'repository:alice/app:pull,push');
      await refused(t, 'alice/other', 'insufficient_scope');
    });

    it('a pull token used to push → insufficient_scope, and to delete → insufficient_scope', async () => {
      const { token: t } = await token(basic('alice', PASSWORDS.alice), 'repository:alice/app:pull');
      await refused(t, 'alice/app', 'insufficient_scope');
      const del = await request(f.app).delete(`/v2/alice/app/blobs/${digestOf('hello')}`).set('Authorization', `Bearer ${t}`);
      assert.equal(del.status, 401);
      assert.match(del.headers['www-authenticate']!, /scope="repository:alice\/app:delete",error="insufficient_scope"/);
      const still = await request(f.app).head(`/v2/alice/app/blobs/${digestOf('hello')}`).set('Authorization', `Bearer ${t}`);
      assert.equal(still.status, 200, 'the blob is still there');
    });

    it('a pull token cannot push a manifest', async () => {
      const { token: t } = await token(basic('alice', PASSWORDS.alice), 'repository:alice/app:pull');
      const body = imageManifest({ digest: digestOf('hello'), size: 5 }, []);
      const res = await request(f.app).put('/v2/alice/app/manifests/v1').set('Authorization', `Bearer ${t}`)
        .set('Content-Type', MediaType.OciManifest).send(body.toString());
      assert.equal(res.status, 401);
      assert.equal((await request(f.app).head('/v2/alice/app/manifests/v1').set('Authorization', `Bearer ${t}`)).status, 404);
    });

    it('a refresh token is not an access token', async () => {
      const { body } = await token(basic('alice', PASSWORDS.alice) , 'repository:alice/app:push');
      assert.equal(body.refresh_token, undefined, 'no refresh token unless offline_token=true');
      const res = await request(f.app).get(`/auth/token?service=${service}&offline_token=true&scope=repository:alice/app:push`).set('Authorization', basic('alice', PASSWORDS.alice));
      await refused(res.body.refresh_token);
    });
  });

  describe('refresh tokens', () => {
    it('offline_token=true returns one; the OAuth2 POST refresh grant issues new access tokens', async () => {
      const res = await request(f.app).get(`/auth/token?service=${service}&offline_token=true`).set('Authorization', basic('bob', PASSWORDS.bob));
      const refresh = res.body.refresh_token as string;
      assert.ok(refresh);
      const post = await request(f.app).post('/auth/token').type('form')
        .send({ grant_type: 'refresh_token', refresh_token: refresh, service, scope: 'repository:bob/app:pull,push' });
      assert.equal(post.status, 200, post.text);
      assert.deepEqual(claims(post.body.access_token).access, [{ type: 'repository', name: 'bob/app', actions: ['pull', 'push'] }]);
      assert.equal(post.body.refresh_token, refresh);
    });

    it('grant_type=password with access_type=offline returns a refresh token; bad passwords → 401', async () => {
      const ok = await request(f.app).post('/auth/token').type('form')
        .send({ grant_type: 'password', username: 'carol', password: PASSWORDS.carol, service, access_type: 'offline', client_id: 'test', scope: 'repository:acme/app:pull' });
      assert.equal(ok.status, 200);
      assert.ok(ok.body.refresh_token);
      const bad = await request(f.app).post('/auth/token').type('form').send({ grant_type: 'password', username: 'carol', password: 'x', service });
      assert.equal(bad.status, 401);
      const unknown = await request(f.app).post('/auth/token').type('form').send({ grant_type: 'client_credentials', service });
      assert.equal(unknown.status, 400);
    });

    it('an explicitly revoked refresh token stops working; one issued right after the revocation works', async () => {
      const offline = () => request(f.app).get(`/auth/token?service=${service}&offline_token=true`).set('Authorization', basic('carol', PASSWORDS.carol));
      const refresh = (t: string) => request(f.app).post('/auth/token').type('form').send({ grant_type: 'refresh_token', refresh_token: t, service });
      const res = await offline();
      assert.equal((await refresh(res.body.refresh_token)).status, 200);
      new Revocations(join(f.config.token!.statedirectory, 'revocations.json')).revoke('carol');
      const post = await refresh(res.body.refresh_token);
      assert.equal(post.status, 401);
      assert.equal(errorCode(post), 'UNAUTHORIZED');
      // a new login in the same second as the revocation gets a token that works (a generation, not a time, tells them apart)
      const again = await offline();
      assert.equal((await refresh(again.body.refresh_token)).status, 200);
      assert.equal((await refresh(res.body.refresh_token)).status, 401);
    });

    it('revocations: generations for new tokens, the revocation time for tokens from before generations', async () => {
      const r = new Revocations(join(f.dir, 'revocations-unit.json'));
      assert.equal(r.generation('dave'), 0);
      assert.equal(r.isRevoked('dave', 1000, 0), false);
      assert.equal(r.isRevoked('dave', 1000), false);
      r.revoke('dave', 2000);
      assert.equal(r.generation('dave'), 1);
      assert.equal(r.isRevoked('dave', 3000, 0), true, 'an older generation is void whatever its time');
      assert.equal(r.isRevoked('dave', 2000, 1), false, 'issued in the second of the revocation, after it');
      assert.equal(r.isRevoked('dave', 1500, 1), true, 'issued before the revocation, whatever its generation (a reset file)');
      assert.equal(r.isRevoked('dave', 2000), true, 'no generation: issued at or before the revocation');
      assert.equal(r.isRevoked('dave', 2001), false);
      assert.equal(r.generation('erin'), 0, 'per user');
    });

    it('a password change revokes the user\'s refresh tokens', async () => {
      const res = await request(f.app).get(`/auth/token?service=${service}&offline_token=true`).set('Authorization', basic('root', PASSWORDS.root));
      const refresh = res.body.refresh_token;
      const before = await request(f.app).post('/auth/token').type('form').send({ grant_type: 'refresh_token', refresh_token: refresh, service });
      assert.equal(before.status, 200);
      await new Promise((r) => setTimeout(r, 20)); // a new mtime for the reload
      await writeHtpasswd(f.htpasswd, { ...PASSWORDS, root: 'a-new-password' });
      const after = await request(f.app).post('/auth/token').type('form').send({ grant_type: 'refresh_token', refresh_token: refresh, service });
      assert.equal(after.status, 401);
      await writeFile(f.htpasswd, await readFile(f.htpasswd)); // keep the file valid for other tests
    });
  });

  it('the catalog lists only what the token\'s subject may pull', async () => {
    const { token: t } = await token(basic('carol', PASSWORDS.carol), 'registry:catalog:*');
    const root = await token(basic('alice', PASSWORDS.alice), 'repository:acme/secret:push');
    await pushBlob(root.token, 'acme/secret', 'x');
    const res = await request(f.app).get('/v2/_catalog').set('Authorization', `Bearer ${t}`);
    assert.equal(res.status, 200);
    assert.ok(!res.body.repositories.includes('acme/secret'));
    assert.ok(res.body.repositories.includes('alice/app') === false);
  });
});
