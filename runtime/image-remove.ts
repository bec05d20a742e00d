// Removing images from the local store: `berth rmi` / `berth image rm` and `berth image prune`,
// with Docker's rules adapted to a store shared by client and runtime.
//
// An *image* is a manifest (or index) digest with its index.json entries: its names (full
// references such as docker.io/library/busybox:latest) and possibly one untagged entry (a
// dangling image, shown as <none>). Its image ID is the config digest for this host's platform,
// as `berth images` shows it.
//
// rmi IMAGE, where IMAGE is
//   - a name (busybox, busybox:1.36, localhost:5000/app:v1): that name goes ("Untagged: …"); when it
//     was the image's last name, the image goes too;
//   - name@digest: every name of that repository pointing at the digest goes (the store keeps no
//     digest references of its own), then the image when no name is left;
//   - an image ID, full or a unique prefix (sha256: optional), or a full manifest digest: every name
//     goes, then the image. Names in several repositories need -f (Docker's "referenced in
//     multiple repositories").
// When the image goes, its manifest, config and layer blobs are deleted unless another image (or a
// container's image) references them, and its layer snapshots (chainIDs) are removed unless
// another image or a container still stands on them ("Deleted: <image ID>", "Deleted: <chainID>").
//
// An image a container uses (a kept container whose container.json imageDigest is one of the
// image's manifests, or a container being created, whose snapshot stands on the image's top layer)
// is not removed: rmi refuses ("image is being used by container …"). With -f the names
// are removed but the image stays as a dangling <none> entry with its blobs and snapshots, because
// the container still needs them (`start` remounts its layers, `commit` reuses the layer blobs).
// Docker deletes the image record of a stopped container's image on -f and keeps the layers
// anyway; berth keeps it visible instead of leaving content no command can see. Once the container
// is gone, `berth image prune` reclaims it.
//
// image prune removes dangling images (every image with -a) that no container uses, then every
// blob nothing references, then every layer snapshot no image and no container uses. Blobs and
// layer snapshots younger than a grace period (default 1 hour) are kept unless they belonged to an
// image the prune removed: a pull or a commit in progress writes its blobs and unpacks its layers
// before the index entry that references them. Do not prune while pulling a large image for an
// hour or more.
import { readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ClientError, ExitCode, NotFoundError, UsageError } from '../client/errors.js';
import { REF_NAME, type ImageLayout } from '../client/image-layout.js';
import { parseDigest, type Digest } from '../oci/digest.js';
import { familiarReference, parseImageReference, type ImageReference } from '../oci/image-reference.js';
import type { Descriptor } from '../oci/manifest.js';
import { localName } from '../client/location.js';
import { listContainers } from './containers.js';
import { diskUsage } from './disk-usage.js';
import { chainIds, type RuntimeImageStore } from './image-store.js';
import { initName } from './init-layer.js';
import { SnapshotError, type OverlaySnapshotter } from './snapshotter.js';

/** Refused because of a container or several repositories (exit code 1, like Docker's 409). */
export class ImageConflictError extends ClientError {
  constructor(message: string) { super(message, ExitCode.Failure, 'CONFLICT'); }
}

export interface ImageHousekeepingOptions {
  store: RuntimeImageStore;
  /** The runtime root ($BERTH_ROOT): where containers are. */
  root: string;
  /** Layer snapshots; without it (no runtime root yet) no snapshot is looked at or removed. */
  snapshots?: OverlaySnapshotter;
}

export interface ImageUser {
  /** The container ID. */
  id: string;
  /** A kept container's name; foreground (`run --rm`) containers have none. */
  name?: string;
  status: string;
}

export interface RemoveImageResult {
  /** Names removed, in Docker's short form ("busybox:1.36", "busybox@sha256:…"). */
  untagged: string[];
  /** Image IDs whose config went, then the layer snapshots (chainIDs) removed, top first. */
  deleted: Digest[];
  /** Every blob deleted from the store (manifests, configs, layers). */
  blobs: Digest[];
  /** The chainIDs among `deleted`. */
  snapshots: Digest[];
  /** Bytes freed: blob sizes + snapshot disk usage. */
  reclaimed: number;
  /** With -f on an image a container uses: the names went, the image was kept (dangling). */
  keptFor?: ImageUser[];
}

