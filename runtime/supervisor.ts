// The per-container supervisor: `node supervisor.js ROOT ID [--wait-attach]`, started detached (its
// own session, stdio to files) by `berth run -d`. It runs the container in the foreground under its
// executor, writes stdout/stderr to the json-file log (rotated by size), records the state in
// state.json and applies the restart policy; it exits when the container has ended for good (and,
// for run -d --rm, removes it then).
//
// A container with -i or -t also gets an attach socket (attach-server.ts): live output to attached
// clients, their keys to its stdin (a pipe kept open across attaches), and with -t a terminal: the
// executor runs under pty-host.pl, whose pty it takes as the terminal it gives the container, as it
// would from a CLI on a terminal. --wait-attach starts the container only once a client is attached.
import type { ChildProcess, StdioOptions } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { AttachServer } from './attach-server.js';
import { FRAME } from './attach-socket.js';
import { PERL } from './executors/builtin.js';
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

/** The command the executor runs under for a terminal of its own. */
function ptyHost(): string[] {
  return [PERL, join(dirname(fileURLToPath(import.meta.url)), 'pty-host.pl'), process.arch];
}

async function main(root: string, id: string, waitAttach: boolean): Promise<void> {
  const c = await loadContainer(root, id);
  const cfg = c.config;
  const spec = JSON.parse(await readFile(join(c.dir, 'config.json'), 'utf8')) as { process?: { terminal?: boolean } };
  const tty = spec.process?.terminal === true;
  const interactive = cfg.interactive === true;
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

  // what the attach socket feeds: the current run's stdin and terminal-size pipes, and the last size;
  // what a client sends before the container has started (keys typed at once) waits for it
  let stdin: Writable | undefined;
  let sizes: Writable | undefined;
  let size: string | undefined;
  let early: Buffer[] = [];
  let earlyEnd = false;
  const attach = tty || interactive ? await AttachServer.listen(c.dir, {
    stdin: (data) => {
      if (!interactive) return;
      if (stdin) { if (stdin.writable) stdin.write(data); } else if (early.length < 1024) early.push(Buffer.from(data));
    },
    stdinEnd: () => {
      if (!cfg.stdinOnce) return;
      if (stdin) stdin.end(); else earlyEnd = true;
    },
    resize: (rows, cols) => { size = `${rows} ${cols}\n`; sizes?.write(size); },
  }) : undefined;
  if (attach && waitAttach) {
    await writeJsonAtomic(statePath, state); // the supervisor is there (status still "created"): clients may come
    await attach.firstClient(10_000);
  }
  const stdio: StdioOptions = [interactive ? 'pipe' : 'ignore', 'pipe', 'pipe', ...(tty ? ['pipe' as const] : [])];

  let backoff = 100;
  for (;;) {
    const started = Date.now();
    let code: number;
    try {
      const child = await executor.spawnRun(id, c.dir, stdio, tty ? ptyHost() : undefined);
      current = child;
      stdin = child.stdin ?? undefined;
      stdin?.on('error', () => undefined); // EPIPE once the container has ended
      for (const data of early) stdin?.write(data);
      if (earlyEnd) stdin?.end();
      early = [];
      earlyEnd = false;
      sizes = tty ? child.stdio[3] as Writable : undefined;
      sizes?.on('error', () => undefined);
      if (size) sizes?.write(size);
      child.stdout!.setEncoding('utf8').on('data', (s: string) => { log.write('stdout', s); attach?.broadcast(FRAME.stdout, s); });
      child.stderr!.setEncoding('utf8').on('data', (s: string) => { log.write('stderr', s); attach?.broadcast(FRAME.stderr, s); });
      Object.assign(state, { status: 'running', pid: child.pid, startedAt: new Date().toISOString() });
      delete state.exitCode;
      await writeJsonAtomic(statePath, state);
      code = await waitExit(child).catch((e: Error) => { log.write('stderr', `berth: cannot run the ${executor.name} executor: ${e.message}\n`); return 127; });
    } catch (e) {
      log.write('stderr', `berth: cannot start the container: ${(e as Error).message}\n`);
      code = 125;
    }
    current = undefined;
    stdin = undefined;
    sizes = undefined;
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
  await attach?.close(state.exitCode ?? 125);
  if (cfg.autoRemove) {
    await destroyContainer(await OverlaySnapshotter.open(root), { config: cfg, state, dir: c.dir });
    await removeAnonymousVolumes(root, cfg.volumes ?? [], id);
  }
}

const [root, id, flag] = process.argv.slice(2);
if (!root || !id) {
  process.stderr.write('usage: supervisor.js ROOT ID [--wait-attach]\n');
  process.exit(2);
}
main(root, id, flag === '--wait-attach').then(() => process.exit(0), async (e: Error) => {
  process.stderr.write(`berth supervisor ${id}: ${e.stack ?? e.message}\n`);
  try {
    const c = await loadContainer(root, id);
    await writeJsonAtomic(join(c.dir, 'state.json'), { ...c.state, status: 'exited', exitCode: c.state.exitCode ?? 255, error: e.message, supervisorPid: process.pid });
  } catch { /* nothing more to do */ }
  process.exit(1);
});
