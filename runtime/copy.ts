// `berth container cp`: files between a container and the host, with docker cp's rules.
//
// The danger is the one of CVE-2018-15664: a path inside the container is worked on from the host,
// and a symlink in it (or one swapped in meanwhile, by the container or by another container sharing
// a volume) must never lead outside the container. So:
//   - every container path is walked by berth with each directory held open (in-root.ts walkHeld):
//     symlinks are followed inside the container's root, and nothing looked up later can be redirected;
//   - GNU tar reads a source through the held directory (-C /proc/self/fd/3), and never follows a
//     symlink below it;
//   - what is copied in is unpacked by GNU tar into a fresh host directory first, then placed entry by
//     entry under held directories: mkdir, open with O_EXCL|O_NOFOLLOW, symlink; a symlink in the final
//     place is replaced, never written through;
//   - a running container is also frozen meanwhile (as docker cp pauses it), reached through its
//     init's /proc/PID/root (checked to be its rootfs), which shows its own mounts; a stopped one
//     through its rootfs with its bind mounts and volumes mapped (read-only ones refused);
//   - one cp per container at a time (cp.lock), and no start while one runs.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, constants, createReadStream, createWriteStream, fchmodSync, fchownSync, fstatSync, futimesSync, lchownSync, lstatSync, mkdirSync, openSync, readlinkSync, statSync, symlinkSync, unlinkSync, lutimesSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, open, readdir, readFile, readlink, realpath, rename, rm, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join, posix, resolve } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { UsageError } from '../client/errors.js';
import { takeLock } from '../client/pid-lock.js';
import { copyInProgress, CP_LOCK, ensureRootfsMounted, isPaused, pauseContainer, supervisorAlive, unpauseContainer, type Container } from './containers.js';
import { HeldDir, walkHeld, type HeldView } from './in-root.js';
import { procStartTime } from './process.js';
import type { OverlaySnapshotter } from './snapshotter.js';
import { allProcs, containerProcs } from './stats.js';

// ---- what an interrupted cp must undo (the CLI runs these on SIGINT/SIGTERM/SIGHUP) ----------------

const undo = new Set<() => Promise<void>>();

export async function undoInterruptedCopy(): Promise<void> {
  for (const u of [...undo].reverse()) await u().catch(() => undefined);
}

async function guarded<T>(cleanup: () => Promise<void>, fn: () => Promise<T>): Promise<T> {
  undo.add(cleanup);
  try { return await fn(); } finally {
    undo.delete(cleanup);
    await cleanup();
  }
}

// ---- the container's files, held --------------------------------------------------------------------

async function lock(c: Container): Promise<() => Promise<void>> {
  const release = await takeLock(join(c.dir, CP_LOCK));
  if (!release) throw new UsageError(`another cp into or out of ${c.config.name} is in progress`);
  return release;
}

/** The container's init (the first process of its PID namespace), as the host sees it. */
async function initOf(c: Container): Promise<{ pid: number; start: string } | undefined> {
  const procs = containerProcs(await allProcs(), c.state.pid!, await readlink('/proc/self/ns/pid'));
  const init = procs.find((p) => !procs.some((q) => q.pid === p.ppid));
  const start = init && procStartTime(init.pid);
  return init && start ? { pid: init.pid, start } : undefined;
}

/**
 * Runs `fn` with the container held still: not startable meanwhile (its cp lock), and frozen while it
 * runs (thawed after, or when the CLI is interrupted, unless it was paused before). `running` tells
 * which. Its processes can then swap nothing under a path being read (cp, commit).
 */
export async function holdStill<T>(c: Container, fn: (running: boolean) => Promise<T>): Promise<T> {
  const unlock = await lock(c);
  return guarded(unlock, async () => {
    if (c.state.status !== 'running' || !c.state.pid) return fn(false);
    const frozenHere = !isPaused(c);
    if (frozenHere) await pauseContainer(c);
    return guarded(async () => { if (frozenHere) await unpauseContainer({ ...c, state: { ...c.state, status: 'running' } }).catch(() => undefined); }, () => fn(true));
  });
}

