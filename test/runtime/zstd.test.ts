// zstd layers (application/vnd.oci.image.layer.v1.tar+zstd): applyLayer decompresses them with the
// zstd program when it is on PATH, else with the pure-JS fzstd; both must give exactly what the
// gzip twin of the same tar gives, refuse corrupt blobs with a clear error leaving nothing, and keep
// the digest and diff_id checks. The client pushes and pulls zstd images untouched (it never looks
// inside layers), and the runtime store unpacks them. The blobs are made with the zstd program
// (Debian zstd, installed by scripts/install-test-deps.sh).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, readFile, readdir, stat, symlink, writeFile, lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { applyLayer, findZstd, FZSTD_MAX_WINDOW, LayerError, ZstdFrameScanner, zstdDecoderName } from '../../runtime/apply-layer.js';
import { RuntimeImageStore } from '../../runtime/image-store.js';
import { OverlaySnapshotter } from '../../runtime/snapshotter.js';
import { MediaType } from '../../oci/media-types.js';
import { OciLayout } from '../fixtures/oci-layout.js';
import { runCli } from '../helpers/cli.js';
import { startTestServer, type TestServer } from '../helpers/registry.js';
import { capNetRaw, isRoot, layer, listing, paths, readXattrs, removeDir, run, sha256, stream, tempDir } from './helpers.js';

const zstdBin = findZstd();
const skip = !isRoot ? 'needs root' : !zstdBin ? 'needs the zstd program to make test blobs (apt-get install zstd)' : false;

