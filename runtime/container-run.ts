// What both keepers of a running container do: the detached supervisor (supervisor.ts), and the CLI
// of a foreground `run --rm`, which keeps its container itself (run.ts). The container's place on its
// bridge network with its published ports, its health checks, its state.json writes, and the removal
// of a --rm container at its end.
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { destroyContainer, recordExit, writeJsonAtomic, type Container, type ContainerState } from './containers.js';
import { hostsMember } from './etc-files.js';
import type { Executor } from './executors/executor.js';
import { execProcess } from './exec.js';
import { HealthMonitor, type HealthState } from './health.js';
import { connect, connectExtra, disconnect, releaseExtras, type BridgeNetwork, type Member, type NetworkAttachment } from './network.js';
import { bridgeFor } from './networks.js';
import { PortProxy, type PortMapping } from './ports.js';
import type { OverlaySnapshotter } from './snapshotter.js';
import { removeAnonymousVolumes } from './volumes.js';

export interface NetworkPlace {
  net: BridgeNetwork;
  attachment: NetworkAttachment;
  proxy: PortProxy;
  /** The host ports the published ones got. */
  ports: PortMapping[];
  /** Ends the relays and takes the container off its network. */
  leave(): Promise<void>;
}

/**
 * A member of a network: its hosts file with its own lines, and the names others find it by on a
 * user-defined network (its name, short id and aliases; none on the default bridge).
 */
export async function networkMember(c: Container, net: BridgeNetwork, userDefined: boolean, aliases: string[] = []): Promise<(ip: string) => Member> {
  const names = userDefined ? [c.config.name, c.config.id.slice(0, 12), ...aliases] : [];
  const hostname = (await readFile(join(c.dir, 'hostname'), 'utf8')).trim();
  return hostsMember(join(c.dir, 'hosts'), hostname, names, c.config.etc?.addHosts, net.gateway);
}

/**
 * Puts a bridge container (berth0 or a user-defined network) on its network, and on those `network
 * connect` added: an address on each, its names in the members' /etc/hosts, and its -p ports (on the
 * first network) relayed by this process. Undefined for none and host.
 */
export async function joinNetwork(root: string, c: Container): Promise<NetworkPlace | undefined> {
  const cfg = c.config;
  if (cfg.network !== 'bridge') return undefined;
  const net = (await bridgeFor(root, cfg.networkName ?? 'bridge'))!; // (a bridge name always gives one)
  const leave = async () => { await disconnect(cfg.id, net); await releaseExtras(cfg.id); };
  const attachment = await connect(cfg.id, net, await networkMember(c, net, !!cfg.networkName, cfg.aliases))
    .catch(async (e: Error) => { await disconnect(cfg.id, net).catch(() => undefined); throw e; });
  let proxy: PortProxy;
  try {
    for (const extra of cfg.extraNetworks ?? []) {
      const other = (await bridgeFor(root, extra.name))!;
      await connectExtra(cfg.id, other, await networkMember(c, other, extra.name !== 'bridge', extra.aliases));
    }
    proxy = await PortProxy.open(cfg.ports ?? [], attachment.ip);
  } catch (e) {
    await leave().catch(() => undefined);
    throw e;
  }
  return {
    net, attachment, proxy, ports: proxy.bound,
    leave: async () => { proxy.close(); await leave(); },
  };
}

/**
 * The container's health checks (its HEALTHCHECK with the --health-* flags), each run inside it beside
 * PID 1; none are run while it is paused. Undefined when it has none.
 */
export function healthMonitor(c: Container, executor: Executor, onChange: (h: HealthState) => Promise<void>, initial?: HealthState): HealthMonitor | undefined {
  const check = c.config.healthcheck;
  if (!check) return undefined;
  return new HealthMonitor(check, async (args) => executor.spawnExec(c.config.id, c.dir, await execProcess(c, { args }), ['ignore', 'pipe', 'pipe']),
    onChange, () => existsSync(join(c.dir, 'paused')), initial);
}

/**
 * Writes `state` to the container's state.json, one write after another, each with the state as it is
 * by then: a health result written late can never land after (and undo) the run's end.
 */
export function stateSaver(c: Container, state: ContainerState): () => Promise<void> {
  let writing: Promise<void> = Promise.resolve();
  return () => (writing = writing.catch(() => undefined).then(() => writeJsonAtomic(join(c.dir, 'state.json'), state)));
}

/** A --rm container at its end: its exit code kept for `wait`, the container removed, and its anonymous volumes. */
export async function removeAfterRun(root: string, snapshots: OverlaySnapshotter, c: Container, state: ContainerState, o: { lazyUnmount?: boolean } = {}): Promise<void> {
  if (state.exitCode !== undefined) await recordExit(root, c.config.id, state.exitCode).catch(() => undefined);
  await destroyContainer(snapshots, { ...c, state }, o);
  await removeAnonymousVolumes(root, c.config.volumes ?? [], c.config.id);
}
