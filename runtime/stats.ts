// `berth stats`: CPU, memory, network and block I/O and process count of running containers, read
// from /proc so that it is the same for every executor (the built-in one makes no memory, cpu or blkio
// cgroup unless a limit asks for it). A container's processes are those in its PID namespace: the first descendant of its
// executor process (runc run, or builtin.pl) that lives in another PID namespace is its init.
import { readdir, readFile, readlink } from 'node:fs/promises';
import { totalmem } from 'node:os';
import { join } from 'node:path';
import type { Container } from './containers.js';
import { formatTable } from './table.js';

/** USER_HZ: the unit of /proc/<pid>/stat times, 100 on every Linux ABI berth runs on. */
export const USER_HZ = 100;

export interface Proc { pid: number; ppid: number; ns: string; ticks: number }

async function readProc(pid: number): Promise<Proc | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // the command name is in parentheses and may hold spaces: the fields start after the last ")"
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime + stime, and cutime + cstime: children that ran and were reaped count too
    return { pid, ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]), ns: await readlink(`/proc/${pid}/ns/pid`) };
  } catch { return undefined; } // it exited meanwhile
}

export async function allProcs(): Promise<Proc[]> {
  const pids = (await readdir('/proc')).filter((n) => /^\d+$/.test(n)).map(Number);
  return (await Promise.all(pids.map(readProc))).filter((p): p is Proc => p !== undefined);
}

/** The processes of the container whose executor process is `executorPid`. */
export function containerProcs(procs: Proc[], executorPid: number, hostNs: string): Proc[] {
  const children = new Map<number, Proc[]>();
  for (const p of procs) (children.get(p.ppid) ?? children.set(p.ppid, []).get(p.ppid)!).push(p);
  const queue = [...(children.get(executorPid) ?? [])];
  while (queue.length) {
    const p = queue.shift()!;
    if (p.ns !== hostNs) return procs.filter((q) => q.ns === p.ns);
    queue.push(...(children.get(p.pid) ?? []));
  }
  return [];
}

