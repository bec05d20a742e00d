// Paths inside a container's root, resolved by berth rather than the kernel: one component at a
// time, each symlink followed within the root (an absolute one from the container's /), `..` never
// above it. What the image or a container put there cannot lead a host-side open outside.
import { closeSync, constants, lstatSync, openSync, readlinkSync } from 'node:fs';
import { lstat, readlink } from 'node:fs/promises';
import { posix } from 'node:path';

/** How the host reaches a container's files: a root, and (for a stopped container) the bind mounts over it. */
export interface ContainerView { root: string; mounts: Array<{ destination: string; source: string }> }

/** A container path, as the host reaches it and as the container names it. */
export interface Resolved { host: string; path: string }

function hostOf(view: ContainerView, path: string): string {
  let best: { destination: string; source: string } | undefined;
  for (const m of view.mounts) {
    if ((path === m.destination || path.startsWith(`${m.destination === '/' ? '' : m.destination}/`)) && (!best || m.destination.length > best.destination.length)) best = m;
  }
  return best ? posix.join(best.source, path.slice(best.destination.length)) : posix.join(view.root, path);
}

/**
 * Resolves `path` as the container sees it: symlinks (absolute ones from the container's root)
 * followed within the container, `..` never above its root. With `followLast` false, a symlink in
 * the final place is the result itself (docker cp copies a link as a link).
 */
export async function resolveInView(view: ContainerView, path: string, followLast = true): Promise<Resolved> {
  let pending = path.split('/').filter((p) => p && p !== '.');
  const done: string[] = [];
  let links = 0;
  while (pending.length) {
    const part = pending.shift()!;
    if (part === '..') { done.pop(); continue; }
    const next = `/${[...done, part].join('/')}`;
    let st;
    try { st = await lstat(hostOf(view, next)); } catch { done.push(part); continue; } // missing: the rest is literal
    if (st.isSymbolicLink() && (pending.length || followLast)) {
      if (++links > 40) throw new Error(`${path}: too many levels of symbolic links`);
      const target = await readlink(hostOf(view, next));
      if (target.startsWith('/')) done.length = 0;
      pending = [...target.split('/').filter((p) => p && p !== '.'), ...pending];
      continue;
    }
    done.push(part);
  }
  const p = `/${done.join('/')}`;
  return { host: hostOf(view, p), path: p };
}

// ---- held directories: the same resolution, race-free ---------------------------------------------
// For files a container's processes (or another container sharing a volume) may change while berth
// works on them (`cp`): every directory on the way is opened with O_NOFOLLOW and held, and the next
// name is looked up through /proc/self/fd/N, so swapping a component for a symlink after it was
// checked changes nothing. Final operations use the held parent the same way (mkdir, open with
// O_EXCL|O_NOFOLLOW, symlink, unlink never follow the last name).

const DIR_NOFOLLOW = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;

export class HeldDir {
  constructor(readonly fd: number, readonly path: string, readonly readonly: boolean) {}
  /** A name in this directory, reached through the open descriptor. */
  at(name: string): string { return `/proc/self/fd/${this.fd}/${name}`; }
  /** A directory in this one, opened without following a symlink (undefined: it is not a directory). */
  open(name: string, path = posix.join(this.path, name)): HeldDir | undefined {
    try { return new HeldDir(openSync(this.at(name), DIR_NOFOLLOW), path, this.readonly); } catch (e) {
      if (['ELOOP', 'ENOTDIR', 'ENOENT'].includes((e as NodeJS.ErrnoException).code!)) return undefined;
      throw e;
    }
  }
  close(): void { closeSync(this.fd); }
}

/** A container's files as held directories: its root, and (stopped) the bind mounts over it. */
export interface HeldView { root: HeldDir; mounts: Array<{ destination: string; source: string; readonly: boolean }> }

/**
 * Resolves `path` like resolveInView, holding each directory on the way. The result is the final
 * directory itself (`name` undefined), or its parent and the last name (missing, not a directory,
 * or a symlink left unfollowed with `followLast` false). The caller closes `dir`.
 */
export function walkHeld(view: HeldView, path: string, followLast = true): { dir: HeldDir; name?: string } {
  let pending = path.split('/').filter((p) => p && p !== '.');
  const stack: HeldDir[] = [new HeldDir(openSync(`/proc/self/fd/${view.root.fd}`, DIR_NOFOLLOW & ~constants.O_NOFOLLOW), '/', view.root.readonly)];
  const top = () => stack[stack.length - 1]!;
  let links = 0;
  const result = (name?: string) => {
    const dir = stack.pop()!;
    for (const d of stack) d.close();
    return { dir, ...(name !== undefined ? { name } : {}) };
  };
  try {
    while (pending.length) {
      const part = pending.shift()!;
      if (part === '..') { if (stack.length > 1) stack.pop()!.close(); continue; }
      const next = posix.join(top().path, part);
      const last = pending.length === 0;
      const mount = view.mounts.find((m) => m.destination === next);
      if (mount) { stack.push(new HeldDir(openSync(mount.source, constants.O_RDONLY | constants.O_DIRECTORY), next, mount.readonly)); continue; }
      const dir = top().open(part, next);
      if (dir) { stack.push(dir); continue; }
      let st;
      try { st = lstatSync(top().at(part)); } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        if (last) return result(part);
        throw Object.assign(new Error(`${path}: no such directory: ${next}`), { code: 'ENOENT' });
      }
      if (st.isSymbolicLink() && (!last || followLast)) {
        if (++links > 40) throw new Error(`${path}: too many levels of symbolic links`);
        const target = readlinkSync(top().at(part));
        if (target.startsWith('/')) while (stack.length > 1) stack.pop()!.close();
        pending = [...target.split('/').filter((p) => p && p !== '.'), ...pending];
        continue;
      }
      if (last) return result(part);
      throw Object.assign(new Error(`${path}: not a directory: ${next}`), { code: 'ENOTDIR' });
    }
    return result();
  } catch (e) {
    for (const d of stack) d.close();
    throw e;
  }
}
