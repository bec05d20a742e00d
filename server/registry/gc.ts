// Online garbage collection: mark everything reachable, sweep the rest, while the registry
// keeps serving pushes (unlike distribution's offline `garbage-collect`).
//
// The protocol, with the writers' half in gc-barrier.ts:
//  1. Take a lease (/_gc/lease, heartbeated) so writers know a collection is running. It is created
//     only if absent (an atomic conditional write), so of two collectors starting at once one gets it;
//     a crashed collector's stale lease is removed first, and a run checks it still holds the lease
//     before each deletion (and stops if it stalled long enough for writers to think it gone).
//  2. Mark: from every repository's tags (or every revision, unless --delete-untagged), walk
//     indexes → child manifests → config and layers, and (with --delete-untagged) kept manifests → their referrers. Blobs
//     whose data or repository link is younger than the grace period count as marked: they
//     are most likely a push in progress.
//  3. Candidates are what is not marked. Write a tombstone for each.
//  4. Mark again, from scratch. Anything referenced now (a push that landed meanwhile) is kept, and its
//     tombstone removed at once, so the push that rescued it goes on.
//  5. Delete the remaining candidates, then its tombstones (/_gc/tombstones/<lease id>/…: never another
//     run's) and the lease.
// Why it is safe: after its write, a writer waits while a tombstone names what it referenced
// (only while a lease is live), then checks that it still exists; if not, it undoes its
// write and the client gets a retryable 503. Suppose the collector deleted X after such a
// check passed. The deletion needs a tombstone, then a second mark that missed the write, so
// tombstone < mark < write < check; at the check the tombstone was still there (it goes only
// after the deletion) and the writer would have waited past the deletion and seen X gone.
// So no stored manifest or link ever points at deleted content.
import { randomUUID } from 'node:crypto';
import { parseDigest, type Digest } from '../../oci/digest.js';
import { parseManifest } from '../../oci/manifest.js';
import { ConflictError, PathNotFoundError, TooLargeError, type StorageAdapter } from '../../storage-adapters/types.js';
import { blobItem, LEASE_STALE_MS, leaseIsLive, parseLease, readLease, revisionItem } from './gc-barrier.js';
import { basename, paths } from './paths.js';
import { listRepositories, withUploads } from './repositories.js';
import { UploadSessions } from './upload-session.js';
import { BlobStore } from './blob-store.js';
import type { Descriptor } from '../../oci/manifest.js';

export interface GcOptions {
  dryRun?: boolean;
  /** Also delete manifests no tag reaches (directly, through an index, or as a referrer of a kept one). */
  deleteUntagged?: boolean;
  /** Content younger than this is never collected. */
  graceMs?: number;
  /** Purge upload sessions started longer ago than this. */
  uploadMaxAgeMs?: number;
  log?: (line: string) => void;
}

export interface GcReport {
  blobs: { digest: Digest; size: number }[];
  manifests: { repo: string; digest: Digest }[];
  bytesFreed: number;
  /** Candidates of the first mark that a concurrent push made reachable again. */
  rescued: number;
  uploadsPurged: string[];
  temporaryPurged: number;
}

export class GcBusyError extends Error {}

interface Revision { repo: string; digest: Digest; modified: Date }
interface Marked {
  blobs: Set<Digest>;
  /** "repo@digest" of manifest revisions that stay. */
  revisions: Set<string>;
  allRevisions: Revision[];
  /** Every repository link to each blob, for cleanup when the blob goes. */
  layerLinks: Map<Digest, string[]>;
}

/** Tombstones written at once: one write per candidate, all at once, ran out of file descriptors (EMFILE) past ~20k. */
const TOMBSTONE_CONCURRENCY = 32;

async function eachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

async function children(storage: StorageAdapter, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const k of storage.list(prefix)) out.push(k);
  return out;
}

/** Keys like <root>/<alg>/<hex>: yields each valid digest with its key. */
async function* digestDirs(storage: StorageAdapter, root: string): AsyncIterable<{ digest: Digest; key: string }> {
  for (const algKey of await children(storage, root)) {
    for (const key of await children(storage, algKey)) {
      try {
        yield { digest: parseDigest(`${basename(algKey)}:${basename(key)}`).digest, key };
      } catch { /* not ours */ }
    }
  }
}

