// `berth run -i`/`-t` without --rm or -d: Docker keeps the container, and the CLI is its terminal
// (`run -it IMG sh`, change things, exit, `berth commit`). The container is created like a detached
// one, so it stays on disk for ps -a, logs, diff, commit, start and rm; but this process runs it in
// the foreground instead of a supervisor (stdin and the terminal can only be the CLI's own) and
// records its state as a supervisor would. Without -t its output also goes to the json-file log;
// with -t it goes to the terminal only. A later `berth start` runs it detached, without a terminal.
import type { StdioOptions } from 'node:child_process';
import { join } from 'node:path';
import { JsonFileLog, logPath, procStartTime, runtimeOf, writeJsonAtomic, type Container, type ContainerState } from './containers.js';
import { waitExit } from './executors/executor.js';

/** Runs a created container to its end in this process; answers its exit code. */
export async function runKeptInForeground(c: Container, o: { stdinFlows: boolean; tty: boolean }): Promise<number> {
  const executor = runtimeOf(c);
  const id = c.config.id;
  const statePath = join(c.dir, 'state.json');
  const state: ContainerState = { status: 'running', restartCount: 0, supervisorPid: process.pid, supervisorStartTime: procStartTime(process.pid) };
  const log = o.tty ? undefined : new JsonFileLog(logPath(c.dir, id), c.config.log.maxSize);
  const stdio: StdioOptions = [o.stdinFlows ? 'inherit' : 'ignore', o.tty ? 'inherit' : 'pipe', o.tty ? 'inherit' : 'pipe'];
  // SIGINT and SIGHUP come from the terminal to its whole process group, the runtime process (which
  // passes them to the container) included: the CLI only survives them. SIGTERM is sent to the CLI
  // alone: it is passed on. (On a raw terminal, ^C is a key the container reads.)
  const handlers = (['SIGINT', 'SIGHUP', 'SIGTERM'] as const).map((sig) => {
    const h = sig === 'SIGTERM' ? () => { executor.kill(id, 'TERM').catch(() => undefined); } : () => undefined;
    process.on(sig, h);
    return [sig, h] as const;
  });
  let code: number;
  let error: string | undefined;
  try {
    const child = await executor.spawnRun(id, c.dir, stdio);
    child.stdout?.setEncoding('utf8').on('data', (s: string) => { process.stdout.write(s); log!.write('stdout', s); });
    child.stderr?.setEncoding('utf8').on('data', (s: string) => { process.stderr.write(s); log!.write('stderr', s); });
    Object.assign(state, { pid: child.pid, startedAt: new Date().toISOString() });
    await writeJsonAtomic(statePath, state);
    code = await waitExit(child);
  } catch (e) {
    error = (e as Error).message;
    code = 125;
  } finally {
    for (const [sig, h] of handlers) process.off(sig, h);
  }
  log?.close();
  await executor.delete(id).catch(() => undefined);
  delete state.pid;
  await writeJsonAtomic(statePath, { ...state, status: 'exited', exitCode: code, finishedAt: new Date().toISOString(), ...(error ? { error } : {}) });
  if (error) throw new Error(`cannot run the container: ${error}`);
  return code;
}