export type PruneImagesResult = Omit<RemoveImageResult, 'keptFor'>;

/** Everything reachable from some roots: blobs (with sizes), manifests, and layer chains. */
interface Reach {
  blobs: Map<Digest, number>;
  manifests: Set<Digest>;
  /** The chainIDs of each image manifest whose config could be read, bottom first. */
  chains: Digest[][];
}

function emptyReach(): Reach { return { blobs: new Map(), manifests: new Set(), chains: [] }; }

function merge(into: Reach, r: Reach): Reach {
  for (const [d, n] of r.blobs) into.blobs.set(d, n);
  for (const m of r.manifests) into.manifests.add(m);
  into.chains.push(...r.chains);
  return into;
}

function validDigest(d: unknown): Digest | undefined {
  try { return typeof d === 'string' ? parseDigest(d).digest : undefined; } catch { return undefined; }
}

/** Walks a manifest or index (any platform, nested up to 4 levels) and what it references. Missing blobs are skipped. */
async function reach(layout: ImageLayout, desc: { digest: Digest; size?: number }, r: Reach = emptyReach(), depth = 0): Promise<Reach> {
  if (r.manifests.has(desc.digest)) return r;
  let size = desc.size;
  if (size === undefined) {
    try { size = (await stat(layout.blobPath(desc.digest))).size; } catch { return r; }
  }
  let doc: { manifests?: Array<{ digest?: unknown; size?: unknown }>; config?: { digest?: unknown; size?: unknown }; layers?: Array<{ digest?: unknown; size?: unknown }> };
  try { doc = JSON.parse((await layout.readSmall({ digest: desc.digest, size })).toString('utf8')) as typeof doc; } catch { return r; }
  r.blobs.set(desc.digest, size);
  r.manifests.add(desc.digest);
  if (Array.isArray(doc.manifests) && depth < 4) {
    for (const m of doc.manifests) {
      const d = validDigest(m?.digest);
      if (d) await reach(layout, { digest: d, ...(typeof m.size === 'number' ? { size: m.size } : {}) }, r, depth + 1);
    }
  }
  const cfg = validDigest(doc.config?.digest);
  if (cfg && typeof doc.config?.size === 'number') {
    r.blobs.set(cfg, doc.config.size);
    try {
      const config = JSON.parse((await layout.readSmall({ digest: cfg, size: doc.config.size })).toString('utf8')) as { rootfs?: { diff_ids?: unknown[] } };
      const diffIds = config.rootfs?.diff_ids;
      if (Array.isArray(diffIds) && diffIds.length && diffIds.every((x) => validDigest(x))) r.chains.push(chainIds(diffIds as Digest[]));
    } catch { /* not in the store, or not an image config */ }
  }
  for (const l of Array.isArray(doc.layers) ? doc.layers : []) {
    const d = validDigest(l?.digest);
    if (d) r.blobs.set(d, typeof l.size === 'number' ? l.size : 0);
  }
  return r;
}

/** One image of the store: a top digest with its index.json entries. */
interface ImageGroup {
  digest: Digest;
  entries: Descriptor[];
  /** Full references, as stored. */
  names: string[];
  /** Config digest for this host's platform (undefined when it cannot be resolved). */
  id?: Digest;
  reach: Reach;
  /** The top chainID of each image manifest. */
  tops: Set<Digest>;
}

async function loadGroups(store: RuntimeImageStore): Promise<ImageGroup[]> {
  const groups = new Map<Digest, ImageGroup>();
  for (const e of (await store.layout.readIndex()).manifests) {
    const digest = validDigest(e.digest);
    if (!digest) continue;
    let g = groups.get(digest);
    if (!g) { g = { digest, entries: [], names: [], reach: emptyReach(), tops: new Set() }; groups.set(digest, g); }
    g.entries.push(e);
    const name = e.annotations?.[REF_NAME];
    if (name && !g.names.includes(name)) g.names.push(name);
  }
  for (const g of groups.values()) {
    g.reach = await reach(store.layout, { digest: g.digest, size: g.entries[0]!.size });
    for (const c of g.reach.chains) g.tops.add(c[c.length - 1]!);
    try { g.id = (await store.resolve(g.digest)).configDescriptor.digest; } catch { /* another platform only, or broken */ }
  }
  return [...groups.values()];
}

