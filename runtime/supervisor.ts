// The per-container supervisor: `node supervisor.js ROOT ID`, started detached (its own session,
// stdio to files) by `berth run -d`. It runs the container in the foreground under the OCI runtime,
// writes stdout/stderr to the json-file log (rotated by size), records the state in state.json and
// applies the restart policy; it exits when the container has ended for good.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { JsonFileLog, loadContainer, logPath, procStartTime, sleep, writeJsonAtomic, type ContainerConfig, type ContainerState } from './containers.js';

function shouldRestart(cfg: ContainerConfig, code: number, restartCount: number, stopped: boolean): boolean {
  if (stopped) return false;
  const p = cfg.restartPolicy;
  if (p.name === 'always' || p.name === 'unless-stopped') return true;
  if (p.name === 'on-failure') return code !== 0 && (p.maximumRetryCount === 0 || restartCount < p.maximumRetryCount);
  return false;
}

async function main(root: string, id: string): Promise<void> {
  const c = await loadContainer(root, id);
  const cfg = c.config;
  const statePath = join(c.dir, 'state.json');
  const stopPath = join(c.dir, 'stop-requested');
  const log = new JsonFileLog(logPath(c.dir, id), cfg.log.maxSize);
  const state: ContainerState = { ...c.state, supervisorPid: process.pid, supervisorStartTime: procStartTime(process.pid), restartCount: c.state.restartCount ?? 0 };
  delete state.error;
  const runtime = (args: string[], stdio: 'ignore' | 'pipe') => spawn(cfg.runtime.bin, ['--root', cfg.runtime.stateRoot, ...args], { stdio: ['ignore', stdio, stdio] });
  let current: ReturnType<typeof runtime> | undefined;
  const forward = (sig: NodeJS.Signals) => () => {
    writeJsonAtomic(stopPath, { signal: sig }).catch(() => undefined);
    if (current) runtime(['kill', id, sig.replace(/^SIG/, '')], 'ignore');
  };
  process.on('SIGTERM', forward('SIGTERM'));
  process.on('SIGINT', forward('SIGINT'));
  process.on('SIGHUP', () => undefined);

  let backoff = 100;
  for (;;) {
    const started = Date.now();
    const child = runtime(['run', '--bundle', c.dir, id], 'pipe');
    current = child;
    child.stdout!.setEncoding('utf8').on('data', (s: string) => log.write('stdout', s));
    child.stderr!.setEncoding('utf8').on('data', (s: string) => log.write('stderr', s));
    Object.assign(state, { status: 'running', pid: child.pid, startedAt: new Date().toISOString() });
    delete state.exitCode;
    await writeJsonAtomic(statePath, state);
    const code = await new Promise<number>((resolve) => {
      child.on('error', (e) => { log.write('stderr', `berth: cannot run ${cfg.runtime.bin}: ${e.message}\n`); resolve(127); });
      child.on('close', (code, signal) => resolve(code ?? 128 + (signal === 'SIGKILL' ? 9 : signal === 'SIGTERM' ? 15 : 1)));
    });
    current = undefined;
    log.flush();
    await new Promise<void>((resolve) => runtime(['delete', '--force', id], 'ignore').on('close', () => resolve()).on('error', () => resolve()));
    delete state.pid;
    Object.assign(state, { exitCode: code, finishedAt: new Date().toISOString() });
    if (!shouldRestart(cfg, code, state.restartCount, existsSync(stopPath))) break;
    // Docker's back-off: 100 ms doubling, reset after a run of 10 s or more
    if (Date.now() - started >= 10_000) backoff = 100;
    state.restartCount += 1;
    state.status = 'restarting';
    await writeJsonAtomic(statePath, state);
    const until = Date.now() + backoff;
    while (Date.now() < until && !existsSync(stopPath)) await sleep(Math.min(50, until - Date.now()));
    backoff = Math.min(backoff * 2, 60_000);
    if (existsSync(stopPath)) break;
  }
  state.status = 'exited';
  log.close();
  await writeJsonAtomic(statePath, state);
}

const [root, id] = process.argv.slice(2);
if (!root || !id) {
  process.stderr.write('usage: supervisor.js ROOT ID\n');
  process.exit(2);
}
main(root, id).then(() => process.exit(0), async (e: Error) => {
  process.stderr.write(`berth supervisor ${id}: ${e.stack ?? e.message}\n`);
  try {
    const c = await loadContainer(root, id);
    await writeJsonAtomic(join(c.dir, 'state.json'), { ...c.state, status: 'exited', exitCode: c.state.exitCode ?? 255, error: e.message, supervisorPid: process.pid });
  } catch { /* nothing more to do */ }
  process.exit(1);
});
