// Atomic file writes: temp file in the same directory → fsync → rename → fsync(dir). A failed
// rename is an error, never swallowed; the temp file is removed on failure.
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
}

async function syncDirNow(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try { await fh.sync(); } finally { await fh.close(); }
}

interface Waiter { resolve: () => void; reject: (e: unknown) => void }
/** Directories with an fsync running, and who waits for the next one. */
const dirSyncs = new Map<string, Waiter[]>();

/**
 * fsync(dir), group-committed: callers that arrive while an fsync of the same directory runs
 * (it may have started before their rename) share the next one, so blobs committed together
 * into one directory cost one or two directory fsyncs instead of one each.
 */
export function fsyncDir(dir: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let queue = dirSyncs.get(dir);
    const idle = !queue;
    if (!queue) { queue = []; dirSyncs.set(dir, queue); }
    queue.push({ resolve, reject });
    if (idle) void runDirSyncs(dir, queue);
  });
}

async function runDirSyncs(dir: string, queue: Waiter[]): Promise<void> {
  while (queue.length) {
    const batch = queue.splice(0);
    try {
      await syncDirNow(dir);
      for (const w of batch) w.resolve();
    } catch (e) {
      for (const w of batch) w.reject(e);
    }
  }
  dirSyncs.delete(dir);
}

export async function fsyncFile(path: string): Promise<void> {
  const fh = await open(path, 'r+');
  try { await fh.sync(); } finally { await fh.close(); }
}

/** fsync `tmp` (unless the caller just did: `synced`), rename it to `path`, fsync the directory. */
export async function commitFile(tmp: string, path: string, opts: { synced?: boolean } = {}): Promise<void> {
  if (!opts.synced) await fsyncFile(tmp);
  try {
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  await fsyncDir(dirname(path));
}

/** Writes small data (JSON, manifests) atomically. */
export async function writeFileAtomic(path: string, data: Buffer | string, mode = 0o644): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = tempPathFor(path);
  const fh = await open(tmp, 'w', mode);
  try {
    await fh.writeFile(data);
  } catch (e) {
    await fh.close();
    await rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  await commitFile(tmp, path);
}
