// Lock files that name their holder ({pid, start time}): taken with O_EXCL, and free again when the
// holder has died (a killed CLI leaves no lock that stays). cp.lock and start.lock of a container, the
// local store's index.json.lock and its blob downloads' locks, the snapshotter's meta/lock.
import { readFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { link, mkdir, rename, rm, unlink, writeFile } from 'node:fs/promises';

/** The start time of a process (clock ticks since boot, /proc/PID/stat field 22): tells a reused pid apart. */
export function procStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch { return undefined; }
}

/** A live process (a zombie — dead, not yet reaped by its parent or init — is not). */
export function pidAlive(pid: number | undefined): boolean {
  if (!pid) return false;
  try { process.kill(pid, 0); } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false; }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch { return false; }
}

/** The live process holding the lock at `path`, if any. */
export function lockHolder(path: string): number | undefined {
  const content = readLock(path);
  return content === undefined ? undefined : liveHolder(content);
}

/** Who holds the lock `content` names, if alive (the content as read from the lock file). */
function liveHolder(content: string): number | undefined {
  try {
    const l = JSON.parse(content) as { pid: number; start: string };
    return pidAlive(l.pid) && procStartTime(l.pid) === l.start ? l.pid : undefined;
  } catch { return undefined; }
}

/** The lock file's content, or undefined when there is none. */
function readLock(path: string): string | undefined {
  try { return readFileSync(path, 'utf8'); } catch { return undefined; }
}

/** This process, as a lock file names it. */
function selfContent(): string {
  return JSON.stringify({ pid: process.pid, start: procStartTime(process.pid) ?? '' });
}

/** A file that appears whole with `content`, or fails with EEXIST (link, unlike a plain write, is atomic and exclusive). */
async function createExclusive(path: string, content: string): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
  await writeFile(tmp, content, { mode: 0o600 });
  try { await link(tmp, path); } finally { await unlink(tmp).catch(() => undefined); }
}

/**
 * Takes away the lock at `path` if it still is `seen`, a dead holder's. Breakers of one dead lock go one
 * at a time through a marker named after it, and look again under it: one that read the dead lock
 * before another broke it and took it over finds the new lock and leaves it alone. (Moving it aside to
 * look, and back, left a moment without a lock, in which a third process took it: two holders.)
 */
export async function breakStale(path: string, seen: string): Promise<void> {
  const marker = `${path}.breaking-${createHash('sha256').update(seen).digest('hex').slice(0, 16)}`;
  try { await createExclusive(marker, selfContent()); } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    const breaker = readLock(marker);
    if (breaker !== undefined && liveHolder(breaker) === undefined) await unlink(marker).catch(() => undefined); // a breaker that died
    return; // another is breaking it: look again later
  }
  try {
    if (readLock(path) !== seen) return; // broken and taken over already
    const aside = `${path}.stale.${process.pid}.${randomBytes(4).toString('hex')}`;
    try { await rename(path, aside); } catch { return; }
    // only if a breaker died holding the marker, and two came after it, can this be another's lock: put it back
    if (readLock(aside) !== seen) await link(aside, path).catch(() => undefined);
    await unlink(aside).catch(() => undefined);
  } finally { await unlink(marker).catch(() => undefined); }
}

/** Takes the lock, or answers undefined when a live process holds it; the result releases it. */
export async function takeLock(path: string): Promise<(() => Promise<void>) | undefined> {
  for (let i = 0; i < 2; i++) {
    try {
      // the lock appears with its content at once, so nobody reads it empty and takes it for stale
      await createExclusive(path, selfContent());
      return () => rm(path, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const held = readLock(path);
      if (held === undefined) continue; // released meanwhile
      if (liveHolder(held) !== undefined) return undefined;
      await breakStale(path, held); // its holder died
    }
  }
  return undefined;
}

/** Takes the lock, waiting while another live process holds it (a dead holder's lock is broken). */
export async function acquireLock(path: string, pollMs = 50): Promise<() => Promise<void>> {
  for (;;) {
    const release = await takeLock(path);
    if (release) return release;
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** A lock file in `dir`, waited for; the directory is made again if another process tidied it away meanwhile. */
export async function lockIn(dir: string, path: string): Promise<() => Promise<void>> {
  for (;;) {
    await mkdir(dir, { recursive: true });
    try { return await acquireLock(path); } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
}

/**
 * A lock file taken around each run of `fn`: one at a time in this process (queued, so callers in one
 * process do not poll for a lock their own process holds), and across processes (the file). Not
 * reentrant: `fn` must not run another of the same lock's runs and wait for it.
 */
export class SerialLock {
  private tail: Promise<unknown> = Promise.resolve();

  constructor(private readonly dir: string, readonly path: string) {}

  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(async () => {
      const release = await lockIn(this.dir, this.path);
      try { return await fn(); } finally { await release(); }
    });
    this.tail = next.catch(() => undefined);
    return next;
  }
}
