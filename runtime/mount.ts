// Performing the mounts a snapshotter describes (needs root). util-linux mount(8) is used because
// Node has no mount(2); overlay option strings are checked against the kernel's one-page limit.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Mount } from './snapshotter.js';

const run = promisify(execFile);
const PAGE = 4096;

export class MountError extends Error {}

function mountArgs(m: Mount, target: string): string[] {
  const options = m.options.join(',');
  if (Buffer.byteLength(options) >= PAGE) {
    throw new MountError(`mount options for ${target} are ${Buffer.byteLength(options)} bytes, over the kernel's ${PAGE}-byte limit (too many layers?)`);
  }
  if (m.type === 'bind') {
    const ro = m.options.includes('ro');
    const rec = m.options.includes('rbind');
    return [rec ? '--rbind' : '--bind', m.source, target, ...(ro ? ['-o', 'ro'] : [])];
  }
  return ['-t', m.type, ...(options ? ['-o', options] : []), m.source, target];
}

async function mountOne(m: Mount, target: string): Promise<void> {
  const args = mountArgs(m, target);
  try {
    await run('mount', args);
    // a read-only bind needs a remount to take effect on older util-linux/kernels
    if (m.type === 'bind' && m.options.includes('ro')) await run('mount', ['-o', 'remount,bind,ro', target]);
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new MountError(`mount ${m.type} on ${target} failed: ${(err.stderr || err.message).trim()}`);
  }
}

/** Mounts `mounts` on `target` in order (containerd's mount.All). */
export async function mountAll(mounts: Mount[], target: string): Promise<void> {
  for (const m of mounts) await mountOne(m, target);
}

/** Unmounts `target` (all stacked mounts on it). */
export async function unmount(target: string, opts: { lazy?: boolean } = {}): Promise<void> {
  try {
    await run('umount', [...(opts.lazy ? ['-l'] : []), '-R', target]);
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new MountError(`umount ${target} failed: ${(err.stderr || err.message).trim()}`);
  }
}
