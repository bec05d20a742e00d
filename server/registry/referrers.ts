// The referrers index: for each subject digest, one small file per referring manifest
// holding the descriptor the referrers API returns. Written when the referrer is pushed,
// removed when it is deleted; the subject itself need not exist. A referrer's annotations go into its
// descriptor only while that stays small (MAX_DESCRIPTOR_BYTES): a manifest may carry megabytes of them,
// and every listing of the subject reads every descriptor into one response.
import type { Digest } from '../../oci/digest.js';
import type { Descriptor } from '../../oci/manifest.js';
import { PathNotFoundError, type StorageAdapter } from '../../storage-adapters/types.js';
import { MANIFEST_MAX_BYTES } from './manifest-store.js';
import { paths } from './paths.js';

/** Past this, a referrer's descriptor is kept without its annotations (the manifest keeps them). */
export const MAX_DESCRIPTOR_BYTES = 64 * 1024;

function withoutAnnotations(d: Descriptor): Descriptor {
  const { annotations: _dropped, ...rest } = d;
  return rest;
}

export class ReferrersIndex {
  constructor(private readonly storage: StorageAdapter) {}

  async add(repo: string, subject: Digest, referrer: Descriptor): Promise<void> {
    let bytes = Buffer.from(JSON.stringify(referrer));
    if (bytes.length > MAX_DESCRIPTOR_BYTES) bytes = Buffer.from(JSON.stringify(withoutAnnotations(referrer)));
    await this.storage.putSmall(paths.referrerLink(repo, subject, referrer.digest), bytes);
  }

  async remove(repo: string, subject: Digest, referrer: Digest): Promise<void> {
    await this.storage.delete(paths.referrerLink(repo, subject, referrer));
  }

  async list(repo: string, subject: Digest, artifactType?: string): Promise<Descriptor[]> {
    const out: Descriptor[] = [];
    for await (const key of this.storage.list(paths.referrersOf(repo, subject))) {
      let d: Descriptor;
      try {
        // (written before descriptors were capped, one may hold a whole manifest's worth of annotations)
        const bytes = await this.storage.getSmall(key, MANIFEST_MAX_BYTES + MAX_DESCRIPTOR_BYTES);
        d = JSON.parse(bytes.toString('utf8')) as Descriptor;
        if (bytes.length > MAX_DESCRIPTOR_BYTES) d = withoutAnnotations(d);
      } catch (e) {
        if (e instanceof PathNotFoundError) continue; // removed while we listed
        throw e;
      }
      if (artifactType === undefined || d.artifactType === artifactType) out.push(d);
    }
    return out.sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0));
  }
}