function parseLink(raw: Buffer): Descriptor | undefined {
  try {
    const d = JSON.parse(raw.toString('utf8')) as Descriptor | null;
    return d && typeof d === 'object' && typeof d.mediaType === 'string' ? d : undefined;
  } catch { return undefined; }
}

async function statOrUndefined(storage: StorageAdapter, key: string) {
  try { return await storage.stat(key); } catch (e) { if (e instanceof PathNotFoundError) return undefined; throw e; }
}

async function mark(storage: StorageAdapter, deleteUntagged: boolean, cutoff: number): Promise<Marked> {
  const m: Marked = { blobs: new Set(), revisions: new Set(), allRevisions: [], layerLinks: new Map() };
  for (const repo of await listRepositories(storage)) {
    /** Each revision's media type as pushed; undefined for a link that is not a descriptor. */
    const revisions = new Map<Digest, string | undefined>();
    const recent = new Set<Digest>();
    for await (const { digest, key } of digestDirs(storage, paths.revisionsRoot(repo))) {
      const st = await statOrUndefined(storage, `${key}/link`);
      if (!st) continue;
      let raw: Buffer;
      try {
        raw = await storage.getSmall(`${key}/link`, 64 << 10);
      } catch (e) { if (!(e instanceof PathNotFoundError)) throw e; continue; }
      const link = parseLink(raw);
      revisions.set(digest, link?.mediaType);
      m.allRevisions.push({ repo, digest, modified: st.modified });
      // a corrupt link stopped every collection; it is kept, with what its manifest references, for a human to look at
      if (st.modified.getTime() >= cutoff || !link) recent.add(digest);
    }
    const roots: Digest[] = [...recent];
    if (deleteUntagged) {
      for await (const key of storage.list(paths.tagsRoot(repo))) {
        try {
          roots.push(parseDigest((await storage.getSmall(`${key}/link`, 256)).toString('utf8').trim()).digest);
        } catch { /* a tag deleted meanwhile, or a broken link: not a root */ }
      }
    } else {
      roots.push(...revisions.keys());
    }
    const queue = [...roots];
    while (queue.length) {
      const digest = queue.pop()!;
      const id = `${repo}@${digest}`;
      if (m.revisions.has(id) || !revisions.has(digest)) continue;
      m.revisions.add(id);
      m.blobs.add(digest);
      let body: Buffer;
      try {
        body = await storage.getSmall(paths.blobData(digest), 4 << 20);
      } catch (e) { if (e instanceof PathNotFoundError) continue; throw e; }
      try {
        const parsed = parseManifest(body, revisions.get(digest));
        // a foreign layer a client pushed anyway (docker --allow-nondistributable-artifacts) is pulled from here too
        for (const d of [...parsed.blobs, ...parsed.foreignLayers]) m.blobs.add(d.digest);
        // an index child may be a plain blob (a BuildKit cache index): keep its data too
        for (const d of parsed.manifests) { queue.push(d.digest); m.blobs.add(d.digest); }
      } catch { /* an unparsable manifest keeps only itself */ }
      if (deleteUntagged) {
        for await (const key of storage.list(paths.referrersOf(repo, digest))) {
          const name = basename(key);
          try { queue.push(parseDigest(name.replace('-', ':')).digest); } catch { /* ignore */ }
        }
      }
    }
    for await (const { digest, key } of digestDirs(storage, paths.layersRoot(repo))) {
      const st = await statOrUndefined(storage, `${key}/link`);
      if (!st) continue;
      m.layerLinks.set(digest, [...(m.layerLinks.get(digest) ?? []), key]);
      if (st.modified.getTime() >= cutoff) m.blobs.add(digest);
    }
  }
  return m;
}

async function blobCandidates(storage: StorageAdapter, marked: Marked, cutoff: number): Promise<{ digest: Digest; size: number }[]> {
  const out: { digest: Digest; size: number }[] = [];
  for (const algKey of await children(storage, paths.blobsRoot())) {
    for (const prefixKey of await children(storage, algKey)) {
      for (const key of await children(storage, prefixKey)) {
        let digest: Digest;
        try { digest = parseDigest(`${basename(algKey)}:${basename(key)}`).digest; } catch { continue; }
        if (marked.blobs.has(digest)) continue;
        const st = await statOrUndefined(storage, `${key}/data`);
        if (!st || st.modified.getTime() >= cutoff) continue;
        out.push({ digest, size: st.size });
      }
    }
  }
  return out;
}

