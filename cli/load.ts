// berth load [-i FILE]: the images of a docker-archive tarball (`docker save`'s or `berth save`'s,
// gzipped too) into the local store, under the names the archive gives them (its RepoTags). Standard
// input is kept in a temporary file first: the archive is read by offset.
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { ClientError, UsageError } from '../client/errors.js';
import { parseLocation } from '../client/location.js';

export function registerLoad(program: Command): void {
  program
    .command('load')
    .description('load the images of a docker-archive tarball (docker save\'s, gzipped too) into the local store')
    .option('-i, --input <file>', 'read this file (default: standard input)')
    .option('-q, --quiet', 'print nothing')
    .action(async (f: { input?: string; quiet?: boolean }) => {
      let path = f.input;
      let tmp: string | undefined;
      if (!path) {
        if (process.stdin.isTTY) throw new UsageError('berth load reads an archive from standard input, and that is a terminal: use -i FILE, or redirect');
        tmp = await mkdtemp(join(tmpdir(), 'berth-load-'));
        path = join(tmp, 'archive.tar');
        await pipeline(process.stdin, createWriteStream(path));
      }
      try {
        const { DockerArchiveSource } = await import('../client/docker-archive.js');
        const archive = new DockerArchiveSource(path);
        let images: string[][];
        try { images = await archive.images(); } finally { await archive.close(); }
        const untagged = images.findIndex((tags) => tags.length === 0);
        if (untagged >= 0) {
          throw new ClientError(`image ${untagged + 1} of the archive has no name (RepoTags), and the local store keeps named images: berth copy docker-archive:${f.input ?? 'FILE'}:@${untagged} local:NAME names it`);
        }
        const { transfer } = await import('./transfer.js');
        for (const tag of images.flat()) {
          await transfer({ kind: 'docker-archive', path, ref: tag }, parseLocation(`local:${tag}`), { quiet: true }, 'Loaded', process.stderr);
          if (!f.quiet) process.stdout.write(`Loaded image: ${tag}\n`);
        }
      } finally {
        if (tmp) await rm(tmp, { recursive: true, force: true });
      }
    });
}