/** Runs `fn` on the container's files, the container held still (holdStill). */
export async function withContainerView<T>(c: Container, snapshots: OverlaySnapshotter, fn: (view: HeldView) => Promise<T>): Promise<T> {
  const spec = JSON.parse(await readFile(join(c.dir, 'config.json'), 'utf8')) as { root?: { readonly?: boolean }; mounts?: Array<{ destination: string; source?: string; type?: string; options?: string[] }> };
  const readonlyRoot = spec.root?.readonly === true;
  return holdStill(c, async (running) => {
    const rootfs = join(c.dir, 'rootfs');
    if (running) {
      // its root, held: the init's, checked to be this container's rootfs and the same process before and after
      const init = await initOf(c);
      if (!init) throw new UsageError(`container ${c.config.name} has no process to reach its files through (is it starting?)`);
      const fd = openSync(`/proc/${init.pid}/root`, constants.O_RDONLY | constants.O_DIRECTORY);
      const root = new HeldDir(fd, '/', readonlyRoot);
      try {
        const [held, mine] = [fstatSync(fd), statSync(rootfs)];
        if (procStartTime(init.pid) !== init.start || held.dev !== mine.dev || held.ino !== mine.ino) {
          throw new UsageError(`container ${c.config.name}: its init's root is not its rootfs (chrooted, or ended): cp refused`);
        }
        return await fn({ root, mounts: [] });
      } finally { root.close(); }
    }
    if (c.state.status !== 'exited' && c.state.status !== 'created') throw new UsageError(`container ${c.config.name} is ${c.state.status}: try again when it runs or has stopped`);
    if (supervisorAlive(c.state)) throw new UsageError(`container ${c.config.name} is being started: try again`);
    await ensureRootfsMounted(snapshots, c);
    const root = new HeldDir(openSync(rootfs, constants.O_RDONLY | constants.O_DIRECTORY), '/', readonlyRoot);
    try {
      const mounts = (spec.mounts ?? []).filter((m) => m.source && (m.type === 'bind' || m.options?.includes('bind') || m.options?.includes('rbind')))
        .map((m) => ({ destination: posix.normalize(m.destination), source: m.source!, readonly: m.options?.includes('ro') === true }));
      return await fn({ root, mounts });
    } finally { root.close(); }
  });
}

// ---- GNU tar -------------------------------------------------------------------------------------

function exited(child: ChildProcess, what: string): Promise<void> {
  let err = '';
  child.stderr!.on('data', (d) => { err += d; });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => code === 0 ? resolve() : reject(new UsageError(`${what}: ${err.trim().split('\n').pop() || `exit ${code}`}`)));
  });
}

/** tar -c of NAME (or ".") in a held directory, to `out` or into tar -x args. */
async function tarFrom(dir: HeldDir, name: string, sink: { stream: Writable } | { extract: string[] }, as?: string): Promise<void> {
  // a held directory is archived as "." and named `as` (its name in the container) by a transform (not applied to link targets)
  const rename = as ? [`--transform=s,^\\.,${as.replace(/[\\,&]/g, (ch) => `\\${ch}`)},S`] : [];
  const c = spawn('tar', ['-cf', '-', '--numeric-owner', ...rename, '-C', '/proc/self/fd/3', '--', name], { stdio: ['ignore', 'pipe', 'pipe', dir.fd] });
  if ('stream' in sink) {
    const piped = pipeline(c.stdout!, sink.stream, { end: false }).catch(() => undefined);
    await exited(c, 'tar');
    await piped;
    return;
  }
  const x = spawn('tar', sink.extract, { stdio: [c.stdout!, 'ignore', 'pipe'] });
  c.stdout!.destroy(); // x has the pipe now; this process's end of it would keep c from ever being "closed"
  await Promise.all([exited(c, 'tar (reading)'), exited(x, 'tar (writing)')]);
}

