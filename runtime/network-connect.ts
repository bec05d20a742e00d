// `berth network connect|disconnect`: a container's networks beyond the one it was run with, as
// docker's. The change is kept in container.json, so every later start joins them too; a running
// container gets it at once: another interface with an address on that network (network.ts
// connectExtra), leased for its supervisor, which gives it back at the container's end.
// Only the networks added this way can be disconnected; the one a container was run with stays.
import { join } from 'node:path';
import { NotFoundError, UsageError } from '../client/errors.js';
import { networkMember } from './container-run.js';
import { supervisorAlive, writeJsonAtomic, type Container } from './containers.js';
import { checkAliases } from './etc-files.js';
import { connectExtra, disconnectExtra } from './network.js';
import { bridgeFor, findNetwork } from './networks.js';

/** The name a container records for a network: "bridge" (the default one), or a user-defined network's name. */
async function recordedName(root: string, ref: string): Promise<string> {
  if (ref === 'host' || ref === 'none') throw new UsageError(`a container cannot be connected to or disconnected from the ${ref} network`);
  return ref === 'bridge' ? 'bridge' : (await findNetwork(root, ref)).name;
}

/** Its network namespace exists now, kept by a live supervisor (or a foreground run's CLI). */
function networked(c: Container): boolean {
  return (c.state.status === 'running' || c.state.status === 'restarting') && c.state.network !== undefined && supervisorAlive(c.state);
}

const firstNetwork = (c: Container): string => c.config.networkName ?? 'bridge';

export async function connectContainer(root: string, c: Container, ref: string, aliases: string[] = []): Promise<void> {
  if (c.config.network !== 'bridge') {
    throw new UsageError(`container ${c.config.name} runs with --network ${c.config.network ?? 'none'}: it has no network of its own to connect to others`);
  }
  const name = await recordedName(root, ref);
  if (name === firstNetwork(c) || c.config.extraNetworks?.some((n) => n.name === name)) {
    throw new UsageError(`container ${c.config.name} is already connected to network ${name}`);
  }
  if (aliases.length && name === 'bridge') throw new UsageError('--alias needs a user-defined network: the default bridge resolves no names');
  checkAliases('--alias', aliases);
  const before = c.config;
  await writeJsonAtomic(join(c.dir, 'container.json'), { ...before, extraNetworks: [...before.extraNetworks ?? [], { name, ...(aliases.length ? { aliases } : {}) }] });
  if (!networked(c)) return;
  try {
    const net = (await bridgeFor(root, name))!;
    await connectExtra(c.config.id, net, await networkMember(c, net, name !== 'bridge', aliases), { pid: c.state.supervisorPid!, start: c.state.supervisorStartTime ?? '' });
  } catch (e) {
    await writeJsonAtomic(join(c.dir, 'container.json'), before);
    throw e;
  }
}

export async function disconnectContainer(root: string, c: Container, ref: string): Promise<void> {
  const extras = c.config.extraNetworks ?? [];
  // (a network removed since it was connected is still known to the container by its name)
  const name = extras.some((n) => n.name === ref) ? ref : await recordedName(root, ref);
  if (c.config.network === 'bridge' && name === firstNetwork(c)) {
    throw new UsageError(`container ${c.config.name} was run on network ${name}: only networks added with berth network connect can be disconnected`);
  }
  if (!extras.some((n) => n.name === name)) throw new UsageError(`container ${c.config.name} is not connected to network ${name}`);
  await writeJsonAtomic(join(c.dir, 'container.json'), { ...c.config, extraNetworks: extras.filter((n) => n.name !== name) });
  if (!networked(c)) return;
  const net = await bridgeFor(root, name).catch((e: unknown) => { if (e instanceof NotFoundError) return undefined; throw e; });
  if (net) await disconnectExtra(c.config.id, net);
}
