// The runtime's modules for the CLI's commands, loaded on demand, and the runtime root.
// Every berth command loads this file, so the runtime's modules load only when a runtime command
// runs (they cost ~50 ms of start-up otherwise).
export async function runtimeModules() {
  const [containers, snapshotter, imageStore, executors, run, exec, volumes, spec, location, attach, stats, top, ports, etcFiles, copy, networks] = await Promise.all([
    import('./containers.js'), import('./snapshotter.js'), import('./image-store.js'), import('./executors/index.js'),
    import('./run.js'), import('./exec.js'), import('./volumes.js'), import('./spec.js'), import('../client/location.js'),
    import('./attach.js'), import('./stats.js'), import('./top.js'), import('./ports.js'), import('./etc-files.js'), import('./copy.js'), import('./networks.js'),
  ]);
  return { ...containers, ...snapshotter, ...imageStore, ...executors, ...run, ...exec, ...volumes, ...spec, ...location, ...attach, ...stats, ...top, ...ports, ...etcFiles, ...copy, ...networks };
}

/** $BERTH_ROOT (snapshotter.ts's defaultRuntimeRoot, without loading it). */
export const defaultRoot = (): string => process.env.BERTH_ROOT || '/var/lib/berth';

/** --format's Go templates (cli/list-format.ts), loaded only when a command is given one. */
export const listFormat = () => import('../cli/list-format.js');
