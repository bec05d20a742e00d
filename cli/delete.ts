// berth delete IMAGE: delete a manifest from a registry (a tag is resolved to its digest first,
// as the API deletes by digest), or an entry of the local image store.
import type { Command } from 'commander';
import { NotFoundError, UsageError } from '../client/errors.js';
import { parseLocation } from '../client/location.js';
import { manifestReference } from '../oci/image-reference.js';
import { clientContext, printJson, say, transportOptions, type OutputFlags, type TransportFlags } from './client-options.js';

export function registerDelete(program: Command): void {
  const cmd = program
    .command('delete')
    .alias('rm')
    .description('delete an image (its manifest) from a registry, or from the local image store')
    .argument('<image>', 'registry reference (tag or digest) or local:<reference>')
    .option('-q, --quiet', 'print nothing')
    .option('--json', 'print {"deleted": digest} as JSON');
  transportOptions(cmd);
  cmd.action(async (image: string, flags: TransportFlags & OutputFlags) => {
    const ctx = await clientContext(flags);
    const { localName } = await import('../client/location.js');
    const loc = parseLocation(image);
    if (loc.kind === 'local') {
      const store = await ctx.localStore(false);
      if (!(await store.removeTag(localName(loc.ref)))) throw new NotFoundError(`${localName(loc.ref)} is not in the local image store`);
      say(flags, `Untagged ${localName(loc.ref)}`);
      return;
    }
    if (loc.kind !== 'registry') throw new UsageError('berth delete works on registry references and local:<reference>');
    const client = ctx.client(loc.ref);
    const d = loc.ref.digest ? { digest: loc.ref.digest } : await client.resolve(manifestReference(loc.ref));
    await client.deleteManifest(d.digest);
    if (flags.json) printJson({ deleted: d.digest, repository: `${loc.ref.registry}/${loc.ref.repository}` });
    else if (!flags.quiet) process.stdout.write(`Deleted ${loc.ref.registry}/${loc.ref.repository}@${d.digest}\n`);
  });
}