interface World {
  groups: ImageGroup[];
  users: Map<Digest, ImageUser[]>;
  /** What containers' images reference (kept even when the image has no entry any more). */
  containerReach: Reach;
}

async function loadWorld(o: ImageHousekeepingOptions): Promise<World> {
  const groups = await loadGroups(o.store);
  const users = new Map<Digest, ImageUser[]>(groups.map((g) => [g.digest, []]));
  const containerReach = emptyReach();
  const kept = new Set<string>();
  for (const c of await listContainers(o.root)) {
    kept.add(c.config.id);
    const d = validDigest(c.config.imageDigest);
    if (!d) continue;
    await reach(o.store.layout, { digest: d }, containerReach);
    for (const g of groups) if (g.reach.manifests.has(d)) users.get(g.digest)!.push({ id: c.config.id, name: c.config.name, status: c.state.status });
  }
  if (o.snapshots) {
    // a container being created has no container.json yet, only its snapshot on the top layer (recorded
    // under the index lock, once its image was found there); and its image's digest, whose blobs it keeps
    for await (const s of o.snapshots.walk()) {
      const m = /^container-([0-9a-f]+)$/.exec(s.key);
      if (s.kind !== 'active' || !m || kept.has(m[1]!) || s.parent === undefined) continue;
      const d = validDigest(s.labels?.['berth.imageDigest']);
      if (d) await reach(o.store.layout, { digest: d }, containerReach);
      const top = s.parent.replace(/-init$/, '') as Digest; // containers stand on the image's init layer
      for (const g of groups) if (g.tops.has(top)) users.get(g.digest)!.push({ id: m[1]!, status: 'being created' });
    }
  }
  return { groups, users, containerReach };
}

/** Docker's short form of a stored name ("busybox:1.36"). */
export function displayName(name: string): string {
  try { return familiarReference(parseImageReference(name, { defaultTag: false })); } catch { return name; }
}

function repositoryOf(name: string): string | undefined {
  try {
    const r = parseImageReference(name, { defaultTag: false });
    return `${r.registry}/${r.repository}`;
  } catch { return undefined; }
}

function shortId(d: string): string { return d.replace(/^sha(256|512):/, '').slice(0, 12); }

function describeUser(u: ImageUser): string {
  return `${shortId(u.id)}${u.name ? ` (${u.name}, ${u.status})` : ` (${u.status})`}`;
}

/** The images an argument of rmi means, and which of their names it removes. */
interface Target {
  /** Groups and the names removed from each (undefined: all of them). */
  picks: Array<{ group: ImageGroup; names?: string[]; untaggedToo?: boolean }>;
  /** Extra "Untagged:" line (name@digest). */
  digestRef?: string;
  byId: boolean;
}

const HEX_PREFIX = /^(?:sha256:)?([0-9a-f]{1,64})$/;

function findTarget(input: string, groups: ImageGroup[]): Target {
  const hex = HEX_PREFIX.exec(input);
  if (hex && hex[1]!.length === 64) {
    const d = `sha256:${hex[1]}` as Digest;
    let picks = groups.filter((g) => g.id === d);
    if (!picks.length) picks = groups.filter((g) => g.digest === d);
    if (!picks.length) throw new NotFoundError(`No such image: ${input}`);
    return { picks: picks.map((group) => ({ group })), byId: true };
  }
  if (/^sha512:[0-9a-f]{128}$/.test(input)) {
    const picks = groups.filter((g) => g.id === input || g.digest === input);
    if (!picks.length) throw new NotFoundError(`No such image: ${input}`);
    return { picks: picks.map((group) => ({ group })), byId: true };
  }
  let ref: ImageReference | undefined;
  let invalid: Error | undefined;
  try { ref = parseImageReference(input); } catch (e) { invalid = e as Error; /* maybe an ID prefix */ }
  if (ref?.digest) {
    const repo = `${ref.registry}/${ref.repository}`;
    const named = groups.filter((g) => g.digest === ref!.digest).map((group) => ({ group, names: group.names.filter((n) => repositoryOf(n) === repo) }));
    const picks = named.filter((p) => p.names.length || p.group.entries.some((e) => !e.annotations?.[REF_NAME]))
      .map((p) => ({ ...p, untaggedToo: true }));
    if (!picks.length) throw new NotFoundError(`No such image: ${input}`);
    return { picks, digestRef: familiarReference({ registry: ref.registry, repository: ref.repository, digest: ref.digest }), byId: false };
  }
  if (ref) {
    const name = localName(ref);
    const group = groups.find((g) => g.names.includes(name));
    if (group) return { picks: [{ group, names: [name] }], byId: false };
  }
  if (hex) {
    const prefix = hex[1]!;
    const matches = groups.filter((g) => g.id?.startsWith(`sha256:${prefix}`));
    const ids = new Set(matches.map((g) => g.id));
    if (ids.size > 1) throw new UsageError(`${input}: more than one image ID starts with it (${[...ids].map((d) => shortId(d!)).join(', ')}); give more of the ID`);
    if (matches.length) return { picks: matches.map((group) => ({ group })), byId: true };
  }
  if (invalid && !hex) throw new UsageError(invalid.message); // neither a reference nor an ID: docker's "invalid reference format"
  throw new NotFoundError(`No such image: ${input}`);
}

