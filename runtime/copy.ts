// `berth container cp`: files between a container and the host, with docker cp's rules.
//
// The danger is the one of CVE-2018-15664: a path inside the container is resolved on the host, and
// a symlink in it (or one swapped in meanwhile) must never lead outside the container. So:
//   - every container path is resolved here, one component at a time, symlinks followed *inside*
//     the container's root (resolveInView); the kernel never follows a link on the way;
//   - a running container is frozen (as docker cp pauses it) while its files are read or written,
//     and reached through its init's /proc/PID/root, which shows its own mounts (volumes, tmpfs);
//     a stopped one through its rootfs, with its bind mounts and volumes mapped by hand;
//   - what is copied in is unpacked by GNU tar into a fresh directory first, then placed entry by
//     entry with the same resolution; an entry never replaces a directory, and lands on the path
//     the container would see (an existing symlink in the way is resolved in the container, a
//     symlink in the final place is replaced, not written through).
import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:fs';
import { chmod, copyFile, lchown, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rename, rm, symlink, unlink, utimes, lutimes } from 'node:fs/promises';
import { basename, dirname, join, posix } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { UsageError } from '../client/errors.js';
import { isPaused, pauseContainer, unpauseContainer, type Container } from './containers.js';
import { resolveInView, type ContainerView } from './in-root.js';
import { allProcs, containerProcs } from './stats.js';

/** Runs `fn` on the container's files: a running container frozen meanwhile (unless it was paused already). */
export async function withContainerView<T>(c: Container, fn: (view: ContainerView) => Promise<T>): Promise<T> {
  if (c.state.status === 'running' && c.state.pid) {
    const procs = containerProcs(await allProcs(), c.state.pid, (await readlink('/proc/self/ns/pid')));
    const init = procs.find((p) => !procs.some((q) => q.pid === p.ppid));
    if (!init) throw new UsageError(`container ${c.config.name} has no process to reach its files through (is it starting?)`);
    const frozenHere = !isPaused(c);
    if (frozenHere) await pauseContainer(c);
    try { return await fn({ root: `/proc/${init.pid}/root`, mounts: [] }); } finally {
      if (frozenHere) await unpauseContainer({ ...c, state: { ...c.state, status: 'running' } });
    }
  }
  const spec = JSON.parse(await readFile(join(c.dir, 'config.json'), 'utf8')) as { mounts?: Array<{ destination: string; source?: string; type?: string; options?: string[] }> };
  const mounts = (spec.mounts ?? []).filter((m) => m.source && (m.type === 'bind' || m.options?.includes('bind') || m.options?.includes('rbind')))
    .map((m) => ({ destination: posix.normalize(m.destination), source: m.source! }));
  return fn({ root: join(c.dir, 'rootfs'), mounts });
}

// ---- GNU tar, streamed -----------------------------------------------------------------------------

function exited(child: ChildProcess, what: string): Promise<void> {
  let err = '';
  child.stderr!.on('data', (d) => { err += d; });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => code === 0 ? resolve() : reject(new UsageError(`${what}: ${err.trim().split('\n').pop() || `exit ${code}`}`)));
  });
}

/** GNU tar reading an archive from `stdin` (a stream), or writing one to `stdout`. */
async function tar(args: string[], stdin?: Readable, stdout?: Writable): Promise<void> {
  const child = spawn('tar', args, { stdio: [stdin ? 'pipe' : 'ignore', stdout ? 'pipe' : 'ignore', 'pipe'] });
  // (tar may stop reading after the archive's end blocks: a broken pipe then is not an error; its exit code says)
  const piping = [
    stdin ? pipeline(stdin, child.stdin!).catch(() => undefined) : undefined,
    stdout ? pipeline(child.stdout!, stdout, { end: false }).catch(() => undefined) : undefined,
  ];
  await exited(child, 'tar');
  await Promise.all(piping);
}

