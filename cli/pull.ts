// berth pull IMAGE [DESTINATION]: from a registry into the local image store (default), an OCI
// layout (oci:<dir>[:tag]) or a docker-archive. Interrupted pulls resume where they stopped.
import type { Command } from 'commander';
import { parseLocation } from '../client/location.js';
import { outputOptions, requireRegistry, transferOptions, transportOptions } from './client-options.js';
import type { TransferCommandFlags } from './transfer.js';

export function registerPull(program: Command): void {
  const cmd = program
    .command('pull')
    .description('download an image from a registry (into the local image store, an OCI layout or a docker-archive)')
    .argument('<image>', 'image reference, e.g. busybox, localhost:5000/team/app:v1, host/app@sha256:…')
    .argument('[destination]', 'oci:<dir>[:tag], docker-archive:<file>[:name:tag] or local:<reference> (default: the local image store)');
  cmd.option('--no-unpack', 'into the local store as root: do not unpack the layers into snapshots while pulling (berth run does it later)');
  transferOptions(cmd);
  transportOptions(cmd);
  outputOptions(cmd);
  cmd.action(async (image: string, destination: string | undefined, flags: TransferCommandFlags) => {
    const src = parseLocation(image);
    requireRegistry(src, 'the image to pull');
    const dst = destination ? parseLocation(destination) : { kind: 'local' as const, ref: src.ref };
    const { transfer } = await import('./transfer.js');
    await transfer(src, dst, flags, 'Pulled');
  });
}
