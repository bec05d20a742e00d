// Named volumes, Docker's "local" driver: a directory per volume under the runtime root.
//
//   <root>/volumes/<name>/_data        what containers see (the Mountpoint)
//   <root>/volumes/<name>/volume.json  {name, createdAt, labels}
//
// Names follow Docker's grammar, [a-zA-Z0-9][a-zA-Z0-9_.-]+ (two characters at least). A volume is
// made in a temporary directory and renamed into place, so it exists whole or not at all, and a
// removed one is renamed away before it is deleted.
//
// Which containers use a volume is read from the containers themselves: each container directory
// (<root>/containers/<id>/, kept or foreground) holds the OCI bundle's config.json, and a mount
// whose source is the volume's _data (or inside it) is a use. That is what runc mounts, so it is
// never stale, and it needs no bookkeeping in the run code. The window between resolving `-v` and
// writing config.json is not covered: a `volume rm`/`prune` exactly then can remove a volume a
// container is about to mount (Docker's daemon holds a reference there; berth has no daemon).
//
// For `berth run -v`:
//   resolveVolumeFlag(root, "data:/var/lib/data:ro")  → the volume's _data (created when missing)
//   resolveVolumeFlag(root, "/srv/x:/x")               → a bind mount of a host path
//   populateVolume(result.source, rootfs, "/var/lib/data")  when result.copyUp: Docker's copy of the
//                                                      image's files into an empty volume
// and for `berth container rm -v`: volumesUsedBy(containerDir) before the container's directory
// goes, then removeVolumesIfUnused(root, names, {except: id}) after.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve as resolvePath, sep } from 'node:path';
import { ClientError, ExitCode, NotFoundError, UsageError } from '../client/errors.js';
import { diskUsage } from './disk-usage.js';
import { defaultRuntimeRoot } from './snapshotter.js';
import { resolveInRoot } from './spec.js';

export const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/** `docker volume inspect`'s shape. */
export interface VolumeInfo {
  Name: string;
  Driver: 'local';
  Mountpoint: string;
  CreatedAt: string;
  Labels: Record<string, string> | null;
  Scope: 'local';
  Options: null;
}

interface VolumeMeta { name: string; createdAt: string; labels?: Record<string, string> }

/** A volume a container uses (remove it first); exit code 1, like Docker's 409. */
export class VolumeInUseError extends ClientError {
  constructor(readonly volume: string, readonly containers: string[]) {
    super(`remove ${volume}: volume is in use - [${containers.join(', ')}]`, ExitCode.Failure, 'CONFLICT');
  }
}

export function validateVolumeName(name: string): void {
  if (typeof name !== 'string' || name.length > 255 || !VOLUME_NAME.test(name)) {
    const what = typeof name === 'string' && name.length < 2 && /^[a-zA-Z0-9]?$/.test(name)
      ? 'is too short, names should be at least two alphanumeric characters'
      : 'includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed';
    throw new UsageError(`volume name "${String(name).slice(0, 300)}" ${what}${typeof name === 'string' && name.includes('/') ? '; a host directory must be given as an absolute path' : ''}`);
  }
}

export class VolumeStore {
  readonly dir: string;

  constructor(readonly root: string = defaultRuntimeRoot()) {
    this.dir = join(resolvePath(root), 'volumes');
  }

  /** The volume's data directory (what containers mount), whether it exists or not. */
  mountpoint(name: string): string {
    validateVolumeName(name);
    return join(this.dir, name, '_data');
  }

  private info(meta: VolumeMeta): VolumeInfo {
    return {
      Name: meta.name, Driver: 'local', Mountpoint: join(this.dir, meta.name, '_data'), CreatedAt: meta.createdAt,
      Labels: meta.labels && Object.keys(meta.labels).length ? meta.labels : null, Scope: 'local', Options: null,
    };
  }