/** tar -c piped straight into tar -x (a kernel pipe between them). */
async function pipeTar(create: string[], extract: string[]): Promise<void> {
  const c = spawn('tar', create, { stdio: ['ignore', 'pipe', 'pipe'] });
  const x = spawn('tar', extract, { stdio: [c.stdout!, 'ignore', 'pipe'] });
  c.stdout!.destroy(); // x has the pipe now; this process's end of it would keep c from ever being "closed"
  await Promise.all([exited(c, 'tar (reading)'), exited(x, 'tar (writing)')]);
}

// ---- out of the container --------------------------------------------------------------------------

/** What SRC names in the container: its host path, and whether only its contents go (SRC ending in /.). */
async function source(view: ContainerView, src: string, follow: boolean, name: string): Promise<{ host: string; isDir: boolean; contents: boolean }> {
  const contents = /\/\.$/.test(src);
  const r = await resolveInView(view, src.replace(/\/\.?$/, '') || '/', follow || /\/\.?$/.test(src));
  const st = await lstat(r.host).catch(() => undefined);
  if (!st) throw new UsageError(`Could not find the file ${src} in container ${name}`);
  if (/\/\.?$/.test(src) && !st.isDirectory()) throw new UsageError(`${src}: not a directory`);
  return { host: r.host, isDir: st.isDirectory(), contents };
}

/** `cp C:SRC -`: a tar archive of SRC to `out`. */
export async function copyOutTar(c: Container, src: string, out: Writable, o: { follow?: boolean } = {}): Promise<void> {
  await withContainerView(c, async (view) => {
    const s = await source(view, src, !!o.follow, c.config.name);
    const args = s.contents ? ['-C', s.host, '.'] : ['-C', dirname(s.host), basename(s.host)];
    await tar(['-cf', '-', '--numeric-owner', ...args], undefined, out);
  });
}