const CHAIN_ID = /^sha256:[0-9a-f]{64}$/;

/**
 * Removes committed layer snapshots (children before parents). A snapshot that is still the
 * parent of another (a container's, an unpack in progress, a kept layer's) stays, and so do its
 * ancestors. Returns what went, top first, with the bytes freed.
 */
async function removeSnapshots(snapshots: OverlaySnapshotter, candidates: Set<string>): Promise<{ removed: Digest[]; bytes: number }> {
  const parent = new Map<string, string | undefined>();
  const info = new Map<string, { id: string }>();
  for await (const s of snapshots.walk()) {
    parent.set(s.key, s.parent);
    if (s.kind === 'committed') info.set(s.key, s);
  }
  const depth = (k: string): number => {
    let n = 0;
    for (let cur = parent.get(k); cur !== undefined && n < 1000; cur = parent.get(cur)) n++;
    return n;
  };
  let left = [...candidates].filter((k) => info.has(k)).sort((a, b) => depth(b) - depth(a));
  const removed: Digest[] = [];
  let bytes = 0;
  for (let progress = true; progress && left.length;) {
    progress = false;
    const next: string[] = [];
    for (const k of left) {
      const size = await diskUsage(join(snapshots.dir, info.get(k)!.id));
      try {
        await snapshots.remove(k);
      } catch (e) {
        if (e instanceof SnapshotError && e.code === 'FAILED_PRECONDITION') { next.push(k); continue; }
        if (e instanceof SnapshotError && e.code === 'NOT_FOUND') continue;
        throw e;
      }
      removed.push(k as Digest);
      bytes += size;
      progress = true;
    }
    left = next;
  }
  return { removed, bytes };
}