function zstd(data: Buffer, args: string[] = []): Buffer {
  const r = spawnSync(zstdBin!, ['-q', '-c', ...args], { input: data, maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`zstd ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

function skippableFrame(payload: Buffer, nibble = 0): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt32LE(0x184d2a50 + nibble, 0);
  h.writeUInt32LE(payload.length, 4);
  return Buffer.concat([h, payload]);
}

/** `listing` without the mtimes of whiteout devices: they get the time of the apply, which is not part of a layer. */
async function listingNoWhiteoutTimes(dir: string): Promise<string[]> {
  return (await listing(dir)).map((l) => (/^\S+ c /.test(l) ? l.replace(/ \S+$/, ' -') : l));
}

/** Both decoders, by name: the program and the pure-JS one. */
const DECODERS: Array<[string, string | false]> = [['zstd program', zstdBin ?? 'zstd'], ['pure JS (fzstd)', false]];

describe('zstd layers (root)', { skip }, () => {
  let tmp: string;
  before(async () => { tmp = await tempDir('berth-zstd-'); });
  after(async () => { await removeDir(tmp); });

  let n = 0;
  const fresh = () => join(tmp, `t${n++}`);
  const leftovers = async () => (await readdir(tmp)).filter((x) => x.includes('.apply-'));

  test('a zstd layer of a real tree applies exactly like its gzip twin, with either decoder', async () => {
    const src = fresh();
    await mkdir(join(src, 'bin'), { recursive: true });
    await mkdir(join(src, 'srv/shared'), { recursive: true });
    await writeFile(join(src, 'bin/tool'), 'binary\n');
    await writeFile(join(src, 'srv/data'), Buffer.alloc(300_000, 7));
    await writeFile(join(src, 'srv/random'), Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 7919) % 251)));
    const sh = async (cmd: string) => { await run('sh', ['-c', cmd], { cwd: src }); };
    await sh('chown 1234:5678 srv/data && chmod 4755 bin/tool && chmod 2775 srv/shared && chown 0:50 srv/shared');
    await sh('ln srv/data srv/data-link && ln -s ../srv/data bin/rel-link && mkfifo srv/fifo && mknod dev-null c 1 3');
    await sh("setfattr -n user.note -v hello srv/data 2>/dev/null || true; touch -h -d '2001-02-03 04:05:06' srv srv/shared bin bin/tool srv/data dev-null srv/fifo");
    const tarFile = `${src}.tar`;
    await run('tar', ['-c', '--numeric-owner', '--xattrs', '--format=pax', '-f', tarFile, '-C', src, '.']);
    const tar = await readFile(tarFile);
    const gz = gzipSync(tar);
    const zst = zstd(tar, ['-19']);
    const twin = fresh();
    const g = await applyLayer(stream(gz, 65536), twin, { mediaType: MediaType.OciLayerTarGzip, digest: sha256(gz), size: gz.length, diffId: sha256(tar) });
    for (const [name, decoder] of DECODERS) {
      const dest = fresh();
      const r = await applyLayer(stream(zst, 65536), dest, {
        mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd', digest: sha256(zst), size: zst.length, diffId: sha256(tar), zstd: decoder,
      });
      assert.equal(r.digest, sha256(zst), name);
      assert.equal(r.size, zst.length, name);
      assert.equal(r.diffId, g.diffId, name);
      assert.equal(r.uncompressedSize, tar.length, name);
      assert.equal(r.entries, g.entries, name);
      assert.deepEqual(await listing(dest), await listing(twin), name);
      assert.deepEqual(await listing(dest), await listing(src), name);
      assert.equal((await stat(join(dest, 'srv/data'))).ino, (await stat(join(dest, 'srv/data-link'))).ino, name);
      assert.deepEqual(await readXattrs(dest, 'srv/data'), await readXattrs(src, 'srv/data'), name);
    }
    assert.deepEqual(await leftovers(), []);
  });

  test('whiteouts, binary xattrs, several frames, skippable frames and tiny chunks: both decoders agree with gzip', async () => {
    const l = layer([
      { name: 'etc/', type: 'dir', mode: 0o750, uid: 7, gid: 8, mtime: 1_200_000_000 },
      { name: 'etc/.wh.passwd', type: 'file' },
      { name: 'opt/', type: 'dir', mode: 0o700, mtime: 1_300_000_000 },
      { name: 'opt/.wh..wh..opq', type: 'file' },
      { name: 'opt/new', type: 'file', data: Buffer.alloc(150_000, 3) },
      { name: 'usr/', type: 'dir', mode: 0o755, mtime: 1_400_000_000 },
      { name: 'usr/ping', type: 'file', mode: 0o755, data: Buffer.from('ping'), xattrs: { 'security.capability': capNetRaw() } },
    ]);
    // the tar split in three frames with skippable frames around them, as zstd:chunked writes
    const cut1 = 1000;
    const cut2 = 100_000;
    const zst = Buffer.concat([
      skippableFrame(Buffer.from('leading metadata')),
      zstd(l.tar.subarray(0, cut1)),
      zstd(l.tar.subarray(cut1, cut2), ['--no-check']),
      skippableFrame(Buffer.alloc(0), 15),
      zstd(l.tar.subarray(cut2), ['-1']),
      skippableFrame(Buffer.alloc(300, 1), 3),
    ]);
    const twin = fresh();
    await applyLayer(stream(l.gz), twin, { digest: l.digest, diffId: l.diffId });
    for (const [name, decoder] of DECODERS) {
      // chunk 1: the first 40 kB byte by byte (every header split everywhere), then the rest
      for (const chunk of decoder === false ? [1, 7000, 1 << 20] : [7000, 1 << 20]) {
        const dest = fresh();
        const src = chunk === 1 ? Readable.from((function* () { for (let i = 0; i < 40_000; i++) yield zst.subarray(i, i + 1); yield zst.subarray(40_000); })()) : stream(zst, chunk);
        const r = await applyLayer(src, dest, { compression: 'zstd', digest: sha256(zst), diffId: l.diffId, zstd: decoder });
        assert.equal(r.uncompressedSize, l.tar.length);
        assert.deepEqual(await listingNoWhiteoutTimes(dest), await listingNoWhiteoutTimes(twin), `${name}, ${chunk}-byte chunks`);
        assert.deepEqual(await paths(dest), ['etc d', 'etc/passwd c', 'opt d', 'opt/new f', 'usr d', 'usr/ping f']);
        assert.deepEqual(await readXattrs(dest, 'opt'), { 'trusted.overlay.opaque': Buffer.from('y') });
        assert.deepEqual((await readXattrs(dest, 'usr/ping'))['security.capability'], capNetRaw());
      }
    }
  });

  describe('corrupt or mislabelled zstd blobs fail with a clear error and leave nothing', () => {
    let l: ReturnType<typeof layer>;
    let zst: Buffer;
    before(() => {
      l = layer(Array.from({ length: 40 }, (_, i) => ({ name: `f${i}`, type: 'file' as const, data: Buffer.from(Array.from({ length: 20_000 }, (_, j) => (i * j * 31 + j) % 253)) })));
      zst = zstd(l.tar);
    });

    const cases: Array<[string, () => Buffer, RegExp]> = [
      ['bytes flipped inside a compressed block', () => {
        const b = Buffer.from(zst);
        for (let i = 0; i < 40; i++) b[Math.floor(b.length / 2) + i * 5]! ^= 0x5a;
        return b;
      }, /not valid zstd data|diff_id mismatch|in the zstd-decompressed data: the blob may be corrupt/],
      ['a truncated blob', () => zst.subarray(0, Math.floor(zst.length * 0.6)), /not valid zstd data: truncated/],
      ['gzip data labelled zstd', () => l.gz, /not valid zstd data at byte 0: not a zstd frame \(it starts with 1f8b.*gzip/],
      ['an uncompressed tar labelled zstd', () => l.tar, /not valid zstd data at byte 0: not a zstd frame/],
      ['an empty blob', () => Buffer.alloc(0), /not valid zstd data: the blob is empty/],
      ['garbage after the last frame', () => Buffer.concat([zst, Buffer.from('trailing garbage')]), /not valid zstd data at byte \d+: not a zstd frame/],
      ['a frame that needs a dictionary', () => {
        // frame header descriptor with a 1-byte dictionary id
        const b = Buffer.from(zst);
        const fhd = b[4]!;
        return Buffer.concat([b.subarray(0, 4), Buffer.from([(fhd & ~3) | 1]), b.subarray(5, 6), Buffer.from([9]), b.subarray(6)]);
      }, /needs dictionary 9/],
    ];
    for (const [what, make, message] of cases) {
      for (const [name, decoder] of DECODERS) {
        test(`${what} (${name})`, async () => {
          const blob = make();
          const dest = fresh();
          await assert.rejects(applyLayer(stream(blob), dest, { mediaType: MediaType.OciLayerTarZstd, digest: sha256(blob), diffId: l.diffId, zstd: decoder }), (e: Error) => {
            assert.ok(e instanceof LayerError, `${e.constructor.name}: ${e.message}`);
            assert.match(e.message, message);
            assert.match(e.message, new RegExp(`^layer ${sha256(blob)}: `));
            return true;
          });
          await assert.rejects(lstat(dest));
          assert.deepEqual(await leftovers(), []);
        });
      }
    }
  });

  test('the blob digest, size and diff_id are still checked', async () => {
    const l = layer([{ name: 'f', type: 'file', data: Buffer.from('x') }]);
    const zst = zstd(l.tar);
    const other = sha256(Buffer.from('other'));
    for (const [, decoder] of DECODERS) {
      for (const [opts, message] of [
        [{ digest: other }, /digest mismatch/],
        [{ digest: sha256(zst), size: zst.length + 1 }, /size mismatch/],
        [{ digest: sha256(zst), diffId: other }, /diff_id mismatch: the tar hashes to sha256:/],
        // the compressed digest where the diff_id belongs: the uncompressed tar is what is hashed
        [{ digest: sha256(zst), diffId: sha256(zst) }, /diff_id mismatch/],
      ] as const) {
        const dest = fresh();
        await assert.rejects(applyLayer(stream(zst), dest, { ...opts, compression: 'zstd', zstd: decoder }), message);
        await assert.rejects(lstat(dest));
      }
    }
    assert.deepEqual(await leftovers(), []);
  });

  test('a hostile entry in a zstd layer is refused as in a gzip one', async () => {
    const l = layer([{ name: 'a/../../outside/pwned', type: 'file', data: Buffer.from('x') }]);
    const zst = zstd(l.tar);
    for (const [, decoder] of DECODERS) {
      const dest = fresh();
      await assert.rejects(applyLayer(stream(zst), dest, { compression: 'zstd', zstd: decoder }), /contains "\.\."/);
      await assert.rejects(lstat(dest));
    }
    assert.deepEqual(await leftovers(), []);
  });

  test('windows: up to 128 MiB with the program; over 32 MiB the pure-JS decoder refuses (it would decode wrongly) and says to install zstd', async () => {
    const l = layer([{ name: 'f', type: 'file', data: Buffer.alloc(50_000, 1) }]);
    const big = zstd(l.tar, ['--long=26']); // from a pipe: the frame declares the whole 64 MiB window
    assert.equal(await applyLayer(stream(big), fresh(), { compression: 'zstd', diffId: l.diffId, zstd: zstdBin! }).then((r) => r.diffId), l.diffId);
    const dest = fresh();
    await assert.rejects(applyLayer(stream(big), dest, { compression: 'zstd', diffId: l.diffId, zstd: false }),
      /the zstd frame at byte 0 needs a 64 MiB window, more than the 32 MiB allowed by the built-in decoder \(the zstd program allows 128 MiB: apt-get install zstd\)/);
    await assert.rejects(lstat(dest));
    const huge = zstd(l.tar, ['--long=28']);
    await assert.rejects(applyLayer(stream(huge), fresh(), { compression: 'zstd', zstd: zstdBin! }), /needs a 256 MiB window, more than the 128 MiB allowed/);
    assert.equal(FZSTD_MAX_WINDOW, 32 << 20);
    assert.deepEqual(await leftovers(), []);
  });

  test('with no zstd on PATH the pure-JS decoder is used; a zstd program that cannot run is a clear error', async () => {
    const bin = join(tmp, 'path-without-zstd');
    await mkdir(bin);
    const tarPath = spawnSync('sh', ['-c', 'command -v tar']).stdout.toString().trim();
    await symlink(tarPath, join(bin, 'tar'));
    const l = layer([{ name: 'etc/hello', type: 'file', data: Buffer.from('hi') }]);
    const zst = zstd(l.tar);
    const saved = process.env.PATH;
    process.env.PATH = bin;
    try {
      assert.equal(findZstd(), undefined);
      assert.equal(zstdDecoderName(), 'fzstd (pure JS)');
      const dest = fresh();
      await applyLayer(stream(zst), dest, { mediaType: 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd', digest: sha256(zst), diffId: l.diffId });
      assert.equal(await readFile(join(dest, 'etc/hello'), 'utf8'), 'hi');
    } finally {
      process.env.PATH = saved;
    }
    assert.match(zstdDecoderName(), /^zstd program \(/);
    const dest = fresh();
    await assert.rejects(applyLayer(stream(zst), dest, { compression: 'zstd', zstd: join(tmp, 'no-such-zstd') }),
      /cannot run .*no-such-zstd to decompress a zstd layer: .*ENOENT/);
    await assert.rejects(lstat(dest));
    assert.deepEqual(await leftovers(), []);
  });

  test('an abort mid-stream stops the decoder and tar, and leaves nothing', async () => {
    const l = layer(Array.from({ length: 200 }, (_, i) => ({ name: `f${i}`, type: 'file' as const, data: Buffer.alloc(4096, i) })));
    const zst = zstd(l.tar, ['-1', '--no-check']);
    for (const [, decoder] of DECODERS) {
      const ac = new AbortController();
      const src = stream(zst, 200);
      let seen = 0;
      src.on('data', () => { if (++seen === 3) ac.abort(); });
      const dest = fresh();
      await assert.rejects(applyLayer(src, dest, { compression: 'zstd', signal: ac.signal, zstd: decoder }), /abort/i);
      await assert.rejects(lstat(dest));
    }
    assert.deepEqual(await leftovers(), []);
  });
});

/** A zstd frame made by hand: an RLE block of `rle` zero bytes (if any), then `data` in raw blocks. No zstd program needed. */
function rawFrame(data: Buffer, rle = 0): Buffer {
  const parts: Buffer[] = [Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x50])]; // no checksum, 1 MiB window
  const block = (last: boolean, type: number, size: number) => {
    const h = (last ? 1 : 0) | (type << 1) | (size << 3);
    return Buffer.from([h & 0xff, (h >> 8) & 0xff, (h >> 16) & 0xff]);
  };
  if (rle) parts.push(block(data.length === 0, 1, rle), Buffer.from([0]));
  for (let off = 0; off < data.length; off += 128 << 10) {
    const piece = data.subarray(off, off + (128 << 10));
    parts.push(block(off + piece.length >= data.length, 0, piece.length), piece);
  }
  return Buffer.concat(parts);
}

describe('the built-in zstd decoder without the zstd program (root)', { skip: !isRoot && 'needs root' }, () => {
  let tmp: string;
  before(async () => { tmp = await tempDir('berth-zstd-js-'); });
  after(async () => { await removeDir(tmp); });

  test('a hand-made zstd layer (RLE + raw blocks) applies like its gzip twin', async () => {
    const l = layer([
      { name: 'etc/', type: 'dir', mode: 0o755, mtime: 1_000_000_000 },
      { name: 'etc/motd', type: 'file', data: Buffer.from('hello from zstd\n') },
      { name: 'big', type: 'file', data: Buffer.alloc(300_000, 9) },
    ]);
    // the tar in raw blocks, then 10 KiB of zero padding as an RLE block in a second frame
    const padded = Buffer.concat([l.tar, Buffer.alloc(10240)]);
    const zst = Buffer.concat([rawFrame(padded.subarray(0, padded.length - 10240)), rawFrame(Buffer.alloc(0), 10240)]);
    const dest = join(tmp, 'js');
    const r = await applyLayer(stream(zst), dest, { mediaType: MediaType.OciLayerTarZstd, digest: sha256(zst), diffId: sha256(padded), zstd: false });
    assert.equal(r.uncompressedSize, padded.length);
    const twin = join(tmp, 'gz');
    await applyLayer(stream(l.gz), twin, { diffId: l.diffId });
    assert.deepEqual(await listing(dest), await listing(twin));
    assert.equal(await readFile(join(dest, 'etc/motd'), 'utf8'), 'hello from zstd\n');
  });
});

describe('ZstdFrameScanner', () => {
  test('follows frames split at any byte and refuses reserved values', () => {
    // a raw-block frame: magic, FHD (single segment, 1-byte FCS), FCS=3, block header (last, raw, size 3), "abc"
    const frame = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x20, 0x03, 0x19, 0x00, 0x00, 0x61, 0x62, 0x63]);
    const twice = Buffer.concat([frame, skippableFrame(Buffer.from('xy')), frame]);
    for (let cut = 0; cut <= twice.length; cut++) {
      const s = new ZstdFrameScanner();
      s.scan(twice.subarray(0, cut));
      s.scan(twice.subarray(cut));
      s.end();
      assert.equal(s.frames, 2);
    }
    const truncated = new ZstdFrameScanner();
    truncated.scan(frame.subarray(0, 10));
    assert.throws(() => truncated.end(), /truncated/);
    const reserved = Buffer.from(frame);
    reserved[4] = 0x28; // reserved bit 3
    assert.throws(() => new ZstdFrameScanner().scan(reserved), /reserved bit/);
    const blockType = Buffer.from(frame);
    blockType[6] = 0x1f; // block type 3
    assert.throws(() => new ZstdFrameScanner().scan(blockType), /reserved block type/);
  });
});

describe('zstd images through the client and the runtime store (root)', { skip }, () => {
  let tmp: string;
  let server: TestServer;
  before(async () => {
    tmp = await tempDir('berth-zstd-img-');
    server = await startTestServer();
  });
  after(async () => {
    await server?.stop();
    await removeDir(tmp);
  });

  test('berth push and pull keep zstd layers byte for byte; the store unpacks them like the gzip twin', async () => {
    const base = layer([
      { name: 'bin/', type: 'dir', mode: 0o755 },
      { name: 'bin/hello', type: 'file', mode: 0o755, data: Buffer.from('#!/bin/sh\necho hello\n') },
      { name: 'etc/', type: 'dir', mode: 0o755 },
      { name: 'etc/os-release', type: 'file', data: Buffer.from('ID=berth\n') },
    ]);
    const top = layer([
      { name: 'etc/', type: 'dir', mode: 0o755, mtime: 1_500_000_000 },
      { name: 'etc/.wh.os-release', type: 'file' },
      { name: 'srv/', type: 'dir' },
      { name: 'srv/big', type: 'file', data: Buffer.from(Array.from({ length: 400_000 }, (_, i) => (i * 13) % 256)) },
    ]);
    const layers = [
      { mediaType: MediaType.OciLayerTarGzip, blob: base.gz, diffId: base.diffId },
      { mediaType: MediaType.OciLayerTarZstd, blob: zstd(top.tar, ['-9']), diffId: top.diffId },
    ];
    const dir = join(tmp, 'layout');
    const layout = await OciLayout.open(dir);
    const descs = [];
    for (const l of layers) descs.push(await layout.writeBlob(l.blob, l.mediaType));
    const cfg = Buffer.from(JSON.stringify({ architecture: process.arch === 'x64' ? 'amd64' : process.arch, os: 'linux', config: { Cmd: ['/bin/hello'] }, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) } }));
    const config = await layout.writeBlob(cfg, MediaType.OciConfig);
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: descs }));
    const mdesc = await layout.writeBlob(manifest, MediaType.OciManifest);
    layout.tag(mdesc, 'v1');
    await layout.save();

    const env = { HOME: tmp, DOCKER_CONFIG: join(tmp, 'docker'), XDG_RUNTIME_DIR: join(tmp, 'run'), BERTH_STORE: join(tmp, 'store'), BERTH_ROOT: join(tmp, 'runtime') };
    const ref = `${server.host}/zstd/app:v1`;
    const push = await runCli(['push', '-q', `oci:${dir}:v1`, ref], { env });
    assert.equal(push.code, 0, push.stderr);
    const pull = await runCli(['pull', '-q', ref], { env });
    assert.equal(pull.code, 0, pull.stderr);
    const out = join(tmp, 'pulled');
    const pullOci = await runCli(['pull', '-q', ref, `oci:${out}:v1`], { env });
    assert.equal(pullOci.code, 0, pullOci.stderr);
    for (const d of [mdesc, ...descs]) {
      assert.deepEqual(await readFile(join(out, 'blobs/sha256', d.digest.slice(7))), await readFile(join(dir, 'blobs/sha256', d.digest.slice(7))), `${d.mediaType} ${d.digest}`);
    }

    const store = await RuntimeImageStore.open({ dir: env.BERTH_STORE, create: false });
    const img = await store.resolve(ref);
    assert.equal(img.manifest.digest, mdesc.digest, 'the pulled manifest is the pushed one');
    assert.deepEqual(img.layers.map((l) => l.mediaType), [MediaType.OciLayerTarGzip, MediaType.OciLayerTarZstd]);
    const snapshots = await OverlaySnapshotter.open(join(tmp, 'root'));
    const r = await store.unpack(img, snapshots);
    assert.equal(r.applied.length, 2);
    assert.deepEqual(r.applied.map((a) => a.diffId), [base.diffId, top.diffId]);
    const topDir = snapshots.fsDir(await snapshots.stat(r.chainId!));
    const twin = join(tmp, 'twin');
    await applyLayer(stream(top.gz), twin, { diffId: top.diffId });
    assert.deepEqual(await listingNoWhiteoutTimes(topDir), await listingNoWhiteoutTimes(twin));
    assert.deepEqual(await paths(topDir), ['etc d', 'etc/os-release c', 'srv d', 'srv/big f']);
    // unpacking again reuses both snapshots
    assert.equal((await store.unpack(img, snapshots)).reused, 2);
  });
});
