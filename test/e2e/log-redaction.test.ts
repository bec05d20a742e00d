// The request log never carries credentials: the client's Authorization, nor the signature of the
// presigned S3 URL a redirect hands out (valid for minutes, for anyone who reads the log).
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import request from 'supertest';
import { digestOf } from '../../oci/digest.js';
import { createApp } from '../../server/app.js';
import { S3Adapter } from '../../storage-adapters/s3.js';
import { freshBucket, type TestBucket } from '../helpers/rgw.js';

describe('request log redaction', () => {
  let bucket: TestBucket;
  before(async () => { bucket = await freshBucket('berth-logs'); });
  after(() => bucket.cleanup());

  it('a 307 to a presigned URL is logged without its query; an upload Location and the route stay readable', async () => {
    let logged = '';
    const sink = new Writable({ write(chunk, _enc, cb) { logged += String(chunk); cb(); } });
    const app = createApp({}, { storage: S3Adapter.fromConfig(bucket.adapterOptions({ redirect: true })), logger: pino({ level: 'info' }, sink) });
    const body = Buffer.from('logged blob');
    const d = digestOf(body);
    const start = await request(app).post('/v2/r/blobs/uploads/').set('Authorization', 'Bearer secret-registry-token');
    assert.equal(start.status, 202);
    const loc = start.headers.location!;
    assert.equal((await request(app).put(`${loc}${loc.includes('?') ? '&' : '?'}digest=${d}`).set('Content-Type', 'application/octet-stream').send(body)).status, 201);
    const res = await request(app).get(`/v2/r/blobs/${d}`).redirects(0);
    assert.equal(res.status, 307);
    assert.match(res.headers.location!, /X-Amz-Signature=/);

    assert.match(logged, /"statusCode":307/);
    assert.doesNotMatch(logged, /X-Amz-Signature|X-Amz-Credential|secret-registry-token/);
    assert.match(logged, new RegExp(`"location":"http[^"]*${d.slice(7)}[^"?]*\\?\\[Redacted\\]"`));
    assert.match(logged, /"location":"\/v2\/r\/blobs\/uploads\/[^"?]+(\?[^"]*)?"/, 'an upload session\'s Location is kept');
  });
});
