import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { digestOf } from '../../oci/digest.js';
import { errorCode, pushBlob } from '../helpers/push.js';
import { testApp, type TestApp } from '../helpers/registry.js';

describe('blobs: GET/HEAD/DELETE /v2/<name>/blobs/<digest>', () => {
  let t: TestApp;
  const data = Buffer.from('0123456789abcdefghij');
  let digest: string;
  before(async () => {
    t = await testApp();
    digest = await pushBlob(t.app, 'org/team/app', data);
  });
  after(() => t.cleanup());

  it('GET → 200 with the bytes, Docker-Content-Digest, Content-Length, ETag', async () => {
    const res = await request(t.app).get(`/v2/org/team/app/blobs/${digest}`).buffer(true).parse((r, cb) => {
      const chunks: Buffer[] = []; r.on('data', (c: Buffer) => chunks.push(c)); r.on('end', () => cb(null, Buffer.concat(chunks)));
    });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, data);
    assert.equal(res.headers['docker-content-digest'], digest);
    assert.equal(res.headers['content-length'], String(data.length));
    assert.equal(res.headers.etag, `"${digest}"`);
    assert.equal(res.headers['accept-ranges'], 'bytes');
  });

  it('HEAD → 200 with headers and no body', async () => {
    const res = await request(t.app).head(`/v2/org/team/app/blobs/${digest}`);
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-length'], String(data.length));
    assert.equal(res.headers['docker-content-digest'], digest);
  });

  it('If-None-Match with the ETag → 304', async () => {
    const res = await request(t.app).get(`/v2/org/team/app/blobs/${digest}`).set('If-None-Match', `"${digest}"`);
    assert.equal(res.status, 304);
  });

  for (const [range, status, expected, contentRange] of [
    ['bytes=0-3', 206, '0123', 'bytes 0-3/20'],
    ['bytes=10-', 206, 'abcdefghij', 'bytes 10-19/20'],
    ['bytes=-5', 206, 'fghij', 'bytes 15-19/20'],
    ['bytes=18-100', 206, 'ij', 'bytes 18-19/20'],
  ] as const) {
    it(`Range ${range} → ${status} ${contentRange}`, async () => {
      const res = await request(t.app).get(`/v2/org/team/app/blobs/${digest}`).set('Range', range);
      assert.equal(res.status, status);
      assert.equal(res.headers['content-range'], contentRange);
      assert.equal(Buffer.from(res.body as Buffer).toString() || res.text, expected);
    });
  }

  for (const range of ['bytes=20-', 'bytes=25-30', 'bytes=5-2', 'bytes=-0']) {
    it(`unsatisfiable Range ${range} → 416 with Content-Range bytes */20`, async () => {
      const res = await request(t.app).get(`/v2/org/team/app/blobs/${digest}`).set('Range', range);
      assert.equal(res.status, 416);
      assert.equal(res.headers['content-range'], 'bytes */20');
      assert.equal(errorCode(res), 'RANGE_INVALID');
      // an error is not the blob: nothing marks it cacheable or names the blob's digest
      for (const h of ['cache-control', 'etag', 'docker-content-digest']) assert.equal(res.headers[h], undefined, h);
    });
  }

  it('a multi-range request is answered with the whole blob (200)', async () => {
    const res = await request(t.app).get(`/v2/org/team/app/blobs/${digest}`).set('Range', 'bytes=0-1,5-6');
    assert.equal(res.status, 200);
  });

  it('a blob not linked in this repository → 404 BLOB_UNKNOWN even though it exists elsewhere', async () => {
    const res = await request(t.app).get(`/v2/other/repo/blobs/${digest}`);
    assert.equal(res.status, 404);
    assert.equal(errorCode(res), 'BLOB_UNKNOWN');
  });

  it('an unknown digest → 404 BLOB_UNKNOWN; HEAD too', async () => {
    const unknown = digestOf('nothing here');
    assert.equal(errorCode(await request(t.app).get(`/v2/org/team/app/blobs/${unknown}`)), 'BLOB_UNKNOWN');
    assert.equal((await request(t.app).head(`/v2/org/team/app/blobs/${unknown}`)).status, 404);
  });

  for (const bad of ['sha256:zz', 'sha256:' + 'A'.repeat(64), 'md5:d41d8cd98f00b204e9800998ecf8427e', 'sha256', 'sha256:' + 'a'.repeat(63), '%2e%2e']) {
    it(`a malformed digest "${bad.slice(0, 20)}" → 400 DIGEST_INVALID, never 500`, async () => {
      const res = await request(t.app).get(`/v2/org/team/app/blobs/${bad}`);
      assert.equal(res.status, 400);
      assert.equal(errorCode(res), 'DIGEST_INVALID');
    });
  }

  for (const bad of ['Upper/case', 'a/../b', '..', 'a//b', '%2e%2e/x', 'a%2fb', '-lead', 'trail-', 'a/./b', '_x']) {
    it(`a hostile or invalid name "${bad}" → 400 NAME_INVALID`, async () => {
      const res = await request(t.app).get(`/v2/${bad}/blobs/${digest}`);
      assert.equal(res.status, 400);
      assert.equal(errorCode(res), 'NAME_INVALID');
    });
  }

  it('a name longer than 255 characters → 400 NAME_INVALID', async () => {
    const res = await request(t.app).get(`/v2/${'a'.repeat(256)}/blobs/${digest}`);
    assert.equal(res.status, 400);
    assert.equal(errorCode(res), 'NAME_INVALID');
  });

  it('DELETE → 202, then GET → 404; a second DELETE → 404', async () => {
    const d = await pushBlob(t.app, 'del/repo', 'to be deleted');
    assert.equal((await request(t.app).delete(`/v2/del/repo/blobs/${d}`)).status, 202);
    assert.equal((await request(t.app).head(`/v2/del/repo/blobs/${d}`)).status, 404);
    const again = await request(t.app).delete(`/v2/del/repo/blobs/${d}`);
    assert.equal(again.status, 404);
    assert.equal(errorCode(again), 'BLOB_UNKNOWN');
  });

  it('DELETE with deletes disabled → 405 UNSUPPORTED and the blob stays', async () => {
    const off = await testApp({ deleteEnabled: false });
    try {
      const d = await pushBlob(off.app, 'keep/repo', 'kept');
      const res = await request(off.app).delete(`/v2/keep/repo/blobs/${d}`);
      assert.equal(res.status, 405);
      assert.equal(errorCode(res), 'UNSUPPORTED');
      assert.equal((await request(off.app).head(`/v2/keep/repo/blobs/${d}`)).status, 200);
    } finally {
      await off.cleanup();
    }
  });
});
