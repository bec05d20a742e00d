// Delegating to an OCI runtime (runc; crun takes the same commands) for a prepared bundle.
// `run` is foreground: the runtime creates, starts and waits, and its exit status is the
// container's (128 + signal when it was killed). State lives under our own --root.
import { spawn, type StdioOptions } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';

export interface RunResult { code: number; stdout?: string; stderr?: string }

export class OciRuntimeExecutor {
  constructor(readonly bin: string, readonly stateRoot: string) {}

  /** Finds `name` (default runc) on PATH or in /usr/sbin, /usr/bin. */
  static async find(stateRoot: string, name = 'runc', env: NodeJS.ProcessEnv = process.env): Promise<OciRuntimeExecutor | undefined> {
    const dirs = [...(env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/local/sbin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
    for (const d of dirs) {
      try {
        await access(join(d, name), constants.X_OK);
        return new OciRuntimeExecutor(join(d, name), stateRoot);
      } catch { /* next */ }
    }
    return undefined;
  }

  private spawnRuntime(args: string[], stdio: StdioOptions) {
    return spawn(this.bin, ['--root', this.stateRoot, ...args], { stdio });
  }

  /** Runs the bundle in the foreground. With `capture`, stdout/stderr are collected (stdin is empty). */
  run(id: string, bundle: string, opts: { capture?: boolean; signal?: AbortSignal } = {}): Promise<RunResult> {
    return new Promise((resolve, reject) => {
      const child = this.spawnRuntime(['run', '--bundle', bundle, id], opts.capture ? ['ignore', 'pipe', 'pipe'] : 'inherit');
      let stdout = '';
      let stderr = '';
      child.stdout?.setEncoding('utf8').on('data', (s: string) => { stdout += s; });
      child.stderr?.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
      const onAbort = () => { void this.kill(id, 'KILL').catch(() => undefined); };
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      child.on('error', (e) => reject(new Error(`cannot run ${this.bin}: ${e.message}`)));
      child.on('close', (code, signal) => {
        opts.signal?.removeEventListener('abort', onAbort);
        const c = code ?? 128 + (signal ? ({ SIGKILL: 9, SIGTERM: 15, SIGINT: 2 } as Record<string, number>)[signal] ?? 1 : 1);
        resolve(opts.capture ? { code: c, stdout, stderr } : { code: c });
      });
    });
  }

  kill(id: string, signal = 'TERM'): Promise<void> { return this.simple(['kill', id, signal]); }

  /** Removes the runtime's state for `id` (force: even when running); absent is fine. */
  async delete(id: string): Promise<void> {
    try { await this.simple(['delete', '--force', id]); } catch (e) {
      if (!/does not exist|not exist|no such/i.test((e as Error).message)) throw e;
    }
  }

  private simple(args: string[]): Promise<void> {
    return new Promise((resolve, reject) => {
      const child = this.spawnRuntime(args, ['ignore', 'ignore', 'pipe']);
      let stderr = '';
      child.stderr!.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${this.bin} ${args[0]} failed: ${stderr.trim()}`))));
    });
  }
}
