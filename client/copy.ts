// The copy engine behind push, pull and copy: walk the source's manifest graph (one platform of
// an index, or --all of it), move every blob once (in parallel, `jobs` at a time, skipping what the
// destination has, mounting across repositories, resuming partial downloads), then the manifests
// bottom-up so a destination never sees a manifest before its content; optionally the referrers.
import type { Digest } from '../oci/digest.js';
import { parseManifest, type Descriptor, type ParsedManifest } from '../oci/manifest.js';
import { ClientError, NotFoundError, UnsupportedError } from './errors.js';
import type { ImageDestination, ImageSource, ManifestBlob } from './image-source.js';
import { limiter } from './limit.js';
import { formatPlatform, hostPlatform, listPlatforms, selectPlatform, type Platform } from './platform.js';
import { formatBytes, SilentProgress, type Progress } from './progress.js';

export interface CopyOptions {
  /** Every platform of an index (default: only `platform`'s manifest). */
  all?: boolean;
  platform?: Platform;
  /** Parallel blob transfers. Default 4. */
  jobs?: number;
  /** Also copy manifests that refer to the copied ones (signatures, SBOMs…). */
  referrers?: boolean;
  /** Tags to give the copied root in the destination (none: by digest / untagged). */
  tags: string[];
  progress?: Progress;
  /** Told as the copy goes: each image manifest before its blobs are copied, each blob once it is in the destination. */
  observer?: CopyObserver;
}

export interface CopyObserver {
  imageManifest?(m: ManifestBlob): void;
  blobDone?(desc: Descriptor): void;
}

export interface CopyResult {
  digest: Digest;
  mediaType: string;
  size: number;
  platform?: string;
  manifests: number;
  referrers: number;
  blobs: { total: number; copied: number; existed: number; mounted: number; resumed: number };
  /** Blob bytes moved in this run (excluding what was already there). */
  bytes: number;
  /** Bytes of partial blobs that were already on disk and not fetched again. */
  resumedBytes: number;
}

const SMALL_BLOB = 1 << 20;

function isManifestType(mediaType: string): boolean {
  return /manifest|index/.test(mediaType) && /json/.test(mediaType);
}

