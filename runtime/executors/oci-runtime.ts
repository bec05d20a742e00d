// Delegating to an OCI runtime (runc, or crun: they take the same commands) for a prepared bundle.
// `run` is foreground: the runtime creates, starts and waits, and its exit status is the
// container's (128 + signal when it was killed). State lives under our own --root.
//
// crun 1.8 refuses a cgroup "hybrid" host whose unified hierarchy lists controllers (FACTS: this
// host's /sys/fs/cgroup/unified/cgroup.controllers says "hugetlb"). It works when it runs in a private
// mount namespace where an empty file covers that cgroup.controllers, so crun is started that way there.
import type { ChildProcess, StdioOptions } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { access, constants, mkdir, rm, writeFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import type { ExecProcess, Executor, ExecutorRef, Limits, RunResult } from './executor.js';
import { runToEnd, spawnWrapped } from './executor.js';

export type { RunResult } from './executor.js';

const HYBRID_CONTROLLERS = '/sys/fs/cgroup/unified/cgroup.controllers';

const PID_MAX_LIMIT = 4 * 1024 * 1024;

/** Does crun need the empty-cgroup.controllers workaround on this host? */
function crunNeedsWorkaround(): boolean {
  try { return readFileSync(HYBRID_CONTROLLERS, 'utf8').trim() !== ''; } catch { return false; }
}

export async function findProgram(name: string, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const dirs = [...(env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/local/sbin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
  for (const d of dirs) {
    try {
      await access(join(d, name), constants.X_OK);
      return join(d, name);
    } catch { /* next */ }
  }
  return undefined;
}

export class OciRuntimeExecutor implements Executor {
  readonly name: string;

  constructor(readonly bin: string, readonly stateRoot: string) {
    this.name = /crun$/.test(bin) ? 'crun' : 'runc';
  }

  get ref(): ExecutorRef { return { name: this.name, bin: this.bin, stateRoot: this.stateRoot }; }

  /** Finds `name` (default runc) on PATH or in /usr/sbin, /usr/bin. */
  static async find(stateRoot: string, name = 'runc', env: NodeJS.ProcessEnv = process.env): Promise<OciRuntimeExecutor | undefined> {
    const bin = await findProgram(name, env);
    return bin ? new OciRuntimeExecutor(bin, stateRoot) : undefined;
  }

  private async spawnRuntime(args: string[], stdio: StdioOptions, wrapper?: readonly string[], detached = false): Promise<ChildProcess> {
    const argv = [this.bin, '--root', this.stateRoot, ...args];
    if (this.name === 'crun' && crunNeedsWorkaround()) {
      const empty = join(this.stateRoot, 'empty-cgroup.controllers');
      if (!existsSync(empty)) {
        await mkdir(this.stateRoot, { recursive: true });
        await writeFile(empty, '');
      }
      const script = 'mount --bind "$0" /sys/fs/cgroup/unified/cgroup.controllers && exec "$@"';
      return spawnWrapped(['unshare', '--mount', '--propagation', 'private', 'sh', '-c', script, empty, ...argv], stdio, wrapper, detached);
    }
    return spawnWrapped(argv, stdio, wrapper, detached);
  }

  spawnRun(id: string, bundle: string, stdio: StdioOptions, wrapper?: readonly string[]): Promise<ChildProcess> {
    return this.spawnRuntime(['run', '--bundle', bundle, id], stdio, wrapper);
  }

  /** Runs the bundle in the foreground. With `capture`, stdout/stderr are collected (stdin is empty). */
  run(id: string, bundle: string, opts: { capture?: boolean; signal?: AbortSignal } = {}): Promise<RunResult> {
    return runToEnd(this, id, bundle, opts);
  }

  spawnExec(id: string, _bundle: string, p: ExecProcess, stdio: StdioOptions, opts: { detached?: boolean } = {}): Promise<ChildProcess> {
    const args = ['exec', '--cwd', p.cwd, '--user', `${p.user.uid}:${p.user.gid}`];
    for (const g of p.user.additionalGids ?? []) args.push('--additional-gids', String(g));
    for (const e of p.env) args.push('--env', e);
    if (p.tty) args.push('--tty');
    return this.spawnRuntime([...args, id, ...p.args], stdio, undefined, opts.detached);
  }

  kill(id: string, signal = 'TERM'): Promise<void> { return this.simple(['kill', id, signal.replace(/^SIG/, '')]); }

  /** Removes the runtime's state for `id` (force: even when running); absent is fine. */
  async delete(id: string): Promise<void> {
    try { await this.simple(['delete', '--force', id]); } catch (e) {
      if (!/does not exist|not exist|no such|not found/i.test((e as Error).message)) throw e;
    }
  }

  async pause(id: string): Promise<void> {
    await this.simple(['pause', id]);
  }

  async resume(id: string): Promise<void> {
    try { await this.simple(['resume', id]); } catch (e) {
      if (!/not paused|does not exist|not exist|no such|not found|not running/i.test((e as Error).message)) throw e;
    }
  }

  /** runc/crun update -r FILE: the limits as config.json's resources. */
  async update(id: string, limits: Limits): Promise<void> {
    await mkdir(this.stateRoot, { recursive: true });
    const file = join(this.stateRoot, `update-${id.slice(0, 16)}-${process.pid}.json`);
    // a lifted process limit (-1): runc writes "max"; crun 1.8 writes -1, which the kernel refuses, so it
    // gets the highest number pids.max takes (PID_MAX_LIMIT: more processes than that cannot exist)
    const pids = this.name === 'crun' && limits.pids && limits.pids.limit <= 0 ? { pids: { limit: PID_MAX_LIMIT } } : {};
    await writeFile(file, JSON.stringify({ ...limits, ...pids }), { mode: 0o600 });
    try { await this.simple(['update', '--resources', file, id]); } finally { await rm(file, { force: true }); }
  }

  private async simple(args: string[]): Promise<void> {
    const child = await this.spawnRuntime(args, ['ignore', 'ignore', 'pipe']);
    return new Promise((resolve, reject) => {
      let stderr = '';
      child.stderr!.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${this.name} ${args[0]} failed: ${stderr.trim()}`))));
    });
  }
}
