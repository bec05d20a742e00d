// A foreground `berth run --rm`: this CLI keeps the container itself, without a supervisor (that
// costs a process start). The container is made as any other (createContainer), so ps, inspect, exec,
// stop, kill, pause, top and stats see it while it runs and prune leaves it alone; this process does
// the supervisor's part: the bridge network and published ports, the health checks and state.json.
// The container's stdio is this process's (or captured); at the end everything is removed, whatever happened.
import type { ChildProcess, StdioOptions } from 'node:child_process';
import { healthMonitor, joinNetwork, removeAfterRun, stateSaver, type NetworkPlace } from './container-run.js';
import { createContainer, procStartTime, releaseStartLock, type Container, type ContainerState, type CreateOptions } from './containers.js';
import { runToEnd, type RunResult } from './executors/executor.js';
import type { HealthMonitor } from './health.js';

export interface EphemeralRunOptions extends Omit<CreateOptions, 'run' | 'restartPolicy' | 'autoRemove' | 'foreground' | 'starting' | 'logDriver' | 'logMaxSize' | 'logMaxFiles' | 'interactive' | 'stdinOnce'> {
  run?: CreateOptions['run'];
  capture?: boolean;
  /** The container's stdio (default: inherited); ignored with capture. */
  stdio?: StdioOptions;
  signal?: AbortSignal;
}

export async function runEphemeral(o: EphemeralRunOptions): Promise<RunResult & { id: string }> {
  const c = await createContainer({ ...o, run: o.run ?? {}, restartPolicy: { name: 'no' }, autoRemove: true, foreground: true, starting: true });
  const id = c.config.id;
  const state: ContainerState = { status: 'running', restartCount: 0, supervisorPid: process.pid, supervisorStartTime: procStartTime(process.pid), startedAt: new Date().toISOString() };
  const save = stateSaver(c, state);
  let place: NetworkPlace | undefined;
  let health: HealthMonitor | undefined;
  try {
    place = await joinNetwork(o.root, c);
    if (place) Object.assign(state, { network: place.attachment, ports: place.ports });
    try {
      const r = await runToEnd(o.executor, id, c.dir, {
        ...(o.capture ? { capture: true } : {}), ...(o.stdio ? { stdio: o.stdio } : {}), ...(o.signal ? { signal: o.signal } : {}),
        started: async (child: ChildProcess) => {
          state.pid = child.pid;
          health = healthMonitor(c, o.executor, async (h) => {
            if (state.status !== 'running') return;
            state.health = h;
            await save();
          });
          if (health) state.health = health.start();
          await save();
          await releaseStartLock(c);
        },
      });
      Object.assign(state, { exitCode: r.code, finishedAt: new Date().toISOString() });
      return { ...r, id };
    } finally {
      health?.stop();
      await o.executor.delete(id);
    }
  } finally {
    await end(o, c, state, save, place);
  }
}

/** The run's end: recorded (a docker wait sees the code), off the network, and the container removed. */
async function end(o: EphemeralRunOptions, c: Container, state: ContainerState, save: () => Promise<void>, place: NetworkPlace | undefined): Promise<void> {
  state.status = 'exited';
  delete state.pid;
  delete state.network;
  delete state.ports;
  await save().catch(() => undefined);
  // (whatever happens here, the rest of the clean-up must run)
  await place?.leave().catch((e: Error) => process.stderr.write(`berth: ${e.message}\n`));
  // lazily: the container's processes are gone, and a synchronous umount costs ~20 ms of cache flushing
  await removeAfterRun(o.root, o.snapshots, c, state, { lazyUnmount: true });
}
