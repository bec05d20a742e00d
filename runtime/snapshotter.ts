// An overlayfs snapshotter in containerd's vocabulary. A *committed* snapshot has a name (for image
// layers, the chainID) and is read-only from then on; an *active* snapshot has a key, a parent
// (a committed name) and a writable upper directory. `prepare` and `mounts` describe the mounts
// (overlay of the parents' directories, nearest first, + upper + work); they never mount.
//
// On disk, under root (default $BERTH_ROOT or /var/lib/berth) / "snapshots":
//   <id>/fs              the snapshot's own files (a layer's contents, or a container's upper dir)
//   <id>/work            overlayfs work dir (active snapshots only)
//   meta/<sha256(key)>.json  {key, kind, id, parent, created}; written atomically, created exclusively
//   meta/lock            held (across processes, briefly) while a parent is checked and its child recorded
//                        (prepare, view, commit), and while a snapshot's children are checked and it is
//                        unrecorded (remove): a remove never leaves a child whose parent is gone
// Ids are short random hex, which keeps overlay option strings short for deep images.
//
// Durability: commit() flushes the snapshot's filesystem (syncfs) before it writes the metadata that
// says "committed". Without it a power loss shortly after an unpack leaves committed layers with
// empty or truncated files that nothing ever re-checks (containerd's issue #5854; its opt-in fix is
// the same syncfs after each layer).
import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { link, mkdir, readFile, readdir, rm, stat, unlink, chmod, open } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncDir, tempPathFor } from '../client/atomic.js';
import { SerialLock } from '../client/pid-lock.js';
import { syncFilesystem } from './syncfs.js';

export interface Mount {
  type: string;
  source: string;
  options: string[];
}

export type SnapshotKind = 'active' | 'committed';

export interface SnapshotInfo {
  key: string;
  kind: SnapshotKind;
  id: string;
  parent?: string;
  created: string;
  labels?: Record<string, string>;
}

export class SnapshotError extends Error {
  constructor(message: string, readonly code: 'NOT_FOUND' | 'ALREADY_EXISTS' | 'FAILED_PRECONDITION' | 'INVALID') {
    super(message);
  }
}

export function defaultRuntimeRoot(env: NodeJS.ProcessEnv = process.env): string {
  return env.BERTH_ROOT || '/var/lib/berth';
}

export interface Snapshotter {
  prepare(key: string, parent?: string, opts?: { labels?: Record<string, string> }): Promise<Mount[]>;
  view(key: string, parent: string): Promise<Mount[]>;
  commit(name: string, key: string, opts?: { parent?: string }): Promise<void>;
  mounts(key: string): Promise<Mount[]>;
  remove(keyOrName: string): Promise<void>;
  stat(keyOrName: string): Promise<SnapshotInfo>;
}

export class OverlaySnapshotter implements Snapshotter {
  readonly dir: string;
  private readonly metaDir: string;
  private readonly lock: SerialLock;

  private constructor(root: string, private readonly syncfs: (dir: string) => Promise<void>) {
    this.dir = join(root, 'snapshots');
    this.metaDir = join(this.dir, 'meta');
    this.lock = new SerialLock(this.metaDir, join(this.metaDir, 'lock'));
  }

  /** `opts.syncfs` replaces the flush before a commit (tests watch it). */
  static async open(root: string = defaultRuntimeRoot(), opts: { syncfs?: (dir: string) => Promise<void> } = {}): Promise<OverlaySnapshotter> {
    const s = new OverlaySnapshotter(root, opts.syncfs ?? syncFilesystem);
    await mkdir(s.metaDir, { recursive: true, mode: 0o700 });
    await chmod(s.dir, 0o700);
    return s;
  }

  private metaPath(key: string): string {
    if (typeof key !== 'string' || key === '' || key.length > 4096) throw new SnapshotError(`invalid snapshot key "${String(key).slice(0, 100)}"`, 'INVALID');
    return join(this.metaDir, `${createHash('sha256').update(key).digest('hex')}.json`);
  }

  /** The directory holding a snapshot's own files (an active snapshot's upper dir). */
  fsDir(info: Pick<SnapshotInfo, 'id'>): string { return join(this.dir, info.id, 'fs'); }
  private workDir(info: Pick<SnapshotInfo, 'id'>): string { return join(this.dir, info.id, 'work'); }

  async stat(keyOrName: string): Promise<SnapshotInfo> {
    const info = await this.tryStat(keyOrName);
    if (!info) throw new SnapshotError(`snapshot "${keyOrName}" does not exist`, 'NOT_FOUND');
    return info;
  }

