// berth save [-o FILE] IMAGE: an image of the local store as a docker-archive tarball (what `docker
// load` and `berth load` take), into a file or onto standard output. The archive is written whole
// first (a temporary file for stdout), so a failure never leaves half an archive behind as the result.
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { UsageError } from '../client/errors.js';
import { parseLocation } from '../client/location.js';

export function registerSave(program: Command): void {
  program
    .command('save')
    .description('write an image of the local store as a docker-archive tarball (docker load and berth load read it)')
    .argument('<image>', 'an image in the local store, e.g. localhost:5000/team/app:v1')
    .option('-o, --output <file>', 'write to this file (default: standard output, when it is not a terminal)')
    .action(async (image: string, f: { output?: string }) => {
      if (!f.output && process.stdout.isTTY) throw new UsageError('refusing to write an archive to a terminal: use -o FILE, or redirect standard output');
      const src = parseLocation(`local:${image}`);
      const path = f.output ?? join(await mkdtemp(join(tmpdir(), 'berth-save-')), 'image.tar');
      const { transfer } = await import('./transfer.js');
      try {
        await transfer(src, { kind: 'docker-archive', path }, { quiet: true }, 'Saved', process.stderr);
        if (!f.output) await pipeline(createReadStream(path), process.stdout);
      } finally {
        if (!f.output) await rm(dirname(path), { recursive: true, force: true });
      }
    });
}
