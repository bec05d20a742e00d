// The per-container supervisor: `node supervisor.js ROOT ID`, started detached (its own session,
// stdio to files) by `berth run -d`. It runs the container in the foreground under its executor,
// writes stdout/stderr to the json-file log (rotated by size), records the state in state.json and
// applies the restart policy; it exits when the container has ended for good (and, for run -d --rm,
// removes it then).
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { clearPaused, destroyContainer, JsonFileLog, loadContainer, logPath, procStartTime, runtimeOf, sleep, writeJsonAtomic, type ContainerConfig, type ContainerState } from './containers.js';
import { waitExit } from './executors/executor.js';
import { OverlaySnapshotter } from './snapshotter.js';
import { removeAnonymousVolumes } from './volumes.js';

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
  const executor = runtimeOf(c);
  const statePath = join(c.dir, 'state.json');
  const stopPath = join(c.dir, 'stop-requested');
  const log = new JsonFileLog(logPath(c.dir, id), cfg.log.maxSize);
  const state: ContainerState = { ...c.state, supervisorPid: process.pid, supervisorStartTime: procStartTime(process.pid), restartCount: c.state.restartCount ?? 0 };
  delete state.error;
  let current: ChildProcess | undefined;
  const forward = (sig: NodeJS.Signals) => () => {
    writeJsonAtomic(stopPath, { signal: sig }).catch(() => undefined);
    if (current) executor.kill(id, sig.replace(/^SIG/, '')).catch(() => undefined);
  };
  process.on('SIGTERM', forward('SIGTERM'));
  process.on('SIGINT', forward('SIGINT'));
  process.on('SIGHUP', () => undefined);

  let backoff = 100;
  for (;;) {
    const started = Date.now();
    let code: number;
    try {
      const child = await executor.spawnRun(id, c.dir, ['ignore', 'pipe', 'pipe']);
      current = child;
      child.stdout!.setEncoding('utf8').on('data', (s: string) => log.write('stdout', s));
      child.stderr!.setEncoding('utf8').on('data', (s: string) => log.write('stderr', s));
      Object.assign(state, { status: 'running', pid: child.pid, startedAt: new Date().toISOString() });
      delete state.exitCode;
      await writeJsonAtomic(statePath, state);
      code = await waitExit(child).catch((e: Error) => { log.write('stderr', `berth: cannot run the ${executor.name} executor: ${e.message}\n`); return 127; });
    } catch (e) {
      log.write('stderr', `berth: cannot start the container: ${(e as Error).message}\n`);
      code = 125;
    }
    current = undefined;
    await clearPaused(c.dir); // an ended run is not paused (a restart starts thawed)
    log.flush();
    await executor.delete(id).catch((e: Error) => log.write('stderr', `berth: ${e.message}\n`));
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
  if (cfg.autoRemove) {
    await destroyContainer(await OverlaySnapshotter.open(root), { config: cfg, state, dir: c.dir });
    await removeAnonymousVolumes(root, cfg.volumes ?? [], id);
  }
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
