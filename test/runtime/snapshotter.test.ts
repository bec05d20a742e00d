// The overlay snapshotter and image unpacking, with real overlay mounts (root; CI runs as root).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmod, link, lstat, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ImageLayout } from '../../client/image-layout.js';
import { acquireLock } from '../../client/pid-lock.js';
import { hostPlatform } from '../../client/platform.js';
import { commitContainer } from '../../runtime/commit.js';
import { changes } from '../../runtime/diff.js';
import { chainIds, ImageError, RuntimeImageStore } from '../../runtime/image-store.js';
import { mountAll, unmount } from '../../runtime/mount.js';
import { OverlaySnapshotter, SnapshotError } from '../../runtime/snapshotter.js';
import { addImage, isRoot, layer, listing, paths, removeDir, run, sha256, tempDir } from './helpers.js';

const skip = !isRoot && 'needs root';

describe('overlay snapshotter and image unpack (root, overlay mounts)', { skip }, () => {
  let tmp: string;
  let snaps: OverlaySnapshotter;
  let layout: ImageLayout;
  let store: RuntimeImageStore;
  const mounted: string[] = [];

  before(async () => {
    tmp = await tempDir();
    snaps = await OverlaySnapshotter.open(join(tmp, 'root'));
    layout = await ImageLayout.open(join(tmp, 'store'), { create: true });
    store = await RuntimeImageStore.open({ dir: join(tmp, 'store'), platform: { os: 'linux', architecture: 'amd64' } });
  });
  after(async () => {
    for (const m of mounted.reverse()) await unmount(m).catch(() => unmount(m, { lazy: true }));
    await removeDir(tmp);
  });

  async function mountAt(key: string, name: string, mounts = snaps.mounts(key)): Promise<string> {
    const target = join(tmp, 'mnt', name);
    await mkdir(target, { recursive: true });
    await mountAll(await mounts, target);
    mounted.push(target);
    return target;
  }
  async function umountAt(target: string): Promise<void> {
    await unmount(target);
    mounted.splice(mounted.indexOf(target), 1);
  }

  const base = layer([
    { name: 'etc/', type: 'dir', mode: 0o755 },
    { name: 'etc/passwd', type: 'file', data: Buffer.from('root:x:0:0\n') },
    { name: 'etc/hosts', type: 'file', data: Buffer.from('127.0.0.1 localhost\n') },
    { name: 'opt/', type: 'dir' },
    { name: 'opt/a', type: 'file', data: Buffer.from('a') },
    { name: 'opt/sub/', type: 'dir' },
    { name: 'opt/sub/b', type: 'file', data: Buffer.from('b') },
    { name: 'bin/', type: 'dir' },
    { name: 'bin/sh', type: 'file', mode: 0o755, data: Buffer.from('#!sh') },
    { name: 'var/', type: 'dir' },
    { name: 'var/cache/', type: 'dir' },
    { name: 'var/cache/big', type: 'file', data: Buffer.alloc(1000) },
  ]);
  const middle = layer([
    { name: 'etc/', type: 'dir', mode: 0o755 },
    { name: 'etc/.wh.hosts', type: 'file' },
    { name: 'opt/', type: 'dir' },
    { name: 'opt/.wh..wh..opq', type: 'file' },
    { name: 'opt/c', type: 'file', data: Buffer.from('c') },
    { name: '.wh.var', type: 'file' },
  ]);
  const top = layer([
    { name: 'etc/', type: 'dir', mode: 0o755 },
    { name: 'etc/hosts', type: 'file', data: Buffer.from('10.0.0.1 back\n') },
    { name: 'var/', type: 'dir' },
    { name: 'var/new', type: 'file', data: Buffer.from('n') },
  ]);

  test('chainIDs follow the image-spec: sha256(parent + " " + diff_id)', () => {
    const ids = chainIds([base.diffId, middle.diffId]);
    assert.equal(ids[0], base.diffId);
    assert.equal(ids[1], sha256(Buffer.from(`${base.diffId} ${middle.diffId}`)));
  });

  test('a layered image with whiteouts and an opaque directory shows exactly the right files through overlay', async () => {
    await addImage(layout, 'localhost/layered:v1', [base, middle, top], { config: { Cmd: ['/bin/sh'] } });
    const img = await store.resolve('localhost/layered:v1');
    assert.deepEqual(img.diffIds, [base.diffId, middle.diffId, top.diffId]);
    const r = await store.unpack(img, snaps);
    assert.equal(r.applied.length, 3);
    assert.equal(r.reused, 0);
    assert.equal(r.chainId, img.chainIds[2]);
    for (const c of img.chainIds) assert.equal((await snaps.stat(c)).kind, 'committed');

    const mounts = await snaps.prepare('ctr-1', r.chainId);
    assert.equal(mounts.length, 1);
    assert.equal(mounts[0]!.type, 'overlay');
    const lower = mounts[0]!.options.find((o) => o.startsWith('lowerdir='))!.slice(9).split(':');
    assert.equal(lower.length, 3);
    assert.equal(lower[0], snaps.fsDir(await snaps.stat(img.chainIds[2]!)), 'nearest parent first');

    const root = await mountAt('ctr-1', 'ctr-1');
    assert.deepEqual(await paths(root), [
      'bin d', 'bin/sh f',
      'etc d', 'etc/hosts f', 'etc/passwd f',
      'opt d', 'opt/c f',
      'var d', 'var/new f',
    ]);
    assert.equal(await readFile(join(root, 'etc/hosts'), 'utf8'), '10.0.0.1 back\n');

    // the container writes into its own upper dir; the layers stay untouched
    await writeFile(join(root, 'etc/passwd'), 'changed\n');
    await writeFile(join(root, 'new-file'), 'x');
    await umountAt(root);
    const upper = snaps.fsDir(await snaps.stat('ctr-1'));
    assert.deepEqual((await readdir(upper)).sort(), ['etc', 'new-file']);
    assert.equal(await readFile(join(snaps.fsDir(await snaps.stat(img.chainIds[0]!)), 'etc/passwd'), 'utf8'), 'root:x:0:0\n');

    // mounting the same container snapshot again shows its changes
    const again = await mountAt('ctr-1', 'ctr-1-again');
    assert.equal(await readFile(join(again, 'etc/passwd'), 'utf8'), 'changed\n');
    await umountAt(again);
    await snaps.remove('ctr-1');
  });

  test('changes(): what a container added, changed and deleted, like docker diff', async () => {
    const img = await store.resolve('localhost/layered:v1');
    await snaps.prepare('ctr-diff', img.chainIds[2]);
    const root = await mountAt('ctr-diff', 'ctr-diff');
    await writeFile(join(root, 'etc/passwd'), 'changed\n');
    await writeFile(join(root, 'new-file'), 'x');
    await writeFile(join(root, 'caf\u00e9'), 'x');
    await mkdir(join(root, 'newdir'));
    await writeFile(join(root, 'newdir/x'), 'x');
    await rm(join(root, 'bin/sh'));
    await rm(join(root, 'opt'), { recursive: true });
    await mkdir(join(root, 'opt'));
    await writeFile(join(root, 'opt/z'), 'z');
    await umountAt(root);
    assert.deepEqual((await changes(snaps, 'ctr-diff')).map((c) => `${c.kind} ${c.path}`), [
      'C /bin', 'D /bin/sh', 'A /caf\u00e9', 'C /etc', 'C /etc/passwd', 'A /new-file', 'A /newdir', 'A /newdir/x', 'C /opt', 'D /opt/c', 'A /opt/z',
    ]);
    for await (const i of snaps.walk()) assert.ok(!i.key.startsWith('diff-view-'), 'the lower view is removed');
    await snaps.remove('ctr-diff');
  });

  test('commit: the changes of a container become a new image whose unpacked view equals the container, base layers reused', async () => {
    const img = await store.resolve('localhost/layered:v1');
    await snaps.prepare('ctr-commit', img.chainIds[2]);
    const root = await mountAt('ctr-commit', 'ctr-commit');
    await writeFile(join(root, 'etc/passwd'), 'changed\n');
    await mkdir(join(root, 'newdir'));
    await writeFile(join(root, 'newdir/x'), 'x');
    await link(join(root, 'newdir/x'), join(root, 'newdir/x-hardlink'));
    await chmod(join(root, 'newdir/x'), 0o4711);
    await rm(join(root, 'bin/sh'));
    await rm(join(root, 'opt'), { recursive: true });
    await mkdir(join(root, 'opt'));
    await writeFile(join(root, 'opt/z'), 'z');
    const expected = await listing(root);
    await umountAt(root);

    const r = await commitContainer(store, snaps, 'ctr-commit', img, { tag: 'localhost/committed:v2', comment: 'test', config: { Cmd: ['/bin/true'] } });
    const again = await commitContainer(store, snaps, 'ctr-commit', img);
    assert.equal(again.layer.digest, r.layer.digest, 'the same upper dir gives the same layer bytes');
    const tar = (await run('sh', ['-c', `gzip -dc < ${store.layout.blobPath(r.layer.digest)} | tar -t`])).stdout.split('\n').filter(Boolean);
    assert.deepEqual(tar.filter((n) => n.includes('.wh.')), ['bin/.wh.sh', 'opt/.wh..wh..opq']);

    const committed = await store.resolve('localhost/committed:v2');
    assert.equal(committed.manifest.digest, r.manifest.digest);
    assert.deepEqual(committed.config.config?.Cmd, ['/bin/true']);
    assert.deepEqual(committed.diffIds.slice(0, 3), img.diffIds);
    const u = await store.unpack(committed, snaps);
    assert.equal(u.reused, 3);
    assert.equal(u.applied.length, 1);
    const view = await snaps.view('view-committed', u.chainId!);
    const vroot = await mountAt('view-committed', 'view-committed', Promise.resolve(view));
    assert.deepEqual(await listing(vroot), expected);
    await umountAt(vroot);
    await snaps.remove('view-committed');
    await snaps.remove('ctr-commit');
  });

  test('layers shared between images are unpacked once', async () => {
    const other = layer([{ name: 'app', type: 'file', data: Buffer.from('app') }]);
    await addImage(layout, 'localhost/shared:v1', [base, middle, other]);
    const img = await store.resolve('localhost/shared:v1');
    const applied: string[] = [];
    const r = await store.unpack(img, snaps, { onLayer: (i, s) => applied.push(`${i}:${s}`) });
    assert.deepEqual(applied, ['0:reused', '1:reused', '2:applied']);
    assert.equal(r.reused, 2);
    const again = await store.unpack(img, snaps);
    assert.equal(again.applied.length, 0);
    assert.equal(again.reused, 3);
    const view = await snaps.view('view-shared', again.chainId!);
    const root = await mountAt('view-shared', 'view-shared', Promise.resolve(view));
    assert.deepEqual(await paths(root), ['app f', 'bin d', 'bin/sh f', 'etc d', 'etc/passwd f', 'opt d', 'opt/c f']);
    await assert.rejects(writeFile(join(root, 'x'), 'x'), /EROFS|read-only/i);
    await umountAt(root);
    await snaps.remove('view-shared');
  });

  test('concurrent unpacks of the same new image both succeed and commit each layer once', async () => {
    const l1 = layer([{ name: 'c1', type: 'file', data: Buffer.alloc(300_000, 1) }]);
    const l2 = layer([{ name: 'c2', type: 'file', data: Buffer.alloc(300_000, 2) }]);
    await addImage(layout, 'localhost/concurrent:v1', [l1, l2]);
    const img = await store.resolve('localhost/concurrent:v1');
    const [a, b] = await Promise.all([store.unpack(img, snaps), store.unpack(img, snaps)]);
    assert.equal(a.chainId, b.chainId);
    assert.equal(a.applied.length + a.reused, 2);
    assert.equal(b.applied.length + b.reused, 2);
    let extracts = 0;
    for await (const i of snaps.walk()) if (i.key.startsWith('extract-')) extracts++;
    assert.equal(extracts, 0, 'no active extract snapshot left');
    assert.deepEqual(await snaps.cleanup(), []);
  });

  test('an index resolves to the host platform; a missing platform is a clear error', async () => {
    const l = layer([{ name: 'arch', type: 'file', data: Buffer.from('ok') }]);
    const amd = await addImage(layout, 'tmp-amd64', [l], {}, { os: 'linux', architecture: 'amd64' });
    const arm = await addImage(layout, 'tmp-arm64', [layer([{ name: 'arch', type: 'file', data: Buffer.from('arm') }])], {}, { os: 'linux', architecture: 'arm64' });
    const index = {
      schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [{ ...arm.manifest, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } }, { ...amd.manifest, platform: { os: 'linux', architecture: 'amd64' } }],
    };
    const bytes = Buffer.from(JSON.stringify(index));
    await layout.setTag({ mediaType: index.mediaType, digest: await layout.writeSmall(bytes), size: bytes.length }, 'localhost/multi:v1');
    const img = await store.resolve('localhost/multi:v1');
    assert.equal(img.manifest.digest, amd.manifest.digest);
    const byDigest = await store.resolve(`localhost/multi@${amd.manifest.digest}`);
    assert.equal(byDigest.manifest.digest, amd.manifest.digest);
    const s390 = await RuntimeImageStore.open({ dir: layout.dir, platform: { os: 'linux', architecture: 's390x' } });
    await assert.rejects(s390.resolve('localhost/multi:v1'), /no image for linux\/s390x \(it has: linux\/arm64\/v8, linux\/amd64\)/);
    await assert.rejects(store.resolve('localhost/absent:v1'), (e: Error) => e instanceof ImageError && /not in the local store/.test(e.message));
    assert.ok(hostPlatform().os === 'linux');
  });

  test('a hostile layer fails the unpack: no snapshot is committed and nothing lands outside', async () => {
    const evil = layer([
      { name: 'escape', type: 'symlink', linkname: join(tmp, 'victim-dir') },
      { name: 'escape/owned', type: 'file', data: Buffer.from('pwned') },
    ]);
    await mkdir(join(tmp, 'victim-dir'));
    await addImage(layout, 'localhost/evil:v1', [base, evil]);
    const img = await store.resolve('localhost/evil:v1');
    const before = (await readdir(snaps.dir)).sort();
    await assert.rejects(store.unpack(img, snaps), (e: Error) => e instanceof ImageError && /written through the symlink "escape"/.test(e.message));
    assert.equal(await snaps.exists(img.chainIds[1]!), false);
    assert.deepEqual((await readdir(snaps.dir)).sort(), before, 'no snapshot directory left behind');
    assert.deepEqual(await readdir(join(tmp, 'victim-dir')), []);
  });

  test('a corrupted blob in the store fails the unpack with a digest error', async () => {
    const l = layer([{ name: 'f', type: 'file', data: Buffer.from('original') }]);
    await addImage(layout, 'localhost/corrupt:v1', [l]);
    await writeFile(layout.blobPath(l.digest), layer([{ name: 'f', type: 'file', data: Buffer.from('tampered') }]).gz.subarray(0, l.size));
    const img = await store.resolve('localhost/corrupt:v1');
    await assert.rejects(store.unpack(img, snaps), /mismatch|gzip|truncated/);
    assert.equal(await snaps.exists(img.chainIds[0]!), false);
  });

  test('layers unpack side by side and chain in order; a bad layer in the middle leaves its predecessors and nothing half-done', async () => {
    const ls = [0, 1, 2, 3].map((n) => layer([{ name: `l${n}`, type: 'file', data: Buffer.from(`layer ${n}\n`) }, { name: 'top', type: 'file', data: Buffer.from(`${n}`) }]));
    await addImage(layout, 'localhost/par:v1', ls);
    const img = await store.resolve('localhost/par:v1');
    await writeFile(layout.blobPath(ls[2]!.digest), ls[3]!.gz); // wrong bytes for layer 2
    const before = (await readdir(snaps.dir)).sort();
    await assert.rejects(store.unpack(img, snaps, { jobs: 4 }), /mismatch/);
    assert.deepEqual(await Promise.all(img.chainIds.map((c) => snaps.exists(c))), [true, true, false, false]);
    for await (const i of snaps.walk()) assert.ok(!i.key.startsWith('extract-'), `left: ${i.key}`);
    assert.equal((await readdir(snaps.dir)).length, before.length + 2, 'only the two committed layers stayed');
    await writeFile(layout.blobPath(ls[2]!.digest), ls[2]!.gz);
    const r = await store.unpack(img, snaps, { jobs: 4 });
    assert.equal(r.reused, 2);
    assert.equal(r.applied.length, 2);
    assert.equal((await snaps.stat(img.chainIds[3]!)).parent, img.chainIds[2]);
    await snaps.prepare('par-view', img.chainIds[3]);
    const root = await mountAt('par-view', 'par-view');
    assert.deepEqual((await readdir(root)).sort(), ['l0', 'l1', 'l2', 'l3', 'top']);
    assert.equal(await readFile(join(root, 'top'), 'utf8'), '3', 'the top layer wins');
    await umountAt(root);
    await snaps.remove('par-view');
    // a parent given at commit is only for parentless snapshots, and must be committed
    await snaps.prepare('p1', img.chainIds[0]);
    await assert.rejects(snaps.commit('P1', 'p1', { parent: img.chainIds[0]! }), /already has a parent/);
    await snaps.remove('p1');
    await snaps.prepare('p2');
    await assert.rejects(snaps.commit('P2', 'p2', { parent: 'no-such' }), (e: Error) => e instanceof SnapshotError && e.code === 'NOT_FOUND');
    await snaps.remove('p2');
  });

  test('snapshot semantics: parents must be committed, names are unique, parents cannot be removed, commit is final', async () => {
    await assert.rejects(snaps.prepare('a', 'no-such-parent'), (e: Error) => e instanceof SnapshotError && e.code === 'NOT_FOUND');
    const m = await snaps.prepare('a');
    assert.deepEqual(m[0]!.type, 'bind');
    await assert.rejects(snaps.prepare('a'), (e: Error) => e instanceof SnapshotError && e.code === 'ALREADY_EXISTS');
    await assert.rejects(snaps.prepare('b', 'a'), (e: Error) => e instanceof SnapshotError && e.code === 'FAILED_PRECONDITION');
    await writeFile(join(snaps.fsDir(await snaps.stat('a')), 'file'), 'a');
    await snaps.commit('A', 'a');
    assert.equal(await snaps.exists('a'), false);
    await assert.rejects(snaps.mounts('A'), /committed/);
    await snaps.prepare('b', 'A');
    await assert.rejects(snaps.remove('A'), /parent of "b"/);
    const ro = await snaps.view('ro', 'A');
    assert.equal(ro[0]!.type, 'bind');
    const roRoot = await mountAt('ro', 'ro', Promise.resolve(ro));
    assert.equal(await readFile(join(roRoot, 'file'), 'utf8'), 'a');
    await assert.rejects(writeFile(join(roRoot, 'file'), 'x'), /EROFS|read-only/i);
    await umountAt(roRoot);
    await snaps.remove('ro');
    const root = await mountAt('b', 'b');
    assert.equal(await readFile(join(root, 'file'), 'utf8'), 'a');
    await umountAt(root);
    await snaps.remove('b');
    await snaps.remove('A');
    await assert.rejects(lstat(join(snaps.dir, 'A')));
    assert.deepEqual(await snaps.cleanup(), []);
  });

  test('commit flushes the snapshot\'s filesystem before its metadata says "committed" (crash safety)', async () => {
    const seen: Array<{ dir: string; committedYet: boolean }> = [];
    const watched = await OverlaySnapshotter.open(join(tmp, 'root'), {
      syncfs: async (dir) => { seen.push({ dir, committedYet: await watched.exists('S') }); },
    });
    await watched.prepare('s');
    const dir = watched.fsDir(await watched.stat('s'));
    await writeFile(join(dir, 'file'), 'data');
    await watched.commit('S', 's');
    assert.deepEqual(seen, [{ dir, committedYet: false }]);
    // and a failing flush leaves the snapshot uncommitted
    const failing = await OverlaySnapshotter.open(join(tmp, 'root'), { syncfs: async () => { throw new Error('EIO'); } });
    await failing.prepare('t');
    await assert.rejects(failing.commit('T', 't'), /EIO/);
    assert.equal(await failing.exists('T'), false);
    assert.equal((await failing.stat('t')).kind, 'active');
    await failing.remove('t');
    await watched.remove('S');
  });

  test('a parent removed while a commit onto it flushes (a prune during a pull\'s unpack): the commit fails; no child is left without its parent', async () => {
    await snaps.prepare('rp');
    await snaps.commit('RP', 'rp');
    await snaps.prepare('rc');
    // the flush is where a commit spends its time: another process removes the parent meanwhile
    const flushing = await OverlaySnapshotter.open(join(tmp, 'root'), { syncfs: () => snaps.remove('RP') });
    await assert.rejects(flushing.commit('RC', 'rc', { parent: 'RP' }), (e: Error) => e instanceof SnapshotError && e.code === 'NOT_FOUND' && /"RP" does not exist/.test(e.message));
    assert.equal(await snaps.exists('RP'), false);
    assert.equal(await snaps.exists('RC'), false);
    for await (const s of snaps.walk()) if (s.parent !== undefined) assert.ok(await snaps.exists(s.parent), `${s.key} stands on ${s.parent}, which is there`);
    await snaps.remove('rc');
    assert.deepEqual(await snaps.cleanup(), []);
  });

  test('remove, and prepare or commit onto a parent, wait for meta/lock: while another process holds it, none goes ahead', async () => {
    await snaps.prepare('lp');
    await snaps.commit('LP', 'lp');
    await snaps.prepare('lq');
    await snaps.commit('LQ', 'lq');
    await snaps.prepare('lr');
    const release = await acquireLock(join(snaps.dir, 'meta', 'lock'));
    const done: string[] = [];
    const ops = [
      snaps.remove('LP').then(() => done.push('remove')),
      snaps.prepare('lc', 'LQ').then(() => done.push('prepare')),
      snaps.commit('LR', 'lr', { parent: 'LQ' }).then(() => done.push('commit')),
    ];
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(done, []);
    assert.ok(await snaps.exists('LP') && !(await snaps.exists('lc')) && !(await snaps.exists('LR')));
    await release();
    await Promise.all(ops);
    assert.deepEqual(done.sort(), ['commit', 'prepare', 'remove']);
    await assert.rejects(snaps.remove('LQ'), /parent of/);
    for (const k of ['lc', 'LR', 'LQ']) await snaps.remove(k);
    assert.deepEqual(await snaps.cleanup(), []);
  });

  test('a crash inside commit (the committed metadata written, the active one not yet removed): removing the leftover keeps the committed layer\'s files', async () => {
    await snaps.prepare('extract-0123456789ab-sha256:c0');
    const active = await snaps.stat('extract-0123456789ab-sha256:c0');
    await writeFile(join(snaps.fsDir(active), 'file'), 'layer data');
    const metaFile = `${createHash('sha256').update('extract-0123456789ab-sha256:c0').digest('hex')}.json`;
    const activeMeta = await readFile(join(snaps.dir, 'meta', metaFile));
    await snaps.commit('C0', 'extract-0123456789ab-sha256:c0');
    await writeFile(join(snaps.dir, 'meta', metaFile), activeMeta); // as the crash left it
    assert.equal((await snaps.stat('C0')).id, (await snaps.stat('extract-0123456789ab-sha256:c0')).id);
    // what prune does with an old extract- leftover
    await snaps.remove('extract-0123456789ab-sha256:c0');
    assert.equal(await readFile(join(snaps.fsDir(await snaps.stat('C0')), 'file'), 'utf8'), 'layer data');
    assert.deepEqual(await snaps.orphans(Date.now() + 1000), []);
    await snaps.remove('C0');
    assert.ok(!(await readdir(snaps.dir)).includes(active.id), 'the last one to go takes the directory');
  });
});
