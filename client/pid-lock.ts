// Lock files that name their holder ({pid, start time}): taken with O_EXCL, and free again when the
// holder has died (a killed CLI leaves no lock that stays). cp.lock and start.lock of a container, the
// local store's index.json.lock and its blob downloads' locks, the snapshotter's meta/lock.
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
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
  try {
    const l = JSON.parse(readFileSync(path, 'utf8')) as { pid: number; start: string };
    return pidAlive(l.pid) && procStartTime(l.pid) === l.start ? l.pid : undefined;
  } catch { return undefined; }
}

/**
 * Takes away a lock whose holder died. It is renamed aside first and looked at there: when two
 * processes break it at once, the second one finds the first one's new lock in its hands, alive,
 * and puts it back, instead of removing it.
 */
export async function breakStale(path: string): Promise<void> {
  const aside = `${path}.stale.${process.pid}.${randomBytes(4).toString('hex')}`;
  try { await rename(path, aside); } catch { return; } // gone already
  if (lockHolder(aside) !== undefined) await link(aside, path).catch(() => undefined);
  await unlink(aside).catch(() => undefined);
}

/** Takes the lock, or answers undefined when a live process holds it; the result releases it. */
export async function takeLock(path: string): Promise<(() => Promise<void>) | undefined> {
  // the lock appears with its content at once (link), so nobody reads it empty and takes it for stale
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
  await writeFile(tmp, JSON.stringify({ pid: process.pid, start: procStartTime(process.pid) ?? '' }), { mode: 0o600 });
  try {
    for (let i = 0; i < 2; i++) {
      try {
        await link(tmp, path);
        return () => rm(path, { force: true });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        if (lockHolder(path) !== undefined) return undefined;
        await breakStale(path); // its holder died
      }
    }
    return undefined;
  } finally { await unlink(tmp).catch(() => undefined); }
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
