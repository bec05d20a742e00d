// docker-archive: the `docker save` / `docker load` tarball, both directions.
//   reading: manifest.json [{Config, RepoTags, Layers}] with members streamed from the tar by offset
//            (legacy <id>/layer.tar and docker ≥ 25's blobs/sha256/<hex> both work); the image is
//            presented as an OCI manifest whose layers are the members as they are (tar, or gzip).
//            A gzipped archive (`docker save IMG | gzip`, which `docker load` takes) is first
//            gunzipped, streamed, into an unlinked temporary file that is read by offset instead.
//   writing: layers are stored uncompressed (<diffid>/layer.tar, what `docker load` and skopeo
//            expect): gzip layers are gunzipped on the fly into a staging directory while both the
//            compressed digest and the diff_id are checked; then the tar is streamed to a temp file
//            and renamed into place.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rm, stat, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { digestOf, parseDigest, type Digest } from '../oci/digest.js';
import { familiarReference, parseImageReference, type ImageReference } from '../oci/image-reference.js';
import type { Descriptor } from '../oci/manifest.js';
import { parseManifest } from '../oci/manifest.js';
import { MediaType } from '../oci/media-types.js';
import { commitFile, tempPathFor } from './atomic.js';
import { ClientError, IntegrityError, NotFoundError, UnsupportedError } from './errors.js';
import type { BlobOutcome, ImageDestination, ImageSource, ManifestBlob } from './image-source.js';
import { TarIndex, type TarMember } from './tar-index.js';
import { writeTar, type TarWriterEntry } from './tar-writer.js';

interface ArchiveManifestEntry { Config: string; RepoTags?: string[] | null; Layers: string[] }

/** zlib's own words for bad gzip data, as an IntegrityError naming what it was; any other error as it is. */
function asGzipError(e: unknown, what: string): unknown {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'Z_DATA_ERROR' || code === 'Z_BUF_ERROR' ? new IntegrityError(`${what} is not valid gzip data: ${(e as Error).message}`) : e;
}

function hashing(algorithm: string): { stream: Transform; digest: () => string; bytes: () => number } {
  const h = createHash(algorithm);
  let n = 0;
  const stream = new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _e, done) { h.update(chunk); n += chunk.length; done(null, chunk); },
  });
  return { stream, digest: () => h.digest('hex'), bytes: () => n };
}

function sameRef(a: string, b: string): boolean {
  try {
    const x = parseImageReference(a);
    const y = parseImageReference(b);
    return x.registry === y.registry && x.repository === y.repository && x.tag === y.tag;
  } catch {
    return a === b;
  }
}

// ---- reading --------------------------------------------------------------------------------

/** True when the file starts with gzip's magic bytes. */
async function isGzip(path: string): Promise<boolean> {
  const fh = await open(path, 'r').catch((e: Error) => { throw new ClientError(`cannot open ${path}: ${e.message}`); });
  try {
    const head = Buffer.alloc(2);
    const { bytesRead } = await fh.read(head, 0, 2, 0);
    return bytesRead === 2 && head[0] === 0x1f && head[1] === 0x8b;
  } finally {
    await fh.close();
  }
}

/**
 * A path that opens the (unlinked) file behind `fh` afresh. Streams get their own descriptor this
 * way: fs streams given a shared fd close it when they are destroyed, even with autoClose: false.
 */
function viaProc(fh: FileHandle): string {
  return `/proc/self/fd/${fh.fd}`;
}

/**
 * Gunzips `path` into a temporary file under TMPDIR and answers an open handle to it. The file is
 * unlinked as soon as it is open, before anything is written, so nothing is left behind whatever
 * happens to this process.
 */
async function gunzipToHiddenFile(path: string): Promise<FileHandle> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-archive-'));
  let fh: FileHandle;
  try {
    fh = await open(join(dir, 'archive.tar'), 'w+', 0o600);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  try {
    await pipeline(createReadStream(path, { highWaterMark: 1 << 20 }), createGunzip(), createWriteStream(viaProc(fh)));
  } catch (e) {
    await fh.close();
    throw new ClientError(`${path}: cannot gunzip it: ${(e as Error).message}`);
  }
  return fh;
}

export class DockerArchiveSource implements ImageSource {
  private index?: TarIndex;
  /** The gunzipped copy of a gzipped archive (unlinked), read instead of `path`. */
  private gunzipped?: FileHandle;
  private rootBlob?: ManifestBlob;
  private readonly members = new Map<Digest, TarMember>();
  /** RepoTags of the chosen image. */
  repoTags: string[] = [];

