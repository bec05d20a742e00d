// berth export: a container's filesystem (its image's files with its own changes, not its volumes or
// tmpfs mounts) as one tar archive, as docker export writes it. GNU tar reads the container's rootfs
// mount; what it reads only ever goes to the user who asked, never into a container.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ensureRootfsMounted, withStartLock, type Container } from './containers.js';
import type { OverlaySnapshotter } from './snapshotter.js';

/** Writes the archive to `out`, or with `file` to that file (whole or not at all). */
export async function exportContainer(c: Container, snapshots: OverlaySnapshotter, out: Writable | { file: string }): Promise<void> {
  // a stopped one is mounted here if need be: no start or rm may come between
  await withStartLock(c, () => ensureRootfsMounted(snapshots, c));
  const tar = spawn('tar', ['-cf', '-', '--numeric-owner', '--xattrs', '--xattrs-include=*', '--one-file-system', '-C', join(c.dir, 'rootfs'), '.'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  tar.stderr!.on('data', (d: Buffer) => { if (err.length < 4096) err += d; });
  const exited = once(tar, 'close') as Promise<[number | null]>;
  const file = 'file' in out ? out.file : undefined;
  // a new or regular file is written whole or not at all; anything else (/dev/null, a FIFO) as it is
  const st = file !== undefined ? await stat(file).catch(() => undefined) : undefined;
  const tmp = file !== undefined && (!st || st.isFile()) ? `${file}.berth-export-${process.pid}` : undefined;
  const sink = file === undefined ? out as Writable : createWriteStream(tmp ?? file, { mode: 0o666 });
  try {
    await pipeline(tar.stdout!, sink);
    const [code] = await exited;
    if (code !== 0) throw new Error(`export of ${c.config.name}: tar: ${err.trim().split('\n').at(-1) || `exit ${code}`}`);
    if (tmp && file) await rename(tmp, file);
  } catch (e) {
    tar.kill();
    if (tmp) await rm(tmp, { force: true });
    throw e;
  }
}