  async tryInspect(name: string): Promise<VolumeInfo | undefined> {
    validateVolumeName(name);
    let text: string;
    try { text = await readFile(join(this.dir, name, 'volume.json'), 'utf8'); } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
      throw e;
    }
    let meta: VolumeMeta;
    try { meta = JSON.parse(text) as VolumeMeta; } catch (e) { throw new ClientError(`volume ${name}: volume.json is invalid: ${(e as Error).message}`); }
    return this.info({ ...meta, name });
  }

  async inspect(name: string): Promise<VolumeInfo> {
    const v = await this.tryInspect(name);
    if (!v) throw new NotFoundError(`get ${name}: no such volume`);
    return v;
  }

  /**
   * Creates a volume (a random 64-hex name when none is given). An existing volume of that name
   * is returned as it is (`created: false`), as Docker's local driver does.
   */
  async create(name?: string, opts: { labels?: Record<string, string> } = {}): Promise<{ volume: VolumeInfo; created: boolean }> {
    const n = name ?? randomBytes(32).toString('hex');
    validateVolumeName(n);
    const existing = await this.tryInspect(n);
    if (existing) return { volume: existing, created: false };
    await mkdir(this.dir, { recursive: true, mode: 0o701 });
    const tmp = join(this.dir, `.tmp-${randomBytes(8).toString('hex')}`);
    const meta: VolumeMeta = { name: n, createdAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), ...(opts.labels && Object.keys(opts.labels).length ? { labels: opts.labels } : {}) };
    try {
      await mkdir(tmp, { mode: 0o701 });
      await mkdir(join(tmp, '_data'), { mode: 0o755 });
      await writeFile(join(tmp, 'volume.json'), `${JSON.stringify(meta, null, 2)}\n`, { mode: 0o600 });
      await rename(tmp, join(this.dir, n));
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') {
        const other = await this.tryInspect(n); // created meanwhile by someone else
        if (other) return { volume: other, created: false };
      }
      throw e;
    }
    return { volume: this.info(meta), created: true };
  }

  /** All volumes, by name. */
  async list(): Promise<VolumeInfo[]> {
    let names: string[];
    try { names = await readdir(this.dir); } catch { return []; }
    const out: VolumeInfo[] = [];
    for (const n of names.sort()) {
      if (!VOLUME_NAME.test(n)) continue; // .tmp-*, .removing-*
      const v = await this.tryInspect(n).catch(() => undefined);
      if (v) out.push(v);
    }
    return out;
  }

  /** IDs of the containers (kept or foreground) whose bundle mounts the volume. */
  async usedBy(name: string): Promise<string[]> {
    const mp = this.mountpoint(name);
    const out: string[] = [];
    for (const [id, sources] of await containerMountSources(this.root)) {
      if (sources.some((s) => s === mp || s.startsWith(mp + sep))) out.push(id);
    }
    return out;
  }

  /**
   * Removes a volume and its data. In use → VolumeInUseError (even with force, as Docker);
   * missing → NotFoundError, or false with force.
   */
  async remove(name: string, opts: { force?: boolean } = {}): Promise<boolean> {
    if (!(await this.tryInspect(name))) {
      if (opts.force) return false;
      throw new NotFoundError(`get ${name}: no such volume`);
    }
    const users = await this.usedBy(name);
    if (users.length) throw new VolumeInUseError(name, users);
    if (await this.destroy(name)) return true;
    if (opts.force) return false;
    throw new NotFoundError(`get ${name}: no such volume`);
  }

  /** Renames the volume away (it is gone at once), then deletes it; false when it was not there. */
  async destroy(name: string): Promise<boolean> {
    validateVolumeName(name);
    const away = join(this.dir, `.removing-${randomBytes(8).toString('hex')}`);
    try { await rename(join(this.dir, name), away); } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
    await rm(away, { recursive: true, force: true });
    return true;
  }

  /** Removes every volume no container uses; returns their names and the bytes freed. */
  async prune(): Promise<{ removed: string[]; reclaimed: number }> {
    const removed: string[] = [];
    let reclaimed = 0;
    for (const v of await this.list()) {
      if ((await this.usedBy(v.Name)).length) continue;
      const size = await diskUsage(v.Mountpoint);
      try {
        if (await this.remove(v.Name, { force: true })) { removed.push(v.Name); reclaimed += size; }
      } catch (e) {
        if (!(e instanceof VolumeInUseError)) throw e; // started being used meanwhile
      }
    }
    return { removed, reclaimed };
  }
}

/** Mount sources of every container bundle under <root>/containers (id → sources). */
async function containerMountSources(root: string): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  const dir = join(root, 'containers');
  let ids: string[];
  try { ids = await readdir(dir); } catch { return out; }
  for (const id of ids) out.set(id, await bundleMountSources(join(dir, id)));
  return out;
}

async function bundleMountSources(containerDir: string): Promise<string[]> {
  let spec: { mounts?: Array<{ source?: unknown; type?: unknown }> };
  try { spec = JSON.parse(await readFile(join(containerDir, 'config.json'), 'utf8')) as typeof spec; } catch { return []; }
  return (Array.isArray(spec.mounts) ? spec.mounts : [])
    .filter((m) => typeof m?.source === 'string' && (m.source as string).startsWith('/'))
    .map((m) => resolvePath(m.source as string));
}

/**
 * The named volumes a container's bundle (<root>/containers/<id>, its config.json) mounts. Call it
 * before the container's directory is removed. `root` defaults to the directory two levels up.
 */
