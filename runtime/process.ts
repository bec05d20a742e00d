// Looking at host processes through /proc: is a pid alive, and is it still the same process.
import { readFileSync } from 'node:fs';

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