/** GNU tar unpacking an archive from `input` (a stream) or from tar -c ARGS, into `dir`. */
async function tarInto(dir: string, input: Readable | string[], keepOwners: boolean): Promise<void> {
  const extract = ['-xf', '-', '-C', dir, ...(keepOwners ? ['--same-owner', '--numeric-owner'] : ['--no-same-owner'])];
  if (!Array.isArray(input)) {
    const x = spawn('tar', extract, { stdio: ['pipe', 'ignore', 'pipe'] });
    const piped = pipeline(input, x.stdin!).catch(() => undefined); // tar may stop reading after the end blocks
    await exited(x, 'tar');
    await piped;
    return;
  }
  const c = spawn('tar', ['-cf', '-', ...input], { stdio: ['ignore', 'pipe', 'pipe'] });
  const x = spawn('tar', extract, { stdio: [c.stdout!, 'ignore', 'pipe'] });
  c.stdout!.destroy();
  await Promise.all([exited(c, 'tar (reading)'), exited(x, 'tar (writing)')]);
}

// ---- out of the container --------------------------------------------------------------------------

/** SRC in the container: the held directory it is (name undefined) or its parent and name. */
function source(view: HeldView, src: string, follow: boolean, container: string): { dir: HeldDir; name?: string; contents: boolean } {
  const contents = /\/\.$/.test(src) || src === '/' || src === '';
  const trailing = /\/\.?$/.test(src);
  let r;
  try { r = walkHeld(view, src.replace(/\/\.?$/, '') || '/', follow || trailing); } catch { throw new UsageError(`Could not find the file ${src} in container ${container}`); }
  if (r.name !== undefined) {
    let st;
    try { st = lstatSync(r.dir.at(r.name)); } catch { st = undefined; }
    if (!st || trailing) {
      r.dir.close();
      throw new UsageError(st ? `${src}: not a directory` : `Could not find the file ${src} in container ${container}`);
    }
  }
  return { ...r, contents };
}

/** The name a copied SRC gets: its last component as given (a link's own name, even with -L). */
function topName(path: string): string {
  return posix.basename(posix.normalize(`/${path}`).replace(/\/\.?$/, '')) || 'rootfs';
}

/** `cp C:SRC -`: a tar archive of SRC to `out`. */
export async function copyOutTar(c: Container, snapshots: OverlaySnapshotter, src: string, out: Writable, o: { follow?: boolean } = {}): Promise<void> {
  await withContainerView(c, snapshots, async (view) => {
    const s = source(view, src, !!o.follow, c.config.name);
    try { await tarFrom(s.dir, s.name ?? '.', { stream: out }, s.name === undefined && !s.contents ? topName(src) : undefined); } finally { s.dir.close(); }
  });
}

/** Device nodes that came out of a container do not land on the host (a 0666 raw disk would be a way in). */
async function dropDevices(dir: string): Promise<void> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.isBlockDevice() || e.isCharacterDevice()) await unlink(join(dir, e.name));
    else if (e.isDirectory()) await dropDevices(join(dir, e.name));
  }
}