  constructor(readonly path: string, readonly ref?: string) {}
  get description(): string { return `docker-archive:${this.path}${this.ref ? `:${this.ref}` : ''}`; }

  private member(name: string): TarMember {
    const m = this.index!.file(name);
    if (!m) throw new ClientError(`${this.path}: member ${name} is missing`);
    return m;
  }

  private stream(m: TarMember, offset = 0, length?: number): Readable {
    const start = m.offset + offset;
    const end = m.offset + (length !== undefined ? offset + length : m.size) - 1;
    const range = { start, end: Math.max(start - 1, end), highWaterMark: 1 << 20 };
    return createReadStream(this.gunzipped ? viaProc(this.gunzipped) : this.path, range);
  }

  private async small(m: TarMember, what: string): Promise<Buffer> {
    if (m.size > 4 * 1024 * 1024) throw new ClientError(`${this.path}: ${what} is too big (${m.size} bytes)`);
    const parts: Buffer[] = [];
    for await (const c of this.stream(m)) parts.push(c as Buffer);
    return Buffer.concat(parts);
  }

  /** manifest.json's entries (the archive indexed, and gunzipped first when it is gzipped). */
  private async entries(): Promise<ArchiveManifestEntry[]> {
    await stat(this.path).catch((e: NodeJS.ErrnoException) => {
      throw e.code === 'ENOENT' || e.code === 'ENOTDIR' ? new NotFoundError(`${this.path}: no such file`) : e;
    });
    if (!this.gunzipped && await isGzip(this.path)) this.gunzipped = await gunzipToHiddenFile(this.path);
    this.index ??= await TarIndex.read(this.path, this.gunzipped);
    const mj = this.index.file('manifest.json');
    if (!mj) throw new ClientError(`${this.path} is not a docker-archive (no manifest.json)`);
    let entries: ArchiveManifestEntry[];
    try { entries = JSON.parse((await this.small(mj, 'manifest.json')).toString('utf8')) as ArchiveManifestEntry[]; } catch {
      throw new ClientError(`${this.path}: manifest.json is not valid JSON`);
    }
    if (!Array.isArray(entries) || entries.length === 0) throw new ClientError(`${this.path}: manifest.json lists no image`);
    for (const e of entries) {
      if (typeof e !== 'object' || e === null || typeof e.Config !== 'string' || !Array.isArray(e.Layers) || !e.Layers.every((l) => typeof l === 'string')) {
        throw new ClientError(`${this.path}: manifest.json has an entry without a Config name and a list of Layers`);
      }
    }
    return entries;
  }

  /** The names (RepoTags; none for an untagged one) of each image the archive holds, in its order. */
  async images(): Promise<string[][]> {
    return (await this.entries()).map((e) => (Array.isArray(e.RepoTags) ? e.RepoTags.filter((t) => typeof t === 'string') : []));
  }

