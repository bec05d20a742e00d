// Named volumes (runtime/volumes.ts) and `berth volume …` (runtime/housekeeping-cli.ts): the store,
// `-v` resolution, which containers use a volume (read from their bundles' config.json), `rm -v`'s
// helpers, and Docker's copy of the image's files into an empty volume (root: owners and xattrs).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, afterEach, beforeEach, describe, test } from 'node:test';
import { Command } from '../../cli/commander.js';
import { ClientError, NotFoundError, UsageError } from '../../client/errors.js';
import { applyLayer } from '../../runtime/apply-layer.js';
import { registerHousekeeping, type HousekeepingIo } from '../../runtime/housekeeping-cli.js';
import {
  parseVolumeFlag, populateVolume, removeVolumesIfUnused, resolveInRootfs, resolveVolumeFlag, validateVolumeName, VolumeInUseError,
  volumesUsedBy, VolumeStore,
} from '../../runtime/volumes.js';
import { capNetRaw, isRoot, layer, listing, readXattrs, removeDir, stream, tempDir } from './helpers.js';

let tmp: string;
let root: string;
let store: VolumeStore;

beforeEach(async () => {
  tmp = await tempDir('berth-vol-');
  root = join(tmp, 'root');
  store = new VolumeStore(root);
});
afterEach(async () => { await removeDir(tmp); });

/** A container directory as run.ts/containers.ts leave it: the bundle's config.json with its mounts. */
async function fakeContainer(mounts: Array<{ source: string; destination: string }>): Promise<{ id: string; dir: string }> {
  const id = randomBytes(32).toString('hex');
  const dir = join(root, 'containers', id);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.json'), JSON.stringify({
    ociVersion: '1.0.2',
    root: { path: join(dir, 'rootfs') },
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/etc/hosts', type: 'bind', source: join(dir, 'hosts'), options: ['rbind'] },
      ...mounts.map((m) => ({ ...m, type: 'bind', options: ['rbind', 'rprivate', 'rw'] })),
    ],
  }));
  return { id, dir };
}

test('volume names follow Docker\'s grammar: [a-zA-Z0-9][a-zA-Z0-9_.-]+', () => {
  for (const ok of ['ab', 'A1', 'db-data', 'my.vol_2', 'x'.repeat(255)]) assert.doesNotThrow(() => validateVolumeName(ok), ok);
  assert.throws(() => validateVolumeName('a'), /too short, names should be at least two alphanumeric characters/);
  for (const bad of ['', '-ab', '.ab', '_ab', 'a/b', 'a b', 'a:b', 'é1', 'x'.repeat(256)]) {
    assert.throws(() => validateVolumeName(bad), (e: Error) => e instanceof UsageError, JSON.stringify(bad));
  }
  assert.throws(() => validateVolumeName('data/sub'), /a host directory must be given as an absolute path/);
});

test('create makes <root>/volumes/NAME/_data, is idempotent, names a nameless volume at random; inspect and list read like Docker', async () => {
  const before = Date.now();
  const { volume: v, created } = await store.create('db-data', { labels: { tier: 'db' } });
  assert.equal(created, true);
  assert.deepEqual(Object.keys(v).sort(), ['CreatedAt', 'Driver', 'Labels', 'Mountpoint', 'Name', 'Options', 'Scope']);
  assert.equal(v.Name, 'db-data');
  assert.equal(v.Driver, 'local');
  assert.equal(v.Scope, 'local');
  assert.equal(v.Mountpoint, join(root, 'volumes', 'db-data', '_data'));
  assert.deepEqual(v.Labels, { tier: 'db' });
  assert.ok((await stat(v.Mountpoint)).isDirectory());
  assert.equal((await stat(v.Mountpoint)).mode & 0o777, 0o755);
  assert.ok(Date.parse(v.CreatedAt) >= Math.floor(before / 1000) * 1000 && /Z$/.test(v.CreatedAt));
  await writeFile(join(v.Mountpoint, 'keep'), 'x');

  const again = await store.create('db-data');
  assert.equal(again.created, false);
  assert.deepEqual(again.volume, v);
  assert.equal(await readFile(join(v.Mountpoint, 'keep'), 'utf8'), 'x', 'an existing volume is left as it is');

  const anon = await store.create();
  assert.match(anon.volume.Name, /^[0-9a-f]{64}$/);
  assert.equal(anon.volume.Labels, null);
  assert.deepEqual((await store.list()).map((x) => x.Name), [anon.volume.Name, 'db-data'].sort());
  assert.deepEqual(await store.inspect('db-data'), v);
  await assert.rejects(store.inspect('nope'), (e: Error) => e instanceof NotFoundError && e.message === 'get nope: no such volume');
  assert.deepEqual((await readdir(join(root, 'volumes'))).sort(), [anon.volume.Name, 'db-data'].sort(), 'no temporary directories left');
});

