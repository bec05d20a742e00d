// The registry on S3: presigned redirects when configured, and a clear 503 when S3 is unreachable.
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { createApp } from '../../server/app.js';
import { digestOf } from '../../oci/digest.js';
import { S3Adapter } from '../../storage-adapters/s3.js';
import { freshBucket, type TestBucket } from '../helpers/rgw.js';
import { errorCode } from '../helpers/push.js';

describe('registry on S3: redirects and backend failures', () => {
  let bucket: TestBucket;
  before(async () => { bucket = await freshBucket('berth-redirect'); });
  after(() => bucket.cleanup());

  it('with redirect on, blob GET answers 307 to a presigned URL that serves the bytes without the registry\'s credentials', async () => {
    const app = createApp({}, { storage: S3Adapter.fromConfig(bucket.adapterOptions({ redirect: true })) });
    const body = Buffer.from('redirected blob');
    const d = digestOf(body);
    assert.equal((await request(app).post(`/v2/r/blobs/uploads/?digest=${d}`).set('Content-Type', 'application/octet-stream').send(body)).status, 201);
    const res = await request(app).get(`/v2/r/blobs/${d}`).set('Authorization', 'Bearer secret-registry-token').redirects(0);
    assert.equal(res.status, 307);
    const location = res.headers.location!;
    assert.ok(location.startsWith(bucket.endpoint.endpoint), location);
    assert.doesNotMatch(location, /secret-registry-token/);
    const direct = await fetch(location);
    assert.equal(direct.status, 200);
    assert.ok(Buffer.from(await direct.arrayBuffer()).equals(body));
    // an unknown blob is still a 404 from the registry, never a redirect
    assert.equal((await request(app).get(`/v2/r/blobs/${digestOf('nope')}`).redirects(0)).status, 404);
  });

  it('without redirect, blob GET streams through the registry', async () => {
    const app = createApp({}, { storage: S3Adapter.fromConfig(bucket.adapterOptions()) });
    const body = Buffer.from('proxied blob');
    const d = digestOf(body);
    await request(app).post(`/v2/p/blobs/uploads/?digest=${d}`).set('Content-Type', 'application/octet-stream').send(body);
    const res = await request(app).get(`/v2/p/blobs/${d}`).buffer(true);
    assert.equal(res.status, 200);
    assert.ok(Buffer.from(res.body as Buffer).equals(body));
  });

  it('S3 unreachable → 503 UNAVAILABLE with Retry-After, no stack trace, no credentials in the answer', async () => {
    const dead = S3Adapter.fromConfig({ ...bucket.adapterOptions(), regionendpoint: 'http://127.0.0.1:9', maxattempts: 1 });
    const app = createApp({}, { storage: dead });
    const res = await request(app).get(`/v2/x/tags/list`);
    assert.equal(res.status, 503);
    assert.equal(errorCode(res), 'UNAVAILABLE');
    assert.equal(res.headers['retry-after'], '5');
    assert.doesNotMatch(res.text, new RegExp(bucket.endpoint.secretAccessKey));
    assert.doesNotMatch(res.text, /at .*\.js:\d+/);
  });

  it('S3 stalled (accepts, never answers) → blob HEAD, GET and a monolithic push are 503 UNAVAILABLE after readtimeout, not hung', async () => {
    const sockets = new Set<Socket>();
    const silent = createServer((c) => { sockets.add(c); c.resume(); c.on('close', () => sockets.delete(c)); });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const port = (silent.address() as AddressInfo).port;
    const storage = S3Adapter.fromConfig({ ...bucket.adapterOptions(), regionendpoint: `http://127.0.0.1:${port}`, readtimeout: 300 });
    try {
      const app = createApp({}, { storage });
      const d = digestOf('stalled');
      for (const res of [
        await request(app).head(`/v2/s/blobs/${d}`),
        await request(app).get(`/v2/s/blobs/${d}`),
        await request(app).post(`/v2/s/blobs/uploads/?digest=${d}`).set('Content-Type', 'application/octet-stream').send('stalled'),
      ]) {
        assert.equal(res.status, 503, res.text);
        assert.equal(res.headers['retry-after'], '5');
      }
    } finally {
      await storage.close();
      for (const c of sockets) c.destroy();
      await new Promise((r) => silent.close(r));
    }
  });
});
