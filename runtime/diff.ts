// What a container changed, as `docker diff` shows it: A (added), C (changed), D (deleted), read
// from the active snapshot's upper directory. Whiteouts (0/0 character devices) are deletions; an
// opaque directory (trusted.overlay.opaque=y) deletes whatever its lower version held that the
// upper one does not. Whether a path is new or changed is decided against a read-only view of
// the parent snapshots, mounted for the duration (root), so overlay's own rules apply.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { lstat, mkdtemp, readdir, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mountAll, unmount } from './mount.js';
import type { OverlaySnapshotter } from './snapshotter.js';
import { TarInspector } from './tar.js';

export interface Change { kind: 'A' | 'C' | 'D'; path: string }

/** Directories (relative to root) that carry trusted.overlay.opaque=y; read through GNU tar (Node has no getxattr). */
export async function opaqueDirs(root: string, dirs: string[]): Promise<Set<string>> {
  const out = new Set<string>();
  if (dirs.length === 0) return out;
  const child = spawn('tar', ['-c', '--xattrs', '--xattrs-include=trusted.overlay.opaque', '--format=pax', '--no-recursion', '-f', '-', '-C', root, '--null', '-T', '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
  const inspector = new TarInspector((e) => {
    if (e.pax.get('SCHILY.xattr.trusted.overlay.opaque')?.toString() === 'y') out.add(e.name.replace(/^\.\//, '').replace(/\/$/, ''));
  });
  child.stdout.pipe(inspector).resume();
  child.stdin.end(Buffer.concat(dirs.map((d) => Buffer.from(`./${d}\0`, 'latin1'))));
  await new Promise<void>((resolve, reject) => {
    inspector.on('error', reject);
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`tar (reading xattrs) failed: ${stderr.trim()}`))));
  });
  return out;
}

/** root + "/" + rel, where rel is a binary (latin1) string: the bytes of the name on disk. */
function bp(root: string, rel: string): Buffer {
  return rel === '' ? Buffer.from(root) : Buffer.concat([Buffer.from(`${root}/`), Buffer.from(rel, 'latin1')]);
}

async function exists(p: Buffer): Promise<boolean> {
  try { await lstat(p); return true; } catch { return false; }
}

/** Every path below `dir` (relative to `base`), depth first. */
async function walk(base: string, rel: string, visit: (rel: string, isDir: boolean, isWhiteout: boolean) => Promise<boolean>): Promise<void> {
  const names = (await readdir(bp(base, rel), { encoding: 'latin1' })).sort();
  for (const name of names) {
    const p = rel ? `${rel}/${name}` : name;
    const st = await lstat(bp(base, p));
    const whiteout = st.isCharacterDevice() && st.rdev === 0;
    const descend = await visit(p, st.isDirectory(), whiteout);
    if (descend && st.isDirectory()) await walk(base, p, visit);
  }
}

/** The changes an active snapshot holds relative to its parent, sorted by path. */
export async function changes(snapshots: OverlaySnapshotter, key: string): Promise<Change[]> {
  const info = await snapshots.stat(key);
  if (info.kind !== 'active') throw new Error(`snapshot "${key}" is not active`);
  const upper = snapshots.fsDir(info);
  const out: Change[] = [];
  const dirs: string[] = [];
  await walk(upper, '', async (p, isDir) => { if (isDir) dirs.push(p); return true; });
  const opaque = await opaqueDirs(upper, dirs);

  let lowerRoot: string | undefined;
  let viewKey: string | undefined;
  if (info.parent !== undefined) {
    viewKey = `diff-view-${randomBytes(6).toString('hex')}`;
    const mounts = await snapshots.view(viewKey, info.parent);
    lowerRoot = await mkdtemp(join(tmpdir(), 'berth-diff-'));
    try { await mountAll(mounts, lowerRoot); } catch (e) {
      await rmdir(lowerRoot);
      await snapshots.remove(viewKey);
      throw e;
    }
  }
  const inLower = (p: string) => (lowerRoot ? exists(bp(lowerRoot, p)) : Promise.resolve(false));
  try {
    await walk(upper, '', async (p, isDir, isWhiteout) => {
      const path = `/${Buffer.from(p, 'latin1').toString('utf8')}`;
      if (isWhiteout) { out.push({ kind: 'D', path }); return false; }
      const lower = await inLower(p);
      out.push({ kind: lower ? 'C' : 'A', path });
      if (isDir && opaque.has(p) && lower && lowerRoot) {
        // an opaque directory hides every lower entry the upper one does not have
        const upperNames = new Set(await readdir(bp(upper, p), { encoding: 'latin1' }));
        for (const n of (await readdir(bp(lowerRoot, p), { encoding: 'latin1' })).sort()) {
          if (!upperNames.has(n)) out.push({ kind: 'D', path: `${path}/${Buffer.from(n, 'latin1').toString('utf8')}` });
        }
      }
      return true;
    });
  } finally {
    if (lowerRoot && viewKey) {
      await unmount(lowerRoot);
      await rmdir(lowerRoot);
      await snapshots.remove(viewKey);
    }
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
