// Paths inside a container's root, resolved by berth rather than the kernel: one component at a
// time, each symlink followed within the root (an absolute one from the container's /), `..` never
// above it. What the image or a container put there cannot lead a host-side open outside.
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
