// The referrers index: for each subject digest, one small file per referring manifest
// holding the descriptor the referrers API returns. Written when the referrer is pushed,
// removed when it is deleted; the subject itself need not exist.
import type { Digest } from '../../oci/digest.js';
import type { Descriptor } from '../../oci/manifest.js';
import { PathNotFoundError, type StorageAdapter } from '../../storage-adapters/types.js';
import { paths } from './paths.js';

export class ReferrersIndex {
  constructor(private readonly storage: StorageAdapter) {}

  async add(repo: string, subject: Digest, referrer: Descriptor): Promise<void> {
    await this.storage.putSmall(paths.referrerLink(repo, subject, referrer.digest), Buffer.from(JSON.stringify(referrer)));
  }

  async remove(repo: string, subject: Digest, referrer: Digest): Promise<void> {
    await this.storage.delete(paths.referrerLink(repo, subject, referrer));
  }

  async list(repo: string, subject: Digest, artifactType?: string): Promise<Descriptor[]> {
    const out: Descriptor[] = [];
    for await (const key of this.storage.list(paths.referrersOf(repo, subject))) {
      let d: Descriptor;
      try {
        d = JSON.parse((await this.storage.getSmall(key, 1 << 20)).toString('utf8')) as Descriptor;
      } catch (e) {
        if (e instanceof PathNotFoundError) continue; // removed while we listed
        throw e;
      }
      if (artifactType === undefined || d.artifactType === artifactType) out.push(d);
    }
    return out.sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0));
  }
}
