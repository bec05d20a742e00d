// berth digest IMAGE: the manifest digest (of the index; of one platform with --platform).
import type { Command } from 'commander';
import { parseLocation } from '../client/location.js';
import { parsePlatform } from '../client/platform.js';
import { manifestReference } from '../oci/image-reference.js';
import { clientContext, transportOptions, type TransportFlags } from './client-options.js';
import { platformManifest } from './inspect.js';

export function registerDigest(program: Command): void {
  const cmd = program
    .command('digest')
    .description('print the digest of an image\'s manifest')
    .argument('<image>', 'registry reference, oci:<dir>[:tag], docker-archive:<file> or local:<reference>')
    .option('--platform <os/arch[/variant]>', 'the digest of this platform\'s manifest in a multi-platform image');
  transportOptions(cmd);
  cmd.action(async (image: string, flags: TransportFlags & { platform?: string }) => {
    const src = await (await clientContext(flags)).openSource(parseLocation(image));
    const { RegistrySource } = await import('../client/image-source.js');
    if (!flags.platform && src instanceof RegistrySource) {
      // HEAD is enough (and cheap) when the registry sends Docker-Content-Digest
      const d = await src.client.resolve(manifestReference(src.ref));
      process.stdout.write(`${d.digest}\n`);
      return;
    }
    const root = await src.root();
    const m = flags.platform ? await platformManifest(src, root, parsePlatform(flags.platform)) : root;
    process.stdout.write(`${m.descriptor.digest}\n`);
  });
}
