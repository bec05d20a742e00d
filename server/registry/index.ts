// The registry's domain objects over one storage adapter.
import type { StorageAdapter } from '../../storage-adapters/types.js';
import { BlobStore } from './blob-store.js';
import { ManifestStore } from './manifest-store.js';
import { ReferrersIndex } from './referrers.js';
import { TagStore } from './tag-store.js';
import { UploadSessions } from './upload-session.js';

export interface Registry {
  storage: StorageAdapter;
  blobs: BlobStore;
  uploads: UploadSessions;
  tags: TagStore;
  referrers: ReferrersIndex;
  manifests: ManifestStore;
}

export function createRegistry(storage: StorageAdapter): Registry {
  const blobs = new BlobStore(storage);
  const tags = new TagStore(storage);
  const referrers = new ReferrersIndex(storage);
  return {
    storage,
    blobs,
    uploads: new UploadSessions(storage, blobs),
    tags,
    referrers,
    manifests: new ManifestStore(storage, blobs, tags, referrers),
  };
}