/** `cp C:SRC DEST`, with docker's rules: into DEST when it is a directory, else as DEST. */
export async function copyOut(c: Container, snapshots: OverlaySnapshotter, src: string, dest: string, o: { follow?: boolean; archive?: boolean } = {}): Promise<void> {
  const destSt = await stat(dest).catch(() => undefined); // a symlink to a directory is that directory, as with docker
  if (!destSt && !(await stat(dirname(dest)).catch(() => undefined))?.isDirectory()) throw new UsageError(`${dirname(dest)}: no such directory`);
  const tmp = await mkdtemp(join(destSt?.isDirectory() ? dest : dirname(dest), '.berth-cp-'));
  await guarded(() => rm(tmp, { recursive: true, force: true }), async () => {
    const name = topName(src);
    const isDir = await withContainerView(c, snapshots, async (view) => {
      const s = source(view, src, !!o.follow, c.config.name);
      try {
        if (s.name === undefined && destSt && !destSt.isDirectory()) throw new UsageError(`cannot copy a directory to a file: ${dest}`);
        if (s.name !== undefined && !destSt && /\/$/.test(dest)) throw new UsageError(`${dest}: no such directory`);
        // unpacked next to where it goes, under the name it will have
        const target = s.name === undefined ? join(tmp, name) : tmp;
        if (s.name === undefined) await mkdir(target);
        await tarFrom(s.dir, s.name ?? '.', { extract: ['-xf', '-', '-C', target, ...(o.archive ? ['--same-owner', '--numeric-owner'] : ['--no-same-owner', '--no-same-permissions'])] });
        if (s.name !== undefined && s.name !== name) await rename(join(tmp, s.name), join(tmp, name));
        return s.name === undefined;
      } finally { s.dir.close(); }
    });
    await dropDevices(tmp);
    const contents = /\/\.$/.test(src);
    if (destSt?.isDirectory()) {
      for (const e of contents ? await readdir(join(tmp, name)) : [name]) await replaceWith(join(tmp, contents ? name : '', e), join(dest, e));
    } else if (isDir && contents) {
      await rename(join(tmp, name), dest);
    } else {
      await rename(join(tmp, name), dest); // as DEST (a file there is replaced)
    }
  });
}

/** Puts `from` at `to`, merging into a directory that is there, replacing anything else. */
async function replaceWith(from: string, to: string): Promise<void> {
  const [a, b] = await Promise.all([lstat(from), lstat(to).catch(() => undefined)]);
  if (a.isDirectory() && b?.isDirectory()) {
    for (const e of await readdir(from)) await replaceWith(join(from, e), join(to, e));
    return;
  }
  if (b?.isDirectory()) throw new UsageError(`cannot overwrite directory ${to} with a non-directory`);
  await rename(from, to);
}

// ---- into the container ----------------------------------------------------------------------------

/** Places the host entry `from` as `name` in the held container directory `dir`; owners kept with `archive`, else root's. */
async function place(from: string, dir: HeldDir, name: string, archive: boolean): Promise<void> {
  const st = lstatSync(from);
  const at = dir.at(name);
  const there = (() => { try { return lstatSync(at); } catch { return undefined; } })();
  const where = posix.join(dir.path, name);
  const [uid, gid] = archive ? [st.uid, st.gid] : [0, 0];
  if (st.isDirectory()) {
    if (there && !there.isDirectory()) throw new UsageError(`cannot overwrite non-directory ${where} with a directory`);
    if (!there) mkdirSync(at, 0o700);
    const sub = dir.open(name);
    if (!sub) throw new UsageError(`${where}: changed while copying`);
    try {
      for (const e of await readdir(from)) await place(join(from, e), sub, e, archive);
      fchownSync(sub.fd, uid, gid);
      fchmodSync(sub.fd, st.mode & 0o7777);
      futimesSync(sub.fd, st.atime, st.mtime);
    } finally { sub.close(); }
    return;
  }
  if (there?.isDirectory()) throw new UsageError(`cannot overwrite directory ${where} with a non-directory`);
  if (there) unlinkSync(at);
  if (st.isSymbolicLink()) {
    symlinkSync(readlinkSync(from), at);
    lchownSync(at, uid, gid);
    lutimesSync(at, st.atime, st.mtime);
    return;
  }
  if (!st.isFile()) throw new UsageError(`${where}: only files, directories and symlinks can be copied into a container`);
  const fd = openSync(at, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    await pipeline(createReadStream(from), createWriteStream('', { fd, autoClose: false }));
    fchownSync(fd, uid, gid);
    fchmodSync(fd, st.mode & 0o7777);
    futimesSync(fd, st.atime, st.mtime);
  } finally { closeSync(fd); }
}

