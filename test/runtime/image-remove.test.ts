// `berth rmi` / `berth image rm` / `berth image prune` (runtime/image-remove.ts, runtime/housekeeping-cli.ts):
// images built locally, their layers really unpacked into snapshots (root: GNU tar keeps owners), and
// containers faked on disk the way containers.ts and run.ts leave them (container.json, an active
// snapshot `container-<id>` on the image's top layer), or really created (createContainer, without
// starting it) where a create races an rmi.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, afterEach, beforeEach, describe, test } from 'node:test';
import { Command } from '../../cli/commander.js';
import { ClientError, ExitCode, NotFoundError, UsageError } from '../../client/errors.js';
import { ImageLayout } from '../../client/image-layout.js';
import { acquireLock } from '../../client/pid-lock.js';
import { hostPlatform } from '../../client/platform.js';
import type { Digest } from '../../oci/digest.js';
import { ImageConflictError, pruneImages, removeImage } from '../../runtime/image-remove.js';
import { humanSize, registerHousekeeping, type HousekeepingIo } from '../../runtime/housekeeping-cli.js';
import { chainIds, ImageNotFoundError, RuntimeImageStore } from '../../runtime/image-store.js';
import { createContainer, destroyContainer } from '../../runtime/containers.js';
import { BuiltinExecutor } from '../../runtime/executors/builtin.js';
import { containerParent } from '../../runtime/init-layer.js';
import { unmount } from '../../runtime/mount.js';
import { OverlaySnapshotter } from '../../runtime/snapshotter.js';
import { addImage, isRoot, layer, removeDir, tempDir, type BuiltLayer } from './helpers.js';

const skip = !isRoot && 'needs root (unpacks layers with their owners)';
const platform = { os: hostPlatform().os, architecture: hostPlatform().architecture };

interface Img { manifest: Digest; config: Digest; chain: Digest[]; blobs: Digest[] }

