import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { errorCode } from '../helpers/push.js';
import { testApp, type TestApp } from '../helpers/registry.js';

describe('base endpoint, unknown routes, operations', () => {
  let t: TestApp;
  before(async () => { t = await testApp(); });
  after(() => t.cleanup());

  it('GET /v2/ → 200 with Docker-Distribution-API-Version', async () => {
    const res = await request(t.app).get('/v2/');
    assert.equal(res.status, 200);
    assert.equal(res.headers['docker-distribution-api-version'], 'registry/2.0');
    assert.deepEqual(res.body, {});
  });

  it('GET /v2 without the trailing slash works too', async () => {
    assert.equal((await request(t.app).get('/v2')).status, 200);
  });

  it('an unknown path → JSON 404 NOT_FOUND', async () => {
    const res = await request(t.app).get('/nope/at/all');
    assert.equal(res.status, 404);
    assert.equal(errorCode(res), 'NOT_FOUND');
    assert.match(res.headers['content-type']!, /application\/json/);
  });

  it('an unknown /v2 path → JSON 404', async () => {
    const res = await request(t.app).get('/v2/foo/bar/baz');
    assert.equal(res.status, 404);
    assert.equal(errorCode(res), 'NOT_FOUND');
  });

  it('a wrong method on a known route → 405 UNSUPPORTED with Allow', async () => {
    const res = await request(t.app).post('/v2/foo/tags/list');
    assert.equal(res.status, 405);
    assert.equal(errorCode(res), 'UNSUPPORTED');
    assert.equal(res.headers.allow, 'GET, HEAD');
  });

  it('every response carries a request id; a sane client-given X-Request-Id is echoed', async () => {
    const res = await request(t.app).get('/v2/').set('X-Request-Id', 'abc-123');
    assert.equal(res.headers['x-request-id'], 'abc-123');
    const res2 = await request(t.app).get('/v2/').set('X-Request-Id', 'bad id\twith junk');
    assert.match(res2.headers['x-request-id']!, /^[0-9a-f-]{36}$/);
  });

  it('GET /healthz → 200 ok with the storage name', async () => {
    const res = await request(t.app).get('/healthz');
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { status: 'ok', storage: 'filesystem' });
  });

  it('GET /metrics → Prometheus text counting requests by route and status', async () => {
    await request(t.app).get('/v2/');
    const res = await request(t.app).get('/metrics');
    assert.equal(res.status, 200);
    assert.match(res.text, /berth_http_requests_total\{method="GET",route="base",status="200"\} \d+/);
  });
});

describe('shutdown', () => {
  it('while draining, new requests get 503 UNAVAILABLE and Connection: close', async () => {
    let draining = false;
    const { createApp } = await import('../../server/app.js');
    const t = await testApp();
    try {
      const app = createApp({}, { storage: t.storage, isShuttingDown: () => draining });
      assert.equal((await request(app).get('/v2/')).status, 200);
      draining = true;
      const res = await request(app).get('/v2/');
      assert.equal(res.status, 503);
      assert.equal(errorCode(res), 'UNAVAILABLE');
      assert.equal(res.headers.connection, 'close');
    } finally {
      await t.cleanup();
    }
  });
});
