// OCI image layout directories (image-spec "oci-layout"): blobs/<alg>/<hex>, index.json, oci-layout.
// Blobs are written through a partial file in .berth-ingest/ that is verified and renamed into
// place, so a crash leaves either no blob or a complete one; index.json is rewritten atomically.
// Tags are the org.opencontainers.image.ref.name annotation on index.json entries.
import { createReadStream } from 'node:fs';
import { mkdir, readFile, readdir, rmdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { digestOf, parseDigest, type Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/manifest.js';
import { MediaType } from '../oci/media-types.js';
import { writeFileAtomic } from './atomic.js';
import { ingestBlob, type IngestOptions, type IngestResult, type OffsetOpener } from './blob-ingest.js';
import { ClientError, ContentRemovedError, IntegrityError, NotFoundError } from './errors.js';
import { lockIn, SerialLock } from './pid-lock.js';

export const REF_NAME = 'org.opencontainers.image.ref.name';
const INGEST_DIR = '.berth-ingest';

export interface IndexJson {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

export class ImageLayout {
  private readonly indexLock: SerialLock;

  private constructor(readonly dir: string) {
    this.indexLock = new SerialLock(dir, join(dir, 'index.json.lock'));
  }

  /** Opens a layout; `create` makes the directory and its oci-layout/index.json when missing. */
  static async open(dir: string, opts: { create?: boolean } = {}): Promise<ImageLayout> {
    const layout = new ImageLayout(dir);
    let marker: string | undefined;
    try { marker = await readFile(join(dir, 'oci-layout'), 'utf8'); } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new ClientError(`cannot read ${dir}: ${(e as Error).message}`);
    }
    if (marker === undefined) {
      if (!opts.create) throw new NotFoundError(`${dir} is not an OCI image layout (no oci-layout file)`);
      await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
      await writeFileAtomic(join(dir, 'oci-layout'), `${JSON.stringify({ imageLayoutVersion: '1.0.0' })}`);
      try { await stat(join(dir, 'index.json')); } catch {
        await writeFileAtomic(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] }));
      }
    } else {
      try {
        const v = (JSON.parse(marker) as { imageLayoutVersion?: string }).imageLayoutVersion;
        if (typeof v !== 'string' || !v.startsWith('1.')) throw new Error(`unsupported imageLayoutVersion ${v}`);
      } catch (e) {
        throw new ClientError(`${dir}/oci-layout: ${(e as Error).message}`);
      }
    }
    return layout;
  }

  blobPath(digest: Digest): string {
    const { algorithm, encoded } = parseDigest(digest);
    return join(this.dir, 'blobs', algorithm, encoded);
  }

  partialPath(digest: Digest): string {
    const { algorithm, encoded } = parseDigest(digest);
    return join(this.dir, INGEST_DIR, `${algorithm}-${encoded}`);
  }

  async hasBlob(desc: Pick<Descriptor, 'digest' | 'size'>): Promise<boolean> {
    try { return (await stat(this.blobPath(desc.digest))).size === desc.size; } catch { return false; }
  }

  /**
   * A read stream over a blob (a byte range of it). The reader verifies the digest; a blob whose size
   * is not `size` (its descriptor's) fails at once, as an upload of it would send too few or too many bytes.
   */
  async openBlob(digest: Digest, offset = 0, length?: number, size?: number): Promise<Readable> {
    const path = this.blobPath(digest);
    let actual: number;
    try { actual = (await stat(path)).size; } catch { throw new NotFoundError(`blob ${digest} is not in ${this.dir}`); }
    if (size !== undefined && actual !== size) throw new IntegrityError(`blob ${digest} in ${this.dir} is corrupt: ${actual} bytes, its descriptor says ${size}`);
    if (length === 0) return createReadStream(path, { start: 0, end: -1 });
    return createReadStream(path, { start: offset, ...(length !== undefined ? { end: offset + length - 1 } : {}), highWaterMark: 1 << 20 });
  }

  /** Reads a small blob (manifest, config), verified against its digest. */
  async readSmall(desc: Pick<Descriptor, 'digest' | 'size'>, max = 4 * 1024 * 1024): Promise<Buffer> {
    if (desc.size > max) throw new ClientError(`blob ${desc.digest} is too big to read into memory (${desc.size} bytes)`);
    let bytes: Buffer;
    try { bytes = await readFile(this.blobPath(desc.digest)); } catch { throw new NotFoundError(`blob ${desc.digest} is not in ${this.dir}`); }
    const { algorithm } = parseDigest(desc.digest);
    if (digestOf(bytes, algorithm) !== desc.digest || bytes.length !== desc.size) throw new IntegrityError(`blob ${desc.digest} in ${this.dir} is corrupt`);
    return bytes;
  }

  /** Writes a small blob atomically (idempotent). */
  async writeSmall(bytes: Buffer, digest?: Digest): Promise<Digest> {
    const d = digest ?? digestOf(bytes);
    if (digestOf(bytes, parseDigest(d).algorithm) !== d) throw new IntegrityError(`blob ${d}: content does not match`);
    if (await this.hasBlob({ digest: d, size: bytes.length })) return d;
    await writeFileAtomic(this.blobPath(d), bytes);
    return d;
  }

  /**
   * Streams a blob in (resuming a partial one), verified; no-op when present. Several processes may
   * pull into one layout: the partial file is theirs one at a time (a lock beside it), and whoever
   * waited finds the blob there afterwards.
   */
  async ingest(desc: Descriptor, open: OffsetOpener, opts: IngestOptions = {}): Promise<IngestResult & { existed: boolean }> {
    const existed = { resumedFrom: desc.size, fetched: 0, existed: true };
    if (await this.hasBlob(desc)) return existed;
    const partial = this.partialPath(desc.digest);
    const release = await lockIn(dirname(partial), `${partial}.lock`);
    try {
      if (await this.hasBlob(desc)) return existed;
      const r = await ingestBlob(desc, partial, this.blobPath(desc.digest), open, opts);
      return { ...r, existed: false };
    } finally { await release(); }
  }

  /** Removes the ingest directory when nothing partial is left in it. */
  async tidy(): Promise<void> {
    try {
      if ((await readdir(join(this.dir, INGEST_DIR))).length === 0) await rmdir(join(this.dir, INGEST_DIR));
    } catch { /* absent or busy */ }
  }

  async readIndex(): Promise<IndexJson> {
    let text: string;
    try { text = await readFile(join(this.dir, 'index.json'), 'utf8'); } catch { return { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] }; }
    try {
      const doc = JSON.parse(text) as IndexJson;
      if (!Array.isArray(doc.manifests)) throw new Error('no manifests array');
      if (!doc.manifests.every((m) => typeof m === 'object' && m !== null && typeof m.digest === 'string')) throw new Error('a manifests entry without a digest');
      return doc;
    } catch (e) {
      throw new ClientError(`${this.dir}/index.json is invalid: ${(e as Error).message}`);
    }
  }

  /** The index.json entry for `tag`; without a tag, the only entry (an error when there are several). */
  async resolve(tag?: string): Promise<Descriptor> {
    const idx = await this.readIndex();
    if (tag) {
      const d = idx.manifests.find((m) => m.annotations?.[REF_NAME] === tag);
      if (!d) throw new NotFoundError(`${this.dir} has no image tagged "${tag}"${idx.manifests.length ? ` (tags: ${this.tagsOf(idx).join(', ') || 'none'})` : ''}`);
      return d;
    }
    if (idx.manifests.length === 1) return idx.manifests[0]!;
    if (idx.manifests.length === 0) throw new NotFoundError(`${this.dir} holds no image`);
    throw new ClientError(`${this.dir} holds ${idx.manifests.length} images: name one with oci:${this.dir}:TAG (tags: ${this.tagsOf(idx).join(', ')})`);
  }

  private tagsOf(idx: IndexJson): string[] {
    return idx.manifests.map((m) => m.annotations?.[REF_NAME]).filter((t): t is string => !!t);
  }

  async tags(): Promise<string[]> { return this.tagsOf(await this.readIndex()); }

  /**
   * Points `tag` at `desc` in index.json (replacing the entry that had the tag), atomically. With
   * `complete`, only when every blob below `desc` is in the layout, looked at under the index lock:
   * rmi and prune delete blobs under that lock, so a copy that found a blob in place before one of
   * them deleted it gets a ContentRemovedError here instead of naming an image that lacks it.
   */
  async setTag(desc: Descriptor, tag: string | undefined, opts: { complete?: boolean } = {}): Promise<void> {
    await this.updateIndex(async (idx) => {
      if (opts.complete) {
        const missing = await this.missingBlobs(desc);
        if (missing.length) throw new ContentRemovedError(`${missing.join(', ')} of ${desc.digest} left ${this.dir} while it was copied in (removed by a concurrent rmi or prune)`);
      }
      const entry: Descriptor = {
        mediaType: desc.mediaType, digest: desc.digest, size: desc.size,
        ...(desc.platform ? { platform: desc.platform } : {}),
        ...(tag || desc.annotations ? { annotations: { ...desc.annotations, ...(tag ? { [REF_NAME]: tag } : {}) } } : {}),
      };
      // a tag replaces the entry that had it, and the untagged entry of the same image (a <none> left by rmi -f)
      const keep = idx.manifests.filter((m) => (tag ? m.annotations?.[REF_NAME] !== tag : true) && (m.digest !== desc.digest || !!m.annotations?.[REF_NAME]));
      idx.manifests = [...keep, entry];
    });
  }

  /** The blobs below the manifest or index `desc` (itself included) that are not in the layout. */
  async missingBlobs(desc: Pick<Descriptor, 'digest' | 'size'>, depth = 0): Promise<Digest[]> {
    let doc: { manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[] };
    try { doc = JSON.parse((await this.readSmall(desc)).toString('utf8')) as typeof doc; } catch (e) {
      if (e instanceof NotFoundError) return [desc.digest];
      throw e;
    }
    const missing: Digest[] = [];
    for (const m of doc.manifests ?? []) {
      if (depth < 4 && /manifest|index/.test(m.mediaType) && /json/.test(m.mediaType)) missing.push(...await this.missingBlobs(m, depth + 1));
      else if (!(await this.hasBlob(m))) missing.push(m.digest);
    }
    for (const b of [...(doc.config ? [doc.config] : []), ...(doc.layers ?? [])]) if (!(await this.hasBlob(b))) missing.push(b.digest);
    return missing;
  }

  async removeTag(tag: string): Promise<boolean> {
    let found = false;
    await this.updateIndex((idx) => {
      const before = idx.manifests.length;
      idx.manifests = idx.manifests.filter((m) => m.annotations?.[REF_NAME] !== tag);
      found = idx.manifests.length !== before;
    });
    return found;
  }

  /**
   * Rewrites the index.json entries in one atomic update (`fn` gets a copy and returns the new
   * list): untagging an image while keeping it as an untagged entry, or removing entries by digest.
   */
  async updateEntries(fn: (manifests: Descriptor[]) => Descriptor[]): Promise<void> {
    await this.withIndexLock((update) => update(fn));
  }

  /**
   * Runs `fn` holding the index lock: one at a time in this process, and across processes
   * (index.json.lock). `fn` gets an updateEntries of its own, which does not take the lock again.
   * rmi and prune decide and delete under it, so no copy names an image meanwhile.
   */
  withIndexLock<T>(fn: (update: (f: (manifests: Descriptor[]) => Descriptor[]) => Promise<void>) => Promise<T>): Promise<T> {
    return this.indexLock.run(() => fn((f) => this.writeIndex((idx) => { idx.manifests = f([...idx.manifests]); })));
  }

  /** A read-modify-write of index.json, under the index lock. */
  private updateIndex(fn: (idx: IndexJson) => void | Promise<void>): Promise<void> {
    return this.withIndexLock(() => this.writeIndex(fn));
  }

  /** Reads, changes and atomically rewrites index.json; the caller holds the index lock. */
  private async writeIndex(fn: (idx: IndexJson) => void | Promise<void>): Promise<void> {
    const idx = await this.readIndex();
    await fn(idx);
    await writeFileAtomic(join(this.dir, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: idx.manifests, ...(idx.annotations ? { annotations: idx.annotations } : {}) }));
  }
}