test('resolveVolumeFlag: NAME:/path is the volume (made when missing), a path is a bind; bad values are usage errors', async () => {
  const v = await resolveVolumeFlag(root, 'data:/var/lib/data');
  assert.deepEqual(v, { type: 'volume', name: 'data', source: join(root, 'volumes', 'data', '_data'), destination: '/var/lib/data', readonly: false, created: true, copyUp: true });
  assert.ok(existsSync(v.source));
  const again = await resolveVolumeFlag(root, 'data:/srv:ro,nocopy');
  assert.deepEqual(again, { type: 'volume', name: 'data', source: v.source, destination: '/srv', readonly: true, created: false, copyUp: false });
  assert.deepEqual(await resolveVolumeFlag(root, '/srv/www:/www:ro'), { type: 'bind', source: '/srv/www', destination: '/www', readonly: true });
  assert.deepEqual(await resolveVolumeFlag(root, './site/../site:/www:rw', { cwd: '/home/u' }), { type: 'bind', source: '/home/u/site', destination: '/www', readonly: false });
  const bad: Array<[string, RegExp]> = [
    ['/data', /anonymous volumes are not supported/],
    ['data:relative', /must be an absolute path/],
    ['data:/', /cannot be mounted on \//],
    ['data:/x:z', /unsupported option "z"/],
    ['data:/x:ro,rw', /conflicts/],
    ['/host:/x:nocopy', /nocopy applies to named volumes/],
    ['a:/x', /too short/],
    ['bad name:/x', /invalid characters/],
    [':/x', /empty source/],
    ['a:b:c:d', /expected SOURCE:DESTINATION/],
  ];
  for (const [value, re] of bad) {
    assert.throws(() => parseVolumeFlag(value), (e: Error) => e instanceof UsageError && re.test(e.message), value);
    await assert.rejects(resolveVolumeFlag(root, value), UsageError);
  }
  assert.deepEqual((await store.list()).map((x) => x.Name), ['data'], 'no volume made for a bad value');
});

test('a volume in use (a container bundle mounts it, or a directory inside it) cannot be removed, even with -f; prune keeps it', async () => {
  const data = (await store.create('data')).volume;
  const logs = (await store.create('logs')).volume;
  const idle = (await store.create('idle')).volume;
  await writeFile(join(idle.Mountpoint, 'blob'), randomBytes(5000));
  await mkdir(join(logs.Mountpoint, 'app'));
  const c1 = await fakeContainer([{ source: data.Mountpoint, destination: '/data' }, { source: '/srv', destination: '/srv' }]);
  const c2 = await fakeContainer([{ source: join(logs.Mountpoint, 'app'), destination: '/logs' }]);

  assert.deepEqual(await store.usedBy('data'), [c1.id]);
  assert.deepEqual(await store.usedBy('logs'), [c2.id]);
  assert.deepEqual(await store.usedBy('idle'), []);
  assert.deepEqual(await volumesUsedBy(c1.dir), ['data']);
  assert.deepEqual(await volumesUsedBy(c2.dir), ['logs']);
  for (const force of [false, true]) {
    await assert.rejects(store.remove('data', { force }), (e: Error) => e instanceof VolumeInUseError && e.message === `remove data: volume is in use - [${c1.id}]`);
  }
  await assert.rejects(store.remove('nope'), NotFoundError);
  assert.equal(await store.remove('nope', { force: true }), false);

  const p = await store.prune();
  assert.deepEqual(p, { removed: ['idle'], reclaimed: 5000 });
  assert.deepEqual((await store.list()).map((v) => v.Name), ['data', 'logs']);
  assert.equal(await store.remove('logs').catch((e: Error) => e.message), `remove logs: volume is in use - [${c2.id}]`);
});

test('rm -v: the volumes a container mounts go unless another container uses them', async () => {
  const own = (await store.create('own')).volume;
  const shared = (await store.create('shared')).volume;
  const c1 = await fakeContainer([{ source: own.Mountpoint, destination: '/a' }, { source: shared.Mountpoint, destination: '/b' }]);
  const c2 = await fakeContainer([{ source: shared.Mountpoint, destination: '/b' }]);
  const names = await volumesUsedBy(c1.dir);
  assert.deepEqual(names, ['own', 'shared']);
  // while c1's directory is still there it is excluded by id; after it is gone, by absence
  const r = await removeVolumesIfUnused(root, [...names, 'gone-already'], { except: c1.id });
  assert.deepEqual(r, { removed: ['own'], kept: [{ name: 'shared', usedBy: [c2.id] }] });
  assert.ok(!existsSync(join(root, 'volumes', 'own')));
  assert.ok(existsSync(shared.Mountpoint));
  await removeDir(c2.dir);
  await removeDir(c1.dir);
  assert.deepEqual(await removeVolumesIfUnused(root, ['shared']), { removed: ['shared'], kept: [] });
  assert.deepEqual(await volumesUsedBy(join(root, 'containers', 'absent')), []);
});

test('image paths resolve inside the rootfs: symlinks never lead out of it', async () => {
  const rootfs = join(tmp, 'rootfs');
  await mkdir(join(rootfs, 'srv', 'real'), { recursive: true });
  await symlink('/srv/real', join(rootfs, 'abs'));
  await symlink('../../../../../srv/real', join(rootfs, 'rel'));
  await symlink(tmp, join(rootfs, 'out'));
  await symlink('loop2', join(rootfs, 'loop1'));
  await symlink('loop1', join(rootfs, 'loop2'));
  assert.equal(await resolveInRootfs(rootfs, '/abs'), join(rootfs, 'srv', 'real'));
  assert.equal(await resolveInRootfs(rootfs, '/rel/'), join(rootfs, 'srv', 'real'));
  assert.equal(await resolveInRootfs(rootfs, '/../srv/./real'), join(rootfs, 'srv', 'real'));
  assert.equal(await resolveInRootfs(rootfs, '/out'), undefined, `${tmp} inside the rootfs does not exist`);
  assert.equal(await resolveInRootfs(rootfs, '/missing/x'), undefined);
  await assert.rejects(resolveInRootfs(rootfs, '/loop1'), /too many levels of symbolic links/);
});

describe('populateVolume: Docker\'s copy of the image\'s files into an empty volume (root: owners, xattrs)', { skip: !isRoot && 'needs root' }, () => {
  let rootfs: string;
  beforeEach(async () => {
    rootfs = join(tmp, 'rootfs');
    const l = layer([
      { name: 'var/', type: 'dir' },
      { name: 'var/lib/', type: 'dir' },
      { name: 'var/lib/db/', type: 'dir', mode: 0o750, uid: 999, gid: 998, mtime: 1_600_000_000 },
      { name: 'var/lib/db/conf', type: 'file', mode: 0o640, uid: 999, gid: 998, data: Buffer.from('max=1\n'), mtime: 1_600_000_001, xattrs: { 'user.origin': 'image' } },
      { name: 'var/lib/db/ping', type: 'file', mode: 0o4755, uid: 0, gid: 0, data: randomBytes(100), xattrs: { 'security.capability': capNetRaw() } },
      { name: 'var/lib/db/hard', type: 'link', linkname: 'var/lib/db/conf' },
      { name: 'var/lib/db/link', type: 'symlink', linkname: 'conf' },
      { name: 'var/lib/db/sub/', type: 'dir', mode: 0o700, uid: 999, gid: 998 },
      { name: 'var/lib/db/sub/data', type: 'file', data: randomBytes(3000) },
      { name: 'db', type: 'symlink', linkname: '/var/lib/db' },
      { name: 'etc/', type: 'dir' },
      { name: 'etc/file', type: 'file', data: Buffer.from('x') },
      { name: 'secret', type: 'symlink', linkname: join(tmp, 'host-secret') },
    ]);
    await applyLayer(stream(l.gz), rootfs, { digest: l.digest, size: l.size, diffId: l.diffId });
    await mkdir(join(tmp, 'host-secret'));
    await writeFile(join(tmp, 'host-secret', 'key'), 'do not copy');
  });

  test('the directory\'s contents, owners, modes, times, hard links, symlinks and xattrs land in the volume, and its own owner and mode on _data', async () => {
    const v = (await store.create('db')).volume;
    assert.equal(await populateVolume(v.Mountpoint, rootfs, '/var/lib/db'), true);
    assert.deepEqual(await listing(v.Mountpoint), await listing(join(rootfs, 'var/lib/db')));
    const st = await stat(v.Mountpoint);
    assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [999, 998, 0o750]);
    assert.deepEqual(await readXattrs(v.Mountpoint, 'conf'), { 'user.origin': Buffer.from('image') });
    assert.deepEqual(await readXattrs(v.Mountpoint, 'ping'), { 'security.capability': capNetRaw() });
    assert.equal((await stat(join(v.Mountpoint, 'hard'))).ino, (await stat(join(v.Mountpoint, 'conf'))).ino);

    // not empty any more: a second mount copies nothing (the container's changes stay)
    await writeFile(join(v.Mountpoint, 'conf'), 'max=2\n');
    assert.equal(await populateVolume(v.Mountpoint, rootfs, '/var/lib/db'), false);
    assert.equal(await readFile(join(v.Mountpoint, 'conf'), 'utf8'), 'max=2\n');
  });

  test('through a symlink in the image; nothing for a missing path, a file, or a symlink pointing out of the rootfs', async () => {
    const v = (await store.create('via-link')).volume;
    assert.equal(await populateVolume(v.Mountpoint, rootfs, '/db'), true);
    assert.deepEqual((await readdir(v.Mountpoint)).sort(), ['conf', 'hard', 'link', 'ping', 'sub']);
    const e = (await store.create('empty')).volume;
    for (const p of ['/nope', '/etc/file', '/secret']) assert.equal(await populateVolume(e.Mountpoint, rootfs, p), false, p);
    assert.deepEqual(await readdir(e.Mountpoint), []);
  });
});

