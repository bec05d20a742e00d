// berth export: a container's filesystem (its image's files with its own changes, not its volumes or
// tmpfs mounts) as one tar archive, as docker export writes it. GNU tar reads the container's rootfs
// mount; what it reads only ever goes to the user who asked, never into a container.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ensureRootfsMounted, type Container } from './containers.js';
import type { OverlaySnapshotter } from './snapshotter.js';

/** Writes the archive to `out`, or with `file` to that file (whole or not at all). */
export async function exportContainer(c: Container, snapshots: OverlaySnapshotter, out: Writable | { file: string }): Promise<void> {
  await ensureRootfsMounted(snapshots, c);
  const tar = spawn('tar', ['-cf', '-', '--numeric-owner', '--xattrs', '--xattrs-include=*', '--one-file-system', '-C', join(c.dir, 'rootfs'), '.'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  tar.stderr!.on('data', (d: Buffer) => { if (err.length < 4096) err += d; });
  const exited = once(tar, 'close') as Promise<[number | null]>;
  const file = 'file' in out ? out.file : undefined;
  const tmp = file !== undefined ? `${file}.berth-export-${process.pid}` : undefined;
  try {
    await pipeline(tar.stdout!, tmp ? createWriteStream(tmp, { mode: 0o600 }) : out as Writable);
    const [code] = await exited;
    if (code !== 0) throw new Error(`export of ${c.config.name}: tar: ${err.trim().split('\n').at(-1) ?? `exit ${code}`}`);
    if (tmp && file) await rename(tmp, file);
  } catch (e) {
    tar.kill();
    if (tmp) await rm(tmp, { force: true });
    throw e;
  }
}
