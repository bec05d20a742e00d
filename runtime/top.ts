// `berth top`: the processes of a running container, as `docker top` shows them (its default
// `ps -ef` columns that /proc gives directly), with host PIDs. The processes are found the way
// `stats` finds them: through the container's PID namespace, the same for every executor.
import { readFile, readlink } from 'node:fs/promises';
import type { Container } from './containers.js';
import { allProcs, containerProcs, USER_HZ } from './stats.js';
import { formatTable } from './table.js';

export interface TopRow { uid: number; pid: number; ppid: number; seconds: number; cmd: string }

async function describe(pid: number): Promise<{ uid: number; cmd: string } | undefined> {
  try {
    const [status, cmdline] = await Promise.all([readFile(`/proc/${pid}/status`, 'utf8'), readFile(`/proc/${pid}/cmdline`)]);
    const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1] ?? -1);
    const args = cmdline.toString().split('\0').filter((a, i, all) => a !== '' || i < all.length - 1);
    // a kernel thread or a zombie has no command line: its name, in brackets, as ps shows it
    const cmd = args.length ? args.join(' ') : `[${/^Name:\s+(.*)$/m.exec(status)?.[1] ?? '?'}]`;
    return { uid, cmd };
  } catch { return undefined; } // it exited meanwhile
}

/** The container's processes, oldest (lowest PID) first. */
export async function topContainer(c: Container): Promise<TopRow[]> {
  if (c.state.status !== 'running' || !c.state.pid) throw new Error(`container ${c.config.name} is not running`);
  const procs = containerProcs(await allProcs(), c.state.pid, await readlink('/proc/self/ns/pid'));
  const rows: TopRow[] = [];
  for (const p of procs.sort((a, b) => a.pid - b.pid)) {
    const d = await describe(p.pid);
    if (d) rows.push({ uid: d.uid, pid: p.pid, ppid: p.ppid, seconds: Math.floor(p.ticks / USER_HZ), cmd: d.cmd });
  }
  return rows;
}

/** ps's TIME column: [DD-]HH:MM:SS of CPU time. */
function cpuTime(seconds: number): string {
  const two = (n: number) => String(n).padStart(2, '0');
  const days = Math.floor(seconds / 86400);
  const hms = `${two(Math.floor(seconds / 3600) % 24)}:${two(Math.floor(seconds / 60) % 60)}:${two(seconds % 60)}`;
  return days ? `${days}-${hms}` : hms;
}

export function formatTop(rows: TopRow[]): string {
  return formatTable([['UID', 'PID', 'PPID', 'TIME', 'CMD'], ...rows.map((r) => [String(r.uid), String(r.pid), String(r.ppid), cpuTime(r.seconds), r.cmd])]);
}
