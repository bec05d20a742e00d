// Two registry instances on one bucket, two appends racing at the same offset of one upload: one of them
// is what S3 keeps, and the instance whose bytes lost must not finish the upload with its own running
// digest (that would store the winner's bytes under the loser's digest). Real S3 (RGW).
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, UploadPartCommand } from '@aws-sdk/client-s3';
import request from 'supertest';
import { after, before, describe, it } from 'node:test';
import type { Digest } from '../../oci/digest.js';
import { createApp } from '../../server/app.js';
import { BlobStore } from '../../server/registry/blob-store.js';
import { paths } from '../../server/registry/paths.js';
import { UploadSessions } from '../../server/registry/upload-session.js';
import { createAdapter } from '../../storage-adapters/index.js';
import type { S3Adapter } from '../../storage-adapters/s3.js';
import { ConflictError, type StorageAdapter } from '../../storage-adapters/types.js';
import { freshBucket, type TestBucket } from '../helpers/rgw.js';
import { withHooks } from '../helpers/hooks.js';

const MiB = 1024 * 1024;
const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}` as Digest;

async function readAll(s: StorageAdapter, key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of await s.read(key)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/**
 * Runs `meanwhile` (to its end) just before the adapter's S3 client first sends a `command` whose input `matches`,
 * then `during`, and puts the client back. Returns how `meanwhile` and `during` ended.
 */
async function whileSending(adapter: S3Adapter, command: string, meanwhile: () => Promise<unknown>, during: () => Promise<unknown>,
  matches: (input: { Key?: string }) => boolean = () => true): Promise<[PromiseSettledResult<unknown> | undefined, PromiseSettledResult<unknown>]> {
  let first: PromiseSettledResult<unknown> | undefined;
  const send = adapter.client.send.bind(adapter.client);
  adapter.client.send = (async (c: { constructor: { name: string }; input: { Key?: string } }, ...rest: unknown[]) => {
    if (c.constructor.name === command && matches(c.input) && !first) [first] = await Promise.allSettled([meanwhile()]);
    return (send as (...a: unknown[]) => unknown)(c, ...rest);
  }) as typeof adapter.client.send;
  try {
    const [main] = await Promise.allSettled([during()]);
    return [first, main];
  } finally {
    adapter.client.send = send;
  }
}

/** The adapter with one method replaced: `wrap` gets the original (bound to the adapter) and returns the replacement. */
function intercepted<K extends 'delete' | 'stat' | 'write'>(adapter: S3Adapter, method: K, wrap: (original: S3Adapter[K]) => S3Adapter[K]): S3Adapter {
  return withHooks(adapter, { [method]: wrap } as { [M in K]: typeof wrap });
}

/** Two registry instances (adapters) on one fresh bucket, made before the tests of the describe that calls this. */
function twoInstances(options: Record<string, unknown> = {}): { bucket: TestBucket; a: S3Adapter; b: S3Adapter } {
  const s = {} as { bucket: TestBucket; a: S3Adapter; b: S3Adapter };
  before(async () => {
    s.bucket = await freshBucket('berth-race');
    s.a = (await createAdapter('s3', s.bucket.adapterOptions({ rootdirectory: '/registry/v2', ...options }))) as S3Adapter;
    s.b = (await createAdapter('s3', s.bucket.adapterOptions({ rootdirectory: '/registry/v2', ...options }))) as S3Adapter;
  });
  after(async () => {
    await s.a?.close();
    await s.b?.close();
    await s.bucket?.cleanup();
  });
  return s;
}

describe('racing appends on two instances sharing a bucket (S3)', () => {
  const s = twoInstances();

  it('the instance whose bytes were overwritten re-reads them: DIGEST_INVALID for its own digest, and nothing stored under it', async () => {
    const a = new UploadSessions(s.a, new BlobStore(s.a));
    const bb = new UploadSessions(s.b, new BlobStore(s.b));
    const repo = 'race/app';
    const id = await a.start(repo);
    const x = randomBytes(64 * 1024);
    const y = randomBytes(64 * 1024);
    // both start from offset 0 at once; S3 keeps whichever state was written last
    const results = await Promise.allSettled([a.append(repo, id, Readable.from([x]), { start: 0 }), bb.append(repo, id, Readable.from([y]), { start: 0 })]);
    assert.ok(results.some((r) => r.status === 'fulfilled'));
    const stored = await readAll(s.a, paths.uploadData(repo, id));
    assert.ok(stored.equals(x) || stored.equals(y), 'one of the two is stored whole');
    const [loser, loserBytes, winnerBytes] = stored.equals(x) ? [bb, y, x] : [a, x, y];
    await assert.rejects(loser.finish(repo, id, sha(loserBytes)), (e: Error & { code?: string }) => e.code === 'DIGEST_INVALID');
    assert.equal(await new BlobStore(s.a).size(sha(loserBytes)), undefined, 'no blob under the digest of bytes that are not stored');
    // the stored bytes finish under their own digest, from either instance
    await loser.finish(repo, id, sha(winnerBytes));
    assert.ok((await readAll(s.a, paths.blobData(sha(winnerBytes)))).equals(winnerBytes));
  });
});

/** What a registry call failed with: its OCI code, else the error's class name. */
function failure(r: PromiseSettledResult<unknown>): string | undefined {
  if (r.status === 'fulfilled') return undefined;
  const e = r.reason as Error & { code?: string };
  return e.code ?? e.constructor.name;
}

describe('an upload finished on one instance while another appends to it (S3)', () => {
  const s = twoInstances({ chunksize: 5 * MiB });
  const repo = 'race/finish';

  /** Runs `hook` once, just before instance A's storage does `op` (its hash is computed by then). */
  function interleave(s: S3Adapter, op: 'move', hook: () => Promise<void>): StorageAdapter {
    let armed = true;
    return new Proxy(s, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver) as unknown;
        if (prop !== op || typeof v !== 'function') return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        return async (...args: unknown[]) => {
          if (armed) { armed = false; await hook(); }
          return (v as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
  }

  async function blobState(data: Buffer): Promise<'absent' | 'intact' | 'corrupt'> {
    const key = paths.blobData(sha(data));
    try { await s.a.stat(key); } catch { return 'absent'; }
    return (await readAll(s.a, key)).equals(data) ? 'intact' : 'corrupt';
  }

  for (const size of [MiB, 6 * MiB]) {
    it(`${size / MiB} MiB: a PATCH on B committed between A's hashing and its move → A's PUT fails, nothing stored under the digest`, async () => {
      const data = randomBytes(size);
      const extra = randomBytes(18);
      const sessionsB = new UploadSessions(s.b, new BlobStore(s.b));
      let patched: PromiseSettledResult<unknown> | undefined;
      const hooked = interleave(s.a, 'move', async () => {
        [patched] = await Promise.allSettled([sessionsB.append(repo, id, Readable.from([extra]))]);
      });
      const sessionsA = new UploadSessions(hooked, new BlobStore(hooked));
      const id = await sessionsA.start(repo);
      await sessionsA.append(repo, id, Readable.from([data]));
      const [put] = await Promise.allSettled([sessionsA.finish(repo, id, sha(data))]);
      assert.equal(failure(patched!), undefined, 'the PATCH went in');
      assert.equal(failure(put), 'DIGEST_INVALID', 'the PUT no longer matches what the upload holds');
      assert.equal(await blobState(data), 'absent');
      // and the upload, with both chunks, finishes under its real digest
      await sessionsB.finish(repo, id, sha(Buffer.concat([data, extra])));
      assert.equal(await blobState(Buffer.concat([data, extra])), 'intact');
    });
  }

  it('a PATCH on B that arrives while A publishes the upload gets 404 BLOB_UPLOAD_UNKNOWN; A stores exactly its bytes', async () => {
    const data = randomBytes(6 * MiB);
    const sessionsA = new UploadSessions(s.a, new BlobStore(s.a));
    const sessionsB = new UploadSessions(s.b, new BlobStore(s.b));
    const id = await sessionsA.start(repo);
    await sessionsA.append(repo, id, Readable.from([data]));
    // B's PATCH runs when A's move is about to copy the completed upload to the blob's key
    const [patched, finished] = await whileSending(s.a, 'CopyObjectCommand',
      () => sessionsB.append(repo, id, Readable.from([randomBytes(18)])), () => sessionsA.finish(repo, id, sha(data)));
    assert.equal(failure(finished), undefined);
    assert.equal(failure(patched!), 'BLOB_UPLOAD_UNKNOWN');
    assert.equal(await blobState(data), 'intact');
  });

  it('a blob "already stored" with the wrong size is replaced by a verified upload', async () => {
    const data = randomBytes(100_000);
    await s.a.putSmall(paths.blobData(sha(data)), Buffer.concat([data, Buffer.from('junk')])); // as the bug left it
    const sessionsA = new UploadSessions(s.a, new BlobStore(s.a));
    const id = await sessionsA.start('race/other');
    await sessionsA.append('race/other', id, Readable.from([data]));
    await sessionsA.finish('race/other', id, sha(data));
    assert.equal(await blobState(data), 'intact');
    // a monolithic push meets the same: the corrupt copy goes, the client retries and stores its bytes
    await s.a.putSmall(paths.blobData(sha(data)), Buffer.concat([data, Buffer.from('junk')]));
    const [first] = await Promise.allSettled([sessionsA.ingest('race/mono', sha(data), Readable.from([data]))]);
    assert.equal(failure(first), 'UNAVAILABLE');
    await sessionsA.ingest('race/mono', sha(data), Readable.from([data]));
    assert.equal(await blobState(data), 'intact');
  });

  it('a PUT on B whose completion of the multipart upload comes after A finished the upload gets 404 BLOB_UPLOAD_UNKNOWN, not a 503', async () => {
    // (RGW answers such a late CompleteMultipartUpload 500 "already in progress", every retry: the loser's 503 seen in CI)
    const data = randomBytes(6 * MiB + 3);
    const sessionsA = new UploadSessions(s.a, new BlobStore(s.a));
    const sessionsB = new UploadSessions(s.b, new BlobStore(s.b));
    const id = await sessionsA.start(repo);
    await sessionsA.append(repo, id, Readable.from([data]));
    // B has no running hash: it reads the upload, and so completes it, after A's whole finish
    const [finishedA, put] = await whileSending(s.b, 'CompleteMultipartUploadCommand',
      () => sessionsA.finish(repo, id, sha(data)), () => sessionsB.finish(repo, id, sha(data)));
    assert.equal(failure(finishedA!), undefined, 'A stored it');
    assert.equal(failure(put), 'BLOB_UPLOAD_UNKNOWN');
    assert.equal(await blobState(data), 'intact');
  });

  it('a PUT on B that finds the data gone while A is publishing the upload gets 404 BLOB_UPLOAD_UNKNOWN, not DIGEST_INVALID of an empty upload', async () => {
    const data = randomBytes(6 * MiB + 5);
    const sessionKey = (id: string) => paths.upload(repo, id);
    let dataGone!: () => void;
    const looked = new Set<string>();
    const bLooked = new Promise<void>((r) => { dataGone = r; });
    const id = await new UploadSessions(s.a, new BlobStore(s.a)).start(repo);
    // A has moved the data to the blob and is about to remove the session: B looks in between
    let bFinish: Promise<unknown> | undefined;
    const a = intercepted(s.a, 'delete', (del) => async (key) => {
      if (key === sessionKey(id) && !bFinish) {
        bFinish = new UploadSessions(b, new BlobStore(s.b)).finish(repo, id, sha(data));
        bFinish.catch(() => undefined);
        await bLooked;
      }
      return del(key);
    });
    const b = intercepted(s.b, 'stat', (stat) => async (key) => {
      try {
        return await stat(key);
      } finally {
        // B has seen the session still there and its data gone (both looks of its first step are done)
        if (key === paths.uploadData(repo, id) || key === paths.uploadStartedAt(repo, id)) looked.add(key);
        if (looked.size === 2) dataGone();
      }
    });
    const sessionsA = new UploadSessions(a, new BlobStore(s.a));
    await sessionsA.append(repo, id, Readable.from([data]));
    await sessionsA.finish(repo, id, sha(data));
    const [put] = await Promise.allSettled([bFinish!]);
    assert.equal(failure(put), 'BLOB_UPLOAD_UNKNOWN');
    assert.equal(await blobState(data), 'intact');
  });

  it('two PUTs finishing one upload on A and B: one stores it, the other gets 201 or 404; the blob is intact', async () => {
    for (let i = 0; i < 3; i++) {
      const data = randomBytes(6 * MiB + i);
      const sessionsA = new UploadSessions(s.a, new BlobStore(s.a));
      const sessionsB = new UploadSessions(s.b, new BlobStore(s.b));
      const id = await sessionsA.start(repo);
      await sessionsA.append(repo, id, Readable.from([data]));
      const results = await Promise.allSettled([sessionsA.finish(repo, id, sha(data)), sessionsB.finish(repo, id, sha(data))]);
      const outcomes = results.map(failure);
      assert.ok(outcomes.includes(undefined), `one of them stores it (${outcomes.join(', ')})`);
      for (const o of outcomes) assert.ok(o === undefined || o === 'BLOB_UPLOAD_UNKNOWN', `got ${o}`);
      assert.equal(await blobState(data), 'intact');
    }
  });

  it('DELETE on B just before the first PATCH on A commits: A gets 404 BLOB_UPLOAD_UNKNOWN and nothing of the upload is left', async () => {
    const sessionsA = new UploadSessions(s.a, new BlobStore(s.a));
    const sessionsB = new UploadSessions(s.b, new BlobStore(s.b));
    const id = await sessionsA.start(repo);
    // B's DELETE runs when A is about to write the upload's first state (no state there yet to be conditional on)
    const [deleted, patched] = await whileSending(s.a, 'PutObjectCommand', () => sessionsB.cancel(repo, id),
      () => sessionsA.append(repo, id, Readable.from([randomBytes(6 * MiB)])), (input) => !!input.Key?.endsWith('~parts/state'));
    assert.equal(failure(deleted!), undefined, 'the DELETE went through');
    assert.equal(failure(patched), 'BLOB_UPLOAD_UNKNOWN');
    const prefix = `registry/v2${paths.upload(repo, id)}`;
    const left = await s.bucket.client.send(new ListObjectsV2Command({ Bucket: s.bucket.bucket, Prefix: prefix }));
    assert.deepEqual((left.Contents ?? []).map((o) => o.Key), [], 'no state object left for gc');
    const uploads = await s.bucket.client.send(new ListMultipartUploadsCommand({ Bucket: s.bucket.bucket, Prefix: prefix }));
    assert.equal(uploads.Uploads?.length ?? 0, 0, 'no multipart upload left');
  });

  it('DELETE on B while a PATCH streams to A: A gets 404 BLOB_UPLOAD_UNKNOWN, not a 503', async () => {
    const sessionsA = new UploadSessions(s.a, new BlobStore(s.a));
    const sessionsB = new UploadSessions(s.b, new BlobStore(s.b));
    const id = await sessionsA.start(repo);
    await sessionsA.append(repo, id, Readable.from([randomBytes(6 * MiB)])); // an open multipart upload
    const body = new PassThrough();
    const patch = sessionsA.append(repo, id, body);
    patch.catch(() => undefined);
    await new Promise<void>((r) => body.write(randomBytes(6 * MiB), () => r()));
    await new Promise((r) => setTimeout(r, 200));
    await sessionsB.cancel(repo, id);
    body.end(randomBytes(6 * MiB));
    const [r] = await Promise.allSettled([patch]);
    assert.equal(failure(r), 'BLOB_UPLOAD_UNKNOWN');
  });
});

describe('two instances appending at the same offset (S3)', () => {
  const s = twoInstances({ chunksize: 5 * MiB });

  /** An adapter that tells when an append writer was opened on it. */
  function watched(s: S3Adapter, opened: () => void): StorageAdapter {
    return intercepted(s, 'write', (write) => async (key, opts) => {
      const w = await write(key, opts);
      opened();
      return w;
    });
  }

  async function openUploads(prefix: string): Promise<number> {
    const r = await s.bucket.client.send(new ListMultipartUploadsCommand({ Bucket: s.bucket.bucket, Prefix: prefix }));
    return r.Uploads?.length ?? 0;
  }

  it('both start from one state: one gets 202, the other 416 with the new Range, and its multipart upload is aborted', async () => {
    let opened = 0;
    let bothOpen!: () => void;
    const ready = new Promise<void>((r) => { bothOpen = r; });
    const onOpen = () => { if (++opened === 2) bothOpen(); };
    const a = new UploadSessions(watched(s.a, onOpen), new BlobStore(s.a));
    const bb = new UploadSessions(watched(s.b, onOpen), new BlobStore(s.b));
    const repo = 'race/offset';
    const id = await a.start(repo);
    const [x, y] = [randomBytes(6 * MiB), randomBytes(6 * MiB + 1)];
    const [bodyX, bodyY] = [new PassThrough(), new PassThrough()];
    const results = Promise.allSettled([a.append(repo, id, bodyX, { start: 0 }), bb.append(repo, id, bodyY, { start: 0 })]);
    await ready; // both writers started from the same (empty) state before either sent a byte
    bodyX.end(x);
    bodyY.end(y);
    const [rx, ry] = await results;
    const outcomes = [failure(rx), failure(ry)];
    assert.deepEqual([...outcomes].sort(), ['RANGE_INVALID', undefined].sort(), `one wins, one is told (${outcomes.join(', ')})`);
    const winner = rx.status === 'fulfilled' ? x : y;
    const loser = (rx.status === 'rejected' ? rx : ry) as PromiseRejectedResult;
    assert.equal((loser.reason as { headers: Record<string, string> }).headers.Range, `0-${winner.length - 1}`);
    assert.ok((await readAll(s.a, paths.uploadData(repo, id))).equals(winner));
    assert.equal(await openUploads(`registry/v2${paths.upload(repo, id)}/`), 0, 'reading completed the winner\'s upload; the loser\'s was aborted');
  });

  it('a stored part overwritten by a racing append: the PUT gets 400 BLOB_UPLOAD_INVALID (start again), not a 503 to retry forever', async () => {
    const app = createApp({}, { storage: s.a });
    const repo = 'race/broken';
    const data = randomBytes(12 * MiB);
    const location = (await request(app).post(`/v2/${repo}/blobs/uploads/`)).headers.location!;
    assert.equal((await request(app).patch(location).set('Content-Type', 'application/octet-stream').send(data)).status, 202);
    // what the losing one of two appends from one state leaves: its own bytes under a part number the state lists
    const id = new URL(location, 'http://x').pathname.split('/').pop()!;
    const name = `registry/v2${paths.uploadData(repo, id)}`;
    const state = await s.bucket.client.send(new GetObjectCommand({ Bucket: s.bucket.bucket, Key: `${name}~parts/state` }));
    const upload = JSON.parse((await state.Body!.transformToString('latin1')).split('\n')[0]!).upload as string;
    assert.ok(upload, 'the PATCH left an open multipart upload');
    await s.bucket.client.send(new UploadPartCommand({ Bucket: s.bucket.bucket, Key: name, UploadId: upload, PartNumber: 1, Body: randomBytes(5 * MiB) }));
    const put = await request(app).put(`${location}${location.includes('?') ? '&' : '?'}digest=${sha(data)}`);
    assert.equal(put.status, 400);
    assert.equal(put.body.errors[0].code, 'BLOB_UPLOAD_INVALID');
    assert.match(put.body.errors[0].message, /start the upload again/);
  });

  it('adapter: of two append writers from one state the second commit is ConflictError, and cancel aborts its upload', async () => {
    const key = '/conflict/data';
    const w1 = await s.a.write(key, { append: true });
    const w2 = await s.b.write(key, { append: true });
    await pipeline(Readable.from([randomBytes(6 * MiB)]), w1);
    await pipeline(Readable.from([randomBytes(6 * MiB)]), w2);
    await w1.commit();
    await assert.rejects(w2.commit(), ConflictError);
    await w2.cancel();
    assert.equal(await openUploads('registry/v2/conflict/'), 1, 'only the winner\'s upload is open');
    assert.equal((await s.b.stat(key)).size, 6 * MiB);
  });
});