/**
 * `cp SRC C:DEST` (SRC a host path) or `cp - C:DEST` (a tar archive on `stdin`, unpacked into the
 * directory DEST), with docker's rules.
 */
export async function copyIn(c: Container, snapshots: OverlaySnapshotter, src: string | Readable, dest: string, o: { archive?: boolean; follow?: boolean } = {}): Promise<void> {
  const staged = await mkdtemp(join(c.dir, '.cp-'));
  await guarded(() => rm(staged, { recursive: true, force: true }), async () => {
    // what comes in, unpacked on the host: an archive's entries, a directory's contents, or one entry named `name`
    let name: string | undefined;
    let isDir = true;
    if (typeof src === 'string') {
      const path = resolve(src.replace(/\/\.$/, ''));
      const st = await lstat(path).catch(() => undefined);
      if (!st) throw new UsageError(`${src}: no such file or directory`);
      const real = o.follow && st.isSymbolicLink() ? await realpath(path) : path;
      isDir = (await lstat(real)).isDirectory();
      if (/\/\.?$/.test(src) && !isDir) throw new UsageError(`${src}: not a directory`);
      if (/\/\.$/.test(src)) await tarInto(staged, ['-C', real, '.'], !!o.archive);
      else {
        name = basename(path);
        await tarInto(staged, ['-C', dirname(real), '--', basename(real)], !!o.archive);
        if (basename(real) !== name) await rename(join(staged, basename(real)), join(staged, name));
      }
    } else {
      await tarInto(staged, src, !!o.archive);
    }
    await withContainerView(c, snapshots, async (view) => {
      try { await placeAt(view); } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (e instanceof UsageError || !code) throw e;
        // a system error, said without the /proc/self/fd paths it happened on
        throw new UsageError(`cannot write ${dest} in container ${c.config.name}: ${code === 'EROFS' ? 'read-only file system' : code === 'ENOSPC' ? 'no space left on device' : (e as Error).message.replace(/,? '?\/proc\/self\/fd\/[^']*'?/g, '')}`);
      }
    });
    async function placeAt(view: HeldView): Promise<void> {
      let d;
      try { d = walkHeld(view, dest.replace(/\/\.?$/, '') || '/'); } catch (e) { throw new UsageError(`${dest}: ${(e as Error).message.replace(/^.*?: /, '')} in container ${c.config.name}`); }
      try {
        if (d.dir.readonly) throw new UsageError(`${dest} is on a read-only mount or rootfs of container ${c.config.name}`);
        const entries = async (into: HeldDir) => { for (const e of await readdir(staged)) await place(join(staged, e), into, e, !!o.archive); };
        const there = d.name === undefined ? undefined : (() => { try { return lstatSync(d.dir.at(d.name!)); } catch { return undefined; } })();
        if (d.name === undefined) {
          await entries(d.dir); // DEST is a directory: into it
        } else if (there) {
          if (isDir) throw new UsageError(`cannot copy a directory to a file: ${dest}`);
          if (name === undefined) throw new UsageError(`${dest}: not a directory in container ${c.config.name}`);
          await place(join(staged, name), d.dir, d.name, !!o.archive); // a file replaces a file (a link is replaced, not followed)
        } else if (name === undefined || isDir) {
          if (name === undefined && typeof src !== 'string') throw new UsageError(`${dest}: no such directory in container ${c.config.name}`);
          await place(name === undefined ? staged : join(staged, name), d.dir, d.name, !!o.archive); // DEST made, with what SRC holds
        } else {
          if (/\/$/.test(dest)) throw new UsageError(`${dest}: no such directory in container ${c.config.name}`);
          await place(join(staged, name), d.dir, d.name, !!o.archive); // as DEST
        }
      } finally { d.dir.close(); }
    }
  });
}