  async tryStat(keyOrName: string): Promise<SnapshotInfo | undefined> {
    let text: string;
    try { text = await readFile(this.metaPath(keyOrName), 'utf8'); } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    const info = JSON.parse(text) as SnapshotInfo;
    if (info.key !== keyOrName) throw new SnapshotError(`snapshot metadata for "${keyOrName}" is inconsistent`, 'INVALID');
    return info;
  }

  async exists(keyOrName: string): Promise<boolean> { return (await this.tryStat(keyOrName)) !== undefined; }

  /** Writes metadata, failing with ALREADY_EXISTS when the key is taken (atomic: temp + link). */
  private async createMeta(info: SnapshotInfo): Promise<void> {
    const path = this.metaPath(info.key);
    const tmp = tempPathFor(path);
    const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    try {
      await fh.writeFile(JSON.stringify(info));
      await fh.sync();
    } finally { await fh.close(); }
    try {
      await link(tmp, path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new SnapshotError(`snapshot "${info.key}" already exists`, 'ALREADY_EXISTS');
      throw e;
    } finally {
      await unlink(tmp);
    }
    await fsyncDir(this.metaDir);
  }

  /** The parent a child is about to be recorded on; the caller holds the lock. */
  private async checkParent(parent: string): Promise<void> {
    if ((await this.stat(parent)).kind !== 'committed') throw new SnapshotError(`parent "${parent}" is not a committed snapshot`, 'FAILED_PRECONDITION');
  }

  private async create(kind: 'active' | 'view', key: string, parent: string | undefined, labels?: Record<string, string>): Promise<Mount[]> {
    const info: SnapshotInfo = {
      key, kind: 'active', id: randomBytes(6).toString('hex'), created: new Date().toISOString(),
      ...(parent !== undefined ? { parent } : {}),
      ...(kind === 'view' ? { labels: { ...labels, 'berth.view': 'true' } } : labels ? { labels } : {}),
    };
    await mkdir(join(this.dir, info.id), { mode: 0o700 });
    await mkdir(this.fsDir(info), { mode: 0o755 });
    await chmod(this.fsDir(info), 0o755);
    if (kind === 'active') await mkdir(this.workDir(info), { mode: 0o700 });
    try {
      // (without a parent there is nothing a remove could take meanwhile: no lock)
      if (parent === undefined) await this.createMeta(info);
      else await this.lock.run(async () => { await this.checkParent(parent); await this.createMeta(info); });
    } catch (e) {
      await rm(join(this.dir, info.id), { recursive: true, force: true });
      throw e;
    }
    return this.mountsOf(info);
  }

  /** A new active snapshot on top of `parent` (a committed name), with its own upper and work dirs. */
  prepare(key: string, parent?: string, opts: { labels?: Record<string, string> } = {}): Promise<Mount[]> {
    return this.create('active', key, parent, opts.labels);
  }

  /** A read-only view of `parent`; remove it like any other snapshot. */
  view(key: string, parent: string): Promise<Mount[]> {
    return this.create('view', key, parent);
  }

  async mounts(key: string): Promise<Mount[]> {
    const info = await this.stat(key);
    if (info.kind !== 'active') throw new SnapshotError(`snapshot "${key}" is committed; prepare or view it to mount it`, 'FAILED_PRECONDITION');
    return this.mountsOf(info);
  }

  /** The fs dirs of `name` and its ancestors, nearest first. */
  async chain(name: string | undefined): Promise<string[]> {
    const dirs: string[] = [];
    const seen = new Set<string>();
    let cur = name;
    while (cur !== undefined) {
      if (seen.has(cur)) throw new SnapshotError(`snapshot chain of "${name}" has a cycle`, 'INVALID');
      seen.add(cur);
      const info = await this.stat(cur);
      dirs.push(this.fsDir(info));
      cur = info.parent;
    }
    return dirs;
  }

  private async mountsOf(info: SnapshotInfo): Promise<Mount[]> {
    const lowers = await this.chain(info.parent);
    const readonly = info.labels?.['berth.view'] === 'true';
    if (readonly) {
      if (lowers.length === 1) return [{ type: 'bind', source: lowers[0]!, options: ['ro', 'rbind'] }];
      return [{ type: 'overlay', source: 'overlay', options: [`lowerdir=${lowers.join(':')}`] }];
    }
    if (lowers.length === 0) return [{ type: 'bind', source: this.fsDir(info), options: ['rw', 'rbind'] }];
    return [{
      type: 'overlay', source: 'overlay',
      options: ['index=off', `workdir=${this.workDir(info)}`, `upperdir=${this.fsDir(info)}`, `lowerdir=${lowers.join(':')}`],
    }];
  }

  /**
   * Turns active snapshot `key` into committed snapshot `name` (read-only from then on). `parent`
   * places a parentless snapshot on a committed one as it is committed: a layer is applied into an
   * empty directory whatever lies below it, so layers can be unpacked side by side and chained in
   * order afterwards.
   */
  async commit(name: string, key: string, opts: { parent?: string } = {}): Promise<void> {
    const info = await this.stat(key);
    if (info.kind !== 'active' || info.labels?.['berth.view'] === 'true') throw new SnapshotError(`snapshot "${key}" is not an active snapshot`, 'FAILED_PRECONDITION');
    if (opts.parent !== undefined) {
      if (info.parent !== undefined) throw new SnapshotError(`snapshot "${key}" already has a parent`, 'FAILED_PRECONDITION');
      await this.checkParent(opts.parent); // (fail early; checked again below)
      info.parent = opts.parent;
    }
    const { labels, ...rest } = info;
    const committed: SnapshotInfo = { ...rest, key: name, kind: 'committed', created: new Date().toISOString(), ...(labels ? { labels } : {}) };
    await this.syncfs(this.fsDir(info)); // the files on disk before the metadata says they are there
    // the flush can take a while: the parent, and `key` itself, may have been removed meanwhile
    await this.lock.run(async () => {
      if ((await this.stat(key)).id !== info.id) throw new SnapshotError(`snapshot "${key}" was removed while it was committed`, 'NOT_FOUND');
      if (opts.parent !== undefined) await this.checkParent(opts.parent);
      await this.createMeta(committed); // ALREADY_EXISTS when someone else committed `name` first
      await unlink(this.metaPath(key));
      await fsyncDir(this.metaDir);
    });
    await rm(this.workDir(info), { recursive: true, force: true });
  }

  /** Removes a snapshot; a committed one that is another's parent cannot be removed. */
  async remove(keyOrName: string): Promise<void> {
    // "no children?" and the removal of the record under the lock that prepare and commit check a
    // parent under: no child is recorded on it in between
    const { info, shared } = await this.lock.run(async () => {
      const info = await this.stat(keyOrName);
      let shared = false;
      for await (const other of this.walk()) {
        if (other.key === keyOrName) continue;
        if (info.kind === 'committed' && other.parent === keyOrName) throw new SnapshotError(`snapshot "${keyOrName}" is the parent of "${other.key}"`, 'FAILED_PRECONDITION');
        // a crash inside commit() leaves the active snapshot's metadata beside the committed one's, on one
        // directory: removing that leftover must not take the committed layer's files with it
        if (other.id === info.id) shared = true;
      }
      await unlink(this.metaPath(keyOrName));
      await fsyncDir(this.metaDir);
      return { info, shared };
    });
    // (nothing records this id again once its metadata is gone: the files can go without the lock)
    if (!shared) await rm(join(this.dir, info.id), { recursive: true, force: true });
  }

  async *walk(): AsyncIterable<SnapshotInfo> {
    for (const n of await readdir(this.metaDir)) {
      if (!/^[0-9a-f]{64}\.json$/.test(n)) continue;
      try { yield JSON.parse(await readFile(join(this.metaDir, n), 'utf8')) as SnapshotInfo; } catch { /* removed meanwhile */ }
    }
  }

  /** Snapshot directories without metadata (a crash between mkdir and metadata) last changed before `before` (ms). */
  async orphans(before: number): Promise<string[]> {
    const used = new Set<string>();
    for await (const i of this.walk()) used.add(i.id);
    const out: string[] = [];
    for (const n of await readdir(this.dir)) {
      if (n === 'meta' || used.has(n)) continue;
      try { if ((await stat(join(this.dir, n))).mtimeMs < before) out.push(n); } catch { /* gone meanwhile */ }
    }
    return out;
  }

  async removeOrphan(id: string): Promise<void> {
    if (!/^[0-9a-f]{12}$/.test(id)) throw new SnapshotError(`invalid snapshot directory "${id}"`, 'INVALID');
    await rm(join(this.dir, id), { recursive: true, force: true });
  }

  async cleanup(): Promise<string[]> {
    const used = new Set<string>();
    for await (const i of this.walk()) used.add(i.id);
    const removed: string[] = [];
    for (const n of await readdir(this.dir)) {
      if (n === 'meta' || used.has(n)) continue;
      await rm(join(this.dir, n), { recursive: true, force: true });
      removed.push(n);
    }
    return removed;
  }
}
