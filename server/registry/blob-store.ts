// Content-addressed blobs, shared by all repositories, plus each repository's links to them.
// A blob is visible in a repository only through its link, so pulling needs both.
import type { Readable } from 'node:stream';
import type { Digest } from '../../oci/digest.js';
import { PathNotFoundError, type ByteRange, type StorageAdapter } from '../../storage-adapters/types.js';
import { paths } from './paths.js';
import { GcBarrier } from './gc-barrier.js';

export class BlobStore {
  readonly barrier: GcBarrier;
  constructor(private readonly storage: StorageAdapter) {
    this.barrier = new GcBarrier(storage);
  }

  /** Size of the blob in the global store, or undefined. */
  async size(digest: Digest): Promise<number | undefined> {
    try {
      return (await this.storage.stat(paths.blobData(digest))).size;
    } catch (e) {
      if (e instanceof PathNotFoundError) return undefined;
      throw e;
    }
  }

  async isLinked(repo: string, digest: Digest): Promise<boolean> {
    return exists(this.storage, paths.layerLink(repo, digest));
  }

  /** Size of a blob as seen from a repository: linked there and present. */
  async sizeInRepo(repo: string, digest: Digest): Promise<number | undefined> {
    // both lookups at once: one storage round trip instead of two for every blob HEAD/GET
    const [linked, size] = await Promise.all([this.isLinked(repo, digest), this.size(digest)]);
    return linked ? size : undefined;
  }

  /** Makes a blob visible in a repository (after an upload or a mount); safe against a concurrent GC. */
  async link(repo: string, digest: Digest): Promise<void> {
    const key = paths.layerLink(repo, digest);
    await this.storage.putSmall(key, Buffer.from(digest));
    await this.barrier.settle([this.barrier.blob(digest, repo)], () => this.storage.delete(key));
  }

  async unlink(repo: string, digest: Digest): Promise<boolean> {
    const key = paths.layerLink(repo, digest);
    if (!(await exists(this.storage, key))) return false;
    await this.storage.delete(key.slice(0, -'/link'.length));
    return true;
  }

  open(digest: Digest, range?: ByteRange): Promise<Readable> {
    return this.storage.read(paths.blobData(digest), range);
  }

  redirectUrl(digest: Digest, method: 'GET' | 'HEAD'): Promise<string | undefined> {
    return this.storage.redirectUrl?.(paths.blobData(digest), method) ?? Promise.resolve(undefined);
  }
}

export async function exists(storage: StorageAdapter, key: string): Promise<boolean> {
  try {
    await storage.stat(key);
    return true;
  } catch (e) {
    if (e instanceof PathNotFoundError) return false;
    throw e;
  }
}
