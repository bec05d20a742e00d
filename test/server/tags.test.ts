import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { MediaType } from '../../oci/media-types.js';
import { errorCode, pushImage } from '../helpers/push.js';
import { testApp, type TestApp } from '../helpers/registry.js';

describe('tags: GET /v2/<name>/tags/list', () => {
  let t: TestApp;
  const tags = ['v1', 'latest', 'V2', 'a_b', '1.0', 'beta-1', 'z'];
  before(async () => {
    t = await testApp();
    const img = await pushImage(t.app, 'org/app', tags[0]);
    for (const tag of tags.slice(1)) {
      await request(t.app).put(`/v2/org/app/manifests/${tag}`).set('Content-Type', MediaType.OciManifest).send(img.manifest.toString());
    }
  });
  after(() => t.cleanup());

  it('lists every tag in lexical (byte) order', async () => {
    const res = await request(t.app).get('/v2/org/app/tags/list');
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { name: 'org/app', tags: [...tags].sort() });
    assert.deepEqual(res.body.tags, ['1.0', 'V2', 'a_b', 'beta-1', 'latest', 'v1', 'z']);
    assert.equal(res.headers.link, undefined);
  });

  it('pages with n and last, with a Link header to the next page', async () => {
    const p1 = await request(t.app).get('/v2/org/app/tags/list?n=3');
    assert.deepEqual(p1.body.tags, ['1.0', 'V2', 'a_b']);
    assert.equal(p1.headers.link, '</v2/org/app/tags/list?n=3&last=a_b>; rel="next"');
    const p2 = await request(t.app).get('/v2/org/app/tags/list?n=3&last=a_b');
    assert.deepEqual(p2.body.tags, ['beta-1', 'latest', 'v1']);
    const p3 = await request(t.app).get('/v2/org/app/tags/list?n=3&last=v1');
    assert.deepEqual(p3.body.tags, ['z']);
    assert.equal(p3.headers.link, undefined);
  });

  it('n=0 returns no tags; last past the end returns none', async () => {
    assert.deepEqual((await request(t.app).get('/v2/org/app/tags/list?n=0')).body.tags, []);
    assert.deepEqual((await request(t.app).get('/v2/org/app/tags/list?last=zzz')).body.tags, []);
  });

  it('an invalid n → 400 PAGINATION_NUMBER_INVALID', async () => {
    for (const n of ['-1', 'abc', '1.5']) {
      assert.equal(errorCode(await request(t.app).get(`/v2/org/app/tags/list?n=${n}`)), 'PAGINATION_NUMBER_INVALID', n);
    }
  });

  it('an unknown repository → 404 NAME_UNKNOWN; an invalid name → 400 NAME_INVALID', async () => {
    assert.equal(errorCode(await request(t.app).get('/v2/no/such/repo/tags/list')), 'NAME_UNKNOWN');
    assert.equal(errorCode(await request(t.app).get('/v2/No/tags/list')), 'NAME_INVALID');
  });
});