export async function collectGarbage(storage: StorageAdapter, opts: GcOptions = {}): Promise<GcReport> {
  const log = opts.log ?? (() => undefined);
  const graceMs = opts.graceMs ?? 3_600_000;
  const report: GcReport = { blobs: [], manifests: [], bytesFreed: 0, rescued: 0, uploadsPurged: [], temporaryPurged: 0 };
  const id = randomUUID();
  let heartbeat: NodeJS.Timeout | undefined;
  let renewedAt = Date.now(); // the heartbeat last stored (takeLease stores a later one)

  if (!opts.dryRun) {
    await takeLease(storage, id);
    heartbeat = setInterval(() => {
      renewLease(storage, id, renewedAt).then((at) => { if (at !== undefined) renewedAt = Math.max(renewedAt, at); }, () => undefined);
    }, 10_000);
    heartbeat.unref();
    await dropOtherTombstones(storage, id); // left over by crashed runs
  }
  try {
    const cutoff = Date.now() - graceMs;
    const first = await mark(storage, Boolean(opts.deleteUntagged), cutoff);
    let manifests = opts.deleteUntagged
      ? first.allRevisions.filter((r) => !first.revisions.has(`${r.repo}@${r.digest}`) && r.modified.getTime() < cutoff)
      : [];
    let blobs = await blobCandidates(storage, first, cutoff);
    if (opts.dryRun) {
      for (const r of manifests) log(`would delete manifest ${r.repo}@${r.digest}`);
      for (const b of blobs) log(`would delete blob ${b.digest} (${b.size} bytes)`);
      return { ...report, manifests, blobs, bytesFreed: blobs.reduce((n, b) => n + b.size, 0), ...await purgeUploads(storage, opts, true, log) };
    }

    const items = [...manifests.map((r) => revisionItem(r.repo, r.digest)), ...blobs.map((b) => blobItem(b.digest))];
    await eachLimited(items, TOMBSTONE_CONCURRENCY, (item) => storage.putSmall(paths.gcTombstone(id, item), Buffer.from(item)));

    const second = await mark(storage, Boolean(opts.deleteUntagged), cutoff);
    const before = manifests.length + blobs.length;
    manifests = manifests.filter((r) => !second.revisions.has(`${r.repo}@${r.digest}`));
    blobs = blobs.filter((b) => !second.blobs.has(b.digest));
    report.rescued = before - manifests.length - blobs.length;
    // What was rescued stays, so the pushes that rescued it need not wait for the sweep (minutes on S3)
    const doomed = new Set([...manifests.map((r) => revisionItem(r.repo, r.digest)), ...blobs.map((b) => blobItem(b.digest))]);
    await eachLimited(items.filter((item) => !doomed.has(item)), TOMBSTONE_CONCURRENCY, (item) => storage.delete(paths.gcTombstone(id, item)));

    for (const r of manifests) {
      await checkLease(storage, id, renewedAt);
      let subject: Digest | undefined;
      try {
        subject = parseManifest(await storage.getSmall(paths.blobData(r.digest), 4 << 20), undefined).subject?.digest;
      } catch { /* gone or unparsable: no referrer entry to clean */ }
      if (subject) await storage.delete(paths.referrerLink(r.repo, subject, r.digest));
      await storage.delete(paths.revisionLink(r.repo, r.digest).slice(0, -'/link'.length));
      log(`deleted manifest ${r.repo}@${r.digest}`);
      report.manifests.push({ repo: r.repo, digest: r.digest });
    }
    for (const b of blobs) {
      await checkLease(storage, id, renewedAt);
      await storage.delete(paths.blobData(b.digest).slice(0, -'/data'.length));
      for (const link of second.layerLinks.get(b.digest) ?? []) await storage.delete(link);
      log(`deleted blob ${b.digest} (${b.size} bytes)`);
      report.blobs.push(b);
      report.bytesFreed += b.size;
    }
    return { ...report, ...await purgeUploads(storage, opts, false, log) };
  } finally {
    if (heartbeat) clearInterval(heartbeat);
    if (!opts.dryRun) {
      await storage.delete(paths.gcTombstonesOf(id));
      const lease = await readLease(storage);
      if (lease?.id === id) await storage.delete(paths.gcLease());
    }
  }
}

