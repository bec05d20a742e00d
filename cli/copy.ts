// berth copy SOURCE DESTINATION: registry to registry (or any of oci:, docker-archive:, local:),
// blobs streamed straight through, mounted when both are repositories of one registry.
import type { Command } from 'commander';
import { parseLocation } from '../client/location.js';
import { outputOptions, transferOptions, transportOptions } from './client-options.js';
import type { TransferCommandFlags } from './transfer.js';

export function registerCopy(program: Command): void {
  const cmd = program
    .command('copy')
    .alias('cp')
    .description('copy an image between registries, OCI layouts, docker-archives and the local image store')
    .argument('<source>', 'registry reference, oci:<dir>[:tag], docker-archive:<file>[:name:tag] or local:<reference>')
    .argument('<destination>', 'same forms as the source');
  transferOptions(cmd);
  transportOptions(cmd);
  outputOptions(cmd);
  cmd.action(async (source: string, destination: string, flags: TransferCommandFlags) => {
    const { transfer } = await import('./transfer.js');
    await transfer(parseLocation(source), parseLocation(destination), flags, 'Copied');
  });
}
