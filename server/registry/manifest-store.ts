// Manifests: bytes stored exactly as pushed in the blob store, a revision link per
// repository holding the descriptor (with the media type it was pushed as), tags on top.
import { createHash } from 'node:crypto';
import { parseDigest, type Digest } from '../../oci/digest.js';
import { effectiveArtifactType, ManifestError, manifestReferences, parseManifest, type Descriptor, type ParsedManifest } from '../../oci/manifest.js';
import { isValidTag } from '../../oci/reference.js';
import { PathNotFoundError, type StorageAdapter } from '../../storage-adapters/types.js';
import { RegistryError } from '../errors.js';
import type { BlobStore } from './blob-store.js';
import { paths } from './paths.js';
import type { ReferrersIndex } from './referrers.js';
import type { TagStore } from './tag-store.js';

/** Manifests larger than this are refused (413), as distribution does. */
export const MANIFEST_MAX_BYTES = 4 << 20;

export type Reference = { tag: string; digest?: undefined } | { digest: Digest; tag?: undefined };

/**
 * A manifest reference is a digest (it has a colon) or a tag. A malformed digest is always
 * DIGEST_INVALID; a malformed tag is TAG_INVALID when pushing, and simply unknown (404)
 * when reading or deleting, since no such manifest can exist.
 */
export function parseReference(ref: string, forWrite = false): Reference {
  if (ref.includes(':')) return { digest: parseDigest(ref).digest };
  if (!isValidTag(ref)) {
    const detail = { tag: ref.slice(0, 200) };
    throw forWrite ? new RegistryError('TAG_INVALID', detail, { message: 'invalid tag or digest' }) : new RegistryError('MANIFEST_UNKNOWN', detail);
  }
  return { tag: ref };
}

export interface PutResult {
  digest: Digest; mediaType: string; subject?: Digest; tags: string[];
  /** What the manifest refers to: config and layers, or an index's manifests. */
  references: Descriptor[];
}

export class ManifestStore {
  constructor(
    private readonly storage: StorageAdapter,
    private readonly blobs: BlobStore,
    private readonly tags: TagStore,
    private readonly referrers: ReferrersIndex,
  ) {}

  /** The descriptor a tag or digest names in a repository; MANIFEST_UNKNOWN if none. */
  async resolve(repo: string, ref: Reference): Promise<Descriptor> {
    const digest = ref.digest ?? (await this.tags.resolve(repo, ref.tag!));
    const found = digest && (await this.#revision(repo, digest));
    if (!found) throw new RegistryError('MANIFEST_UNKNOWN', ref.tag !== undefined ? { tag: ref.tag } : { digest: ref.digest });
    return found;
  }

  async #revision(repo: string, digest: Digest): Promise<Descriptor | undefined> {
    try {
      return JSON.parse((await this.storage.getSmall(paths.revisionLink(repo, digest), 64 << 10)).toString('utf8')) as Descriptor;
    } catch (e) {
      if (e instanceof PathNotFoundError) return undefined;
      throw e;
    }
  }

