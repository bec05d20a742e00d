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
//
// A bridge container gets its network namespace, address and published ports here, once per start
// (restarts keep them), and gives them back when it has ended for good.
import type { ChildProcess, StdioOptions } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
import { dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { AttachServer } from './attach-server.js';
import { FRAME } from './attach-socket.js';
import { PERL } from './executors/builtin.js';
import { clearPaused, hasAttachSocket, JsonFileLog, RESTART_REQUESTED, loadContainer, logPath, procStartTime, runtimeOf, sleep, writeJsonAtomic, type ContainerConfig, type ContainerState } from './containers.js';
import { waitExit } from './executors/executor.js';
import { healthMonitor, joinNetwork, removeAfterRun, stateSaver, type NetworkPlace } from './container-run.js';
import type { HealthMonitor } from './health.js';
import { disconnect } from './network.js';
import { bridgeFor } from './networks.js';
import { OverlaySnapshotter } from './snapshotter.js';

function shouldRestart(cfg: ContainerConfig, code: number, restartCount: number, stopped: boolean): boolean {
  if (stopped) return false;
  const p = cfg.restartPolicy;
  if (p.name === 'always' || p.name === 'unless-stopped') return true;
  if (p.name === 'on-failure') return code !== 0 && (p.maximumRetryCount === 0 || restartCount < p.maximumRetryCount);
  return false;
}

/** The command the executor runs under for a terminal of its own. */
function ptyHost(stdinOnce: boolean): string[] {
  return [PERL, join(dirname(fileURLToPath(import.meta.url)), 'pty-host.pl'), process.arch, stdinOnce ? 'eof' : 'keep'];
}

/** What attached clients may send before the container takes its stdin, before they are made to wait. */
const EARLY_LIMIT = 1 << 20;

async function main(root: string, id: string, waitAttach: boolean): Promise<void> {
  const c = await loadContainer(root, id);
  const cfg = c.config;
  const spec = JSON.parse(await readFile(join(c.dir, 'config.json'), 'utf8')) as { process?: { terminal?: boolean } };
  const tty = spec.process?.terminal === true;
  const interactive = cfg.interactive === true;
  const executor = runtimeOf(c);
  const stopPath = join(c.dir, 'stop-requested');
  // --log-driver none: nothing is kept (attached clients get the output through the socket)
  const log: Pick<JsonFileLog, 'write' | 'flush' | 'close'> = cfg.log.driver === 'none'
    ? { write: () => undefined, flush: () => undefined, close: () => undefined }
    : new JsonFileLog(logPath(c.dir, id), cfg.log.maxSize, cfg.log.maxFiles);
  const state: ContainerState = { ...c.state, supervisorPid: process.pid, supervisorStartTime: procStartTime(process.pid), restartCount: c.state.restartCount ?? 0 };
  delete state.error;
  delete state.network;
  delete state.ports;
  const save = stateSaver(c, state);
  let current: ChildProcess | undefined;
  const stopWaiting = new AbortController();
  const forward = (sig: NodeJS.Signals) => () => {
    writeJsonAtomic(stopPath, { signal: sig }).catch(() => undefined);
    stopWaiting.abort();
    if (current) executor.kill(id, sig.replace(/^SIG/, '')).catch(() => undefined);
  };
  process.on('SIGTERM', forward('SIGTERM'));
  process.on('SIGINT', forward('SIGINT'));
  process.on('SIGHUP', () => undefined);

  // What the attach socket feeds: the current run's stdin and terminal-size pipes, and the last size.
  // What clients send before a run has started (keys typed at once, or between restarts) waits for
  // it; past EARLY_LIMIT, and while the container does not read, the clients wait (their sockets pause).
  let stdin: Writable | undefined;
  let sizes: Writable | undefined;
  let size: string | undefined;
  let early: Buffer[] = [];
  let earlyBytes = 0;
  let earlyEnd = false;
  let whenStarted: Array<() => void> = [];
  const attach = tty || hasAttachSocket(c) ? await AttachServer.listen(c.dir, {
    stdin: (data) => {
      if (!interactive) return undefined;
      const pipe = stdin;
      if (!pipe) {
        early.push(Buffer.from(data));
        earlyBytes += data.length;
        return earlyBytes < EARLY_LIMIT ? undefined : new Promise<void>((resolve) => whenStarted.push(resolve));
      }
      if (!pipe.writable || pipe.write(data)) return undefined;
      return new Promise<void>((resolve) => {
        const done = () => { pipe.off('drain', done); pipe.off('close', done); resolve(); };
        pipe.on('drain', done);
        pipe.on('close', done);
      });
    },
    stdinEnd: () => {
      if (!cfg.stdinOnce) return;
      if (stdin) stdin.end(); else earlyEnd = true;
    },
    resize: (rows, cols) => { size = `${rows} ${cols}\n`; sizes?.write(size); },
  }) : undefined;
  /** The supervisor's own errors: into the log, and to attached clients (all they get with --log-driver none). */
  const complain = (message: string) => {
    log.write('stderr', `berth: ${message}\n`);
    attach?.broadcast(FRAME.stderr, Buffer.from(`berth: ${message}\n`));
  };
  const releaseWaiting = () => { for (const go of whenStarted.splice(0)) go(); };
  // the bridge network: one namespace and address for all the runs of this start, its ports relayed from here
  let place: NetworkPlace | undefined;
  try { place = await joinNetwork(root, c); } catch (e) {
    await attach?.close(125);
    throw e;
  }
  if (place) Object.assign(state, { network: place.attachment, ports: place.ports });
  if (attach && waitAttach) {
    await save(); // the supervisor is there (status still "created"): clients may come
    await attach.firstClient(10_000, stopWaiting.signal);
  }
  const stdio: StdioOptions = [interactive ? 'pipe' : 'ignore', 'pipe', 'pipe', ...(tty ? ['pipe' as const] : [])];

  let health: HealthMonitor | undefined;
  let backoff = 100;
  // (stopped while it waited for its attach: it never starts)
  while (!existsSync(stopPath)) {
    const started = Date.now();
    let code: number;
    try {
      const child = await executor.spawnRun(id, c.dir, stdio, tty ? ptyHost(cfg.stdinOnce === true) : undefined);
      current = child;
      stdin = child.stdin ?? undefined;
      stdin?.on('error', () => undefined); // EPIPE once the container has ended
      for (const data of early) stdin?.write(data);
      if (earlyEnd) stdin?.end();
      early = [];
      earlyBytes = 0;
      earlyEnd = false;
      releaseWaiting();
      sizes = tty ? child.stdio[3] as Writable : undefined;
      sizes?.on('error', () => undefined);
      if (size) sizes?.write(size);
      // attached clients get the bytes as they are (a binary stream stays intact); the log gets text
      for (const stream of ['stdout', 'stderr'] as const) {
        const text = new StringDecoder('utf8');
        child[stream]!.on('data', (b: Buffer) => {
          attach?.broadcast(stream === 'stdout' ? FRAME.stdout : FRAME.stderr, b);
          log.write(stream, text.write(b));
        });
      }
      Object.assign(state, { status: 'running', pid: child.pid, startedAt: new Date().toISOString() });
      delete state.exitCode;
      // each run starts its health checks afresh ("starting")
      health = healthMonitor(c, executor, async (h) => {
        if (state.status !== 'running' || current !== child) return; // that run is over
        state.health = h;
        await save();
      }, state.health);
      if (health) state.health = health.start();
      await save();
      code = await waitExit(child).catch((e: Error) => { complain(`cannot run the ${executor.name} executor: ${e.message}`); return 127; });
    } catch (e) {
      complain(`cannot start the container: ${(e as Error).message}`);
      code = 125;
    }
    health?.stop();
    health = undefined;
    current = undefined;
    stdin = undefined;
    sizes = undefined;
    await clearPaused(c.dir); // an ended run is not paused (a restart starts thawed)
    log.flush();
    await executor.delete(id).catch((e: Error) => log.write('stderr', `berth: ${e.message}\n`));
    delete state.pid;
    Object.assign(state, { exitCode: code, finishedAt: new Date().toISOString() });
    // (berth update may have changed the restart policy meanwhile)
    const policy = (await loadContainer(root, id).catch(() => undefined))?.config ?? cfg;
    if (!shouldRestart(policy, code, state.restartCount, existsSync(stopPath))) break;
    // Docker's back-off: 100 ms doubling, reset after a run of 10 s or more
    if (Date.now() - started >= 10_000) backoff = 100;
    state.restartCount += 1;
    state.status = 'restarting';
    await save();
    const until = Date.now() + backoff;
    while (Date.now() < until && !existsSync(stopPath)) await sleep(Math.min(50, until - Date.now()));
    backoff = Math.min(backoff * 2, 60_000);
    if (existsSync(stopPath)) break;
  }
  state.status = 'exited';
  releaseWaiting();
  await place?.leave().catch((e: Error) => log.write('stderr', `berth: ${e.message}\n`));
  delete state.network;
  delete state.ports;
  log.close();
  await save();
  await attach?.close(state.exitCode ?? 125);
  // (berth restart of a --rm container: it is started again, not removed)
  if (cfg.autoRemove && !existsSync(join(c.dir, RESTART_REQUESTED))) await removeAfterRun(root, await OverlaySnapshotter.open(root), c, state);
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
    if (c.config.network === 'bridge') await bridgeFor(root, c.config.networkName ?? 'bridge').then((n) => disconnect(id, n)).catch(() => undefined);
    const { network: _n, ports: _p, ...before } = c.state;
    await writeJsonAtomic(join(c.dir, 'state.json'), { ...before, status: 'exited', exitCode: c.state.exitCode ?? 255, error: e.message, supervisorPid: process.pid });
  } catch { /* nothing more to do */ }
  process.exit(1);
});
