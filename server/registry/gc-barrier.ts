// The writers' half of online garbage collection (the collector's half is gc.ts).
//
// After a writer makes something reference a blob or a manifest revision (a layer link,
// a manifest, a tag), it calls settle() with those items. While a collection holds its
// lease, the writer first waits as long as a tombstone names one of its items (the
// collector is still deciding about it). Then, always, it checks the items still exist: a
// collection that finished between the writer's own checks and its write would otherwise go
// unnoticed. If one was collected, the writer rolls its write back and the client gets a
// retryable 503, so no stored manifest or link ever points at deleted content.
import type { Digest } from '../../oci/digest.js';
import { PathNotFoundError, type StorageAdapter } from '../../storage-adapters/types.js';
import { RegistryError } from '../errors.js';
import { exists } from './blob-store.js';
import { isLeaseId, paths } from './paths.js';

/** A lease older than this is a crashed collector's and is ignored. */
export const LEASE_STALE_MS = 60_000;

export const blobItem = (digest: Digest) => `blob:${digest}`;
export const revisionItem = (repo: string, digest: Digest) => `revision:${repo}@${digest}`;

export interface Lease { id: string; heartbeat: number }

export async function readLease(storage: StorageAdapter): Promise<Lease | undefined> {
  try {
    return parseLease(await storage.getSmall(paths.gcLease(), 4096));
  } catch (e) {
    if (e instanceof PathNotFoundError) return undefined;
    throw e;
  }
}

/** A lease as stored; what berth did not write is none (as a stale one would be), and never used to build a path. */
export function parseLease(raw: Buffer): Lease | undefined {
  let lease: Lease;
  try { lease = JSON.parse(raw.toString('utf8')) as Lease; } catch { return undefined; }
  return lease && typeof lease.id === 'string' && isLeaseId(lease.id) && typeof lease.heartbeat === 'number' ? lease : undefined;
}

export function leaseIsLive(lease: Lease | undefined, now = Date.now()): boolean {
  return lease !== undefined && now - lease.heartbeat < LEASE_STALE_MS;
}

export class GcBarrier {
  constructor(private readonly storage: StorageAdapter, private readonly pollMs = 50) {}

  /**
   * Call after a write referencing `items`; each item comes with how to check it still exists.
   * Throws a 503 (after running rollback) when the collector took one of them.
   */
  async settle(items: { item: string; keys: string[] }[], rollback: () => Promise<void>): Promise<void> {
    for (let lease = await readLease(this.storage); leaseIsLive(lease); lease = await readLease(this.storage)) {
      const pending = await Promise.all(items.map((i) => exists(this.storage, paths.gcTombstone(lease!.id, i.item))));
      if (!pending.some(Boolean)) break;
      await new Promise((r) => setTimeout(r, this.pollMs));
    }
    const present = await Promise.all(items.flatMap((i) => i.keys.map((k) => exists(this.storage, k))));
    if (present.every(Boolean)) return;
    await rollback();
    throw new RegistryError('UNAVAILABLE', { reason: 'garbage collection removed content this request referenced' },
      { message: 'content was garbage-collected during this request; retry', headers: { 'Retry-After': '1' } });
  }

  /** A blob as the repository sees it: its data and the repository's link to it. */
  blob(digest: Digest, repo?: string): { item: string; keys: string[] } {
    return { item: blobItem(digest), keys: repo ? [paths.blobData(digest), paths.layerLink(repo, digest)] : [paths.blobData(digest)] };
  }

  revision(repo: string, digest: Digest): { item: string; keys: string[] } {
    return { item: revisionItem(repo, digest), keys: [paths.revisionLink(repo, digest)] };
  }
}