describe('berth volume … (in-process commander)', () => {
  async function berth(args: string[], io: HousekeepingIo = {}): Promise<{ out: string; err?: ClientError }> {
    const program = new Command();
    program.exitOverride();
    let out = '';
    registerHousekeeping(program, { write: (s: string) => { out += s; } }, io);
    process.env.BERTH_ROOT = root;
    try {
      await program.parseAsync(['node', 'berth', ...args]);
      return { out };
    } catch (e) {
      return { out, err: e as ClientError };
    } finally { delete process.env.BERTH_ROOT; }
  }
  after(() => { delete process.env.BERTH_ROOT; });

  test('create, ls, inspect, rm', async () => {
    assert.equal((await berth(['volume', 'create', '--label', 'a=1', '--label', 'b', 'web'])).out, 'web\n');
    const anon = (await berth(['volume', 'create'])).out.trim();
    assert.match(anon, /^[0-9a-f]{64}$/);
    assert.equal((await berth(['volume', 'ls'])).out, `DRIVER    VOLUME NAME\nlocal     ${anon}\nlocal     web\n`);
    assert.equal((await berth(['volume', 'list', '-q'])).out, `${anon}\nweb\n`);
    const ins = await berth(['volume', 'inspect', 'web']);
    const parsed = JSON.parse(ins.out) as Array<Record<string, unknown>>;
    assert.deepEqual(Object.keys(parsed[0]!), ['CreatedAt', 'Driver', 'Labels', 'Mountpoint', 'Name', 'Options', 'Scope']);
    assert.deepEqual({ ...parsed[0], CreatedAt: undefined }, {
      CreatedAt: undefined, Driver: 'local', Labels: { a: '1', b: '' }, Mountpoint: join(root, 'volumes', 'web', '_data'), Name: 'web', Options: null, Scope: 'local',
    });
    const missing = await berth(['volume', 'inspect', 'web', 'nope']);
    assert.equal((JSON.parse(missing.out) as unknown[]).length, 1);
    assert.ok(missing.err instanceof NotFoundError && /get nope: no such volume/.test(missing.err.message));
    assert.ok((await berth(['volume', 'create', 'x'])).err instanceof UsageError);

    const c = await fakeContainer([{ source: join(root, 'volumes', 'web', '_data'), destination: '/w' }]);
    const rm = await berth(['volume', 'rm', anon, 'web', 'nope']);
    assert.equal(rm.out, `${anon}\n`, 'goes on past failures');
    assert.match(rm.err?.message ?? '', new RegExp(`^remove web: volume is in use - \\[${c.id}\\]\nget nope: no such volume$`));
    assert.equal(rm.err?.exitCode, 1);
    assert.equal((await berth(['volume', 'remove', '-f', 'nope'])).out, 'nope\n');
    await removeDir(c.dir);
    assert.equal((await berth(['volume', 'rm', 'web'])).out, 'web\n');
    assert.equal((await berth(['volume', 'ls', '-q'])).out, '');
  });

  test('prune asks first, -f does not; prints what went and the space', async () => {
    await store.create('used');
    const idle = (await store.create('idle')).volume;
    await writeFile(join(idle.Mountpoint, 'f'), randomBytes(1500));
    await fakeContainer([{ source: join(root, 'volumes', 'used', '_data'), destination: '/u' }]);
    let asked = '';
    const no = await berth(['volume', 'prune'], { confirm: async (q) => { asked = q; return false; } });
    assert.match(asked, /WARNING! This will remove all local volumes not used by at least one container/);
    assert.equal(no.err?.message, 'volume prune has been cancelled');
    assert.equal((await store.list()).length, 2);
    const yes = await berth(['volume', 'prune', '-f'], { confirm: async () => assert.fail('asked despite -f') });
    assert.equal(yes.out, 'Deleted Volumes:\nidle\n\nTotal reclaimed space: 1.5kB\n');
    assert.deepEqual((await store.list()).map((v) => v.Name), ['used']);
  });

  test('prune without -f when standard input is not a terminal is refused', { skip: process.stdin.isTTY ? 'stdin is a terminal here' : false }, async () => {
    await store.create('idle');
    const r = await berth(['volume', 'prune']);
    assert.ok(r.err instanceof UsageError && /not a terminal.*-f/.test(r.err.message));
    assert.equal((await store.list()).length, 1);
  });
});
