// `berth update`: a container's restart policy and limits (memory, swap, reservation, CPUs, CPU
// shares, cpusets, processes), changed as docker update changes them. config.json gets the new
// limits for every later start; a running container gets them at once through its executor (the
// kernel may refuse one, say a memory limit below what is in use: then nothing is changed). Its
// supervisor reads the restart policy again at each end of a run. `--pids-limit -1` lifts the
// process limit; the other limits can only be changed, as with docker.
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError } from '../client/errors.js';
import { runtimeOf, supervisorAlive, writeJsonAtomic, type Container, type RestartPolicy } from './containers.js';
import { limitFlags, limitsFor, SpecError, specJson, type RunOptions, type RuntimeSpec } from './spec.js';

export type LimitChanges = Pick<RunOptions, 'memory' | 'memorySwap' | 'memoryReservation' | 'cpus' | 'cpuShares' | 'cpusetCpus' | 'cpusetMems' | 'pidsLimit'>;

export async function updateContainer(c: Container, o: { restartPolicy?: RestartPolicy; limits: LimitChanges }): Promise<void> {
  if (o.restartPolicy && o.restartPolicy.name !== 'no' && c.config.autoRemove) {
    throw new UsageError(`container ${c.config.name} was run with --rm: its restart policy cannot be changed`);
  }
  if (Object.keys(o.limits).length) {
    const path = join(c.dir, 'config.json');
    const spec = JSON.parse(await readFile(path, 'utf8')) as RuntimeSpec;
    let limits;
    try { limits = limitsFor({ ...limitFlags(spec.linux.resources), ...o.limits }); } catch (e) {
      throw e instanceof SpecError ? new UsageError(`${c.config.name}: ${e.message}`) : e;
    }
    // --pids-limit 0 or -1 lifts the limit (docker's "-1: unlimited"): the kernel's cgroup gets "max"
    const lifted = o.limits.pidsLimit !== undefined && o.limits.pidsLimit <= 0 && spec.linux.resources.pids ? { pids: { limit: -1 } } : {};
    if (c.state.status === 'running' && supervisorAlive(c.state)) await runtimeOf(c).update(c.config.id, { ...lifted, ...limits });
    const { memory: _m, cpu: _c, pids: _p, ...rest } = spec.linux.resources;
    const next: RuntimeSpec = { ...spec, linux: { ...spec.linux, resources: { ...rest, ...limits } } };
    const tmp = `${path}.${process.pid}.tmp`;
    await writeFile(tmp, specJson(next));
    await rename(tmp, path);
  }
  if (o.restartPolicy) await writeJsonAtomic(join(c.dir, 'container.json'), { ...c.config, restartPolicy: o.restartPolicy });
}