/** Upload sessions older than uploadMaxAgeMs, and what interrupted writes left (a crash mid-write): purged, or only listed. */
async function purgeUploads(storage: StorageAdapter, opts: GcOptions, dryRun: boolean, log: (line: string) => void)
  : Promise<Pick<GcReport, 'uploadsPurged' | 'temporaryPurged'>> {
  if (opts.uploadMaxAgeMs === undefined) return { uploadsPurged: [], temporaryPurged: 0 };
  const uploads = new UploadSessions(storage, new BlobStore(storage));
  const before = new Date(Date.now() - opts.uploadMaxAgeMs);
  const uploadsPurged = await uploads.purge(withUploads(storage), before, dryRun);
  for (const u of uploadsPurged) log(`${dryRun ? 'would purge' : 'purged'} upload ${u}`);
  const temporaryPurged = (await storage.purgeTemporary?.(before, dryRun)) ?? 0;
  if (temporaryPurged > 0) log(`${dryRun ? 'would remove' : 'removed'} ${temporaryPurged} unfinished temporary write(s)`);
  return { uploadsPurged, temporaryPurged };
}

const leaseBody = (id: string) => Buffer.from(JSON.stringify({ id, heartbeat: Date.now() }));

/** Creates the lease, only if there is none: of collectors starting at once, one gets it. A stale one is a crashed run's. */
async function takeLease(storage: StorageAdapter, id: string): Promise<void> {
  let raw: Buffer | undefined;
  try {
    raw = await storage.getSmall(paths.gcLease(), 4096);
  } catch (e) {
    if (!(e instanceof PathNotFoundError || e instanceof TooLargeError)) throw e;
    if (e instanceof TooLargeError) raw = Buffer.alloc(0);
  }
  if (raw) {
    const existing = parseLease(raw);
    if (leaseIsLive(existing)) throw new GcBusyError(`another garbage collection is running (lease ${existing!.id})`);
    await storage.delete(paths.gcLease());
  }
  try {
    await storage.putSmall(paths.gcLease(), leaseBody(id), { ifAbsent: true });
  } catch (e) {
    if (e instanceof ConflictError) throw new GcBusyError('another garbage collection started at the same time');
    throw e;
  }
}

/**
 * The heartbeat; returns the heartbeat it stored. A run whose lease was taken over leaves it to the new holder, and
 * one that stalled past LEASE_STALE_MS (suspended, or its renewals failed) never revives it: writers may have
 * stopped honouring its tombstones meanwhile, so checkLease() must see the gap.
 */
async function renewLease(storage: StorageAdapter, id: string, renewedAt: number): Promise<number | undefined> {
  const now = Date.now();
  if (now - renewedAt >= LEASE_STALE_MS || (await readLease(storage))?.id !== id) return undefined;
  await storage.putSmall(paths.gcLease(), Buffer.from(JSON.stringify({ id, heartbeat: now })));
  return now;
}

/**
 * Before each deletion, not once before them all (a sweep can take minutes): writers honour tombstones only while
 * the lease is live, so a run whose lease went stale (it stalled) or was taken over by another collector stops.
 * Half the stale age is the margin for the deletion itself.
 */
async function checkLease(storage: StorageAdapter, id: string, renewedAt: number): Promise<void> {
  if (Date.now() - renewedAt >= LEASE_STALE_MS / 2) {
    throw new GcBusyError(`this garbage collection stalled for ${Math.round((Date.now() - renewedAt) / 1000)} s and may have lost its lease; it stopped deleting`);
  }
  const lease = await readLease(storage);
  if (lease?.id !== id) throw new GcBusyError(`this garbage collection lost its lease${lease ? ` to ${lease.id}` : ''}; it stopped deleting`);
}

/** Tombstones of earlier, crashed runs: writers only look at the live lease's, so they only take up space. */
async function dropOtherTombstones(storage: StorageAdapter, id: string): Promise<void> {
  for await (const key of storage.list(paths.gcTombstones())) {
    if (key !== paths.gcTombstonesOf(id)) await storage.delete(key);
  }
}
