// Two registry instances on one bucket, two appends racing at the same offset of one upload: one of them
// is what S3 keeps, and the instance whose bytes lost must not finish the upload with its own running
// digest (that would store the winner's bytes under the loser's digest). Real S3 (RGW).
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import type { Digest } from '../../oci/digest.js';
import { BlobStore } from '../../server/registry/blob-store.js';
import { paths } from '../../server/registry/paths.js';
import { UploadSessions } from '../../server/registry/upload-session.js';
import { createAdapter } from '../../storage-adapters/index.js';
import type { StorageAdapter } from '../../storage-adapters/types.js';
import { freshBucket, type TestBucket } from '../helpers/rgw.js';

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}` as Digest;

async function readAll(s: StorageAdapter, key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of await s.read(key)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('racing appends on two instances sharing a bucket (S3)', () => {
  let b: TestBucket;
  let storageA: StorageAdapter;
  let storageB: StorageAdapter;

  before(async () => {
    b = await freshBucket('berth-race');
    storageA = await createAdapter('s3', b.adapterOptions({ rootdirectory: '/registry/v2' }));
    storageB = await createAdapter('s3', b.adapterOptions({ rootdirectory: '/registry/v2' }));
  });
  after(async () => { await b?.cleanup(); });

  it('the instance whose bytes were overwritten re-reads them: DIGEST_INVALID for its own digest, and nothing stored under it', async () => {
    const a = new UploadSessions(storageA, new BlobStore(storageA));
    const bb = new UploadSessions(storageB, new BlobStore(storageB));
    const repo = 'race/app';
    const id = await a.start(repo);
    const x = randomBytes(64 * 1024);
    const y = randomBytes(64 * 1024);
    // both start from offset 0 at once; S3 keeps whichever state was written last
    const results = await Promise.allSettled([a.append(repo, id, Readable.from([x]), { start: 0 }), bb.append(repo, id, Readable.from([y]), { start: 0 })]);
    assert.ok(results.some((r) => r.status === 'fulfilled'));
    const stored = await readAll(storageA, paths.uploadData(repo, id));
    assert.ok(stored.equals(x) || stored.equals(y), 'one of the two is stored whole');
    const [loser, loserBytes, winnerBytes] = stored.equals(x) ? [bb, y, x] : [a, x, y];
    await assert.rejects(loser.finish(repo, id, sha(loserBytes)), (e: Error & { code?: string }) => e.code === 'DIGEST_INVALID');
    assert.equal(await new BlobStore(storageA).size(sha(loserBytes)), undefined, 'no blob under the digest of bytes that are not stored');
    // the stored bytes finish under their own digest, from either instance
    await loser.finish(repo, id, sha(winnerBytes));
    assert.ok((await readAll(storageA, paths.blobData(sha(winnerBytes)))).equals(winnerBytes));
  });
});