  async exists(repo: string, digest: Digest): Promise<boolean> {
    return (await this.#revision(repo, digest)) !== undefined;
  }

  async get(repo: string, ref: Reference): Promise<{ descriptor: Descriptor; body: Buffer }> {
    const descriptor = await this.resolve(repo, ref);
    try {
      return { descriptor, body: await this.storage.getSmall(paths.blobData(descriptor.digest), MANIFEST_MAX_BYTES) };
    } catch (e) {
      if (e instanceof PathNotFoundError) throw new RegistryError('MANIFEST_UNKNOWN', { digest: descriptor.digest });
      throw e;
    }
  }

  async put(repo: string, ref: Reference, body: Buffer, contentType: string | undefined, extraTags: string[] = []): Promise<PutResult> {
    let manifest: ParsedManifest;
    try {
      manifest = parseManifest(body, contentType);
    } catch (e) {
      if (e instanceof ManifestError) throw new RegistryError('MANIFEST_INVALID', { reason: e.message });
      throw e;
    }
    const algorithm = ref.digest ? parseDigest(ref.digest).algorithm : 'sha256';
    const digest = `${algorithm}:${createHash(algorithm).update(body).digest('hex')}` as Digest;
    if (ref.digest && ref.digest !== digest) {
      throw new RegistryError('DIGEST_INVALID', { expected: ref.digest, actual: digest });
    }
    for (const tag of extraTags) {
      if (!isValidTag(tag)) throw new RegistryError('TAG_INVALID', { tag: tag.slice(0, 200) });
    }
    const blobChildren = await this.#checkReferences(repo, manifest);

    const descriptor: Descriptor = { mediaType: manifest.mediaType, digest, size: body.length };
    if ((await this.blobs.size(digest)) === undefined) await this.storage.putSmall(paths.blobData(digest), body);
    await this.storage.putSmall(paths.revisionLink(repo, digest), Buffer.from(JSON.stringify(descriptor)));
    if (manifest.subject) {
      const referrer: Descriptor = { ...descriptor };
      const artifactType = effectiveArtifactType(manifest);
      if (artifactType) referrer.artifactType = artifactType;
      if (manifest.annotations) referrer.annotations = manifest.annotations;
      await this.referrers.add(repo, manifest.subject.digest, referrer);
    }
    const tags = [...new Set([...(ref.tag !== undefined ? [ref.tag] : []), ...extraTags])];
    for (const tag of tags) await this.tags.set(repo, tag, digest);
    const b = this.blobs.barrier;
    await b.settle([
      b.blob(digest), b.revision(repo, digest),
      ...manifest.blobs.map((d) => b.blob(d.digest, repo)),
      ...manifest.manifests.flatMap((d) => (blobChildren.has(d.digest) ? [b.blob(d.digest, repo)] : [b.blob(d.digest), b.revision(repo, d.digest)])),
    ], async () => {
      for (const tag of tags) if ((await this.tags.resolve(repo, tag)) === digest) await this.tags.remove(repo, tag);
      // the referrers API must not list a manifest that is not there
      if (manifest.subject) await this.referrers.remove(repo, manifest.subject.digest, digest);
      await this.storage.delete(paths.revisionLink(repo, digest).slice(0, -'/link'.length));
    });
    return { digest, mediaType: manifest.mediaType, subject: manifest.subject?.digest, tags, references: manifestReferences(manifest) };
  }

  /**
   * Checks that what the manifest references is in the repository; answers the index children that are
   * blobs rather than manifests. Those exist (BuildKit's registry cache is an index of layers and a cache
   * config, which distribution accepts), and the image-spec says an index entry of a media type unknown
   * to the implementation MUST be ignored, not refused.
   */
  async #checkReferences(repo: string, manifest: ParsedManifest): Promise<Set<Digest>> {
    const missing: string[] = [];
    const blobChildren = new Set<Digest>();
    await Promise.all([
      ...manifest.blobs.map(async (d) => {
        if ((await this.blobs.sizeInRepo(repo, d.digest)) === undefined) missing.push(d.digest);
      }),
      ...manifest.manifests.map(async (d) => {
        if (await this.exists(repo, d.digest)) return;
        if ((await this.blobs.sizeInRepo(repo, d.digest)) !== undefined) blobChildren.add(d.digest);
        else missing.push(d.digest);
      }),
    ]);
    if (missing.length) {
      throw new RegistryError('MANIFEST_BLOB_UNKNOWN', { digests: [...new Set(missing)].sort() });
    }
    return blobChildren;
  }

  /** Deletes a tag, or a manifest by digest together with every tag pointing at it; resolves with those tags. */
  async delete(repo: string, ref: Reference): Promise<string[]> {
    if (ref.tag !== undefined) {
      if (!(await this.tags.remove(repo, ref.tag))) throw new RegistryError('MANIFEST_UNKNOWN', { tag: ref.tag });
      return [];
    }
    const { body } = await this.get(repo, ref);
    const untagged: string[] = [];
    for (const tag of await this.tags.tagsOf(repo, ref.digest)) if (await this.tags.remove(repo, tag)) untagged.push(tag);
    try {
      const subject = parseManifest(body, undefined).subject;
      if (subject) await this.referrers.remove(repo, subject.digest, ref.digest);
    } catch (e) {
      if (!(e instanceof ManifestError)) throw e;
    }
    await this.storage.delete(paths.revisionLink(repo, ref.digest).slice(0, -'/link'.length));
    return untagged;
  }
}
