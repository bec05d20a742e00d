import assert from 'node:assert/strict';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import bcrypt from 'bcryptjs';
import request from 'supertest';
import { digestOf } from '../../../oci/digest.js';
import { MediaType } from '../../../oci/media-types.js';
import { errorCode, imageManifest } from '../../helpers/push.js';
import { createApp } from '../../../server/app.js';
import { Htpasswd } from '../../../server/auth/htpasswd.js';
import { createAuth } from '../../../server/auth/index.js';
import { authFixture, basic, PASSWORDS, writeHtpasswd, type AuthFixture } from '../../helpers/auth.js';
import { tempDir } from '../../helpers/registry.js';

describe('htpasswd (Basic) auth with access rules', () => {
  let f: AuthFixture;
  const alice = basic('alice', PASSWORDS.alice);
  const carol = basic('carol', PASSWORDS.carol);

  async function pushAs(auth: string | undefined, name: string, content: string) {
    const d = digestOf(content);
    const r = request(f.app).post(`/v2/${name}/blobs/uploads/?digest=${d}`).set('Content-Type', 'application/octet-stream');
    if (auth) r.set('Authorization', auth);
    return r.send(Buffer.from(content));
  }

  before(async () => { f = await authFixture('htpasswd'); });
  after(() => rm(f.dir, { recursive: true, force: true }));

  it('an htpasswd file moved away keeps the users last read (no 500s) and is reported once; its return is read again', async () => {
    const dir = await tempDir();
    try {
      const path = join(dir, 'htpasswd');
      await writeHtpasswd(path, { alice: 'one' });
      const warnings: string[] = [];
      const users = new Htpasswd(path, (m) => warnings.push(m));
      await rename(path, `${path}.bak`);
      assert.equal(await users.verify('alice', 'one'), true);
      assert.equal(await users.verify('alice', 'one'), true);
      assert.equal(warnings.length, 1, warnings.join('\n'));
      assert.match(warnings[0]!, /htpasswd: .*ENOENT.*; keeping what was loaded before/);
      await writeHtpasswd(path, { alice: 'two', bob: 'md5-entry' });
      await writeFile(path, `${await readFile(path, 'utf8')}carol:$apr1$x$y\n`);
      assert.equal(await users.verify('alice', 'two'), true);
      assert.equal(await users.verify('alice', 'one'), false);
      assert.match(warnings.at(-1)!, /only bcrypt entries are supported/, 'a later read reports its ignored lines too');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('passwords are checked off the event loop: with bcrypt unusable on the main thread, sign-ins still verify', async () => {
    const dir = await tempDir();
    const saved = { compare: bcrypt.compare, compareSync: bcrypt.compareSync, hash: bcrypt.hash, hashSync: bcrypt.hashSync };
    try {
      const path = join(dir, 'htpasswd');
      await writeHtpasswd(path, { alice: 'one' });
      const onMainThread = () => { throw new Error('bcrypt ran on the event loop'); };
      Object.assign(bcrypt, { compare: onMainThread, compareSync: onMainThread, hash: onMainThread, hashSync: onMainThread });
      const users = new Htpasswd(path);
      assert.equal(await users.verify('alice', 'one'), true);
      assert.equal(await users.verify('alice', 'two'), false);
      assert.equal(await users.verify('nobody', 'one'), false);
    } finally {
      Object.assign(bcrypt, saved);
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('GET /v2/ without credentials → 401 with a Basic challenge', async () => {
    const res = await request(f.app).get('/v2/');
    assert.equal(res.status, 401);
    assert.equal(errorCode(res), 'UNAUTHORIZED');
    assert.match(res.headers['www-authenticate']!, /^Basic realm="berth-test"/);
  });

  it('a wrong password → 401, a right one → 200', async () => {
    assert.equal((await request(f.app).get('/v2/').set('Authorization', basic('alice', 'nope'))).status, 401);
    assert.equal((await request(f.app).get('/v2/').set('Authorization', basic('nobody', 'x'))).status, 401);
    assert.equal((await request(f.app).get('/v2/').set('Authorization', alice)).status, 200);
  });

  it('a user owns their namespace: alice pushes to alice/app', async () => {
    assert.equal((await pushAs(alice, 'alice/app', 'a')).status, 201);
  });

  it('a signed-in user without rights → 403 DENIED and nothing written', async () => {
    const res = await pushAs(alice, 'bob/app', 'sneaky');
    assert.equal(res.status, 403);
    assert.equal(errorCode(res), 'DENIED');
    assert.equal((await request(f.app).head(`/v2/bob/app/blobs/${digestOf('sneaky')}`).set('Authorization', basic('bob', PASSWORDS.bob))).status, 404);
  });

  it('team grants: alice and bob push to acme/*, carol may only pull acme/app', async () => {
    assert.equal((await pushAs(basic('bob', PASSWORDS.bob), 'acme/tools', 'b')).status, 201);
    assert.equal((await pushAs(carol, 'acme/app', 'c')).status, 403);
    assert.equal((await pushAs(alice, 'acme/app', 'c')).status, 201);
    assert.equal((await request(f.app).get(`/v2/acme/app/blobs/${digestOf('c')}`).set('Authorization', carol)).status, 200);
    assert.equal((await request(f.app).get(`/v2/acme/tools/blobs/${digestOf('b')}`).set('Authorization', carol)).status, 403);
  });

  it('public repositories: anonymous pull works, anonymous push → 401', async () => {
    await pushAs(basic('root', PASSWORDS.root), 'library/base', 'pub');
    assert.equal((await request(f.app).get(`/v2/library/base/blobs/${digestOf('pub')}`)).status, 200);
    const res = await pushAs(undefined, 'library/base', 'anon');
    assert.equal(res.status, 401);
    assert.match(res.headers['www-authenticate']!, /^Basic /);
  });

  it('deleting needs the delete right: team members (pull, push) cannot delete', async () => {
    const cfg = Buffer.from('{}');
    const res = await request(f.app).delete(`/v2/acme/tools/blobs/${digestOf(cfg)}`).set('Authorization', alice);
    assert.equal(res.status, 403);
  });

  it('the catalog shows only what the caller may pull', async () => {
    const body = imageManifest({ digest: digestOf('a'), size: 1 }, []);
    await request(f.app).put('/v2/alice/app/manifests/v1').set('Authorization', alice).set('Content-Type', MediaType.OciManifest).send(body.toString());
    const asCarol = await request(f.app).get('/v2/_catalog').set('Authorization', carol);
    assert.deepEqual(asCarol.body.repositories, ['acme/app', 'library/base']);
    const asAlice = await request(f.app).get('/v2/_catalog').set('Authorization', alice);
    assert.deepEqual(asAlice.body.repositories, ['acme/app', 'acme/tools', 'alice/app', 'library/base']);
    const asRoot = await request(f.app).get('/v2/_catalog').set('Authorization', basic('root', PASSWORDS.root));
    assert.deepEqual(asRoot.body.repositories, ['acme/app', 'acme/tools', 'alice/app', 'library/base']);
  });

  it('names are validated before rules: traversal and case tricks cannot reach another namespace', async () => {
    for (const name of ['alice/../bob', 'alice/%2e%2e/bob', 'alice%2fbob', 'Alice/x', 'alice//bob']) {
      const res = await pushAs(alice, name, 'trick');
      assert.equal(res.status, 400, name);
      assert.equal(errorCode(res), 'NAME_INVALID', name);
    }
  });

  it('mounting from a repository the caller cannot pull falls back to an upload (202), never a 201', async () => {
    await pushAs(basic('bob', PASSWORDS.bob), 'bob/secret', 'secret layer');
    const res = await request(f.app).post(`/v2/alice/steal/blobs/uploads/?mount=${digestOf('secret layer')}&from=bob/secret`).set('Authorization', alice);
    assert.equal(res.status, 202);
    assert.equal((await request(f.app).head(`/v2/alice/steal/blobs/${digestOf('secret layer')}`).set('Authorization', alice)).status, 404);
  });

  it('writes need pull as well as push (as distribution asks): a push-only grant cannot probe which blobs a repository holds', async () => {
    await pushAs(basic('bob', PASSWORDS.bob), 'acme/drop', 'held layer');
    const rules = join(f.dir, 'push-only.yml');
    await writeFile(rules, 'rules:\n  - { users: [carol], repositories: "acme/drop", actions: [push] }\n');
    const app = createApp({}, { storage: f.storage, auth: await createAuth({ ...f.config, access: rules }) });
    const manifest = imageManifest({ digest: digestOf('held layer'), size: 10 }, []);
    const put = await request(app).put('/v2/acme/drop/manifests/probe').set('Authorization', carol).set('Content-Type', MediaType.OciManifest).send(manifest);
    assert.equal(put.status, 403, 'a 201 or MANIFEST_BLOB_UNKNOWN would tell whether the blob is there');
    assert.equal(errorCode(put), 'DENIED');
    const upload = await request(app).post(`/v2/acme/drop/blobs/uploads/?digest=${digestOf('x')}`).set('Authorization', carol).set('Content-Type', 'application/octet-stream').send('x');
    assert.equal(upload.status, 403);
  });
});
