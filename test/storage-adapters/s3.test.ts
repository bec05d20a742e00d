// The S3 adapter against a real S3: the single-node Ceph RGW of scripts/rgw.sh (started on demand; when it
// cannot start, these tests fail). A fresh bucket per suite.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { createAdapter } from '../../storage-adapters/index.js';
import { MAX_COPY, MIN_PART, planAssembly, S3Adapter } from '../../storage-adapters/s3.js';
import { InvalidOffsetError, PathNotFoundError, StorageError } from '../../storage-adapters/types.js';
import { ensureRgw, freshBucket, type TestBucket } from '../helpers/rgw.js';
import { adapterSuite } from './suite.js';

const MiB = 1024 * 1024;

// Its own test, so that an S3 that cannot be started shows up as a failure, not only as cancelled tests.
it('s3: the test RGW is up (scripts/rgw.sh start, or BERTH_S3_ENDPOINT)', async (t) => {
  const t0 = performance.now();
  const ep = await ensureRgw();
  t.diagnostic(`S3 at ${ep.endpoint} ready after ${Math.round(performance.now() - t0)} ms (RGW start ${ep.startMs} ms; 0 = it was already running)`);
});

adapterSuite('s3', async () => {
  const b = await freshBucket();
  const adapter = await createAdapter('s3', b.adapterOptions({ rootdirectory: '/registry/v2', chunksize: 5 * MiB }));
  return { adapter, cleanup: async () => { await adapter.close?.(); await b.cleanup(); } };
});

