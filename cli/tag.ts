// berth tag IMAGE TARGET...: give an image more tags. In a registry the manifest is put again
// under each new tag (no blob moves); TARGET is a bare tag or a reference in the same repository.
// In the local image store (local:<reference>) it adds index entries.
import type { Command } from 'commander';
import { ClientError, UsageError } from '../client/errors.js';
import { isBareTag, parseLocation } from '../client/location.js';
import { manifestReference, parseImageReference } from '../oci/image-reference.js';
import { clientContext, transportOptions, type TransportFlags } from './client-options.js';

export function registerTag(program: Command): void {
  const cmd = program
    .command('tag')
    .description('add tags to an image in a registry (or in the local image store)')
    .argument('<image>', 'the image: registry reference or local:<reference>')
    .argument('<targets...>', 'new tags: bare ("v2") or full references in the same repository');
  transportOptions(cmd);
  cmd.action(async (image: string, targets: string[], flags: TransportFlags) => {
    const ctx = await clientContext(flags);
    const { localName } = await import('../client/location.js');
    const loc = parseLocation(image);
    if (loc.kind === 'local') {
      const store = await ctx.localStore(false);
      const d = await store.resolve(localName(loc.ref));
      for (const t of targets) {
        const ref = isBareTag(t) ? { ...loc.ref, tag: t, digest: undefined } : parseImageReference(t);
        await store.setTag(d, localName(ref));
      }
      return;
    }
    if (loc.kind !== 'registry') throw new UsageError('berth tag works on registry references and local:<reference>; use berth copy for other locations');
    const client = ctx.client(loc.ref);
    const m = await client.getManifest(manifestReference(loc.ref));
    for (const t of targets) {
      let tag: string;
      if (isBareTag(t)) tag = t;
      else {
        const ref = parseImageReference(t);
        if (ref.registry !== loc.ref.registry || ref.repository !== loc.ref.repository) {
          throw new ClientError(`${t} is in another repository: use berth copy ${image} ${t}`, 2);
        }
        if (!ref.tag || ref.digest) throw new UsageError(`${t}: a tag target needs a tag and no digest`);
        tag = ref.tag;
      }
      await client.putManifest(tag, m.bytes, m.descriptor.mediaType);
    }
  });
}