export async function copyImage(src: ImageSource, dst: ImageDestination, opts: CopyOptions): Promise<CopyResult> {
  const progress = opts.progress ?? new SilentProgress();
  const run = limiter(opts.jobs ?? 4);
  // Small blobs (configs, signatures…) take a few milliseconds but would hold one of the `jobs`
  // slots for a whole round trip sequence behind big layers: they get slots of their own.
  const runSmall = limiter(opts.jobs ?? 4);
  const blobs = new Map<Digest, Promise<void>>();
  const manifests = new Map<Digest, Promise<void>>();
  const result: CopyResult = {
    digest: '' as Digest, mediaType: '', size: 0, manifests: 0, referrers: 0,
    blobs: { total: 0, copied: 0, existed: 0, mounted: 0, resumed: 0 }, bytes: 0, resumedBytes: 0,
  };

  const parse = (m: ManifestBlob): ParsedManifest => {
    try { return parseManifest(m.bytes, m.descriptor.mediaType); } catch (e) {
      throw new ClientError(`${src.description}: manifest ${m.descriptor.digest}: ${(e as Error).message}`);
    }
  };

  const copyBlob = (desc: Descriptor): Promise<void> => {
    let p = blobs.get(desc.digest);
    if (!p) {
      result.blobs.total++;
      p = (desc.size <= SMALL_BLOB ? runSmall : run)(async () => {
        const id = desc.digest;
        const label = desc.digest.slice(desc.digest.indexOf(':') + 1, desc.digest.indexOf(':') + 13);
        progress.start(id, label, desc.size);
        const outcome = await dst.putBlob(desc, src, (n) => progress.update(id, n));
        opts.observer?.blobDone?.(desc);
        if (outcome === 'exists') { result.blobs.existed++; progress.finish(id, 'already exists'); return; }
        if (outcome === 'mounted') { result.blobs.mounted++; progress.finish(id, `mounted from ${src.registryRepo?.repository}`); return; }
        if (outcome === 'copied') {
          result.blobs.copied++;
          result.bytes += desc.size;
          progress.finish(id, `done (${formatBytes(desc.size)})`);
          return;
        }
        result.blobs.resumed++;
        result.resumedBytes += outcome.resumedFrom;
        result.bytes += desc.size - outcome.resumedFrom;
        progress.finish(id, `done (resumed at ${formatBytes(outcome.resumedFrom)} of ${formatBytes(desc.size)})`);
      });
      blobs.set(desc.digest, p);
    }
    return p;
  };

  /** Copies a manifest and everything below it; `tags` only for the root. */
  const copyTree = (m: ManifestBlob, tags: string[], kind: { root?: boolean; referrer?: boolean } = {}): Promise<void> => {
    const existing = manifests.get(m.descriptor.digest);
    if (existing && !tags.length) return existing;
    const p = (async () => {
      const parsed = parse(m);
      if (parsed.kind === 'image') {
        opts.observer?.imageManifest?.(m);
        await Promise.all(parsed.blobs.map(copyBlob));
      } else {
        if (!dst.supportsIndex) throw new UnsupportedError(`${dst.description} holds a single image: copy one platform (drop --all or pass --platform)`);
        await Promise.all(parsed.manifests.map(async (child) => {
          if (!isManifestType(child.mediaType)) { await copyBlob(child); return; }
          const bytes = await src.manifest(child);
          await copyTree({ descriptor: { mediaType: child.mediaType, digest: child.digest, size: child.size }, bytes }, []);
        }));
      }
      await dst.putManifest(m, tags, kind);
      result.manifests++;
    })();
    if (!tags.length) manifests.set(m.descriptor.digest, p);
    return p;
  };

  const copyReferrers = async (subjects: Digest[]): Promise<void> => {
    if (!src.referrers) throw new UnsupportedError(`${src.description} cannot list referrers`);
    const seen = new Set<Digest>(subjects);
    let queue = subjects;
    while (queue.length) {
      const next: Digest[] = [];
      for (const subject of queue) {
        for (const r of await src.referrers(subject)) {
          if (seen.has(r.digest)) continue;
          seen.add(r.digest);
          const bytes = await src.manifest(r);
          await copyTree({ descriptor: { mediaType: r.mediaType, digest: r.digest, size: r.size }, bytes }, [], { referrer: true });
          result.referrers++;
          next.push(r.digest);
        }
      }
      queue = next;
    }
  };

  try {
    const root = await src.root();
    let top = root;
    const kind = parse(root).kind;
    if (kind === 'index' && !opts.all) {
      const want = opts.platform ?? hostPlatform();
      const children = parse(root).manifests;
      const pick = selectPlatform(children, want);
      if (!pick) {
        throw new NotFoundError(`${src.description}: no manifest for platform ${formatPlatform(want)} (available: ${listPlatforms(children).join(', ') || 'none'}; use --platform or --all)`);
      }
      const bytes = await src.manifest(pick);
      top = { descriptor: { mediaType: pick.mediaType, digest: pick.digest, size: pick.size, ...(pick.platform ? { platform: pick.platform } : {}) }, bytes };
      result.platform = formatPlatform(pick.platform as Partial<Platform>);
    }
    await copyTree(top, opts.tags, { root: true });
    result.digest = top.descriptor.digest;
    result.mediaType = top.descriptor.mediaType;
    result.size = top.descriptor.size;
    if (opts.referrers) await copyReferrers([...new Set([top.descriptor.digest, ...manifests.keys()])]);
    await dst.commit();
  } catch (e) {
    // wait for transfers still running so nothing writes after we report the failure
    await Promise.allSettled([...blobs.values(), ...manifests.values()]);
    await dst.abort?.();
    throw e;
  } finally {
    progress.close();
  }
  return result;
}