async function readAll(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function append(s: S3Adapter, key: string, data: Buffer): Promise<number> {
  const w = await s.write(key, { append: true });
  await pipeline(Readable.from([data]), w);
  await w.commit();
  return w.size;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('s3 adapter: appends, assembly, ranges', () => {
  let b: TestBucket;
  let s: S3Adapter;
  let other: S3Adapter; // a second "server instance" on the same bucket
  const ROOT = 'berth';

  /** Object names in the bucket under a prefix (relative to ROOT). */
  async function rawNames(prefix = ''): Promise<string[]> {
    const out: string[] = [];
    let token: string | undefined;
    do {
      const page = await b.client.send(new ListObjectsV2Command({ Bucket: b.bucket, Prefix: `${ROOT}/${prefix}`, ContinuationToken: token }));
      for (const o of page.Contents ?? []) out.push(o.Key!);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out.sort();
  }

  before(async () => {
    b = await freshBucket();
    s = (await createAdapter('s3', b.adapterOptions({ rootdirectory: ROOT, chunksize: 5 * MiB }))) as S3Adapter;
    other = S3Adapter.fromConfig(b.adapterOptions({ rootdirectory: `/${ROOT}/`, chunksize: String(5 * MiB) }));
  });
  after(async () => {
    await s?.close();
    await other?.close();
    await b?.cleanup();
  });

  it('many tiny appends from two instances, then move(), give the exact bytes and leave no parts', async () => {
    const key = '/uploads/tiny/data';
    const pieces: Buffer[] = [];
    let size = 0;
    for (let i = 0; i < 100; i++) {
      const piece = randomBytes(1 + ((i * 37) % 300));
      pieces.push(piece);
      size = await append(i % 2 ? other : s, key, piece);
    }
    const whole = Buffer.concat(pieces);
    assert.equal(size, whole.length);
    assert.equal((await s.stat(key)).size, whole.length);
    assert.equal((await other.stat(key)).isDirectory, false);
    assert.deepEqual(await rawNames('uploads/tiny/'), [`${ROOT}/uploads/tiny/data~parts/state`], 'all tail: one state object, no upload');
    assert.ok(sha(await readAll(await s.read(key))) === sha(whole), 'read() streams the parts in order');
    assert.deepEqual(await collect(s.list('/uploads/tiny')), ['/uploads/tiny/data'], 'list shows the appended object once');

    await s.move(key, '/blobs/tiny');
    const back = await readAll(await s.read('/blobs/tiny'));
    assert.equal(back.length, whole.length);
    assert.ok(back.equals(whole));
    await assert.rejects(s.stat(key), PathNotFoundError);
    assert.deepEqual(await rawNames('uploads/'), []);
    assert.deepEqual(await rawNames('blobs/'), [`${ROOT}/blobs/tiny`], 'one plain object, no parts');
  });

  it('appends of any size become parts of one multipart upload plus a tail; move() completes it and copies once', async () => {
    const key = '/uploads/mixed/data';
    const sizes = [6 * MiB, 1000, 1, 70_000, 7 * MiB, 5 * MiB, 12 * MiB + 3, 3, 5 * MiB - 1];
    const pieces = sizes.map((n) => randomBytes(n));
    let size = 0;
    for (const [i, p] of pieces.entries()) size = await append(i % 2 ? other : s, key, p); // both instances
    const whole = Buffer.concat(pieces);
    assert.equal(size, whole.length);
    assert.equal((await other.stat(key)).size, whole.length);

    // One open upload at the object's own name, one state object; every part is a valid S3 part.
    const open = await b.client.send(new ListMultipartUploadsCommand({ Bucket: b.bucket, Prefix: `${ROOT}/uploads/mixed/` }));
    assert.deepEqual((open.Uploads ?? []).map((u) => u.Key), [`${ROOT}/uploads/mixed/data`]);
    assert.deepEqual(await rawNames('uploads/mixed/'), [`${ROOT}/uploads/mixed/data~parts/state`]);
    const state = await b.client.send(new GetObjectCommand({ Bucket: b.bucket, Key: `${ROOT}/uploads/mixed/data~parts/state` }));
    const raw = Buffer.from(await state.Body!.transformToByteArray());
    const header = JSON.parse(raw.subarray(0, raw.indexOf(10)).toString()) as { size: number; parts: [string, number][] };
    assert.equal(header.size, whole.length);
    for (const [, n] of header.parts) assert.ok(n >= MIN_PART && n <= s.partSize, `part of ${n} bytes`);
    assert.ok(raw.length - raw.indexOf(10) - 1 < MIN_PART, 'the tail is under 5 MiB');

    await s.move(key, '/blobs/mixed');
    const head = await b.client.send(new HeadObjectCommand({ Bucket: b.bucket, Key: `${ROOT}/blobs/mixed` }));
    assert.equal(head.ContentLength, whole.length);
    assert.equal(sha(await readAll(await s.read('/blobs/mixed'))), sha(whole));
    assert.deepEqual(await rawNames('uploads/'), []);
    const uploads = await b.client.send(new ListMultipartUploadsCommand({ Bucket: b.bucket }));
    assert.equal(uploads.Uploads?.length ?? 0, 0, 'no multipart upload left open');
  });

  it('reading an appended object completes it; appending again continues it (part 1 copied server-side)', async () => {
    const key = '/uploads/reread/data';
    const first = randomBytes(11 * MiB + 5);
    const second = randomBytes(2 * MiB);
    await append(s, key, first);
    assert.equal(sha(await readAll(await s.read(key, { offset: 3 }))), sha(first.subarray(3)), 'read() of an open upload');
    assert.deepEqual(await rawNames('uploads/reread/'), [`${ROOT}/uploads/reread/data`, `${ROOT}/uploads/reread/data~parts/state`],
      'now a plain object, its sealed state shadowed next to it');
    assert.equal(await append(other, key, second), first.length + second.length);
    const whole = Buffer.concat([first, second]);
    assert.equal((await s.getSmall(key, 64 * MiB)).length, whole.length);
    assert.equal(sha(await readAll(await other.read(key))), sha(whole));
    await s.move(key, '/blobs/reread');
    assert.equal(sha(await readAll(await s.read('/blobs/reread'))), sha(whole));
    assert.deepEqual(await rawNames('uploads/'), []);
    const uploads = await b.client.send(new ListMultipartUploadsCommand({ Bucket: b.bucket, Prefix: `${ROOT}/uploads/` }));
    assert.equal(uploads.Uploads?.length ?? 0, 0);
  });

  it('an append that fails midway leaves the committed bytes; the next append overwrites its stray parts', async () => {
    const key = '/uploads/failed/data';
    const good = randomBytes(6 * MiB);
    await append(s, key, good);
    const w = await s.write(key, { append: true });
    // 12 MiB gets two 5 MiB parts uploaded, then the "client" goes away before commit
    await new Promise<void>((resolve) => {
      w.write(randomBytes(12 * MiB), () => resolve());
    });
    await w.cancel();
    assert.equal((await other.stat(key)).size, good.length);
    const rest = randomBytes(9 * MiB + 1);
    assert.equal(await append(other, key, rest), good.length + rest.length);
    await s.move(key, '/blobs/failed');
    assert.equal(sha(await readAll(await s.read('/blobs/failed'))), sha(Buffer.concat([good, rest])));
  });

  it('delete() of an appended object aborts its multipart upload', async () => {
    await append(s, '/uploads/gone/data', randomBytes(7 * MiB));
    const before = await b.client.send(new ListMultipartUploadsCommand({ Bucket: b.bucket, Prefix: `${ROOT}/uploads/gone/` }));
    assert.equal(before.Uploads?.length, 1);
    await s.delete('/uploads/gone');
    await assert.rejects(s.stat('/uploads/gone/data'), PathNotFoundError);
    const after = await b.client.send(new ListMultipartUploadsCommand({ Bucket: b.bucket, Prefix: `${ROOT}/uploads/gone/` }));
    assert.equal(after.Uploads?.length ?? 0, 0);
    assert.deepEqual(await rawNames('uploads/gone'), []);
  });

  it('a single appended part of any size moves with one server-side copy', async () => {
    const data = randomBytes(300_000);
    await append(s, '/uploads/one/data', data);
    await s.move('/uploads/one/data', '/blobs/one');
    assert.ok((await s.getSmall('/blobs/one', 1 << 20)).equals(data));
    assert.deepEqual(await rawNames('uploads/'), []);
  });

  it('reads ranges that span part boundaries', async () => {
    const key = '/uploads/ranges/data';
    const sizes = [3, 5, 7, 1, 10, 4];
    const pieces = sizes.map((n, i) => Buffer.from(Array.from({ length: n }, (_, j) => 65 + i + (j % 2) * 32)));
    for (const p of pieces) await append(s, key, p);
    const whole = Buffer.concat(pieces);
    const total = whole.length;
    for (let offset = 0; offset <= total; offset++) {
      for (const length of [undefined, 0, 1, 6, 17]) {
        const got = await readAll(await s.read(key, { offset, length }));
        const want = whole.subarray(offset, length === undefined ? undefined : offset + length);
        assert.ok(got.equals(want), `offset ${offset} length ${length}: got ${got.toString()} want ${want.toString()}`);
      }
    }
    await assert.rejects(s.read(key, { offset: total + 1 }), InvalidOffsetError);
    assert.equal((await s.getSmall(key, total)).toString(), whole.toString());
  });

  it('an append continues a plain object; a plain write shadows and removes the append state', async () => {
    const key = '/mixed/obj';
    await s.putSmall(key, Buffer.from('plain-'));
    assert.equal(await append(s, key, Buffer.from('appended')), 14);
    assert.equal((await s.getSmall(key, 100)).toString(), 'plain-appended');
    assert.deepEqual(await rawNames('mixed/'), [`${ROOT}/mixed/obj~parts/state`], 'the small plain object became the tail');

    const w = await s.write(key);
    await pipeline(Readable.from([Buffer.from('replaced')]), w);
    assert.equal((await s.getSmall(key, 100)).toString(), 'plain-appended', 'invisible before commit');
    await w.commit();
    assert.equal((await s.getSmall(key, 100)).toString(), 'replaced');
    assert.deepEqual(await rawNames('mixed/'), [`${ROOT}/mixed/obj`]);

    await append(s, key, Buffer.from('+more'));
    await s.putSmall(key, Buffer.from('small')); // shadows the append state (left for the next append/move/delete)
    assert.equal((await s.getSmall(key, 100)).toString(), 'small');
    assert.equal((await s.stat(key)).size, 5);
    assert.equal(await append(s, key, Buffer.from('!')), 6);
    assert.equal((await s.getSmall(key, 100)).toString(), 'small!');
    await s.delete(key);
    await assert.rejects(s.stat(key), PathNotFoundError);
    assert.deepEqual(await rawNames('mixed/'), []);
  });

  it('cancel: a committed append is rolled back, an unfinished multipart write leaves no upload behind', async () => {
    const key = '/cancel/obj';
    await append(s, key, Buffer.from('keep'));
    const w = await s.write(key, { append: true });
    await pipeline(Readable.from([Buffer.from('drop')]), w);
    await w.commit();
    assert.equal((await s.stat(key)).size, 8);
    await w.cancel();
    assert.equal((await s.getSmall(key, 100)).toString(), 'keep');

    const big = await s.write('/cancel/big');
    await pipeline(Readable.from((function* () { for (let i = 0; i < 12; i++) yield randomBytes(MiB); })()), big);
    await big.cancel();
    await assert.rejects(s.stat('/cancel/big'), PathNotFoundError);
    const uploads = await b.client.send(new ListMultipartUploadsCommand({ Bucket: b.bucket }));
    assert.equal(uploads.Uploads?.length ?? 0, 0);
  });

  it('stat of a prefix is a directory; delete of a prefix removes appended objects under it too', async () => {
    await s.putSmall('/dir/a/x', Buffer.from('1'));
    await append(s, '/dir/a/y', Buffer.from('22'));
    const st = await s.stat('/dir/a');
    assert.equal(st.isDirectory, true);
    assert.deepEqual(await collect(s.list('/dir/a')), ['/dir/a/x', '/dir/a/y']);
    await s.delete('/dir');
    assert.deepEqual(await rawNames('dir'), []);
  });

  it('pages through listings, part lists and prefix deletes', async () => {
    const paged = S3Adapter.fromConfig(b.adapterOptions({ rootdirectory: ROOT, pagesize: 7 }));
    try {
      const n = 30;
      await runLimited(Array.from({ length: n }, (_, i) => i), 8, (i) => paged.putSmall(`/many/k${i}/leaf`, Buffer.from(String(i))));
      for (let i = 0; i < 20; i++) await append(paged, '/many/appended', Buffer.from([i]));
      const names = await collect(paged.list('/many'));
      assert.equal(names.length, n + 1);
      assert.ok(names.includes('/many/appended') && names.includes('/many/k29'));
      assert.equal((await paged.stat('/many/appended')).size, 20);
      assert.deepEqual([...(await paged.getSmall('/many/appended', 100))], Array.from({ length: 20 }, (_, i) => i));
      await paged.delete('/many');
      assert.deepEqual(await collect(paged.list('/many')), []);
      assert.deepEqual(await rawNames('many'), []);
    } finally {
      await paged.close();
    }
  });

  it('redirect: presigned GET and HEAD URLs work; without redirect there is none', async () => {
    await s.putSmall('/blobs/redirect', Buffer.from('via presigned url'));
    assert.equal(await s.redirectUrl('/blobs/redirect', 'GET'), undefined);
    const r = S3Adapter.fromConfig(b.adapterOptions({ rootdirectory: ROOT, redirect: true }));
    try {
      const get = await r.redirectUrl('/blobs/redirect', 'GET');
      assert.ok(get && !get.includes(b.endpoint.secretAccessKey), 'a URL that does not contain the secret');
      const res = await fetch(get);
      assert.equal(res.status, 200);
      assert.equal(await res.text(), 'via presigned url');
      const head = await fetch((await r.redirectUrl('/blobs/redirect', 'HEAD'))!, { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal(head.headers.get('content-length'), '17');
    } finally {
      await r.close();
    }
  });
});

describe('s3 adapter: assembly plan and options (no S3 needed)', () => {
  it('every part but the last is ≥ 5 MiB, copies are ≤ 5 GiB, and the plan covers every byte once', () => {
    let seed = 42;
    const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n; };
    const shapes = [
      [1, 1, 1],
      [12 * 1024 * MiB + 7],
      [3, 6 * 1024 * MiB, 2 * MiB, 5 * 1024 * MiB + 1],
      Array.from({ length: 2000 }, () => 1 + rnd(10_000)),
      Array.from({ length: 300 }, () => [1 + rnd(1000), 5 * MiB + rnd(MiB), 4 * MiB + rnd(2 * MiB), 1 + rnd(3 * MiB)][rnd(4)]!),
    ];
    for (const sizes of shapes) {
      const sources = sizes.map((size, i) => ({ name: `p${i}`, size }));
      const plan = planAssembly(sources, { target: 10 * MiB });
      const covered: [string, number, number][] = [];
      plan.forEach((part, i) => {
        const len = part.kind === 'copy' ? part.segment.length : part.length;
        if (i < plan.length - 1) assert.ok(len >= MIN_PART, `part ${i} has ${len} bytes`);
        if (part.kind === 'copy') assert.ok(len <= MAX_COPY);
        else assert.equal(part.segments.reduce((n, s) => n + s.length, 0), part.length);
        for (const s of part.kind === 'copy' ? [part.segment] : part.segments) covered.push([s.name, s.start, s.length]);
      });
      let i = 0;
      for (const src of sources) { // segments appear in order and tile each source exactly
        let pos = 0;
        while (pos < src.size) {
          const [name, start, length] = covered[i++]!;
          assert.equal(name, src.name);
          assert.equal(start, pos);
          pos += length;
        }
        assert.equal(pos, src.size);
      }
      assert.equal(i, covered.length);
    }
  });

  it('reads time out when S3 stalls, but not while the reader itself is slow', async () => {
    // A fake S3 on loopback: /stall sends 64 KiB of 1 MiB and then nothing; /silent never answers;
    // /slow sends 8 MiB at once.
    const sockets = new Set<import('node:net').Socket>();
    const server = createServer((req, res) => {
      if (req.url?.includes('/silent')) return;
      const total = req.url?.includes('/slow') ? 8 * MiB : MiB;
      res.writeHead(200, { 'Content-Length': total, 'Content-Type': 'application/octet-stream' });
      if (req.url?.includes('/stall')) res.write(Buffer.alloc(64 * 1024, 1));
      else res.end(Buffer.alloc(total, 2));
    });
    server.on('connection', (c) => { sockets.add(c); c.on('close', () => sockets.delete(c)); });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as AddressInfo).port;
    const a = S3Adapter.fromConfig({ bucket: 'b', regionendpoint: `http://127.0.0.1:${port}`, accesskey: 'k', secretkey: 's', maxattempts: 1, readtimeout: 400 });
    try {
      const t0 = performance.now();
      await assert.rejects(readAll(await a.read('/stall')), /no data from S3/);
      assert.ok(performance.now() - t0 < 3000, 'fails soon after the timeout');
      await assert.rejects(a.read('/silent'), /no response from S3/);
      // A reader that takes a long pause is not a stall: the bytes wait for it in buffers.
      const body = await a.read('/slow');
      const it = body[Symbol.asyncIterator]();
      let n = ((await it.next()).value as Buffer).length;
      await new Promise((r) => setTimeout(r, 1200));
      for (let c = await it.next(); !c.done; c = await it.next()) n += (c.value as Buffer).length;
      assert.equal(n, 8 * MiB);
    } finally {
      await a.close();
      for (const c of sockets) c.destroy();
      await new Promise((r) => server.close(r));
    }
  });

  it('every command fails when S3 stalls (it accepts and never answers), writes included: after readtimeout of silence', async () => {
    const sockets = new Set<Socket>();
    const silent = createNetServer((c) => { sockets.add(c); c.resume(); c.on('close', () => sockets.delete(c)); });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const port = (silent.address() as AddressInfo).port;
    const a = S3Adapter.fromConfig({ bucket: 'b', regionendpoint: `http://127.0.0.1:${port}`, accesskey: 'k', secretkey: 's', readtimeout: 300 });
    const writeBig = async () => {
      const w = await a.write('/big');
      await pipeline(Readable.from([randomBytes(6 * MiB)]), w);
      await w.commit();
    };
    try {
      for (const [label, op] of [
        ['stat', () => a.stat('/k')], ['putSmall', () => a.putSmall('/k', Buffer.from('x'))], ['list', () => collect(a.list('/p'))],
        ['delete', () => a.delete('/k')], ['append', () => a.write('/k', { append: true })], ['write 6 MiB', writeBig],
      ] as [string, () => Promise<unknown>][]) {
        const t0 = performance.now();
        await assert.rejects(op(), StorageError, label);
        assert.ok(performance.now() - t0 < 8000, `${label} gave up after ${Math.round(performance.now() - t0)} ms`);
      }
    } finally {
      await a.close();
      for (const c of sockets) c.destroy();
      await new Promise((r) => silent.close(r));
    }
  });

  it('fromConfig checks its options and builds the client config from them', async () => {
    assert.throws(() => S3Adapter.fromConfig({ region: 'x' }), /bucket/);
    assert.throws(() => S3Adapter.fromConfig({ bucket: 'b', chunksize: MiB }), /chunksize/);
    assert.throws(() => S3Adapter.fromConfig({ bucket: 'b', accesskey: 'a' }), /together/);
    const a = S3Adapter.fromConfig({ bucket: 'b', regionendpoint: 'minio.local:9000', secure: false, rootdirectory: '/x/y/' });
    try {
      assert.equal(a.objectName('/k'), 'x/y/k');
      assert.equal(a.partSize, 10 * MiB);
      assert.equal(await a.client.config.forcePathStyle, true);
      const ep = await a.client.config.endpoint?.();
      assert.equal(ep?.protocol, 'http:');
      assert.equal(ep?.hostname, 'minio.local');
    } finally {
      await a.close();
    }
  });
});

async function collect(it: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const k of it) out.push(k);
  return out.sort();
}

async function runLimited<T>(items: T[], n: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => { while (next < items.length) await fn(items[next++]!); }));
}
