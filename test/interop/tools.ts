// Running real peers (skopeo, podman, …) from interop tests: locate them, run them with a timeout,
// and fail with everything they printed.
import { execFile, spawnSync } from 'node:child_process';

/** Absolute path of `cmd` on PATH (via `which`), or undefined. */
export function which(cmd: string): string | undefined {
  const r = spawnSync('which', [cmd], { encoding: 'utf8' });
  const path = r.status === 0 ? r.stdout.trim() : '';
  return path || undefined;
}

/**
 * A skip reason for node:test when any tool is missing (false when all are there), naming the
 * Debian package to install, e.g. `describe('x', { skip: missingTools({ skopeo: 'skopeo' }) }, …)`.
 */
export function missingTools(tools: Record<string, string>): string | false {
  const missing = Object.entries(tools).filter(([cmd]) => !which(cmd));
  if (!missing.length) return false;
  return `not installed: ${missing.map(([cmd, pkg]) => `${cmd} (Debian package ${pkg})`).join(', ')}`;
}

export interface RunResult { stdout: string; stderr: string }

export class CommandError extends Error {
  constructor(readonly cmd: string, readonly args: readonly string[], readonly code: number | string | null, readonly stdout: string, readonly stderr: string, reason: string) {
    super(`${cmd} ${args.join(' ')} ${reason}\n--- stderr ---\n${stderr.trim()}\n--- stdout ---\n${stdout.trim().slice(0, 4000)}`);
  }
}

/** Runs a program (no shell) and resolves with its output; rejects with a CommandError on a non-zero exit or timeout. */
export function run(cmd: string, args: readonly string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<RunResult> {
  const timeout = opts.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024, env: opts.env ?? process.env, cwd: opts.cwd, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (!err) return resolve({ stdout, stderr });
      const e = err as NodeJS.ErrnoException & { killed?: boolean; signal?: string | null; code?: number | string | null };
      const reason = e.killed ? `timed out after ${timeout} ms` : `failed (exit ${e.code ?? e.signal})`;
      reject(new CommandError(cmd, args, e.code ?? null, stdout, stderr, reason));
    });
  });
}
