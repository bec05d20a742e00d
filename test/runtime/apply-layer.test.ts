// applyLayer: GNU tar does the extracting, berth checks every entry first. Needs root (owners,
// devices, trusted.* xattrs), which CI has.
import assert from 'node:assert/strict';
import { lstat, mkdir, readFile, readdir, readlink, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { applyLayer, cleanEntryName, layerCompression, LayerError } from '../../runtime/apply-layer.js';
import type { TarWriteEntry } from '../../runtime/tar.js';
import { capNetRaw, countEntries, isRoot, layer, listing, paths, readXattrs, removeDir, run, sha256, stream, tempDir } from './helpers.js';

const skip = !isRoot && 'needs root';

/** Sets the type flag of the first header and fixes its checksum. */
function retype(tar: Buffer, flag: string): Buffer {
  tar.write(flag, 156, 'latin1');
  tar.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += tar[i]!;
  tar.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return tar;
}

describe('applyLayer (root)', { skip }, () => {
  let tmp: string;
  before(async () => { tmp = await tempDir(); });
  after(async () => { await removeDir(tmp); });

  let n = 0;
  const fresh = () => join(tmp, `t${n++}`);

  test('a GNU tar layer of a real tree applies exactly: owners, modes, setuid/setgid, hardlinks, symlinks, fifo, devices, xattrs, mtimes', async () => {
    for (const format of ['pax', 'gnu']) {
      const src = fresh();
      await mkdir(join(src, 'bin'), { recursive: true });
      await mkdir(join(src, 'srv/shared'), { recursive: true });
      await writeFile(join(src, 'bin/tool'), 'binary\n');
      await writeFile(join(src, 'srv/data'), Buffer.alloc(100_000, 7));
      const long = 'x'.repeat(120);
      await mkdir(join(src, 'deep', long), { recursive: true });
      await writeFile(join(src, 'deep', long, `${long}.txt`), 'long names');
      const sh = async (cmd: string) => { await run('sh', ['-c', cmd], { cwd: src }); };
      await sh('chown 1234:5678 srv/data && chmod 4755 bin/tool && chmod 2775 srv/shared && chown 0:50 srv/shared');
      await sh('ln srv/data srv/data-link && ln -s ../srv/data bin/rel-link && ln -s /etc/passwd bin/abs-link && mkfifo srv/fifo && mknod dev-null c 1 3');
      await sh(`touch -h -d '2001-02-03 04:05:06' srv srv/shared bin deep deep/${long} bin/tool srv/data dev-null srv/fifo deep/${long}/${long}.txt`);
      const tarFile = `${src}.${format}.tar`;
      // GNU tar writes xattrs only in PAX archives; the gnu format exercises its long-name entries
      await run('tar', ['-c', '--numeric-owner', ...(format === 'pax' ? ['--xattrs'] : []), `--format=${format}`, '-f', tarFile, '-C', src, '.']);
      const tar = await readFile(tarFile);
      const gz = gzipSync(tar);
      const dest = fresh();
      const r = await applyLayer(stream(gz, 65536), dest, { digest: sha256(gz), size: gz.length, diffId: sha256(tar) });
      assert.equal(r.diffId, sha256(tar));
      assert.equal(r.uncompressedSize, tar.length);
      assert.deepEqual(await listing(dest), await listing(src), `format ${format}`);
      assert.equal((await stat(join(dest, 'srv/data'))).ino, (await stat(join(dest, 'srv/data-link'))).ino);
      assert.equal(await readlink(join(dest, 'bin/abs-link')), '/etc/passwd');
      const dev = await stat(join(dest, 'dev-null'));
      assert.ok(dev.isCharacterDevice());
      assert.equal(dev.rdev, (await stat('/dev/null')).rdev);
    }
  });

  test('binary xattrs (security.capability, user.*) survive byte-exact; uncompressed layers work', async () => {
    const bin = Buffer.from([0xff, 0x00, 0xfe, 0x80, 0x41]);
    const l = layer([
      { name: 'usr/', type: 'dir', mode: 0o755, mtime: 1_000_000_000 },
      { name: 'usr/ping', type: 'file', mode: 0o755, data: Buffer.from('ping'), xattrs: { 'security.capability': capNetRaw(), 'user.bin': bin } },
    ]);
    const dest = fresh();
    await applyLayer(stream(l.tar), dest, { compression: 'none', digest: l.diffId, diffId: l.diffId });
    const x = await readXattrs(dest, 'usr/ping');
    assert.deepEqual(x['security.capability'], capNetRaw());
    assert.deepEqual(x['user.bin'], bin);
    assert.equal((await stat(join(dest, 'usr'))).mtimeMs, 1_000_000_000_000);
  });

  test('OCI whiteouts become overlay whiteouts: .wh.NAME → 0/0 char device, .wh..wh..opq → trusted.overlay.opaque=y; directory metadata kept', async () => {
    const l = layer([
      { name: './', type: 'dir', mode: 0o755, mtime: 1_100_000_000 },
      { name: 'etc/', type: 'dir', mode: 0o750, uid: 7, gid: 8, mtime: 1_200_000_000 },
      { name: 'etc/.wh.passwd', type: 'file' },
      { name: '.wh.tmp', type: 'file' },
      { name: 'opt/', type: 'dir', mode: 0o700, mtime: 1_300_000_000 },
      { name: 'opt/.wh..wh..opq', type: 'file' },
      { name: 'opt/new', type: 'file', data: Buffer.from('new') },
      { name: 'var/.wh..wh.plnk', type: 'file' }, // aufs metadata: ignored (so var/ is not created)
      { name: 'keep', type: 'file', data: Buffer.from('k') },
      { name: '.wh.keep', type: 'file' }, // the same layer has keep: the whiteout only applies below, so keep stays
    ]);
    const dest = fresh();
    const r = await applyLayer(stream(l.gz), dest, { digest: l.digest, diffId: l.diffId });
    assert.equal(r.whiteouts, 2);
    assert.equal(r.opaques, 1);
    assert.deepEqual(await paths(dest), ['etc d', 'etc/passwd c', 'keep f', 'opt d', 'opt/new f', 'tmp c']);
    for (const p of ['etc/passwd', 'tmp']) {
      const s = await lstat(join(dest, p));
      assert.equal(s.rdev, 0);
      assert.equal(s.uid, 0);
    }
    assert.deepEqual(await readXattrs(dest, 'opt'), { 'trusted.overlay.opaque': Buffer.from('y') });
    assert.deepEqual(await readXattrs(dest, 'etc'), {});
    const etc = await stat(join(dest, 'etc'));
    assert.equal(etc.mode & 0o7777, 0o750);
    assert.equal(etc.uid, 7);
    assert.equal(etc.mtimeMs, 1_200_000_000_000);
    assert.equal((await stat(join(dest, 'opt'))).mtimeMs, 1_300_000_000_000);
    assert.equal((await stat(dest)).mtimeMs, 1_100_000_000_000);
  });

  test('long names through PAX and GNU long-name entries, and names with odd bytes', async () => {
    const long = `${'d'.repeat(90)}/${'e'.repeat(90)}/f`;
    const odd = Buffer.from('caf\u00e9 \u00fc', 'utf8').toString('latin1');
    const l = layer([
      { name: long, type: 'file', data: Buffer.from('1') },
      { name: `g/${'h'.repeat(150)}`, type: 'file', data: Buffer.from('2'), gnuLongName: true },
      { name: odd, type: 'file', data: Buffer.from('3') },
      { name: `g/.wh.${'z'.repeat(120)}`, type: 'file', gnuLongName: true },
    ]);
    const dest = fresh();
    await applyLayer(stream(l.gz), dest, { digest: l.digest });
    assert.equal(await readFile(join(dest, long), 'utf8'), '1');
    assert.equal(await readFile(join(dest, 'g', 'h'.repeat(150)), 'utf8'), '2');
    assert.equal(await readFile(join(dest, 'café ü'), 'utf8'), '3');
    assert.ok((await lstat(join(dest, 'g', 'z'.repeat(120)))).isCharacterDevice());
  });

  describe('hostile layers fail with a clear error and leave nothing behind', () => {
    let outside: string;
    before(async () => {
      outside = join(tmp, 'outside');
      await mkdir(outside);
      await writeFile(join(outside, 'victim'), 'original');
    });

    const cases: Array<[string, TarWriteEntry[], RegExp]> = [
      ['"../" in a name', [{ name: 'a/../../outside/pwned', type: 'file', data: Buffer.from('x') }], /contains "\.\."/],
      ['an absolute path', [{ name: '/tmp/pwned', type: 'file', data: Buffer.from('x') }], /absolute path/],
      ['a write through a symlink', [
        { name: 'link', type: 'symlink', linkname: '../outside' },
        { name: 'link/victim', type: 'file', data: Buffer.from('pwned') },
      ], /written through the symlink "link"/],
      ['a write through a symlink to an absolute path (deeper)', [
        { name: 'a/', type: 'dir' },
        { name: 'a/b', type: 'symlink', linkname: '/' },
        { name: 'a/b/tmp/pwned', type: 'file', data: Buffer.from('x') },
      ], /through the symlink "a\/b"/],
      ['a directory entry over a symlink, then a write below it', [
        { name: 'd', type: 'symlink', linkname: '/tmp' },
        { name: 'd/', type: 'dir' },
        { name: 'd/pwned', type: 'file' },
      ], /replaces a symlink/],
      ['a hardlink to /etc/passwd', [{ name: 'passwd', type: 'link', linkname: '/etc/passwd' }], /absolute path/],
      ['a hardlink with ../', [{ name: 'passwd', type: 'link', linkname: '../../../../etc/passwd' }], /contains "\.\."/],
      ['a hardlink to something not in the layer', [{ name: 'passwd', type: 'link', linkname: 'etc/passwd' }], /not an earlier entry/],
      ['a hardlink through a symlink', [
        { name: 'l', type: 'symlink', linkname: '/etc' },
        { name: 'passwd', type: 'link', linkname: 'l/passwd' },
      ], /not an earlier entry|through the symlink/],
      ['a trusted.overlay.opaque xattr', [{ name: 'd/', type: 'dir', xattrs: { 'trusted.overlay.opaque': 'y' } }], /overlayfs xattr trusted\.overlay\.opaque/],
      ['a trusted.overlay.redirect xattr in a global PAX header', [
        { name: 'f', type: 'file', pax: { 'SCHILY.xattr.trusted.overlay.redirect': '/etc' } },
      ], /trusted\.overlay\.redirect/],
      ['a GNU long name with ../', [{ name: `${'../'.repeat(40)}tmp/pwned`, type: 'file', gnuLongName: true }], /contains "\.\."/],
      ['a PAX path with ../ behind a harmless ustar name', [{ name: 'harmless', type: 'file', pax: { path: '../outside/victim' } }], /contains "\.\."/],
      ['a whiteout through a symlink', [
        { name: 'l', type: 'symlink', linkname: '/etc' },
        { name: 'l/.wh.passwd', type: 'file' },
      ], /through the symlink/],
      ['a whiteout, then a symlink over the directory it lies in', [
        { name: 'a/sub/.wh.victim', type: 'file' },
        { name: 'a', type: 'symlink', linkname: '../outside' },
      ], /"a" is a symlink but earlier entries of this layer are below it/],
      ['an opaque marker, then a symlink over its directory', [
        { name: 'a/.wh..wh..opq', type: 'file' },
        { name: 'a', type: 'symlink', linkname: '../outside' },
      ], /"a" is a symlink but earlier entries/],
      ['a file, then a hardlink over the directory it is in', [
        { name: 'x', type: 'file' },
        { name: 'd/f', type: 'file' },
        { name: 'd', type: 'link', linkname: 'x' },
      ], /"d" is a link but earlier entries/],
      ['a regular-file entry named like a directory, with data (GNU tar would read the data as entries)', [
        { name: 'd/', type: 'file', data: Buffer.alloc(1024) },
      ], /names a directory but has a size/],
      ['a whiteout below a file', [
        { name: 'f', type: 'file' },
        { name: 'f/.wh.x', type: 'file' },
      ], /not a directory/],
    ];
    for (const [what, entries, message] of cases) {
      test(what, async () => {
        const l = layer(entries);
        const dest = fresh();
        const before = await countEntries(tmp);
        await assert.rejects(applyLayer(stream(l.gz), dest, { digest: l.digest }), (e: Error) => {
          assert.ok(e instanceof LayerError, `${e.constructor.name}: ${e.message}`);
          assert.match(e.message, message);
          assert.match(e.message, new RegExp(`^layer ${l.digest}: `));
          return true;
        });
        assert.equal(await countEntries(tmp), before, 'no staging directory left');
        await assert.rejects(lstat(dest));
        assert.deepEqual(await readdir(outside), ['victim']);
        assert.equal(await readFile(join(outside, 'victim'), 'utf8'), 'original');
        await assert.rejects(lstat('/tmp/pwned'));
      });
    }
  });

  test('a wrong blob digest, size or diff_id fails and nothing is visible', async () => {
    const l = layer([{ name: 'f', type: 'file', data: Buffer.from('x') }]);
    const other = sha256(Buffer.from('other'));
    for (const opts of [{ digest: other }, { digest: l.digest, size: l.size + 1 }, { digest: l.digest, diffId: other }]) {
      const dest = fresh();
      await assert.rejects(applyLayer(stream(l.gz), dest, opts), /mismatch/);
      await assert.rejects(lstat(dest));
    }
  });

  test('corrupt gzip, truncated tar and bad header checksums are refused', async () => {
    const l = layer([{ name: 'f', type: 'file', data: Buffer.alloc(5000, 1) }]);
    const corrupt = Buffer.from(l.gz);
    corrupt[20] ^= 0xff;
    corrupt[21] ^= 0xff;
    await assert.rejects(applyLayer(stream(corrupt), fresh()), LayerError);
    await assert.rejects(applyLayer(stream(l.tar.subarray(0, 3000)), fresh(), { compression: 'none' }), /truncated/);
    const bad = Buffer.from(l.tar);
    bad[0] = 0x67; // name changes, checksum no longer matches
    await assert.rejects(applyLayer(stream(bad), fresh(), { compression: 'none' }), /checksum/);
    assert.deepEqual((await readdir(tmp)).filter((x) => x.includes('.apply-')), []);
  });

  test('sparse, multi-volume and unknown entry types are refused', async () => {
    for (const flag of ['S', 'M', 'V', 'D', 'Z']) {
      const tar = retype(layer([{ name: 'f', type: 'file' }]).tar, flag);
      await assert.rejects(applyLayer(stream(tar), fresh(), { compression: 'none' }), new RegExp(`unsupported tar entry type "${flag}"`));
    }
    const sparse = layer([{ name: 'f', type: 'file', pax: { 'GNU.sparse.major': '1', 'GNU.sparse.name': '../x' } }]);
    await assert.rejects(applyLayer(stream(sparse.gz), fresh()), /sparse/);
    // a global PAX header naming a path: GNU tar and we could disagree on names, so it is refused
    const global = retype(layer([{ name: 'harmless', type: 'file', pax: { path: 'ok' } }]).tar, 'g');
    await assert.rejects(applyLayer(stream(global), fresh(), { compression: 'none' }), /global PAX header sets "path"/);
    const star = layer([{ name: 'f', type: 'file' }]).tar;
    star.write('tar\0', 508, 'latin1');
    await assert.rejects(applyLayer(stream(retype(star, '0')), fresh(), { compression: 'none' }), /star-format/);
  });

  test('an error from GNU tar itself fails the layer with its message and leaves nothing', async () => {
    const l = layer([
      { name: 'ok', type: 'file', data: Buffer.from('fine') },
      { name: 'n'.repeat(300), type: 'file', data: Buffer.from('x') }, // longer than NAME_MAX
      { name: 'after', type: 'file', data: Buffer.alloc(200_000, 3) },
    ]);
    const dest = fresh();
    await assert.rejects(applyLayer(stream(l.gz), dest, { digest: l.digest }), (e: Error) => {
      assert.ok(e instanceof LayerError);
      assert.match(e.message, /tar failed \(exit 2\): .*File name too long/);
      return true;
    });
    await assert.rejects(lstat(dest));
    assert.deepEqual((await readdir(tmp)).filter((x) => x.includes('.apply-')), []);
  });

  test('tar closing its input early and exiting 0 is not an error, and every byte is still hashed', async () => {
    // a stand-in for tar that closes stdin at once and succeeds: what GNU tar does after the end-of-archive
    // blocks, and (under load) what its exit can look like before our end of the pipe has finished
    const fake = join(tmp, 'tar-closes-early');
    await writeFile(fake, '#!/bin/sh\nexec 0<&-\nexit 0\n', { mode: 0o755 });
    const l = layer(Array.from({ length: 50 }, (_, i) => ({ name: `f${i}`, type: 'file' as const, data: Buffer.alloc(8192, i) })));
    const r = await applyLayer(stream(l.gz), fresh(), { digest: l.digest, diffId: l.diffId, size: l.size, tar: fake });
    assert.equal(r.diffId, l.diffId);
    assert.equal(r.uncompressedSize, l.tar.length);
    await assert.rejects(applyLayer(stream(l.gz), fresh(), { digest: l.digest, diffId: sha256(Buffer.from('other')), tar: fake }), /diff_id mismatch/);
  });

  test('an abort mid-stream stops tar and leaves nothing', async () => {
    const l = layer(Array.from({ length: 200 }, (_, i) => ({ name: `f${i}`, type: 'file' as const, data: Buffer.alloc(4096, i) })));
    const ac = new AbortController();
    const src = stream(l.gz, 1000);
    let seen = 0;
    src.on('data', () => { if (++seen === 3) ac.abort(); });
    const dest = fresh();
    await assert.rejects(applyLayer(src, dest, { signal: ac.signal }), /abort/i);
    await assert.rejects(lstat(dest));
    assert.deepEqual((await readdir(tmp)).filter((x) => x.includes('.apply-')), []);
  });

  test('applies onto an existing empty directory, refuses a non-empty one', async () => {
    const l = layer([{ name: 'f', type: 'file', data: Buffer.from('x') }]);
    const empty = fresh();
    await mkdir(empty);
    await applyLayer(stream(l.gz), empty);
    assert.equal(await readFile(join(empty, 'f'), 'utf8'), 'x');
    await assert.rejects(applyLayer(stream(l.gz), empty), /not empty/);
  });

  test('trailing bytes after the end-of-archive marker are hashed but not extracted', async () => {
    const l = layer([{ name: 'f', type: 'file', data: Buffer.from('x') }]);
    const padded = Buffer.concat([l.tar, Buffer.alloc(10240 - (l.tar.length % 10240))]);
    const r = await applyLayer(stream(padded), fresh(), { compression: 'none' });
    assert.equal(r.diffId, sha256(padded));
  });
});

describe('layer names and media types', () => {
  test('cleanEntryName normalises and refuses escapes', () => {
    assert.equal(cleanEntryName('./a//b/./c/'), 'a/b/c');
    assert.equal(cleanEntryName('./'), '');
    assert.throws(() => cleanEntryName('/etc'), /absolute/);
    assert.throws(() => cleanEntryName('a/../b'), /\.\./);
  });
  test('media types choose the decompressor; unknown types are refused', () => {
    assert.equal(layerCompression('application/vnd.oci.image.layer.v1.tar+gzip'), 'gzip');
    assert.equal(layerCompression('application/vnd.docker.image.rootfs.diff.tar.gzip'), 'gzip');
    assert.equal(layerCompression('application/vnd.oci.image.layer.v1.tar'), 'none');
    assert.equal(layerCompression('application/vnd.oci.image.layer.v1.tar+zstd'), 'zstd');
    assert.equal(layerCompression('application/vnd.oci.image.layer.nondistributable.v1.tar+zstd'), 'zstd');
    assert.throws(() => layerCompression('text/plain'), /unsupported/);
  });
});