export async function volumesUsedBy(containerDir: string, opts: { root?: string } = {}): Promise<string[]> {
  const store = new VolumeStore(opts.root ?? dirname(dirname(resolvePath(containerDir))));
  const prefix = store.dir + sep;
  const names = new Set<string>();
  for (const s of await bundleMountSources(containerDir)) {
    if (!s.startsWith(prefix)) continue;
    const [name, data] = s.slice(prefix.length).split(sep);
    if (name && data === '_data' && VOLUME_NAME.test(name)) names.add(name);
  }
  return [...names].sort();
}

/**
 * For `rm -v`: removes each named volume unless a container (other than `except`, the one being
 * removed, if its directory is still there) uses it. Missing volumes are skipped.
 */
export async function removeVolumesIfUnused(root: string, names: string[], opts: { except?: string } = {}): Promise<{ removed: string[]; kept: Array<{ name: string; usedBy: string[] }> }> {
  const store = new VolumeStore(root);
  const removed: string[] = [];
  const kept: Array<{ name: string; usedBy: string[] }> = [];
  for (const name of names) {
    const users = (await store.usedBy(name)).filter((id) => id !== opts.except);
    if (users.length) { kept.push({ name, usedBy: users }); continue; }
    if (await store.destroy(name)) removed.push(name);
  }
  return { removed, kept };
}

export type VolumeFlag =
  | { type: 'bind'; source: string; destination: string; readonly: boolean }
  | {
    type: 'volume'; name: string; source: string; destination: string; readonly: boolean;
    /** The volume was made by this call. */
    created: boolean;
    /** Docker copies the image's files at the destination into an empty volume (no "nocopy"). */
    copyUp: boolean;
  };

/**
 * Parses `-v SOURCE:DESTINATION[:OPTIONS]` without touching the disk. SOURCE is a host path
 * (absolute, or starting with "." — relative to `cwd`) or a volume name; OPTIONS is a comma list
 * of ro, rw and (volumes only) nocopy.
 */
export function parseVolumeFlag(value: string, opts: { cwd?: string } = {}): { type: 'bind' | 'volume'; source: string; destination: string; readonly: boolean; nocopy: boolean } {
  const parts = value.split(':');
  if (parts.length === 1) throw new UsageError(`-v ${value}: anonymous volumes are not supported; name one (-v NAME:${value}) or give a host path (-v /host/dir:${value})`);
  if (parts.length > 3) throw new UsageError(`-v ${value}: expected SOURCE:DESTINATION[:ro|rw]`);
  const [src, destination, mode] = parts as [string, string, string | undefined];
  if (src === '') throw new UsageError(`-v ${value}: empty source`);
  if (!destination.startsWith('/')) throw new UsageError(`-v ${value}: the destination "${destination}" must be an absolute path`);
  if (resolvePath(destination) === '/') throw new UsageError(`-v ${value}: a volume cannot be mounted on /`);
  let readonly = false;
  let nocopy = false;
  const seen = new Set<string>();
  for (const o of mode === undefined ? [] : mode.split(',')) {
    if (seen.has(o === 'rw' ? 'ro' : o)) throw new UsageError(`-v ${value}: "${o}" conflicts with an earlier option`);
    if (o === 'ro' || o === 'rw') { readonly = o === 'ro'; seen.add('ro'); } else if (o === 'nocopy') { nocopy = true; seen.add(o); } else {
      throw new UsageError(`-v ${value}: unsupported option "${o}" (ro, rw and nocopy are)`);
    }
  }
  if (src.startsWith('/') || src.startsWith('.')) {
    if (nocopy) throw new UsageError(`-v ${value}: nocopy applies to named volumes, not host paths`);
    return { type: 'bind', source: resolvePath(opts.cwd ?? process.cwd(), src), destination, readonly, nocopy: false };
  }
  validateVolumeName(src);
  return { type: 'volume', source: src, destination, readonly, nocopy };
}

/**
 * `berth run -v`: a host path becomes a bind; a volume name becomes its _data directory, the
 * volume being created when missing (Docker's behaviour). The result fits spec.ts's VolumeMount.
 */
export async function resolveVolumeFlag(root: string, value: string, opts: { cwd?: string } = {}): Promise<VolumeFlag> {
  return resolveVolume(root, parseVolumeFlag(value, opts));
}

/** A parsed -v (or --mount of type bind or volume): the named volume is created when missing. */
export async function resolveVolume(root: string, p: ReturnType<typeof parseVolumeFlag>): Promise<VolumeFlag> {
  if (p.type === 'bind') return { type: 'bind', source: p.source, destination: p.destination, readonly: p.readonly };
  const { volume, created } = await new VolumeStore(root).create(p.source);
  return { type: 'volume', name: volume.Name, source: volume.Mountpoint, destination: p.destination, readonly: p.readonly, created, copyUp: !p.nocopy };
}