async function deleteBlob(layout: ImageLayout, digest: Digest): Promise<number | undefined> {
  const path = layout.blobPath(digest);
  let size: number;
  try { size = (await stat(path)).size; } catch { return undefined; }
  try { await unlink(path); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  return size;
}

/** Deletes the blobs of removed images that nothing kept references, and their snapshots. */
async function collect(o: ImageHousekeepingOptions, world: World, gone: ImageGroup[], sweep?: { graceMs: number; now: number }): Promise<Omit<RemoveImageResult, 'untagged' | 'keptFor'>> {
  const goneSet = new Set(gone.map((g) => g.digest));
  const keep = merge(emptyReach(), world.containerReach);
  for (const g of world.groups) if (!goneSet.has(g.digest)) merge(keep, g.reach);
  const goneReach = emptyReach();
  for (const g of gone) merge(goneReach, g.reach);

  // manifests first: a crash half-way leaves no manifest pointing at deleted blobs
  const candidates = [...goneReach.blobs.keys()].filter((d) => !keep.blobs.has(d))
    .sort((a, b) => Number(goneReach.manifests.has(b)) - Number(goneReach.manifests.has(a)));
  if (sweep) {
    for (const alg of ['sha256', 'sha512'] as const) {
      const len = alg === 'sha256' ? 64 : 128;
      let names: string[] = [];
      try { names = await readdir(join(o.store.layout.dir, 'blobs', alg)); } catch { continue; }
      for (const n of names) {
        if (n.length !== len || !/^[0-9a-f]+$/.test(n)) continue; // temporary files of writers
        const d = `${alg}:${n}` as Digest;
        if (keep.blobs.has(d) || goneReach.blobs.has(d)) continue;
        try {
          if ((await stat(o.store.layout.blobPath(d))).mtimeMs > sweep.now - sweep.graceMs) continue;
        } catch { continue; }
        candidates.push(d);
      }
    }
  }
  const blobs: Digest[] = [];
  let reclaimed = 0;
  for (const d of candidates) {
    const n = await deleteBlob(o.store.layout, d);
    if (n === undefined) continue;
    blobs.push(d);
    reclaimed += n;
  }
  const deletedBlobs = new Set(blobs);
  const deleted: Digest[] = [];
  for (const g of gone) {
    const id = g.id ?? g.digest;
    if (deletedBlobs.has(id) && !deleted.includes(id)) deleted.push(id);
  }

  let snapshots: Digest[] = [];
  if (o.snapshots) {
    const keepChains = new Set<string>(keep.chains.flat());
    const cand = new Set<string>();
    for (const c of goneReach.chains.flat()) if (!keepChains.has(c)) cand.add(c);
    if (sweep) {
      // layers no image names yet may be a pull's, unpacked before the pull names its image: like blobs,
      // they are left alone for the grace period
      for await (const s of o.snapshots.walk()) {
        if (s.kind === 'committed' && CHAIN_ID.test(s.key) && !keepChains.has(s.key) && sweep.now - Date.parse(s.created) >= sweep.graceMs) cand.add(s.key);
      }
    }
    for (const c of [...cand]) cand.add(initName(c)); // an image top's init layer goes with it (children first)
    const r = await removeSnapshots(o.snapshots, cand);
    snapshots = r.removed.filter((k) => !k.endsWith('-init'));
    reclaimed += r.bytes;
  }
  return { deleted: [...deleted, ...snapshots], blobs, snapshots, reclaimed };
}

function withoutName(e: Descriptor): Descriptor {
  const { annotations, ...rest } = e;
  const { [REF_NAME]: _drop, ...others } = annotations ?? {};
  return Object.keys(others).length ? { ...rest, annotations: others } : rest;
}

/**
 * `berth rmi IMAGE`: removes one name, or (by ID, or its last name) the image; see the header.
 * Throws NotFoundError (no such image), ImageConflictError (a container uses it, or its names span
 * several repositories, without force) or UsageError (an ambiguous ID prefix); nothing changes then.
 */
export function removeImage(input: string, o: ImageHousekeepingOptions & { force?: boolean }): Promise<RemoveImageResult> {
  // decided and done under the index lock: no pull names an image meanwhile whose blobs this deletes
  return o.store.layout.withIndexLock((update) => removeLocked(input, o, update));
}

type UpdateEntries = (fn: (entries: Descriptor[]) => Descriptor[]) => Promise<void>;

async function removeLocked(input: string, o: ImageHousekeepingOptions & { force?: boolean }, update: UpdateEntries): Promise<RemoveImageResult> {
  const world = await loadWorld(o);
  const target = findTarget(input, world.groups);

  if (target.byId && !o.force) {
    const repos = new Set(target.picks.flatMap((p) => p.group.names.map((n) => repositoryOf(n) ?? n)));
    if (repos.size > 1) {
      throw new ImageConflictError(`conflict: unable to delete ${shortId(target.picks[0]!.group.id ?? target.picks[0]!.group.digest)} (must be forced) - image is referenced in multiple repositories (${[...repos].map((r) => displayName(r)).join(', ')})`);
    }
  }

  const plan: Array<{ group: ImageGroup; remove: string[]; untagged: boolean; fate: 'untag' | 'delete' | 'dangle' }> = [];
  const keptFor: ImageUser[] = [];
  for (const p of target.picks) {
    const remove = p.names ?? p.group.names;
    const left = p.group.names.filter((n) => !remove.includes(n));
    const untagged = p.names === undefined || !!p.untaggedToo;
    if (left.length) { plan.push({ group: p.group, remove, untagged, fate: 'untag' }); continue; }
    const users = world.users.get(p.group.digest) ?? [];
    if (users.length) {
      if (!o.force) {
        const what = target.byId ? `delete ${shortId(p.group.id ?? p.group.digest)}` : `remove ${displayName(remove[0] ?? input)}`;
        throw new ImageConflictError(`conflict: unable to ${what} (must force) - image is being used by container ${users.map(describeUser).join(', ')}`);
      }
      keptFor.push(...users);
      plan.push({ group: p.group, remove, untagged, fate: 'dangle' });
    } else {
      plan.push({ group: p.group, remove, untagged, fate: 'delete' });
    }
  }

  const removeNames = new Set(plan.flatMap((p) => p.remove));
  const deleteDigests = new Set(plan.filter((p) => p.fate === 'delete').map((p) => p.group.digest));
  const untaggedOf = new Set(plan.filter((p) => p.untagged).map((p) => p.group.digest));
  const dangle = plan.filter((p) => p.fate === 'dangle').map((p) => p.group);
  await update((entries) => {
    const out = entries.filter((e) => {
      if (deleteDigests.has(e.digest)) return false;
      const name = e.annotations?.[REF_NAME];
      return name ? !removeNames.has(name) : !untaggedOf.has(e.digest);
    });
    // an image a container uses stays, without a name
    for (const g of dangle) if (!out.some((e) => e.digest === g.digest)) out.push(withoutName(g.entries[0]!));
    return out;
  });

  const untagged = [...new Set(plan.flatMap((p) => p.remove))].map(displayName);
  if (target.digestRef) untagged.push(target.digestRef);
  const gone = plan.filter((p) => p.fate === 'delete').map((p) => p.group);
  const res = gone.length ? await collect(o, world, gone) : { deleted: [], blobs: [], snapshots: [], reclaimed: 0 };
  return { untagged, ...res, ...(keptFor.length ? { keptFor } : {}) };
}

/**
 * `berth image prune [-a]`: dangling images (every image with `all`) that no container uses, then
 * unreferenced blobs and unused layer snapshots older than `graceMs` (default 1 hour).
 */
export function pruneImages(o: ImageHousekeepingOptions & { all?: boolean; graceMs?: number; now?: number }): Promise<PruneImagesResult> {
  return o.store.layout.withIndexLock((update) => pruneLocked(o, update));
}

async function pruneLocked(o: ImageHousekeepingOptions & { all?: boolean; graceMs?: number; now?: number }, update: UpdateEntries): Promise<PruneImagesResult> {
  const world = await loadWorld(o);
  const gone = world.groups.filter((g) => (o.all || g.names.length === 0) && !(world.users.get(g.digest) ?? []).length);
  const goneSet = new Set(gone.map((g) => g.digest));
  if (gone.length) await update((entries) => entries.filter((e) => !goneSet.has(e.digest)));
  const untagged = gone.flatMap((g) => g.names).map(displayName);
  const sweep = { graceMs: o.graceMs ?? 3_600_000, now: o.now ?? Date.now() };
  const res = await collect(o, world, gone, sweep);
  if (o.snapshots) res.reclaimed += await sweepLeftovers(o.snapshots, sweep);
  return { untagged, ...res };
}

/**
 * What a crash mid-unpack or mid-run leaves: work snapshots (`extract-…` of an unpack, `init-tmp-…`
 * of an init layer being made) and snapshot directories without metadata, older than the grace
 * period so that an unpack running right now in another process is not touched.
 */
async function sweepLeftovers(snapshots: OverlaySnapshotter, sweep: { graceMs: number; now: number }): Promise<number> {
  let bytes = 0;
  for await (const s of snapshots.walk()) {
    if (s.kind !== 'active' || !/^(extract-|init-tmp-)/.test(s.key) || sweep.now - Date.parse(s.created) < sweep.graceMs) continue;
    bytes += await diskUsage(join(snapshots.dir, s.id));
    await snapshots.remove(s.key).catch(() => undefined);
  }
  for (const id of await snapshots.orphans(sweep.now - sweep.graceMs)) {
    bytes += await diskUsage(join(snapshots.dir, id));
    await snapshots.removeOrphan(id);
  }
  return bytes;
}

/** Which containers use the image `input` names (for messages and checks). */
export async function imageUsers(input: string, o: ImageHousekeepingOptions): Promise<ImageUser[]> {
  const world = await loadWorld(o);
  const target = findTarget(input, world.groups);
  return target.picks.flatMap((p) => world.users.get(p.group.digest) ?? []);
}
