// Tags: one small link file per tag holding the manifest digest it points to.
import { parseDigest, type Digest } from '../../oci/digest.js';
import { isValidTag } from '../../oci/reference.js';
import { PathNotFoundError, type StorageAdapter } from '../../storage-adapters/types.js';
import { basename, paths } from './paths.js';

export class TagStore {
  constructor(private readonly storage: StorageAdapter) {}

  async resolve(repo: string, tag: string): Promise<Digest | undefined> {
    try {
      return parseDigest((await this.storage.getSmall(paths.tagLink(repo, tag), 256)).toString('utf8').trim()).digest;
    } catch (e) {
      if (e instanceof PathNotFoundError) return undefined;
      throw e;
    }
  }

  async set(repo: string, tag: string, digest: Digest): Promise<void> {
    await this.storage.putSmall(paths.tagLink(repo, tag), Buffer.from(digest));
  }

  async remove(repo: string, tag: string): Promise<boolean> {
    if ((await this.resolve(repo, tag)) === undefined) return false;
    await this.storage.delete(paths.tag(repo, tag));
    return true;
  }

  /** All tags of a repository in lexical (byte) order. */
  async list(repo: string): Promise<string[]> {
    const tags: string[] = [];
    for await (const key of this.storage.list(paths.tagsRoot(repo))) {
      const tag = basename(key);
      if (isValidTag(tag)) tags.push(tag);
    }
    return tags.sort();
  }

  /** Tags currently pointing at a digest. */
  async tagsOf(repo: string, digest: Digest): Promise<string[]> {
    const out: string[] = [];
    for (const tag of await this.list(repo)) if ((await this.resolve(repo, tag)) === digest) out.push(tag);
    return out;
  }
}
