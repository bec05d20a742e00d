// User-defined networks (`berth network create`): each its own bridge and subnet, isolated from the
// others, whose containers find each other by name (container name, short id, --network-alias), as
// on docker's user-defined bridges. Definitions live in <root>/networks/<name>.json; the bridge,
// its rules and its addresses are made on first use (network.ts) and removed with `network rm`.
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NotFoundError, UsageError } from '../client/errors.js';
import { bridgeNetwork, members, overlappingRoute, parseSubnet, removeBridge, type BridgeNetwork } from './network.js';

export interface NetworkDef { name: string; id: string; subnet: string; created: string }

/** Names docker keeps for itself: the default bridge, the host's network, none. */
export const BUILTIN_NETWORKS = ['bridge', 'host', 'none'] as const;

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/;

function networksDir(root: string): string { return join(root, 'networks'); }

export function bridgeOf(def: NetworkDef): BridgeNetwork {
  const { gateway, prefixLen } = parseSubnet(def.subnet, `network ${def.name}`);
  return { name: `berth-${def.id.slice(0, 8)}`, gateway, prefixLen };
}

export async function listNetworks(root: string): Promise<NetworkDef[]> {
  const out: NetworkDef[] = [];
  for (const f of (await readdir(networksDir(root)).catch(() => [] as string[])).filter((n) => n.endsWith('.json')).sort()) {
    out.push(JSON.parse(await readFile(join(networksDir(root), f), 'utf8')) as NetworkDef);
  }
  return out;
}

/** A network by name, or by an id prefix. */
export async function findNetwork(root: string, ref: string): Promise<NetworkDef> {
  const all = await listNetworks(root);
  const hit = all.find((n) => n.name === ref) ?? (/^[0-9a-f]{4,64}$/.test(ref) ? all.filter((n) => n.id.startsWith(ref)) : []).at(0);
  if (!hit) throw new NotFoundError(`network ${ref} not found`);
  return hit;
}

/** The bridge a container's --network value names: the default one, a user-defined one, or none (none, host). */
export async function bridgeFor(root: string, network: string | undefined): Promise<BridgeNetwork | undefined> {
  if (network === undefined || network === 'none' || network === 'host') return undefined;
  if (network === 'bridge') return bridgeNetwork();
  return bridgeOf(await findNetwork(root, network));
}

/** The first /24 of 10.67.0.0/16 that no network of this root has and no route of the host overlaps (another root's bridge, say). */
async function freeSubnet(taken: NetworkDef[]): Promise<string> {
  for (let n = 0; n < 256; n++) {
    const subnet = `10.67.${n}.0/24`;
    if (taken.some((d) => d.subnet === subnet)) continue;
    if (!(await overlappingRoute({ name: '', gateway: `10.67.${n}.1`, prefixLen: 24 }))) return subnet;
  }
  throw new UsageError('no free subnet left in 10.67.0.0/16: give one with --subnet');
}

export async function createNetwork(root: string, name: string, subnet?: string): Promise<NetworkDef> {
  if (!NAME.test(name)) throw new UsageError(`network name ${name}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  if ((BUILTIN_NETWORKS as readonly string[]).includes(name)) throw new UsageError(`${name} is a built-in network`);
  const all = await listNetworks(root);
  if (all.some((n) => n.name === name)) throw new UsageError(`network with name ${name} already exists`);
  const def: NetworkDef = { name, id: randomBytes(32).toString('hex'), subnet: subnet ?? await freeSubnet(all), created: new Date().toISOString() };
  const mine = parseSubnet(def.subnet, '--subnet');
  def.subnet = `${mine.base}/${mine.prefixLen}`;
  for (const other of [...all.map((n) => ({ what: `network ${n.name}`, ...parseSubnet(n.subnet, n.name) })), { what: 'the default bridge', ...parseSubnet(`${bridgeNetwork().gateway}/${bridgeNetwork().prefixLen}`, 'bridge') }]) {
    if (overlaps(mine, other)) throw new UsageError(`--subnet ${def.subnet} overlaps ${other.what} (${other.base}/${other.prefixLen})`);
  }
  const route = await overlappingRoute(bridgeOf(def));
  if (route) throw new UsageError(`--subnet ${def.subnet} overlaps the host's route to ${route.dest}/${route.prefixLen} (dev ${route.dev})`);
  await mkdir(networksDir(root), { recursive: true, mode: 0o700 });
  const tmp = join(networksDir(root), `.${name}.json.tmp`);
  await writeFile(tmp, `${JSON.stringify(def, null, 2)}\n`);
  await rename(tmp, join(networksDir(root), `${name}.json`));
  return def;
}

function overlaps(a: { base: string; prefixLen: number }, b: { base: string; prefixLen: number }): boolean {
  const n = (ip: string) => ip.split('.').reduce((v, o) => v * 256 + Number(o), 0);
  const common = Math.min(a.prefixLen, b.prefixLen);
  const m = common === 0 ? 0 : (0xffffffff << (32 - common)) >>> 0;
  return ((n(a.base) & m) >>> 0) === ((n(b.base) & m) >>> 0);
}

/** Removes a network that no running container uses: its bridge, rules and definition. */
export async function removeNetwork(root: string, def: NetworkDef): Promise<void> {
  const users = await members(bridgeOf(def));
  if (users.length) throw new UsageError(`network ${def.name} has active endpoints (${users.map((u) => u.names[0] ?? u.id.slice(0, 12)).join(', ')})`);
  await removeBridge(bridgeOf(def));
  await rm(join(networksDir(root), `${def.name}.json`), { force: true });
}