/**
 * Resolves `path` (a container path) inside `rootfs` the way the container would see it: symlinks
 * are followed within rootfs (an absolute target starts again at rootfs, ".." stops at it), so an
 * image cannot point the copy at the host's files. Undefined when a component does not exist.
 */
export async function resolveInRootfs(rootfs: string, path: string): Promise<string | undefined> {
  const host = await resolveInRoot(rootfs, path); // spec.ts: the one resolver of container paths
  try { await lstat(host); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw e;
  }
  return host;
}

/**
 * Docker's copy-up: when the volume is empty and the image has a directory at `containerPath`,
 * that directory's contents (and its own owner, mode and times) are copied into the volume with
 * GNU `cp -a` (owners, modes, times, hard links, symlinks, xattrs). Call it with the container's
 * rootfs mounted, before the container starts. Returns whether anything was copied.
 */
export async function populateVolume(volumeDataDir: string, rootfs: string, containerPath: string): Promise<boolean> {
  if ((await readdir(volumeDataDir)).length) return false; // not empty: Docker leaves it alone
  const src = await resolveInRootfs(rootfs, containerPath);
  if (!src) return false;
  const st = await lstat(src);
  if (!st.isDirectory()) return false;
  await new Promise<void>((resolve, reject) => {
    const cp = spawn('cp', ['-a', '--', `${src}/.`, volumeDataDir], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    cp.stderr.setEncoding('utf8').on('data', (s: string) => { if (err.length < 8192) err += s; });
    cp.on('error', reject);
    cp.on('close', (code) => (code === 0 ? resolve() : reject(new ClientError(`copying ${containerPath} of the image into volume ${basename(dirname(volumeDataDir))} failed: ${err.trim()}`))));
  });
  return true;
}

/** Marks a volume made for one container (`-v /path` or an image VOLUME): `rm -v` and `--rm` remove those. */
export const ANONYMOUS_LABEL = 'berth.anonymous';

/**
 * A container's volume mounts, made real: `-v /path` mounts (an anonymous volume not made yet: no
 * name) get their volume now, and so does every image VOLUME no -v covers (Docker gives each
 * container fresh ones, filled from the image).
 */
export async function materializeVolumes(root: string, mounts: VolumeMountLike[], volumes: Record<string, object> | undefined): Promise<VolumeMountLike[]> {
  const out: VolumeMountLike[] = [];
  for (const m of mounts) {
    if (m.volume?.anonymous && !m.volume.name) {
      const { volume } = await new VolumeStore(root).create(undefined, { labels: { [ANONYMOUS_LABEL]: 'true' } });
      out.push({ ...m, source: volume.Mountpoint, volume: { ...m.volume, name: volume.Name } });
    } else out.push(m);
  }
  return [...out, ...await imageVolumes(root, volumes, out)];
}

type VolumeMountLike = { source: string; destination: string; readonly?: boolean; volume?: { name: string; anonymous: boolean; copyUp: boolean } };

/** The image's VOLUMEs that no mount covers, each as a new anonymous volume. */
export async function imageVolumes(root: string, volumes: Record<string, object> | undefined, covered: Array<{ destination: string }>): Promise<Array<{ source: string; destination: string; volume: { name: string; anonymous: true; copyUp: true } }>> {
  const taken = new Set(covered.map((v) => resolvePath('/', v.destination)));
  const out = [];
  for (const dest of Object.keys(volumes ?? {})) {
    const d = resolvePath('/', dest);
    if (d === '/' || taken.has(d)) continue;
    taken.add(d);
    const { volume } = await new VolumeStore(root).create(undefined, { labels: { [ANONYMOUS_LABEL]: 'true' } });
    out.push({ source: volume.Mountpoint, destination: d, volume: { name: volume.Name, anonymous: true as const, copyUp: true as const } });
  }
  return out;
}

/** Docker's copy-up for every volume mount that asks for it; the rootfs must be mounted. */
export async function copyUpVolumes(rootfs: string, mounts: Array<{ source: string; destination: string; volume?: { copyUp: boolean } }>): Promise<void> {
  for (const m of mounts) if (m.volume?.copyUp) await populateVolume(m.source, rootfs, m.destination);
}

/** Removes anonymous volumes no other container uses (after `--rm` or `rm -v`). */
export async function removeAnonymousVolumes(root: string, names: string[], except?: string): Promise<void> {
  await removeVolumesIfUnused(root, names, except ? { except } : {});
}
