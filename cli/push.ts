// berth push SOURCE [DESTINATION]: upload an image to a registry. With one argument the image
// comes from the local image store under that reference; SOURCE may also be oci:<dir>[:tag] or
// docker-archive:<file>[:name:tag]. Blobs the registry has are skipped, known ones mounted.
import type { Command } from 'commander';
import { UsageError } from '../client/errors.js';
import { parseLocation, type Location } from '../client/location.js';
import { outputOptions, requireRegistry, transferOptions, transportOptions } from './client-options.js';
import type { TransferCommandFlags } from './transfer.js';

export function registerPush(program: Command): void {
  const cmd = program
    .command('push')
    .description('upload an image to a registry')
    .argument('<source>', 'a reference in the local image store, or oci:<dir>[:tag] / docker-archive:<file>[:name:tag]')
    .argument('[destination]', 'registry reference to push to (default: the source reference)');
  transferOptions(cmd);
  transportOptions(cmd);
  outputOptions(cmd);
  cmd.action(async (source: string, destination: string | undefined, flags: TransferCommandFlags) => {
    let src: Location = parseLocation(source);
    if (src.kind === 'registry') src = { kind: 'local', ref: src.ref };
    let dst: Location;
    if (destination) dst = parseLocation(destination);
    else if (src.kind === 'local') dst = { kind: 'registry', ref: src.ref };
    else throw new UsageError('name the registry reference to push to: berth push SOURCE DESTINATION');
    const { transfer } = await import('./transfer.js');
    requireRegistry(dst, 'the push destination');
    await transfer(src, dst, flags, 'Pushed');
  });
}