  async root(): Promise<ManifestBlob> {
    if (this.rootBlob) return this.rootBlob;
    const entries = await this.entries();
    let entry: ArchiveManifestEntry | undefined;
    if (this.ref) {
      entry = entries.find((e) => (e.RepoTags ?? []).some((t) => sameRef(t, this.ref!)));
      if (!entry && /^@?\d+$/.test(this.ref)) entry = entries[Number(this.ref.replace('@', ''))];
      if (!entry) throw new NotFoundError(`${this.path} has no image "${this.ref}" (has: ${entries.flatMap((e) => e.RepoTags ?? []).join(', ') || 'untagged images'})`);
    } else {
      if (entries.length > 1) throw new ClientError(`${this.path} holds ${entries.length} images: name one with docker-archive:${this.path}:NAME:TAG`);
      entry = entries[0]!;
    }
    this.repoTags = entry.RepoTags ?? [];
    const configMember = this.member(entry.Config);
    const configBytes = await this.small(configMember, 'the image config');
    const configDigest = digestOf(configBytes);
    this.members.set(configDigest, configMember);
    // each layer must be the one the config names by its diff_id (docker load and skopeo check it too)
    let diffIds: unknown;
    try { diffIds = (JSON.parse(configBytes.toString('utf8')) as { rootfs?: { diff_ids?: unknown } }).rootfs?.diff_ids; } catch { /* below */ }
    if (!Array.isArray(diffIds) || diffIds.length !== entry.Layers.length) {
      throw new IntegrityError(`${this.path}: the image config lists ${Array.isArray(diffIds) ? diffIds.length : 'no'} diff_ids for ${entry.Layers.length} layers`);
    }
    const layers: Descriptor[] = [];
    for (const [i, name] of entry.Layers.entries()) {
      const m = this.member(name);
      // hash the member (streamed) and sniff its compression from the first bytes
      const h = hashing('sha256');
      let magic: Buffer | undefined;
      const sniff = new Transform({ transform(c: Buffer, _e, done) { magic ??= c.subarray(0, 4); done(null, c); } });
      await pipeline(this.stream(m), sniff, h.stream, async function* (src) { for await (const _ of src) { /* discard */ } });
      const digest = `sha256:${h.digest()}` as Digest;
      const gz = magic && magic[0] === 0x1f && magic[1] === 0x8b;
      const zstd = magic && magic.length >= 4 && magic.readUInt32LE(0) === 0xfd2fb528;
      const diffId = zstd ? undefined : gz ? await this.gunzippedDigest(m) : digest;
      if (diffId !== undefined && diffId !== diffIds[i]) {
        throw new IntegrityError(`${this.path}: layer ${name} is not the one the image config names: its tar hashes to ${diffId}, the diff_id is ${String(diffIds[i])}`);
      }
      layers.push({ mediaType: gz ? MediaType.OciLayerTarGzip : zstd ? 'application/vnd.oci.image.layer.v1.tar+zstd' : MediaType.OciLayerTar, digest, size: m.size });
      this.members.set(digest, m);
    }
    const manifest = {
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: configDigest, size: configBytes.length },
      layers,
    };
    const bytes = Buffer.from(JSON.stringify(manifest));
    this.rootBlob = { descriptor: { mediaType: MediaType.OciManifest, digest: digestOf(bytes), size: bytes.length }, bytes };
    return this.rootBlob;
  }

  /** The digest of a gzipped member's tar. */
  private async gunzippedDigest(m: TarMember): Promise<string> {
    const h = hashing('sha256');
    try {
      await pipeline(this.stream(m), createGunzip(), h.stream, async function* (src) { for await (const _ of src) { /* discard */ } });
    } catch (e) {
      throw asGzipError(e, `${this.path}: a layer`);
    }
    return `sha256:${h.digest()}`;
  }

  async manifest(desc: Descriptor): Promise<Buffer> {
    const root = await this.root();
    if (desc.digest !== root.descriptor.digest) throw new NotFoundError(`${this.path}: no manifest ${desc.digest}`);
    return root.bytes;
  }

  async openBlob(desc: Descriptor, offset: number, length?: number): Promise<{ stream: Readable; offset: number }> {
    await this.root();
    const m = this.members.get(desc.digest);
    if (!m) throw new NotFoundError(`${this.path}: no blob ${desc.digest}`);
    return { stream: this.stream(m, offset, length), offset };
  }

  async close(): Promise<void> {
    await this.gunzipped?.close();
    this.gunzipped = undefined;
  }
}

// ---- writing --------------------------------------------------------------------------------

interface Staged { file: string; size: number; diffId?: Digest }

export class DockerArchiveDestination implements ImageDestination {
  readonly supportsIndex = false;
  /** Made once, by the first blob (blobs are copied in parallel: they all wait for the one). */
  private staging?: Promise<string>;
  private readonly staged = new Map<Digest, Staged>();
  private image?: { config: Digest; layers: Digest[]; tags: string[] };

  /** `ref`: the name:tag to record in RepoTags (else the tags the copy passes). */
  constructor(readonly path: string, readonly ref?: ImageReference) {}
  get description(): string { return `docker-archive:${this.path}`; }

  private stagingDir(): Promise<string> {
    this.staging ??= mkdir(dirname(this.path) || '.', { recursive: true })
      .then(() => mkdtemp(join(dirname(this.path) || '.', `.${basename(this.path)}.staging-`)));
    return this.staging;
  }

  async putBlob(desc: Descriptor, src: ImageSource, onProgress: (n: number) => void): Promise<BlobOutcome> {
    const { algorithm, encoded } = parseDigest(desc.digest);
    const dir = await this.stagingDir();
    const file = join(dir, `${algorithm}-${encoded}`);
    const compressed = /gzip/.test(desc.mediaType);
    if (/zstd/.test(desc.mediaType)) throw new UnsupportedError(`docker-archive cannot hold zstd layer ${desc.digest}`);
    const { stream } = await src.openBlob(desc, 0);
    const outer = hashing(algorithm);
    let sent = 0;
    const progress = new Transform({ transform(c: Buffer, _e, done) { sent += c.length; onProgress(sent); done(null, c); } });
    const inner = hashing('sha256');
    try {
      if (compressed) await pipeline(stream, progress, outer.stream, createGunzip(), inner.stream, createWriteStream(file));
      else await pipeline(stream, progress, outer.stream, inner.stream, createWriteStream(file));
    } catch (e) {
      throw asGzipError(e, `blob ${desc.digest} from ${src.description}`);
    }
    const received = outer.digest(); // (a hash gives its digest once)
    if (received !== encoded || outer.bytes() !== desc.size) {
      throw new IntegrityError(`blob ${desc.digest} from ${src.description}: received ${outer.bytes()} bytes with digest ${algorithm}:${received}`);
    }
    this.staged.set(desc.digest, { file, size: inner.bytes(), diffId: `sha256:${inner.digest()}` as Digest });
    return 'copied';
  }

