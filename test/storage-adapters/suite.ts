// The one conformance suite every storage adapter must pass. Adapter test files call
// adapterSuite() with a factory that gives a fresh, empty adapter.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it, before, after } from 'node:test';
import {
  ConflictError, InvalidKeyError, InvalidOffsetError, PathNotFoundError, TooLargeError, type FileWriter, type StorageAdapter,
} from '../../storage-adapters/types.js';

export interface AdapterFixture { adapter: StorageAdapter; cleanup(): Promise<void> }

async function readAll(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function writeAll(w: FileWriter, data: Buffer | Readable): Promise<void> {
  await pipeline(Buffer.isBuffer(data) ? Readable.from([data]) : data, w);
}

async function collect(it: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const k of it) out.push(k);
  return out.sort();
}

export function adapterSuite(label: string, make: () => Promise<AdapterFixture>): void {
  describe(`storage adapter conformance: ${label}`, () => {
    let fx: AdapterFixture;
    let s: StorageAdapter;
    let n = 0;
    const key = (suffix: string) => `/t${++n}/${suffix}`;
    before(async () => { fx = await make(); s = fx.adapter; });
    after(async () => { await fx?.cleanup(); });

    it('putSmall then getSmall returns the same bytes; stat gives the size', async () => {
      const k = key('small');
      await s.putSmall(k, Buffer.from('hello'));
      assert.equal((await s.getSmall(k, 100)).toString(), 'hello');
      assert.equal((await s.stat(k)).size, 5);
    });

    it('putSmall replaces an existing object', async () => {
      const k = key('replace');
      await s.putSmall(k, Buffer.from('one'));
      await s.putSmall(k, Buffer.from('second'));
      assert.equal((await s.getSmall(k, 100)).toString(), 'second');
    });

    it('a missing key is PathNotFoundError for stat, read, getSmall and move', async () => {
      const k = key('missing');
      await assert.rejects(s.stat(k), PathNotFoundError);
      await assert.rejects(s.read(k), PathNotFoundError);
      await assert.rejects(s.getSmall(k, 10), PathNotFoundError);
      await assert.rejects(s.move(k, key('elsewhere')), PathNotFoundError);
    });

    it('a prefix with objects under it is not an object: read and getSmall say PathNotFoundError', async () => {
      const p = key('prefix');
      await s.putSmall(`${p}/child`, Buffer.from('x'));
      await assert.rejects(s.read(p), PathNotFoundError);
      await assert.rejects(s.getSmall(p, 10), PathNotFoundError);
      assert.equal((await s.stat(p)).isDirectory, true);
    });

    it('getSmall refuses objects over maxBytes', async () => {
      const k = key('big');
      await s.putSmall(k, Buffer.alloc(100));
      await assert.rejects(s.getSmall(k, 99), TooLargeError);
    });

    it('a written object is invisible until commit', async () => {
      const k = key('pending');
      const w = await s.write(k);
      await writeAll(w, Buffer.from('data'));
      await assert.rejects(s.stat(k), PathNotFoundError);
      await w.commit();
      assert.equal((await s.getSmall(k, 10)).toString(), 'data');
    });

    it('cancel leaves nothing behind', async () => {
      const prefix = key('cancel');
      const w = await s.write(`${prefix}/obj`);
      await writeAll(w, Buffer.from('data'));
      await w.cancel();
      await assert.rejects(s.stat(`${prefix}/obj`), PathNotFoundError);
      assert.deepEqual(await collect(s.list(prefix)), []);
    });

    it('append writers continue an object; cancel of an append rolls back to where it started', async () => {
      const k = key('append');
      let w = await s.write(k, { append: true });
      assert.equal(w.size, 0);
      await writeAll(w, Buffer.from('abc'));
      await w.commit();
      w = await s.write(k, { append: true });
      assert.equal(w.size, 3);
      await writeAll(w, Buffer.from('def'));
      assert.equal(w.size, 6);
      await w.commit();
      w = await s.write(k, { append: true });
      await writeAll(w, Buffer.from('zzz'));
      await w.cancel();
      assert.equal((await s.getSmall(k, 100)).toString(), 'abcdef');
      assert.equal((await s.stat(k)).size, 6);
    });

    it('streams a 24 MiB object in and out without changing a byte', async () => {
      const k = key('large');
      const data = randomBytes(24 << 20);
      const w = await s.write(k);
      const chunks = function* () { for (let i = 0; i < data.length; i += 1 << 20) yield data.subarray(i, i + (1 << 20)); };
      await writeAll(w, Readable.from(chunks()));
      await w.commit();
      const back = await readAll(await s.read(k));
      assert.equal(createHash('sha256').update(back).digest('hex'), createHash('sha256').update(data).digest('hex'));
    });

    it('reads byte ranges; an offset past the end is InvalidOffsetError', async () => {
      const k = key('range');
      await s.putSmall(k, Buffer.from('0123456789'));
      assert.equal((await readAll(await s.read(k, { offset: 3, length: 4 }))).toString(), '3456');
      assert.equal((await readAll(await s.read(k, { offset: 7 }))).toString(), '789');
      assert.equal((await readAll(await s.read(k, { offset: 10 }))).toString(), '');
      await assert.rejects(s.read(k, { offset: 11 }), InvalidOffsetError);
    });

    it('lists direct children only, as full keys; a missing prefix lists nothing', async () => {
      const p = key('list');
      await s.putSmall(`${p}/a`, Buffer.from('1'));
      await s.putSmall(`${p}/b/c`, Buffer.from('2'));
      await s.putSmall(`${p}/b/d/e`, Buffer.from('3'));
      assert.deepEqual(await collect(s.list(p)), [`${p}/a`, `${p}/b`]);
      assert.deepEqual(await collect(s.list(`${p}/b`)), [`${p}/b/c`, `${p}/b/d`]);
      assert.deepEqual(await collect(s.list(`${p}/nothing`)), []);
    });

    it('move makes the object appear at the target and vanish from the source, replacing the target', async () => {
      const a = key('move-a');
      const b = key('move-b');
      await s.putSmall(a, Buffer.from('new'));
      await s.putSmall(b, Buffer.from('old'));
      await s.move(a, b);
      assert.equal((await s.getSmall(b, 10)).toString(), 'new');
      await assert.rejects(s.stat(a), PathNotFoundError);
    });

    it('move with expect moves only the content the caller saw: an object that grew since is ConflictError, and stays', async () => {
      const k = key('expect');
      const to = key('expect-to');
      let w = await s.write(k, { append: true });
      await writeAll(w, Buffer.from('abc'));
      await w.commit();
      const seen = { size: 3, version: await s.appendVersion?.(k) };
      w = await s.write(k, { append: true });
      await writeAll(w, Buffer.from('def'));
      await w.commit();
      await assert.rejects(s.move(k, to, { expect: seen }), ConflictError);
      await assert.rejects(s.stat(to), PathNotFoundError);
      await s.move(k, to, { expect: { size: 6, version: await s.appendVersion?.(k) } });
      assert.equal((await s.getSmall(to, 10)).toString(), 'abcdef');
      await assert.rejects(s.stat(k), PathNotFoundError);
    });

    it('putSmall ifAbsent creates only: of several at once exactly one succeeds, the others are ConflictError', async () => {
      const k = key('create');
      const results = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => s.putSmall(k, Buffer.from(`writer ${i}`), { ifAbsent: true })));
      const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
      assert.equal(won.length, 1);
      for (const r of results) if (r.status === 'rejected') assert.ok(r.reason instanceof ConflictError, String(r.reason));
      assert.equal((await s.getSmall(k, 100)).toString(), `writer ${won[0]}`);
      await assert.rejects(s.putSmall(k, Buffer.from('again'), { ifAbsent: true }), ConflictError);
    });

    it('delete removes a key or a whole prefix; deleting nothing is fine', async () => {
      const p = key('delete');
      await s.putSmall(`${p}/x/1`, Buffer.from('1'));
      await s.putSmall(`${p}/x/2`, Buffer.from('2'));
      await s.putSmall(`${p}/y`, Buffer.from('3'));
      await s.delete(`${p}/x`);
      assert.deepEqual(await collect(s.list(p)), [`${p}/y`]);
      await s.delete(`${p}/y`);
      await assert.rejects(s.stat(`${p}/y`), PathNotFoundError);
      await s.delete(`${p}/never-existed`);
    });

    it('concurrent writers of one key: the result is one writer\'s bytes, whole', async () => {
      const k = key('race');
      const payloads = [randomBytes(3 << 20), randomBytes(3 << 20), randomBytes(3 << 20)];
      await Promise.all(payloads.map(async (p) => {
        const w = await s.write(k);
        await writeAll(w, p);
        await w.commit();
      }));
      const back = await readAll(await s.read(k));
      assert.ok(payloads.some((p) => p.equals(back)), 'the object is exactly one of the payloads');
    });

    it('rejects keys that could escape or are malformed', async () => {
      for (const bad of ['relative', '/a/../b', '/..', '/a//b', '/a/b/', '/a/./b', '/a b', '/a/%2e%2e', '']) {
        await assert.rejects(s.putSmall(bad, Buffer.from('x')), InvalidKeyError, bad);
        await assert.rejects(s.stat(bad), InvalidKeyError, bad);
      }
    });
  });
}
