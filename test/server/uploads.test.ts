import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { createApp } from '../../server/app.js';
import { digestOf } from '../../oci/digest.js';
import { errorCode, pushBlob } from '../helpers/push.js';
import { startTestServer, testApp, type TestApp } from '../helpers/registry.js';

const blobUrl = (name: string, d: string) => `/v2/${name}/blobs/${d}`;

async function startSession(t: TestApp, name: string): Promise<string> {
  const res = await request(t.app).post(`/v2/${name}/blobs/uploads/`);
  assert.equal(res.status, 202);
  assert.match(res.headers.location!, new RegExp(`^/v2/${name}/blobs/uploads/[0-9a-f-]{36}$`));
  assert.equal(res.headers.range, '0-0');
  assert.ok(res.headers['docker-upload-uuid']);
  return res.headers.location!;
}

/** Runs `fn` with the app listening on a loopback port (for raw requests supertest cannot make). */
async function onPort(app: TestApp['app'], fn: (port: number) => Promise<void>): Promise<void> {
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  try { await fn((server.address() as AddressInfo).port); } finally { server.close(); }
}

describe('uploads', () => {
  let t: TestApp;
  before(async () => { t = await testApp(); });
  after(() => t.cleanup());

  it('monolithic POST ?digest= → 201 with Location and Docker-Content-Digest; the blob is readable', async () => {
    const body = Buffer.from('monolithic body');
    const d = digestOf(body);
    const res = await request(t.app).post(`/v2/mono/blobs/uploads/?digest=${d}`).set('Content-Type', 'application/octet-stream').send(body);
    assert.equal(res.status, 201);
    assert.equal(res.headers.location, blobUrl('mono', d));
    assert.equal(res.headers['docker-content-digest'], d);
    const got = await request(t.app).get(blobUrl('mono', d)).buffer(true);
    assert.equal(Buffer.from(got.body as Buffer).toString(), 'monolithic body');
    assert.equal((await request(t.app).head(blobUrl('mono', d))).headers['content-length'], String(body.length));
  });

  it('POST then PUT ?digest= with the whole body → 201', async () => {
    const loc = await startSession(t, 'postput');
    const body = Buffer.from('post then put');
    const d = digestOf(body);
    const res = await request(t.app).put(`${loc}?digest=${d}`).set('Content-Type', 'application/octet-stream').send(body);
    assert.equal(res.status, 201);
    assert.equal(res.headers.location, blobUrl('postput', d));
  });

  it('streamed PATCH without Content-Range, then PUT with no body → 201', async () => {
    const loc = await startSession(t, 'stream');
    const body = Buffer.from('x'.repeat(1000));
    const patch = await request(t.app).patch(loc).set('Content-Type', 'application/octet-stream').send(body);
    assert.equal(patch.status, 202);
    assert.equal(patch.headers.range, '0-999');
    assert.equal(patch.headers.location, loc);
    const put = await request(t.app).put(`${loc}?digest=${digestOf(body)}`);
    assert.equal(put.status, 201);
  });

  it('chunked PATCH in order with Content-Range; GET status → 204 + Range; PUT with a last chunk → 201', async () => {
    const loc = await startSession(t, 'chunked');
    const whole = Buffer.from('abcdefghijklmnopqrstuvwxyz0123456789');
    const [c1, c2, c3] = [whole.subarray(0, 10), whole.subarray(10, 22), whole.subarray(22)];
    const p1 = await request(t.app).patch(loc).set('Content-Range', '0-9').set('Content-Type', 'application/octet-stream').send(c1);
    assert.equal(p1.status, 202);
    assert.equal(p1.headers.range, '0-9');
    const status = await request(t.app).get(loc);
    assert.equal(status.status, 204);
    assert.equal(status.headers.range, '0-9');
    assert.equal(status.headers.location, loc);
    const p2 = await request(t.app).patch(loc).set('Content-Range', '10-21').set('Content-Type', 'application/octet-stream').send(c2);
    assert.equal(p2.headers.range, '0-21');
    const put = await request(t.app).put(`${loc}?digest=${digestOf(whole)}`).set('Content-Range', '22-35')
      .set('Content-Type', 'application/octet-stream').send(c3);
    assert.equal(put.status, 201);
    const got = await request(t.app).get(blobUrl('chunked', digestOf(whole))).buffer(true);
    assert.equal(Buffer.from(got.body as Buffer).toString(), whole.toString());
  });

  it('an out-of-order chunk → 416 with the current Range, and the session survives', async () => {
    const loc = await startSession(t, 'ooo');
    const first = await request(t.app).patch(loc).set('Content-Range', '5-9').set('Content-Type', 'application/octet-stream').send(Buffer.from('56789'));
    assert.equal(first.status, 416);
    assert.equal(first.headers.range, '0-0');
    assert.equal(errorCode(first), 'RANGE_INVALID');
    const ok = await request(t.app).patch(loc).set('Content-Range', '0-4').set('Content-Type', 'application/octet-stream').send(Buffer.from('01234'));
    assert.equal(ok.status, 202);
    const dup = await request(t.app).patch(loc).set('Content-Range', '0-4').set('Content-Type', 'application/octet-stream').send(Buffer.from('01234'));
    assert.equal(dup.status, 416);
    assert.equal(dup.headers.range, '0-4');
    const lastOutOfOrder = await request(t.app).put(`${loc}?digest=${digestOf('0123456789')}`).set('Content-Range', '7-9')
      .set('Content-Type', 'application/octet-stream').send(Buffer.from('789'));
    assert.equal(lastOutOfOrder.status, 416);
    const status = await request(t.app).get(loc);
    assert.equal(status.status, 204);
    assert.equal(status.headers.range, '0-4');
    const done = await request(t.app).put(`${loc}?digest=${digestOf('0123456789')}`).set('Content-Range', '5-9')
      .set('Content-Type', 'application/octet-stream').send(Buffer.from('56789'));
    assert.equal(done.status, 201);
  });

  it('Content-Length that disagrees with Content-Range → 416 and nothing appended', async () => {
    const loc = await startSession(t, 'mismatch');
    const res = await request(t.app).patch(loc).set('Content-Range', '0-9').set('Content-Type', 'application/octet-stream').send(Buffer.from('abc'));
    assert.equal(res.status, 416);
    assert.deepEqual([res.headers.range, res.headers.location], ['0-0', loc]);
    assert.equal((await request(t.app).get(loc)).headers.range, '0-0');
  });

  it('received blob bytes are counted in /metrics once per byte, across chunks and the final PUT', async () => {
    const count = async () => Number(/berth_blob_bytes_received_total (\d+)/.exec((await request(t.app).get('/metrics')).text)?.[1] ?? 0);
    const before = await count();
    const loc = await startSession(t, 'metered');
    await request(t.app).patch(loc).set('Content-Range', '0-9').set('Content-Type', 'application/octet-stream').send(Buffer.from('0123456789'));
    await request(t.app).put(`${loc}?digest=${digestOf('0123456789abc')}`).set('Content-Range', '10-12').set('Content-Type', 'application/octet-stream').send(Buffer.from('abc'));
    assert.equal(await count(), before + 13);
  });

  it('a malformed Content-Range → 416 RANGE_INVALID', async () => {
    const loc = await startSession(t, 'badrange');
    const res = await request(t.app).patch(loc).set('Content-Range', 'bytes=zz').send(Buffer.from('abc'));
    assert.equal(res.status, 416);
    assert.equal(errorCode(res), 'RANGE_INVALID');
    // like every 416 of an upload: where it stands, and where to go on
    assert.deepEqual([res.headers.range, res.headers.location], ['0-0', loc]);
  });

  it('PUT with a digest that does not match → 400 DIGEST_INVALID and nothing stored', async () => {
    const body = Buffer.from('real content');
    const wrong = digestOf('other content');
    const res = await request(t.app).post(`/v2/wrong/blobs/uploads/?digest=${wrong}`).set('Content-Type', 'application/octet-stream').send(body);
    assert.equal(res.status, 400);
    assert.equal(errorCode(res), 'DIGEST_INVALID');
    assert.equal((await request(t.app).head(blobUrl('wrong', wrong))).status, 404);
    assert.equal((await request(t.app).head(blobUrl('wrong', digestOf(body)))).status, 404);
    const blobsDir = join(t.root, 'blobs', 'sha256');
    const prefixes = await readdir(blobsDir).catch((): string[] => []);
    for (const d of [wrong, digestOf(body)]) assert.ok(!prefixes.includes(d.slice(7, 9)) || !(await readdir(join(blobsDir, d.slice(7, 9)))).includes(d.slice(7)));
  });

  it('PUT without ?digest= → 400 DIGEST_INVALID; with a malformed digest → 400', async () => {
    const loc = await startSession(t, 'nodigest');
    assert.equal(errorCode(await request(t.app).put(loc)), 'DIGEST_INVALID');
    assert.equal((await request(t.app).put(`${loc}?digest=sha256:nothex`)).status, 400);
  });

  it('sha512 digests are verified and accepted', async () => {
    const body = Buffer.from('sha512 content');
    const d = digestOf(body, 'sha512');
    const loc = await startSession(t, 'sha512');
    await request(t.app).patch(loc).set('Content-Type', 'application/octet-stream').send(body);
    const res = await request(t.app).put(`${loc}?digest=${d}`);
    assert.equal(res.status, 201);
    assert.equal((await request(t.app).head(blobUrl('sha512', d))).headers['docker-content-digest'], d);
  });

  it('an empty blob can be uploaded and served with Content-Length 0', async () => {
    const d = digestOf(Buffer.alloc(0));
    const loc = await startSession(t, 'empty');
    assert.equal((await request(t.app).put(`${loc}?digest=${d}`)).status, 201);
    const head = await request(t.app).head(blobUrl('empty', d));
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], '0');
  });

  it('unknown or malformed upload ids → 404 BLOB_UPLOAD_UNKNOWN for GET, PATCH, PUT and DELETE', async () => {
    for (const id of ['3f2b6e52-1111-4a4a-9b9b-000000000000', 'not-a-uuid', '..']) {
      const url = `/v2/nosuch/blobs/uploads/${id}`;
      assert.equal(errorCode(await request(t.app).get(url)), 'BLOB_UPLOAD_UNKNOWN', id);
      assert.equal(errorCode(await request(t.app).patch(url).send(Buffer.from('x'))), 'BLOB_UPLOAD_UNKNOWN', id);
      assert.equal(errorCode(await request(t.app).put(`${url}?digest=${digestOf('x')}`).send(Buffer.from('x'))), 'BLOB_UPLOAD_UNKNOWN', id);
      assert.equal((await request(t.app).delete(url)).status, 404, id);
    }
  });

  it('an upload session belongs to its repository: another name cannot continue it, and trying leaves nothing behind', async () => {
    const loc = await startSession(t, 'owner');
    const id = loc.split('/').pop()!;
    assert.equal(errorCode(await request(t.app).get(`/v2/intruder/blobs/uploads/${id}`)), 'BLOB_UPLOAD_UNKNOWN');
    assert.equal(errorCode(await request(t.app).patch(`/v2/intruder/blobs/uploads/${id}`).send(Buffer.from('x'))), 'BLOB_UPLOAD_UNKNOWN');
    assert.equal(errorCode(await request(t.app).put(`/v2/ghost/blobs/uploads/${id}?digest=${digestOf('x')}`).send(Buffer.from('x'))), 'BLOB_UPLOAD_UNKNOWN');
    for (const name of ['intruder', 'ghost']) {
      assert.deepEqual(await readdir(join(t.root, 'repositories', name)).catch(() => []), [], `nothing made under ${name}`);
    }
  });

  it('DELETE while a PUT still sends its body: the PUT completes (201), then the session is unknown (404), never a 500', async () => {
    await onPort(t.app, async (port) => {
      const loc = await startSession(t, 'put-delete');
      const body = Buffer.alloc(2 << 20, 7);
      let put!: Promise<{ status: number; body: string }>;
      const req = httpRequest({ host: '127.0.0.1', port, method: 'PUT', path: `${loc}?digest=${digestOf(body)}`,
        headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(body.length) } });
      put = new Promise((resolve, reject) => {
        req.on('response', (res) => { let text = ''; res.on('data', (d) => { text += d; }); res.on('end', () => resolve({ status: res.statusCode!, body: text })); });
        req.on('error', reject);
      });
      req.write(body.subarray(0, 1 << 20));
      await new Promise((r) => setTimeout(r, 100));
      const cancel = request(t.app).delete(loc).then((r) => r);
      await new Promise((r) => setTimeout(r, 100));
      req.end(body.subarray(1 << 20));
      const [p, d] = await Promise.all([put, cancel]);
      assert.equal(p.status, 201, p.body);
      assert.equal(d.status, 404);
      assert.equal(errorCode(d), 'BLOB_UPLOAD_UNKNOWN');
      assert.equal((await request(t.app).head(blobUrl('put-delete', digestOf(body)))).status, 200);
    });
  });

  it('a stalled upload is cut off after http.idletimeout: its partial chunk is undone and the session goes on', async () => {
    const srv = await startTestServer({ REGISTRY_HTTP_IDLETIMEOUT: '500ms' });
    try {
      const [host, port] = srv.host.split(':') as [string, string];
      const post = await fetch(`${srv.url}/v2/stall/blobs/uploads/`, { method: 'POST' });
      const loc = post.headers.get('location')!;
      await fetch(`${srv.url}${loc}`, { method: 'PATCH', body: 'hello', headers: { 'Content-Range': '0-4', 'Content-Type': 'application/octet-stream' } });
      // 10 of the 100 bytes it announces, then silence
      const sock = connect(Number(port), host);
      const closed = new Promise<void>((resolve) => sock.on('close', () => resolve()));
      sock.on('error', () => undefined);
      sock.write(`PATCH ${loc} HTTP/1.1\r\nHost: ${srv.host}\r\nContent-Type: application/octet-stream\r\nContent-Length: 100\r\n\r\n0123456789`);
      const waited = await Promise.race([closed.then(() => 'closed'), new Promise((r) => setTimeout(() => r('still open'), 10_000))]);
      assert.equal(waited, 'closed', 'the server closes a socket that carries nothing for http.idletimeout');
      // the undoing of the chunk follows
      let range: string | null = '';
      for (let i = 0; i < 100 && range !== '0-4'; i++) {
        range = (await fetch(`${srv.url}${loc}`)).headers.get('range');
        if (range !== '0-4') await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(range, '0-4', 'the stalled bytes are not part of the upload');
      const put = await fetch(`${srv.url}${loc}?digest=${digestOf('hello world')}`, { method: 'PUT', body: ' world' });
      assert.equal(put.status, 201);
    } finally {
      await srv.stop();
    }
  });

  it('DELETE cancels a session → 204, then it is unknown', async () => {
    const loc = await startSession(t, 'cancel');
    await request(t.app).patch(loc).send(Buffer.from('partial'));
    assert.equal((await request(t.app).delete(loc)).status, 204);
    assert.equal((await request(t.app).get(loc)).status, 404);
  });

  it('upload state lives in storage: a new app over the same storage continues the upload', async () => {
    const loc = await startSession(t, 'restart');
    await request(t.app).patch(loc).set('Content-Range', '0-4').send(Buffer.from('hello'));
    const restarted = createApp({}, { storage: t.storage });
    assert.equal((await request(restarted).get(loc)).headers.range, '0-4');
    await request(restarted).patch(loc).set('Content-Range', '5-10').send(Buffer.from(' world'));
    const res = await request(restarted).put(`${loc}?digest=${digestOf('hello world')}`);
    assert.equal(res.status, 201);
  });

  it('cross-repo mount with from → 201 and the blob appears in the target', async () => {
    const d = await pushBlob(t.app, 'source/repo', 'shared layer');
    const res = await request(t.app).post(`/v2/target/repo/blobs/uploads/?mount=${d}&from=source/repo`);
    assert.equal(res.status, 201);
    assert.equal(res.headers.location, blobUrl('target/repo', d));
    assert.equal((await request(t.app).head(blobUrl('target/repo', d))).status, 200);
  });

  it('mount from a repository that lacks the blob → 202 with a fresh session', async () => {
    const d = await pushBlob(t.app, 'has/it', 'only here');
    const res = await request(t.app).post(`/v2/target2/blobs/uploads/?mount=${d}&from=lacks/it`);
    assert.equal(res.status, 202);
    assert.match(res.headers.location!, /^\/v2\/target2\/blobs\/uploads\//);
    assert.equal((await request(t.app).head(blobUrl('target2', d))).status, 404);
  });

  it('mount of a digest that exists nowhere, without from → 202', async () => {
    const res = await request(t.app).post(`/v2/target3/blobs/uploads/?mount=${digestOf('nowhere')}`);
    assert.equal(res.status, 202);
  });

  it('automatic mount without from: 201 when on (default), 202 when off', async () => {
    const d = await pushBlob(t.app, 'auto/src', 'auto mount me');
    assert.equal((await request(t.app).post(`/v2/auto/dst/blobs/uploads/?mount=${d}`)).status, 201);
    const off = createApp({ automaticCrossmount: false }, { storage: t.storage });
    assert.equal((await request(off).post(`/v2/auto/dst2/blobs/uploads/?mount=${d}`)).status, 202);
  });

  it('mount with an invalid from name → 400 NAME_INVALID', async () => {
    const d = await pushBlob(t.app, 'x/src', 'y');
    const res = await request(t.app).post(`/v2/x/dst/blobs/uploads/?mount=${d}&from=../../etc`);
    assert.equal(errorCode(res), 'NAME_INVALID');
  });

  it('concurrent pushes of the same blob into several repositories all succeed, one stored copy', async () => {
    const body = Buffer.alloc(2 << 20, 7);
    const d = digestOf(body);
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) =>
      request(t.app).post(`/v2/race/r${i}/blobs/uploads/?digest=${d}`).set('Content-Type', 'application/octet-stream').send(body)));
    assert.deepEqual(results.map((r) => r.status), [201, 201, 201, 201, 201, 201]);
    for (let i = 0; i < 6; i++) assert.equal((await request(t.app).head(blobUrl(`race/r${i}`, d))).headers['content-length'], String(body.length));
    assert.deepEqual(await readdir(join(t.root, 'blobs', 'sha256', d.slice(7, 9), d.slice(7))), ['data']);
  });

  it('a status request during a PATCH reports only what is committed; the chunk counts once it is in', async () => {
    await onPort(t.app, async (port) => {
      const loc = await startSession(t, 'inflight');
      await request(t.app).patch(loc).set('Content-Range', '0-4').send(Buffer.from('hello'));
      const chunk = Buffer.alloc(2 << 20, 5);
      const req = httpRequest({ host: '127.0.0.1', port, method: 'PATCH', path: loc,
        headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(chunk.length) } });
      const done = new Promise<string | undefined>((resolve, reject) => {
        req.on('response', (res) => { res.resume(); resolve(res.headers.range as string | undefined); });
        req.on('error', reject);
      });
      req.write(chunk.subarray(0, 1 << 20));
      await new Promise((r) => setTimeout(r, 150));
      assert.equal((await request(t.app).get(loc)).headers.range, '0-4', 'mid-chunk');
      req.end(chunk.subarray(1 << 20));
      assert.equal(await done, `0-${5 + chunk.length - 1}`);
      assert.equal((await request(t.app).get(loc)).headers.range, `0-${5 + chunk.length - 1}`);
    });
  });

  it('a client that disconnects mid-PATCH leaves the upload where it was and no blob visible', async () => {
    await onPort(t.app, async (port) => {
      const loc = await startSession(t, 'disconnect');
      await request(t.app).patch(loc).set('Content-Range', '0-4').send(Buffer.from('hello'));
      await new Promise<void>((resolve) => {
        const req = httpRequest({ host: '127.0.0.1', port, method: 'PATCH', path: loc,
          headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(10 << 20) } });
        req.on('error', () => resolve());
        req.write(Buffer.alloc(1 << 20, 1));
        setTimeout(() => { req.destroy(); resolve(); }, 150);
      });
      // the server notices the abort asynchronously; poll until the chunk has been rolled back
      let range = '';
      for (let i = 0; i < 50; i++) {
        range = (await request(t.app).get(loc)).headers.range!;
        if (range === '0-4') break;
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(range, '0-4');
      const res = await request(t.app).put(`${loc}?digest=${digestOf('hello')}`);
      assert.equal(res.status, 201);
    });
  });

  it('a client that disconnects mid monolithic upload leaves no blob and no session behind', async () => {
    await onPort(t.app, async (port) => {
      const full = Buffer.alloc(4 << 20, 3);
      const d = digestOf(full);
      await new Promise<void>((resolve) => {
        const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: `/v2/mono-abort/blobs/uploads/?digest=${d}`,
          headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(full.length) } });
        req.on('error', () => resolve());
        req.write(full.subarray(0, 1 << 20));
        setTimeout(() => { req.destroy(); resolve(); }, 150);
      });
      let uploads: string[] = ['pending'];
      for (let i = 0; i < 50 && uploads.length; i++) {
        uploads = await readdir(join(t.root, 'repositories', 'mono-abort', '_uploads')).catch((): string[] => []);
        if (uploads.length) await new Promise((r) => setTimeout(r, 20));
      }
      assert.deepEqual(uploads, []);
      assert.equal((await request(t.app).head(blobUrl('mono-abort', d))).status, 404);
    });
  });
});