/** A process's proportional set size: pages shared between processes are split between them, not counted twice. */
async function pssBytes(pid: number): Promise<number> {
  try {
    const m = /^Pss:\s+(\d+) kB$/m.exec(await readFile(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch { return 0; }
}

/**
 * Memory as docker counts it, from the container's own memory cgroup (`/berth/<id>`, which runc and
 * crun always make, the built-in executor with -m): usage minus the inactive page cache. Undefined
 * when the container has none (its processes are then in the host's cgroup).
 */
async function cgroupMemory(initPid: number, id: string): Promise<number | undefined> {
  try {
    for (const line of (await readFile(`/proc/${initPid}/cgroup`, 'utf8')).split('\n')) {
      const m = /^\d+:([^:]*):(\/.*)$/.exec(line);
      if (!m || !m[2]!.endsWith(`/berth/${id}`)) continue;
      if (m[1] === '') {
        const dir = join('/sys/fs/cgroup', m[2]!);
        const inactive = /^inactive_file (\d+)$/m.exec(await readFile(join(dir, 'memory.stat'), 'utf8'));
        return Number(await readFile(join(dir, 'memory.current'), 'utf8')) - Number(inactive?.[1] ?? 0);
      }
      if (m[1]!.split(',').includes('memory')) {
        const dir = join('/sys/fs/cgroup/memory', m[2]!);
        const inactive = /^total_inactive_file (\d+)$/m.exec(await readFile(join(dir, 'memory.stat'), 'utf8'));
        return Number(await readFile(join(dir, 'memory.usage_in_bytes'), 'utf8')) - Number(inactive?.[1] ?? 0);
      }
    }
  } catch { /* gone, or no such files */ }
  return undefined;
}

/**
 * Bytes received and sent on the container's own network interfaces (not its loopback), from its
 * network namespace's /proc/<pid>/net/dev. With the host's network it has none of its own: docker
 * shows 0B / 0B there too.
 */
async function networkIo(initPid: number, hostNet: string): Promise<{ rx: number; tx: number }> {
  try {
    if (await readlink(`/proc/${initPid}/ns/net`) !== hostNet) return parseNetDev(await readFile(`/proc/${initPid}/net/dev`, 'utf8'));
  } catch { /* it exited meanwhile */ }
  return { rx: 0, tx: 0 };
}

/** Sums the received and sent bytes of /proc/net/dev's interfaces other than the loopback. */
export function parseNetDev(text: string): { rx: number; tx: number } {
  const io = { rx: 0, tx: 0 };
  // after two header lines: "  eth0: rxbytes rxpackets … (8 receive fields) txbytes …"
  for (const line of text.split('\n').slice(2)) {
    const m = /^\s*([^:\s]+):\s*(.*)$/.exec(line);
    if (!m || m[1] === 'lo') continue;
    const f = m[2]!.trim().split(/\s+/).map(Number);
    io.rx += f[0] ?? 0;
    io.tx += f[8] ?? 0;
  }
  return io;
}

/**
 * Bytes the container's processes made the storage layer read and write, from /proc/<pid>/io. A
 * process's figures include the children it reaped (as CPU times do), so summing the live processes
 * counts everything that ran in the container; writes truncated before they reached the disk do not count.
 */
async function blockIo(procs: Proc[]): Promise<{ read: number; write: number }> {
  let [read, written, cancelled] = [0, 0, 0];
  await Promise.all(procs.map(async (p) => {
    try {
      const text = await readFile(`/proc/${p.pid}/io`, 'utf8');
      const field = (name: string) => Number(new RegExp(`^${name}: (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
      read += field('read_bytes');
      written += field('write_bytes');
      cancelled += field('cancelled_write_bytes'); // charged to whoever truncated, not to the writer
    } catch { /* it exited meanwhile */ }
  }));
  return { read, write: Math.max(0, written - cancelled) };
}

export interface ContainerStats {
  id: string; name: string; cpuPercent: number; memory: number; memoryLimit: number;
  netRx: number; netTx: number; blockRead: number; blockWrite: number; pids: number;
}

/**
 * Samples containers twice, `intervalMs` apart: CPU is the share of one CPU used in between
 * (docker's %). A container that is not running shows zeros, as with docker.
 */
export async function sampleStats(containers: Container[], intervalMs = 500): Promise<ContainerStats[]> {
  const hostNs = await readlink('/proc/self/ns/pid');
  const hostNet = await readlink('/proc/self/ns/net');
  const running = containers.filter((c) => c.state.status === 'running' && c.state.pid);
  const first = await allProcs();
  const t0 = performance.now();
  const before = new Map(running.map((c) => [c.config.id, containerProcs(first, c.state.pid!, hostNs)]));
  await new Promise((r) => setTimeout(r, intervalMs));
  const second = await allProcs();
  const seconds = (performance.now() - t0) / 1000;
  const out: ContainerStats[] = [];
  for (const c of containers) {
    const spec = JSON.parse(await readFile(join(c.dir, 'config.json'), 'utf8').catch(() => '{}')) as { linux?: { resources?: { memory?: { limit?: number } } } };
    const limit = spec.linux?.resources?.memory?.limit;
    const memoryLimit = limit && limit > 0 ? Math.min(limit, totalmem()) : totalmem();
    const idle = { netRx: 0, netTx: 0, blockRead: 0, blockWrite: 0 };
    if (!running.includes(c)) { out.push({ id: c.config.id, name: c.config.name, cpuPercent: 0, memory: 0, memoryLimit, ...idle, pids: 0 }); continue; }
    const now = containerProcs(second, c.state.pid!, hostNs);
    const was = new Map((before.get(c.config.id) ?? []).map((p) => [p.pid, p.ticks]));
    // a process that started in between counts from 0; one that ended took its time with it
    const ticks = now.reduce((sum, p) => sum + p.ticks - (was.get(p.pid) ?? 0), 0);
    const init = now.find((p) => !now.some((q) => q.pid === p.ppid));
    const memory = (init && await cgroupMemory(init.pid, c.config.id))
      ?? (await Promise.all(now.map((p) => pssBytes(p.pid)))).reduce((a, b) => a + b, 0);
    const net = init ? await networkIo(init.pid, hostNet) : { rx: 0, tx: 0 };
    const block = await blockIo(now);
    out.push({
      id: c.config.id, name: c.config.name, cpuPercent: Math.max(0, ticks / USER_HZ / seconds * 100), memory, memoryLimit,
      netRx: net.rx, netTx: net.tx, blockRead: block.read, blockWrite: block.write, pids: now.length,
    });
  }
  return out;
}

function binary(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${i === 0 ? n : n.toFixed(2)}${units[i]}`;
}

/** Decimal units with three significant digits, as docker prints I/O ("4.19MB", "648B"). */
function decimal(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return `${Number(n.toPrecision(3))}${units[i]}`;
}

/** Docker's `stats` table. */
/** A sample as docker stats --format names its fields. */
export function statsRow(r: ContainerStats): Record<string, string> {
  return {
    Container: r.id.slice(0, 12), ID: r.id.slice(0, 12), Name: r.name, CPUPerc: `${r.cpuPercent.toFixed(2)}%`,
    MemUsage: `${binary(r.memory)} / ${binary(r.memoryLimit)}`, MemPerc: `${(r.memory / r.memoryLimit * 100).toFixed(2)}%`,
    NetIO: `${decimal(r.netRx)} / ${decimal(r.netTx)}`, BlockIO: `${decimal(r.blockRead)} / ${decimal(r.blockWrite)}`, PIDs: String(r.pids),
  };
}

/** docker stats --format's column titles. */
export const STATS_HEADERS = { Container: 'CONTAINER', ID: 'CONTAINER ID', Name: 'NAME', CPUPerc: 'CPU %', MemUsage: 'MEM USAGE / LIMIT', MemPerc: 'MEM %', NetIO: 'NET I/O', BlockIO: 'BLOCK I/O', PIDs: 'PIDS' };

export function formatStats(rows: ContainerStats[]): string {
  const table = [['CONTAINER ID', 'NAME', 'CPU %', 'MEM USAGE / LIMIT', 'MEM %', 'NET I/O', 'BLOCK I/O', 'PIDS']];
  for (const s of rows.map(statsRow)) table.push([s.ID!, s.Name!, s.CPUPerc!, s.MemUsage!, s.MemPerc!, s.NetIO!, s.BlockIO!, s.PIDs!]);
  return formatTable(table);
}
