// The running hashes of upload sessions are a cache of bounded size: a session finished after more
// than MAX_CACHED_HASHES others were written to has lost its hash and is hashed again from storage
// (so abandoned uploads cannot fill the server's memory); a recent one is finished from its cache.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, test } from 'node:test';
import { digestOf } from '../../oci/digest.js';
import { BlobStore } from '../../server/registry/blob-store.js';
import { UploadSessions } from '../../server/registry/upload-session.js';
import { FilesystemAdapter } from '../../storage-adapters/filesystem.js';
import { removeDir, tempDir } from '../runtime/helpers.js';

const dirs: string[] = [];
after(async () => { for (const d of dirs) await removeDir(d); });

/** Sessions over a filesystem store that counts reads of upload data (a re-hash reads it; a cached hash does not). */
async function sessions(): Promise<{ uploads: UploadSessions; dataReads: () => number }> {
  const root = await tempDir('berth-hash-cache-');
  dirs.push(root);
  const storage = new FilesystemAdapter({ rootdirectory: root });
  let reads = 0;
  const read = storage.read.bind(storage);
  storage.read = (key, range) => { if (key.endsWith('/data')) reads++; return read(key, range); };
  return { uploads: new UploadSessions(storage, new BlobStore(storage)), dataReads: () => reads };
}

test('a session written to recently is finished from its cached hash; one pushed out by 1024 later ones is hashed again', async () => {
  const { uploads, dataReads } = await sessions();
  const first = await uploads.start('cache/app');
  await uploads.append('cache/app', first, Readable.from([Buffer.from('first')]));
  const recent = await uploads.start('cache/app');
  await uploads.append('cache/app', recent, Readable.from([Buffer.from('recent')]));
  await uploads.finish('cache/app', recent, digestOf('recent'));
  assert.equal(dataReads(), 0, 'finished from the cache');
  for (let i = 0; i < 1024; i++) {
    const id = await uploads.start('cache/app');
    await uploads.append('cache/app', id, Readable.from([Buffer.from(`abandoned ${i}`)]));
  }
  await uploads.finish('cache/app', first, digestOf('first'));
  assert.equal(dataReads(), 1, 'its hash was let go: the data is read to hash it');
});