describe('rmi and image prune (root: unpacked layers)', { skip }, () => {
  let tmp: string;
  let layout: ImageLayout;
  let store: RuntimeImageStore;
  let snapshots: OverlaySnapshotter;
  let root: string;
  const base = layer([{ name: 'etc/', type: 'dir' }, { name: 'etc/base', type: 'file', data: randomBytes(4000) }]);

  beforeEach(async () => {
    tmp = await tempDir('berth-rmi-');
    root = join(tmp, 'root');
    layout = await ImageLayout.open(join(tmp, 'store'), { create: true });
    store = await RuntimeImageStore.open({ dir: join(tmp, 'store'), platform });
    snapshots = await OverlaySnapshotter.open(root);
  });
  afterEach(async () => {
    // a created container's rootfs (a test that failed before removing it)
    const mounts = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').map((l) => l.split(' ')[4]).filter((m): m is string => !!m && m.startsWith(tmp));
    for (const m of mounts.reverse()) await unmount(m, { lazy: true }).catch(() => undefined);
    await removeDir(tmp);
  });

  const opts = (force = false) => ({ store, root, snapshots, force });

  async function image(tag: string, layers: BuiltLayer[], unpack = true, created = '2024-01-01T00:00:00Z'): Promise<Img> {
    const t = await addImage(layout, tag, layers, { created }, platform);
    const m = JSON.parse((await layout.readSmall(t.manifest)).toString()) as { config: { digest: Digest } };
    const chain = chainIds(layers.map((l) => l.diffId));
    if (unpack) await store.unpack(await store.resolve(t.manifest.digest), snapshots);
    return { manifest: t.manifest.digest, config: m.config.digest, chain, blobs: [t.manifest.digest, m.config.digest, ...layers.map((l) => l.digest)] };
  }
  /** Makes a snapshot look committed at `when` (its metadata, as the snapshotter writes it). */
  async function age(key: string, when: Date): Promise<void> {
    const path = join(snapshots.dir, 'meta', `${createHash('sha256').update(key).digest('hex')}.json`);
    await writeFile(path, JSON.stringify({ ...(await snapshots.stat(key)), created: when.toISOString() }));
  }
  const own = (tag: string) => layer([{ name: `${tag}.txt`, type: 'file', data: randomBytes(2000) }]);
  const has = (d: Digest) => existsSync(layout.blobPath(d));
  const snap = (d: Digest) => snapshots.exists(d);

  async function fakeContainer(img: Img, kept: boolean): Promise<{ id: string; remove: () => Promise<void> }> {
    const id = randomBytes(32).toString('hex');
    const key = `container-${id}`;
    await snapshots.prepare(key, img.chain[img.chain.length - 1], { labels: { 'berth.image': 'x' } });
    const dir = join(root, 'containers', id);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'config.json'), '{}');
    if (kept) {
      await writeFile(join(dir, 'container.json'), JSON.stringify({
        id, name: 'web', image: 'docker.io/library/app:1', imageDigest: img.manifest, command: ['sh'], created: new Date().toISOString(),
        restartPolicy: { name: 'no' }, runtime: { bin: 'runc', stateRoot: join(tmp, 'run') }, snapshotKey: key, log: { maxSize: 1 << 20 },
      }));
      await writeFile(join(dir, 'state.json'), JSON.stringify({ status: 'exited', exitCode: 0, restartCount: 0 }));
    }
    return { id, remove: async () => { await snapshots.remove(key); await rm(dir, { recursive: true }); } };
  }

  test('a name of an image that has other names: only that name goes', async () => {
    const a = await image('docker.io/library/app:1', [base, own('a')]);
    await layout.setTag({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: a.manifest, size: (await layout.resolve('docker.io/library/app:1')).size }, 'docker.io/library/app:latest');
    const r = await removeImage('app:1', opts());
    assert.deepEqual(r.untagged, ['app:1']);
    assert.deepEqual(r.deleted, []);
    assert.equal(r.reclaimed, 0);
    assert.deepEqual(await layout.tags(), ['docker.io/library/app:latest']);
    for (const b of a.blobs) assert.ok(has(b));
    for (const c of a.chain) assert.ok(await snap(c));
  });

  test('the last name: its manifest, config, layers and layer snapshots go, except what another image shares', async () => {
    const a = await image('docker.io/library/app:1', [base, own('a')]);
    const b = await image('localhost:5000/team/b:v1', [base, own('b')]);
    assert.equal(a.chain[0], b.chain[0]);
    const r = await removeImage('app:1', opts());
    assert.deepEqual(r.untagged, ['app:1']);
    assert.deepEqual(r.deleted, [a.config, a.chain[1]]);
    assert.deepEqual(r.snapshots, [a.chain[1]]);
    assert.deepEqual(new Set(r.blobs), new Set([a.manifest, a.config, a.blobs[3]]));
    assert.ok(r.reclaimed > 2000, `reclaimed ${r.reclaimed}`);
    assert.ok(!has(a.manifest) && !has(a.config) && !has(a.blobs[3]!));
    assert.ok(has(base.digest), 'the shared base layer blob stays');
    assert.ok(!(await snap(a.chain[1]!)));
    assert.ok(await snap(a.chain[0]!), 'the shared base snapshot stays');
    await assert.rejects(store.resolve('app:1'));
    assert.deepEqual((await store.list()).map((i) => i.name), ['localhost:5000/team/b:v1']);

    // by a short image ID (as `berth images` shows it): now the base goes too
    const r2 = await removeImage(b.config.slice(7, 19), opts());
    assert.deepEqual(r2.untagged, ['localhost:5000/team/b:v1']);
    assert.deepEqual(r2.deleted, [b.config, b.chain[1], b.chain[0]]);
    for (const d of [...a.blobs, ...b.blobs]) assert.ok(!has(d), `${d} deleted`);
    for await (const s of snapshots.walk()) assert.fail(`snapshot ${s.key} left`);
    assert.deepEqual(await layout.readIndex().then((i) => i.manifests), []);
  });

  test('a layer snapshot another image ends on stays (nothing stands on it, yet it is used)', async () => {
    const a = await image('docker.io/library/app:1', [base, own('a')]);
    const b = await image('docker.io/library/b:1', [base]);
    assert.deepEqual((await removeImage('app:1', opts())).snapshots, [a.chain[1]]);
    assert.ok(await snap(b.chain[0]!));
    const p = await pruneImages({ store, root, snapshots });
    assert.deepEqual(p.snapshots, []);
    assert.ok(await snap(b.chain[0]!));
  });

  test('rmi decides under the index lock: an image a pull names meanwhile keeps the layers it shares', async () => {
    const a = await image('docker.io/library/app:1', [base, own('a')]);
    const b = await image('docker.io/library/b:1', [base, own('b')]);
    const bEntry = await layout.resolve('docker.io/library/b:1');
    await layout.removeTag('docker.io/library/b:1'); // b's pull has its blobs and layers, not its name yet
    // the pull takes the index lock to name b; the rmi starts meanwhile
    const release = await acquireLock(join(layout.dir, 'index.json.lock'));
    const rmi = removeImage('app:1', opts());
    await new Promise((r) => setTimeout(r, 200));
    const idx = await layout.readIndex();
    await writeFile(join(layout.dir, 'index.json'), JSON.stringify({ ...idx, manifests: [...idx.manifests, bEntry] }));
    await release();
    const r = await rmi;
    assert.deepEqual(r.deleted, [a.config, a.chain[1]]);
    assert.ok(has(base.digest) && await snap(b.chain[0]!));
    await store.unpack(await store.resolve('docker.io/library/b:1'), snapshots);
  });

  test('an image kept dangling by rmi -f, named again (pull, tag), is listed once, by its name', async () => {
    const a = await image('docker.io/library/app:1', [base, own('a')]);
    const c = await fakeContainer(a, true);
    await removeImage('app:1', opts(true));
    const dangling = await layout.readIndex().then((i) => i.manifests[0]!);
    await layout.setTag(dangling, 'docker.io/library/app:1');
    assert.deepEqual((await store.list()).map((i) => i.name), ['docker.io/library/app:1']);
    await c.remove();
  });

  test('name@digest removes that repository\'s names for the digest; a full ID with sha256: removes the rest', async () => {
    const a = await image('docker.io/library/app:1', [base, own('a')]);
    const size = (await layout.resolve('docker.io/library/app:1')).size;
    const desc = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: a.manifest, size };
    await layout.setTag(desc, 'docker.io/library/app:2');
    await layout.setTag(desc, 'docker.io/library/other:1');
    const r = await removeImage(`app@${a.manifest}`, opts());
    assert.deepEqual(r.untagged, ['app:1', 'app:2', `app@${a.manifest}`]);
    assert.deepEqual(r.deleted, []);
    assert.deepEqual(await layout.tags(), ['docker.io/library/other:1']);
    const r2 = await removeImage(a.config, opts());
    assert.deepEqual(r2.untagged, ['other:1']);
    assert.deepEqual(r2.deleted, [a.config, a.chain[1], a.chain[0]]);
    await assert.rejects(removeImage(`app@${a.manifest}`, opts()), NotFoundError);
  });

  test('an image ID whose names are in several repositories needs -f', async () => {
    const a = await image('docker.io/library/app:1', [base, own('a')], false);
    const size = (await layout.resolve('docker.io/library/app:1')).size;
    await layout.setTag({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: a.manifest, size }, 'localhost:5000/x:1');
    await assert.rejects(removeImage(a.config.slice(7), opts()), (e: Error) => e instanceof ImageConflictError && /must be forced\) - image is referenced in multiple repositories/.test(e.message));
    assert.equal((await layout.tags()).length, 2);
    const r = await removeImage(a.config.slice(7), opts(true));
    assert.deepEqual(r.untagged.sort(), ['app:1', 'localhost:5000/x:1']);
    assert.deepEqual(r.deleted, [a.config]); // never unpacked: no snapshots to remove
    for (const b of a.blobs) assert.ok(!has(b));
  });

  test('a missing image is a NotFoundError (exit code 3); an ambiguous ID prefix or no reference at all is a usage error', async () => {
    await image('docker.io/library/app:1', [base], false);
    await assert.rejects(removeImage('BAD REF', opts()), (e: Error) => e instanceof UsageError && e.message === 'invalid reference "BAD REF": contains whitespace');
    for (const ref of ['nope:1', 'app:2', `sha256:${'0'.repeat(64)}`, '0'.repeat(64), 'ffffffffffffffffffff']) {
      await assert.rejects(removeImage(ref, opts()), (e: Error) => e instanceof NotFoundError && e.exitCode === ExitCode.NotFound && e.message === `No such image: ${ref}`);
    }
    // images until two IDs share their first hex digit
    const ids: string[] = [];
    for (let i = 0; ; i++) {
      const x = await image(`docker.io/library/amb:${i}`, [base], false, `2024-01-01T00:00:${String(i).padStart(2, '0')}Z`);
      const first = x.config.slice(7, 8);
      if (ids.includes(first)) {
        await assert.rejects(removeImage(first, opts()), (e: Error) => e instanceof UsageError && /more than one image ID starts with it/.test(e.message));
        break;
      }
      ids.push(first);
    }
    assert.ok((await layout.tags()).length >= 3, 'nothing was removed');
  });

  test('an image a container uses is refused; -f untags it and keeps it (dangling) until the container is gone, then prune reclaims it', async () => {
    const a = await image('docker.io/library/app:1', [base, own('a')]);
    const c = await fakeContainer(a, true);
    for (const ref of ['app:1', a.config, a.config.slice(7, 19)]) {
      await assert.rejects(removeImage(ref, opts()), (e: Error) => e instanceof ImageConflictError && e.message.includes(`image is being used by container ${c.id.slice(0, 12)} (web, exited)`));
    }
    assert.deepEqual(await layout.tags(), ['docker.io/library/app:1']);

    const r = await removeImage('app:1', opts(true));
    assert.deepEqual(r.untagged, ['app:1']);
    assert.deepEqual(r.deleted, []);
    assert.deepEqual(r.keptFor?.map((u) => u.id), [c.id]);
    const listed = await store.list();
    assert.equal(listed.length, 1);
    assert.equal(listed[0]!.repository, '<none>');
    assert.equal(listed[0]!.id, a.config);
    for (const b of a.blobs) assert.ok(has(b), 'the container still needs the blobs (commit)');
    for (const ch of a.chain) assert.ok(await snap(ch), 'and the layers');

    const p1 = await pruneImages({ store, root, snapshots, all: true });
    assert.deepEqual(p1, { untagged: [], deleted: [], blobs: [], snapshots: [], reclaimed: 0 });

    await c.remove();
    const p2 = await pruneImages({ store, root, snapshots });
    assert.deepEqual(p2.deleted, [a.config, a.chain[1], a.chain[0]]);
    for (const b of a.blobs) assert.ok(!has(b));
    assert.deepEqual(await store.list(), []);
  });

  test('a container being created (a snapshot on the top layer, no container.json yet) holds its image too', async () => {
    const a = await image('docker.io/library/app:1', [base, own('a')]);
    const c = await fakeContainer(a, false);
    await assert.rejects(removeImage('app:1', opts()), (e: Error) => e instanceof ImageConflictError && e.message.includes(`container ${c.id.slice(0, 12)} (being created)`));
    await c.remove();
    assert.deepEqual((await removeImage('app:1', opts())).deleted, [a.config, a.chain[1], a.chain[0]]);
  });

  /** `berth create` of app:1 (nothing is started: the executor only names itself in container.json). */
  const create = (snaps = snapshots) => createContainer({
    root, store, snapshots: snaps, executor: new BuiltinExecutor(join(tmp, 'run')), image: 'docker.io/library/app:1',
    run: { network: 'none', args: ['/etc/base'] }, restartPolicy: { name: 'no' },
  });

  test('an rmi while a create unpacks the image\'s layers: the create fails with one clear line and leaves no container', async () => {
    const a = await image('docker.io/library/app:1', [base, own('a')], false);
    // the first layer's commit flushes: an rmi in another process takes the image meanwhile
    let rmi: ReturnType<typeof removeImage> | undefined;
    const pausing = await OverlaySnapshotter.open(root, { syncfs: async () => { rmi ??= removeImage('app:1', opts()); await rmi; } });
    await assert.rejects(create(pausing), (e: Error) => e instanceof ImageNotFoundError
      && e.message === 'image docker.io/library/app:1 was removed (berth rmi or image prune) while the container was being created');
    assert.deepEqual((await rmi!).untagged, ['app:1']);
    for (const b of a.blobs) assert.ok(!has(b), `${b} deleted`);
    assert.deepEqual(await readdir(join(root, 'containers')), []);
    for await (const s of snapshots.walk()) assert.ok(!s.key.startsWith('container-'), `${s.key} left`);
  });

  test('an rmi started while a create records its container waits for it, and is refused: the image stays whole', async () => {
    const a = await image('docker.io/library/app:1', [base, own('a')]);
    await containerParent(snapshots, a.chain[1]); // (an earlier container made the init layer)
    // another process holds the snapshot lock: the create stops where it records its snapshot, and the rmi starts
    const release = await acquireLock(join(snapshots.dir, 'meta', 'lock'));
    const creating = create();
    await new Promise((r) => setTimeout(r, 300));
    const rmi = removeImage('app:1', opts());
    rmi.catch(() => undefined);
    await new Promise((r) => setTimeout(r, 300));
    await release();
    const c = await creating;
    await assert.rejects(rmi, (e: Error) => e instanceof ImageConflictError && new RegExp(`image is being used by container ${c.config.id.slice(0, 12)}`).test(e.message));
    assert.deepEqual(await layout.missingBlobs(await layout.resolve('docker.io/library/app:1')), []);
    for (const ch of a.chain) assert.ok(await snap(ch));
    await destroyContainer(snapshots, c);
    assert.deepEqual((await removeImage('app:1', opts())).untagged, ['app:1']);
  });

  test('a container being created keeps its image\'s blobs from a prune even when no index entry names the image (its tag moved meanwhile)', async () => {
    const a = await image('docker.io/library/app:1', [base, own('a')]);
    const key = `container-${randomBytes(32).toString('hex')}`;
    await snapshots.prepare(key, a.chain[1], { labels: { 'berth.imageDigest': a.manifest } }); // as createContainer records it
    await layout.removeTag('docker.io/library/app:1');
    await pruneImages({ ...opts(), all: true, graceMs: 0 });
    for (const b of a.blobs) assert.ok(has(b), `${b} kept`);
    for (const c of a.chain) assert.ok(await snap(c));
    await snapshots.remove(key);
  });

  test('prune sweeps what a crash left (extract-/init-tmp- work snapshots, directories without metadata), but only past the grace period', async () => {
    await snapshots.prepare('extract-0123456789ab-sha256:dead');
    await snapshots.prepare('init-tmp-0123456789abcdef');
    const orphan = join(snapshots.dir, 'abcdefabcdef');
    await mkdir(join(orphan, 'fs'), { recursive: true });
    await writeFile(join(orphan, 'fs', 'x'), 'half unpacked');
    const keys = async () => { const out: string[] = []; for await (const x of snapshots.walk()) out.push(x.key); return out.sort(); };
    await pruneImages({ store, root, snapshots }); // a crash just now may be an unpack still running elsewhere
    assert.ok((await keys()).includes('extract-0123456789ab-sha256:dead'));
    assert.ok(existsSync(orphan));
    const p = await pruneImages({ store, root, snapshots, now: Date.now() + 2 * 3_600_000 });
    assert.ok(!(await keys()).some((k) => k.startsWith('extract-') || k.startsWith('init-tmp-')));
    assert.ok(!existsSync(orphan));
    assert.ok(p.reclaimed >= 'half unpacked'.length);
  });

  test('prune leaves the layers a pull has unpacked but not named yet (younger than the grace period); past it they go', async () => {
    // a pull unpacks each layer as its blob lands, and names the image only when every blob is in
    const layers = [base, own('p')];
    const p = await image('docker.io/library/pulling:1', layers);
    await layout.removeTag('docker.io/library/pulling:1');
    for (const x of [false, true]) {
      const r = await pruneImages({ store, root, snapshots, all: x });
      assert.deepEqual(r.snapshots, [], `prune${x ? ' -a' : ''} removed nothing`);
      for (const ch of p.chain) assert.ok(await snap(ch), `${ch} kept`);
    }
    // the pull goes on: its next layer still finds its parent, and the image runs
    await layout.setTag({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: p.manifest, size: (await stat(layout.blobPath(p.manifest))).size }, 'docker.io/library/pulling:1');
    assert.equal((await store.unpack(await store.resolve('docker.io/library/pulling:1'), snapshots)).reused, 2);
    await layout.removeTag('docker.io/library/pulling:1');
    const later = await pruneImages({ store, root, snapshots, now: Date.now() + 2 * 3_600_000 });
    assert.deepEqual(new Set(later.snapshots), new Set(p.chain));
  });

  test('prune: dangling images, then -a every image no container uses; unreferenced blobs past the grace period; unused layers', async () => {
    const a = await image('docker.io/library/app:1', [base, own('a')]);
    const b = await image('docker.io/library/b:1', [base, own('b')]);
    const d = await image('docker.io/library/dangling:1', [base, own('d')]);
    // dangling, as after `berth commit` without a tag
    const dDesc = await layout.resolve('docker.io/library/dangling:1');
    await layout.removeTag('docker.io/library/dangling:1');
    await layout.setTag({ mediaType: dDesc.mediaType, digest: dDesc.digest, size: dDesc.size }, undefined);
    const c = await fakeContainer(b, true);
    const old = await layout.writeSmall(randomBytes(3000));
    const hoursAgo = new Date(Date.now() - 2 * 3600_000);
    // everything old, so only references keep the images' blobs
    for (const n of await readdir(join(layout.dir, 'blobs', 'sha256'))) await utimes(join(layout.dir, 'blobs', 'sha256', n), hoursAgo, hoursAgo);
    const fresh = await layout.writeSmall(randomBytes(3000));
    const tmpFile = join(layout.dir, 'blobs', 'sha256', '.commit-0123456789ab.tmp');
    await writeFile(tmpFile, 'partial');
    await utimes(tmpFile, hoursAgo, hoursAgo);
    // a layer snapshot no image uses any more (committed long ago)
    const stray = `sha256:${randomBytes(32).toString('hex')}` as Digest;
    await snapshots.prepare('x', undefined);
    await snapshots.commit(stray, 'x');
    await age(stray, hoursAgo);

    const p = await pruneImages({ store, root, snapshots });
    assert.deepEqual(p.untagged, []);
    assert.deepEqual(new Set(p.deleted), new Set([d.config, d.chain[1], stray]));
    assert.ok(p.blobs.includes(old) && !p.blobs.includes(fresh));
    assert.ok(!has(old) && has(fresh) && existsSync(tmpFile));
    for (const x of d.blobs.slice(0, 2)) assert.ok(!has(x));
    assert.ok(has(base.digest));
    assert.ok(p.reclaimed >= 3000 + d.blobs.length, `reclaimed ${p.reclaimed}`);
    assert.deepEqual((await store.list()).map((i) => i.name).sort(), ['docker.io/library/app:1', 'docker.io/library/b:1']);

    const pa = await pruneImages({ store, root, snapshots, all: true });
    assert.deepEqual(pa.untagged, ['app:1']);
    assert.deepEqual(pa.deleted, [a.config, a.chain[1]]);
    assert.deepEqual((await store.list()).map((i) => i.name), ['docker.io/library/b:1']);
    for (const ch of b.chain) assert.ok(await snap(ch));
    await c.remove();
  });

  describe('the CLI (in-process commander)', () => {
    async function berth(args: string[], io: HousekeepingIo = {}): Promise<{ out: string; err?: ClientError }> {
      const program = new Command();
      program.exitOverride();
      let out = '';
      const w = { write: (s: string) => { out += s; } };
      registerHousekeeping(program, w, { err: w, ...io });
      process.env.BERTH_STORE = layout.dir;
      process.env.BERTH_ROOT = root;
      try {
        await program.parseAsync(['node', 'berth', ...args]);
        return { out };
      } catch (e) {
        return { out, err: e as ClientError };
      } finally {
        delete process.env.BERTH_STORE;
        delete process.env.BERTH_ROOT;
      }
    }
    after(() => { delete process.env.BERTH_STORE; delete process.env.BERTH_ROOT; });

    test('rmi prints Docker\'s Untagged/Deleted lines, goes on past a missing image and fails with its exit code', async () => {
      const a = await image('docker.io/library/app:1', [base, own('a')]);
      const r = await berth(['rmi', 'nope:1', 'app:1']);
      assert.equal(r.out, `Untagged: app:1\nDeleted: ${a.config}\nDeleted: ${a.chain[1]}\nDeleted: ${a.chain[0]}\n`);
      assert.ok(r.err instanceof NotFoundError);
      assert.equal(r.err.message, 'No such image: nope:1');
      const b = await image('docker.io/library/b:1', [base], false);
      assert.equal((await berth(['image', 'rm', 'b:1'])).out, `Untagged: b:1\nDeleted: ${b.config}\n`);
    });

    test('rmi -f of an image in use says why it stays', async () => {
      const a = await image('docker.io/library/app:1', [base, own('a')]);
      const c = await fakeContainer(a, true);
      const refused = await berth(['rmi', 'app:1']);
      assert.match(refused.err?.message ?? '', /image is being used by container [0-9a-f]{12}/);
      assert.equal(refused.out, '');
      const forced = await berth(['rmi', '-f', 'app:1']);
      assert.equal(forced.err, undefined);
      assert.match(forced.out, /^Untagged: app:1\nberth: the image of app:1 stays, untagged, because container [0-9a-f]{12} uses it/);
      await c.remove();
    });

    test('image prune asks first (cancel keeps everything), -f does not; it prints what went and the space', async () => {
      const a = await image('docker.io/library/app:1', [base, own('a')]);
      let asked = '';
      const no = await berth(['image', 'prune', '-a'], { confirm: async (q) => { asked = q; return false; } });
      assert.match(asked, /WARNING! This will remove all images without at least one container associated to them/);
      assert.equal(no.err?.message, 'image prune has been cancelled');
      assert.deepEqual(await layout.tags(), ['docker.io/library/app:1']);
      const yes = await berth(['image', 'prune', '-a'], { confirm: async () => true });
      assert.match(yes.out, new RegExp(`^Deleted Images:\nuntagged: app:1\ndeleted: ${a.config}\ndeleted: ${a.chain[1]}\ndeleted: ${a.chain[0]}\n\nTotal reclaimed space: \\d+(\\.\\d+)?kB\n$`));
      const again = await berth(['image', 'prune', '-f'], { confirm: async () => assert.fail('asked despite -f') });
      assert.equal(again.out, 'Total reclaimed space: 0B\n');
    });

    test('image prune without -f when standard input is not a terminal is refused', { skip: process.stdin.isTTY ? 'stdin is a terminal here' : false }, async () => {
      await image('docker.io/library/app:1', [base], false);
      const r = await berth(['image', 'prune']);
      assert.ok(r.err instanceof UsageError);
      assert.match(r.err.message, /not a terminal.*-f/);
      assert.deepEqual(await layout.tags(), ['docker.io/library/app:1']);
    });
  });
});

test('reclaimed space reads like Docker (units.HumanSize)', () => {
  assert.equal(humanSize(0), '0B');
  assert.equal(humanSize(999), '999B');
  assert.equal(humanSize(1234), '1.234kB');
  assert.equal(humanSize(12_345_678), '12.35MB');
  assert.equal(humanSize(12_300_000), '12.3MB');
  assert.equal(humanSize(2_000_000_000), '2GB');
});
