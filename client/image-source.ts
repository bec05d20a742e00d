// Where images are copied from and to. A source gives a root manifest, child manifests and blob
// streams (from any offset, for resuming); a destination takes blobs and manifests. Registry and
// OCI layout implementations live here; docker-archive ones in docker-archive.ts.
import type { Readable } from 'node:stream';
import type { Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/manifest.js';
import { manifestReference, type ImageReference } from '../oci/image-reference.js';
import { ClientError } from './errors.js';
import { ImageLayout } from './image-layout.js';
import { RegistryClient, mediaTypeFromBody, type ManifestBlob } from './registry-client.js';

export type { ManifestBlob };

export interface RegistryRepo { registry: string; repository: string }

export interface ImageSource {
  readonly description: string;
  /** Set for registry sources (cross-repository mounts need it). */
  readonly registryRepo?: RegistryRepo;
  root(): Promise<ManifestBlob>;
  /** A child manifest (of an index) or a referrer, verified against its digest. */
  manifest(desc: Descriptor): Promise<Buffer>;
  /** The blob from `offset` (`length` bytes); `offset` in the answer is where it really starts. */
  openBlob(desc: Descriptor, offset: number, length?: number): Promise<{ stream: Readable; offset: number }>;
  /** Manifests whose subject is `digest` (registries only). */
  referrers?(digest: Digest): Promise<Descriptor[]>;
  close?(): Promise<void>;
}

export type BlobOutcome = 'exists' | 'mounted' | 'copied' | { resumedFrom: number };

export interface ImageDestination {
  readonly description: string;
  readonly registryRepo?: RegistryRepo;
  /** False for formats that hold one image only (docker-archive). */
  readonly supportsIndex: boolean;
  putBlob(desc: Descriptor, src: ImageSource, onProgress: (bytes: number) => void): Promise<BlobOutcome>;
  /** Stores a manifest; under each tag when `tags` is non-empty (otherwise by digest only). */
  putManifest(m: ManifestBlob, tags: string[], opts?: { root?: boolean; referrer?: boolean }): Promise<void>;
  /** Called once everything is in. */
  commit(): Promise<void>;
  /** Called on failure: leave nothing half-visible. */
  abort?(): Promise<void>;
}

// ---- registry -------------------------------------------------------------------------------

export class RegistrySource implements ImageSource {
  readonly registryRepo: RegistryRepo;
  constructor(readonly client: RegistryClient, readonly ref: ImageReference) {
    this.registryRepo = { registry: ref.registry, repository: ref.repository };
  }
  get description(): string { return `${this.ref.registry}/${this.ref.repository}`; }
  root(): Promise<ManifestBlob> { return this.client.getManifest(manifestReference(this.ref)); }
  async manifest(desc: Descriptor): Promise<Buffer> { return (await this.client.getManifest(desc.digest)).bytes; }
  async openBlob(desc: Descriptor, offset: number, length?: number) { return this.client.openBlob(desc.digest, offset, length); }
  referrers(digest: Digest): Promise<Descriptor[]> { return this.client.referrers(digest); }
}

export class RegistryDestination implements ImageDestination {
  readonly registryRepo: RegistryRepo;
  readonly supportsIndex = true;
  constructor(readonly client: RegistryClient, readonly ref: ImageReference, private readonly upload: { monolithicMax?: number; chunkSize?: number } = {}) {
    this.registryRepo = { registry: ref.registry, repository: ref.repository };
  }
  get description(): string { return `${this.ref.registry}/${this.ref.repository}`; }

  async putBlob(desc: Descriptor, src: ImageSource, onProgress: (n: number) => void): Promise<BlobOutcome> {
    const sameRegistry = src.registryRepo && src.registryRepo.registry === this.ref.registry && src.registryRepo.repository !== this.ref.repository;
    const r = await this.client.uploadBlob(desc, async (offset, length) => {
      const o = await src.openBlob(desc, offset, length);
      if (o.offset !== offset) { o.stream.destroy(); throw new ClientError(`${src.description}: cannot read blob ${desc.digest} from offset ${offset}`); }
      return o.stream;
    }, { ...this.upload, onProgress, ...(sameRegistry ? { mountFrom: src.registryRepo!.repository } : {}) });
    return r === 'uploaded' ? 'copied' : r;
  }

  async putManifest(m: ManifestBlob, tags: string[]): Promise<void> {
    const targets = tags.length ? tags : [m.descriptor.digest];
    for (const t of targets) {
      const d = await this.client.putManifest(t, m.bytes, m.descriptor.mediaType);
      if (d && d !== m.descriptor.digest) throw new ClientError(`${this.description}: the registry stored the manifest as ${d}, expected ${m.descriptor.digest}`);
    }
  }

  async commit(): Promise<void> {}
}

// ---- OCI image layout -----------------------------------------------------------------------

export class LayoutSource implements ImageSource {
  constructor(readonly layout: ImageLayout, readonly tag?: string) {}
  get description(): string { return `oci:${this.layout.dir}${this.tag ? `:${this.tag}` : ''}`; }
  async root(): Promise<ManifestBlob> {
    const d = await this.layout.resolve(this.tag);
    const bytes = await this.layout.readSmall(d);
    const descriptor: Descriptor = { mediaType: d.mediaType || mediaTypeFromBody(bytes), digest: d.digest, size: d.size };
    if (d.platform) descriptor.platform = d.platform;
    return { descriptor, bytes };
  }
  manifest(desc: Descriptor): Promise<Buffer> { return this.layout.readSmall(desc); }
  async openBlob(desc: Descriptor, offset: number, length?: number) {
    return { stream: await this.layout.openBlob(desc.digest, offset, length, desc.size), offset };
  }
  async referrers(digest: Digest): Promise<Descriptor[]> {
    // referrers in a layout: index.json entries (and their manifests) whose subject is `digest`
    const idx = await this.layout.readIndex();
    const out: Descriptor[] = [];
    for (const d of idx.manifests) {
      if (d.digest === digest) continue;
      try {
        const doc = JSON.parse((await this.layout.readSmall(d)).toString('utf8')) as { subject?: { digest?: string }; artifactType?: string; config?: { mediaType?: string } };
        if (doc.subject?.digest === digest) out.push({ mediaType: d.mediaType, digest: d.digest, size: d.size, ...(doc.artifactType ?? doc.config?.mediaType ? { artifactType: doc.artifactType ?? doc.config?.mediaType } : {}) });
      } catch { /* not a manifest we can read: not a referrer */ }
    }
    return out;
  }
}

export class LayoutDestination implements ImageDestination {
  readonly supportsIndex = true;
  constructor(readonly layout: ImageLayout, readonly tag?: string) {}
  get description(): string { return `oci:${this.layout.dir}`; }

  async putBlob(desc: Descriptor, src: ImageSource, onProgress: (n: number) => void): Promise<BlobOutcome> {
    const r = await this.layout.ingest(desc, (offset) => src.openBlob(desc, offset), { onProgress });
    if (r.existed) return 'exists';
    return r.resumedFrom > 0 ? { resumedFrom: r.resumedFrom } : 'copied';
  }

  async putManifest(m: ManifestBlob, tags: string[], opts: { root?: boolean; referrer?: boolean } = {}): Promise<void> {
    await this.layout.writeSmall(m.bytes, m.descriptor.digest);
    for (const t of tags) await this.layout.setTag(m.descriptor, t, { complete: true });
    if (!tags.length && (opts.root || opts.referrer)) await this.layout.setTag(m.descriptor, undefined, { complete: true });
  }

  async commit(): Promise<void> { await this.layout.tidy(); }
}
