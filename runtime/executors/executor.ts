// What runs a prepared OCI bundle: runc or crun (oci-runtime.ts) or berth's own (builtin.ts).
// Every executor is foreground-shaped, like `runc run`: the spawned process lives as long as the
// container and exits with its status (128 + signal when it was killed); kill and delete work
// by container id from any process, so a supervisor and a later CLI call can share one container.
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import type { RuntimeSpec, UserSpec } from '../spec.js';

/** What `update` changes in a running container: its memory, CPU and process limits. */
export type Limits = Pick<RuntimeSpec['linux']['resources'], 'memory' | 'cpu' | 'pids'>;

export interface RunResult { code: number; stdout?: string; stderr?: string }

/** What container.json records to find the same executor again. */
export interface ExecutorRef { name: string; bin?: string; stateRoot: string }

/** A process started in a running container (`berth exec`). */
export interface ExecProcess {
  args: string[];
  env: string[];
  cwd: string;
  user: UserSpec;
  tty: boolean;
  interactive: boolean;
}

export interface Executor {
  readonly name: string;
  readonly ref: ExecutorRef;
  /**
   * Starts the container in the foreground; the process exits when the container does. With
   * `wrapper`, the executor's command runs as that command's arguments (the pty host of a supervised
   * container with a terminal).
   */
  spawnRun(id: string, bundle: string, stdio: StdioOptions, wrapper?: readonly string[]): Promise<ChildProcess>;
  /** Starts a process in the running container; it exits with that process's status (detached: in a session of its own, exec -d). */
  spawnExec(id: string, bundle: string, proc: ExecProcess, stdio: StdioOptions, opts?: { detached?: boolean }): Promise<ChildProcess>;
  /** Signals the container's init ("TERM", "KILL", "SIGHUP", "9"…); throws when it is not running. */
  kill(id: string, signal: string): Promise<void>;
  /** Forgets the container (killing what is left of it, paused or not); absent is fine. */
  delete(id: string): Promise<void>;
  /** Freezes every process of the running container (cgroup freezer), as `runc pause`. */
  pause(id: string): Promise<void>;
  /** Thaws a paused container; one that is not paused is fine. */
  resume(id: string): Promise<void>;
  /** Sets a running container's limits (berth update), as `runc update` does. */
  update(id: string, limits: Limits): Promise<void>;
}

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15, SIGUSR1: 10, SIGUSR2: 12 };

/** The exit status of a foreground process, shell style. */
export function exitStatus(code: number | null, signal: NodeJS.Signals | null): number {
  return code ?? 128 + (signal ? SIGNALS[signal] ?? 1 : 1);
}

/** Runs the container to its end; with `capture` its stdout/stderr are collected (stdin is empty). */
export async function runToEnd(ex: Executor, id: string, bundle: string, opts: { capture?: boolean; signal?: AbortSignal; stdio?: StdioOptions; started?: (child: ChildProcess) => Promise<void> } = {}): Promise<RunResult> {
  const child = await ex.spawnRun(id, bundle, opts.capture ? ['ignore', 'pipe', 'pipe'] : opts.stdio ?? 'inherit');
  let exited = false;
  // listened to at once: the container may end (or fail to start) while `started` is still busy
  const end = new Promise<RunResult>((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (s: string) => { stdout += s; });
    child.stderr?.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
    child.on('error', (e) => { exited = true; reject(new Error(`cannot run the ${ex.name} executor: ${e.message}`)); });
    child.on('close', (code, signal) => {
      exited = true;
      const c = exitStatus(code, signal);
      resolve(opts.capture ? { code: c, stdout, stderr } : { code: c });
    });
  });
  // an abort kills it: thawed first (a frozen task takes no SIGKILL), and again until the executor
  // knows it (an abort that came before it had started)
  const onAbort = () => {
    const kill = (): void => { if (!exited) void ex.resume(id).catch(() => undefined).then(() => ex.kill(id, 'KILL')).catch(() => setTimeout(kill, 50)); };
    kill();
  };
  if (opts.signal?.aborted) onAbort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  end.catch(() => undefined); // (awaited below; a `started` that fails leaves it unawaited)
  try {
    if (opts.started) await opts.started(child).catch((e: Error) => { void ex.kill(id, 'KILL').catch(() => undefined); throw e; });
    return await end;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

/** Spawns `argv`, or `wrapper` with argv appended to it. */
export function spawnWrapped(argv: readonly string[], stdio: StdioOptions, wrapper: readonly string[] = [], detached = false): ChildProcess {
  const [cmd, ...args] = [...wrapper, ...argv];
  return spawn(cmd!, args, { stdio, detached });
}

/** Waits for a spawned executor process and gives its exit status. */
export function waitExit(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    // (already over: its events have gone by)
    if (child.exitCode !== null || child.signalCode !== null) { resolve(exitStatus(child.exitCode, child.signalCode)); return; }
    child.on('error', reject);
    child.on('close', (code, signal) => resolve(exitStatus(code, signal)));
  });
}
