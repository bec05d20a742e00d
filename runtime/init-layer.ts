// Docker's "init layer": a committed snapshot between an image's top layer and each of its
// containers that holds the mount points the runtime needs (/dev, /proc, /sys, /etc/hosts,
// /etc/hostname, /etc/resolv.conf). Without it those would be created in the container's own
// upper directory and show up in `diff` and in every `commit`. One per image top, shared by all
// of its containers, made on first use through a real overlay mount (so symlinks in the image are
// honoured inside the rootfs) and committed atomically; a concurrent maker's copy simply wins.
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, mkdtemp, rmdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { mountAll, unmount } from './mount.js';
import { SnapshotError, type OverlaySnapshotter } from './snapshotter.js';
import { resolveInRoot } from './spec.js';

const DIRS = ['/dev', '/proc', '/sys'];
const FILES = ['/etc/hosts', '/etc/hostname', '/etc/resolv.conf'];

/** The init snapshot's name for an image top (a chainID, or none for an image without layers). */
export function initName(top: string | undefined): string { return `${top ?? 'empty'}-init`; }

async function missing(p: string): Promise<boolean> {
  try { await lstat(p); return false; } catch { return true; }
}

/** The parent a container snapshot of this image top should have: its init snapshot, made if needed. */
export async function containerParent(snapshots: OverlaySnapshotter, top: string | undefined): Promise<string> {
  const name = initName(top);
  if (await snapshots.exists(name)) return name;
  const key = `init-tmp-${randomBytes(8).toString('hex')}`;
  const mounts = await snapshots.prepare(key, top);
  const dir = await mkdtemp(join(tmpdir(), 'berth-init-'));
  try {
    await mountAll(mounts, dir);
    // what the image has in the way (say, /etc as a file) is named, not the temporary path
    const place = async (point: string, make: () => Promise<unknown>) => {
      try { await make(); } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        throw new Error(code === 'EEXIST' || code === 'ENOTDIR'
          ? `the image has no room for the mount point ${point}: a file of the image is where a directory must be`
          : `the mount point ${point}: ${(e as Error).message.replace(dir, '')}`);
      }
    };
    try {
      for (const d of DIRS) {
        const p = await resolveInRoot(dir, d);
        if (await missing(p)) await place(d, () => mkdir(p, { recursive: true, mode: 0o755 }));
      }
      for (const f of FILES) {
        const p = await resolveInRoot(dir, f);
        if (!(await missing(p))) continue;
        await place(f, async () => {
          await mkdir(dirname(p), { recursive: true, mode: 0o755 });
          await writeFile(p, '', { mode: 0o644 });
        });
      }
    } finally { await unmount(dir); }
  } catch (e) {
    await snapshots.remove(key).catch(() => undefined);
    throw e;
  } finally { await rmdir(dir).catch(() => undefined); }
  try { await snapshots.commit(name, key); } catch (e) {
    await snapshots.remove(key).catch(() => undefined);
    if (!(e instanceof SnapshotError && e.code === 'ALREADY_EXISTS')) throw e;
  }
  return name;
}
