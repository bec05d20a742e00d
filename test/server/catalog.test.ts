import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { errorCode, pushBlob, pushImage } from '../helpers/push.js';
import { testApp, type TestApp } from '../helpers/registry.js';

describe('catalog: GET /v2/_catalog', () => {
  let t: TestApp;
  const repos = ['b', 'a/b/c', 'a', 'a-c', 'org/team/app', 'org/tools'];
  before(async () => {
    t = await testApp();
    for (const r of repos) await pushImage(t.app, r, 'latest');
    await request(t.app).post('/v2/only-an-upload/blobs/uploads/');
  });
  after(() => t.cleanup());

  it('lists repositories (nested ones too) in lexical order; a started upload alone is not a repository', async () => {
    const res = await request(t.app).get('/v2/_catalog');
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.repositories, [...repos].sort());
  });

  it('a repository with only blobs is listed', async () => {
    await pushBlob(t.app, 'blobs-only', 'x');
    assert.ok((await request(t.app).get('/v2/_catalog')).body.repositories.includes('blobs-only'));
  });

  it('pages with n and last, with a Link header', async () => {
    const p1 = await request(t.app).get('/v2/_catalog?n=2');
    assert.deepEqual(p1.body.repositories, ['a', 'a-c']);
    assert.equal(p1.headers.link, '</v2/_catalog?n=2&last=a-c>; rel="next"');
    const p2 = await request(t.app).get('/v2/_catalog?n=2&last=a-c');
    assert.deepEqual(p2.body.repositories, ['a/b/c', 'b']);
  });

  it('an invalid n → 400 PAGINATION_NUMBER_INVALID', async () => {
    assert.equal(errorCode(await request(t.app).get('/v2/_catalog?n=x')), 'PAGINATION_NUMBER_INVALID');
  });
});