  async putManifest(m: ManifestBlob, tags: string[], opts: { root?: boolean; referrer?: boolean } = {}): Promise<void> {
    if (opts.referrer) return; // a docker-archive has no place for referrers
    const parsed = parseManifest(m.bytes, m.descriptor.mediaType);
    if (parsed.kind !== 'image') throw new UnsupportedError('docker-archive holds a single image, not an index');
    const doc = JSON.parse(m.bytes.toString('utf8')) as { config: Descriptor; layers: Descriptor[] };
    const config = this.staged.get(doc.config.digest);
    if (!config) throw new ClientError(`docker-archive: config ${doc.config.digest} was not transferred`);
    const configJson = JSON.parse(await readFile(config.file, 'utf8')) as { rootfs?: { diff_ids?: string[] } };
    const diffIds = configJson.rootfs?.diff_ids ?? [];
    if (diffIds.length !== doc.layers.length) throw new IntegrityError(`docker-archive: the config lists ${diffIds.length} diff_ids for ${doc.layers.length} layers`);
    doc.layers.forEach((l, i) => {
      const s = this.staged.get(l.digest);
      if (!s) throw new ClientError(`docker-archive: layer ${l.digest} was not transferred`);
      if (s.diffId !== diffIds[i]) throw new IntegrityError(`layer ${l.digest}: uncompressed digest ${s.diffId} does not match the config's diff_id ${diffIds[i]}`);
    });
    const names = this.ref ? [this.ref.tag ? familiarReference({ ...this.ref, digest: undefined }) : ''] : tags;
    this.image = { config: doc.config.digest, layers: doc.layers.map((l) => l.digest), tags: names.filter(Boolean) };
  }

  async commit(): Promise<void> {
    if (!this.image) throw new ClientError('docker-archive: no image was written');
    const img = this.image;
    const configHex = parseDigest(img.config).encoded;
    const configFile = this.staged.get(img.config)!;
    const layerNames: string[] = [];
    const entries: TarWriterEntry[] = [];
    const seen = new Set<string>();
    for (const d of img.layers) {
      const s = this.staged.get(d)!;
      const hex = parseDigest(s.diffId!).encoded;
      const name = `${hex}/layer.tar`;
      layerNames.push(name);
      if (seen.has(name)) continue;
      seen.add(name);
      entries.push({ name: `${hex}/VERSION`, size: 3, data: Buffer.from('1.0') });
      entries.push({ name, size: s.size, open: () => createReadStream(s.file, { highWaterMark: 1 << 20 }) });
    }
    const configSize = (await stat(configFile.file)).size;
    entries.push({ name: `${configHex}.json`, size: configSize, open: () => createReadStream(configFile.file) });
    const manifest = Buffer.from(JSON.stringify([{ Config: `${configHex}.json`, RepoTags: img.tags, Layers: layerNames }]));
    entries.push({ name: 'manifest.json', size: manifest.length, data: manifest });
    const repositories: Record<string, Record<string, string>> = {};
    const top = layerNames.length ? layerNames[layerNames.length - 1]!.split('/')[0]! : configHex;
    for (const t of img.tags) {
      const colon = t.lastIndexOf(':');
      if (colon > t.lastIndexOf('/')) (repositories[t.slice(0, colon)] ??= {})[t.slice(colon + 1)] = top;
    }
    const repoBytes = Buffer.from(JSON.stringify(repositories));
    entries.push({ name: 'repositories', size: repoBytes.length, data: repoBytes });

    const tmp = tempPathFor(this.path);
    const out = createWriteStream(tmp);
    try {
      await writeTar(out, entries);
      await new Promise<void>((resolve, reject) => { out.end((e?: Error | null) => (e ? reject(e) : resolve())); });
      await commitFile(tmp, this.path);
    } catch (e) {
      out.destroy();
      await rm(tmp, { force: true });
      throw e;
    } finally {
      await this.cleanup();
    }
  }

  async abort(): Promise<void> { await this.cleanup(); }

  private async cleanup(): Promise<void> {
    const dir = await this.staging?.catch(() => undefined);
    if (dir) await rm(dir, { recursive: true, force: true });
    this.staging = undefined;
  }
}