/** `cp C:SRC DEST`, with docker's rules: into DEST when it is a directory, else as DEST. */
export async function copyOut(c: Container, src: string, dest: string, o: { follow?: boolean } = {}): Promise<void> {
  const destSt = await lstat(dest).catch(() => undefined);
  if (!destSt && /\/$/.test(dest)) throw new UsageError(`${dest}: no such directory`);
  if (!destSt && !(await lstat(dirname(dest)).catch(() => undefined))?.isDirectory()) throw new UsageError(`${dirname(dest)}: no such directory`);
  // unpacked next to where it goes, in a fresh directory; then moved: a file or link of the same name is replaced, never written through
  const tmp = await mkdtemp(join(destSt?.isDirectory() ? dest : dirname(dest), '.berth-cp-'));
  try {
    const s = await withContainerView(c, async (view) => {
      const s = await source(view, src, !!o.follow, c.config.name);
      if (destSt && !destSt.isDirectory() && s.isDir) throw new UsageError(`cannot copy a directory to a file: ${dest}`);
      const args = s.contents ? ['-C', s.host, '.'] : ['-C', dirname(s.host), basename(s.host)];
      await pipeTar(['-cf', '-', '--numeric-owner', ...args], ['-xf', '-', '-C', tmp, '--no-same-owner']);
      return s;
    });
    const top = s.contents ? undefined : basename(s.host);
    if (destSt?.isDirectory()) {
      for (const e of top ? [top] : await readdir(tmp)) await replaceWith(join(tmp, e), join(dest, e));
    } else if (top) {
      await rename(join(tmp, top), dest); // as DEST (a file there is replaced)
    } else {
      await mkdir(dest);
      for (const e of await readdir(tmp)) await rename(join(tmp, e), join(dest, e));
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
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

/**
 * Places the unpacked tree `staged` (its entries) at container path `destDir` (an existing directory
 * there), entry by entry, each path resolved in the container. Ownership kept with `archive`,
 * else root's (docker cp's default).
 */
async function place(view: ContainerView, staged: string, destDir: string, archive: boolean, renameTop?: { from: string; to: string }): Promise<void> {
  const walk = async (hostDir: string, containerDir: string): Promise<void> => {
    for (const e of await readdir(hostDir)) {
      const from = join(hostDir, e);
      const st = await lstat(from);
      const name = renameTop && hostDir === staged && e === renameTop.from ? renameTop.to : e;
      const parent = await resolveInView(view, containerDir);
      const to = await resolveInView(view, posix.join(parent.path, name), false);
      const there = await lstat(to.host).catch(() => undefined);
      if (st.isDirectory()) {
        if (there && !there.isDirectory()) throw new UsageError(`cannot overwrite non-directory ${to.path} with a directory`);
        if (!there) await mkdir(to.host);
        await walk(from, to.path);
      } else {
        if (there?.isDirectory()) throw new UsageError(`cannot overwrite directory ${to.path} with a non-directory`);
        if (there) await unlink(to.host);
        if (st.isSymbolicLink()) await symlink(await readlink(from), to.host);
        else if (st.isFile()) await copyFile(from, to.host, constants.COPYFILE_EXCL);
        else throw new UsageError(`${e}: only files, directories and symlinks can be copied into a container`);
      }
      const [uid, gid] = archive ? [st.uid, st.gid] : [0, 0];
      await lchown(to.host, uid, gid);
      if (!st.isSymbolicLink()) await chmod(to.host, st.mode & 0o7777);
      await (st.isSymbolicLink() ? lutimes : utimes)(to.host, st.atime, st.mtime);
    }
  };
  await walk(staged, destDir);
}

/**
 * `cp SRC C:DEST` (SRC a host path) or `cp - C:DEST` (a tar archive on `stdin`, unpacked into the
 * directory DEST), with docker's rules.
 */
export async function copyIn(c: Container, src: string | Readable, dest: string, o: { archive?: boolean } = {}): Promise<void> {
  const staged = await mkdtemp(join(c.dir, '.cp-'));
  try {
    let name: string | undefined; // the top entry of what is copied (undefined: the contents of a directory, or an archive's entries)
    let isDir = true;
    if (typeof src === 'string') {
      const st = await lstat(src.replace(/\/\.?$/, '') || '/').catch(() => undefined);
      if (!st) throw new UsageError(`${src}: no such file or directory`);
      isDir = st.isDirectory();
      if (/\/\.?$/.test(src) && !isDir) throw new UsageError(`${src}: not a directory`);
      const contents = /\/\.$/.test(src);
      const args = contents ? ['-C', src.slice(0, -2) || '/', '.'] : ['-C', dirname(src.replace(/\/$/, '')), basename(src.replace(/\/$/, ''))];
      if (!contents) name = basename(src.replace(/\/$/, ''));
      await pipeTar(['-cf', '-', ...args], ['-xf', '-', '-C', staged, ...(o.archive ? ['--same-owner', '--numeric-owner'] : ['--no-same-owner'])]);
    } else {
      await tar(['-xf', '-', '-C', staged, ...(o.archive ? ['--same-owner', '--numeric-owner'] : ['--no-same-owner'])], src);
    }
    await withContainerView(c, async (view) => {
      const d = await resolveInView(view, dest.replace(/\/\.?$/, '') || '/');
      const there = await lstat(d.host).catch(() => undefined);
      if (typeof src !== 'string' || name === undefined) {
        // an archive, or a directory's contents: into the directory DEST (made when missing, for a directory's contents)
        if (!there && typeof src === 'string') await mkdir(d.host);
        else if (!there?.isDirectory()) throw new UsageError(`${dest}: not a directory in container ${c.config.name}`);
        await place(view, staged, d.path, !!o.archive);
      } else if (there?.isDirectory()) {
        await place(view, staged, d.path, !!o.archive); // into DEST
      } else {
        if (/\/$/.test(dest)) throw new UsageError(`${dest}: no such directory in container ${c.config.name}`);
        if (there && isDir) throw new UsageError(`cannot copy a directory to a file: ${dest}`);
        const parent = await resolveInView(view, posix.dirname(d.path));
        if (!(await lstat(parent.host).catch(() => undefined))?.isDirectory()) throw new UsageError(`${posix.dirname(dest)}: no such directory in container ${c.config.name}`);
        await place(view, staged, parent.path, !!o.archive, { from: name, to: posix.basename(d.path) }); // as DEST
      }
    });
  } finally {
    await rm(staged, { recursive: true, force: true });
  }
}

