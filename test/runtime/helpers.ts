// Helpers for runtime tests: layers and images built locally (no downloads), and ways to look at
// what landed on disk (xattrs are read back through GNU tar, so no attr/libcap tools are needed).
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { ImageLayout } from '../../client/image-layout.js';
import type { Digest } from '../../oci/digest.js';
import type { Descriptor } from '../../oci/manifest.js';
import { encodeTar, TarInspector, type TarEntry, type TarWriteEntry } from '../../runtime/tar.js';

export const run = promisify(execFile);

export const isRoot = process.getuid?.() === 0;

export async function tempDir(prefix = 'berth-rt-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

export function sha256(b: Buffer): Digest {
  return `sha256:${createHash('sha256').update(b).digest('hex')}` as Digest;
}

export interface BuiltLayer { tar: Buffer; gz: Buffer; digest: Digest; diffId: Digest; size: number }

export function layer(entries: TarWriteEntry[]): BuiltLayer {
  const tar = encodeTar(entries);
  const gz = gzipSync(tar);
  return { tar, gz, digest: sha256(gz), diffId: sha256(tar), size: gz.length };
}

export function stream(b: Buffer, chunk = 7000): Readable {
  // small, odd-sized chunks exercise headers split across chunks
  return Readable.from((function* () { for (let i = 0; i < b.length; i += chunk) yield b.subarray(i, i + chunk); })());
}

/** `find` listing: path type mode uid gid size link nlink mtime (mtime of directories and files). */
export async function listing(dir: string): Promise<string[]> {
  const { stdout } = await run('find', [dir, '-mindepth', '1', '-printf', '%P %y %m %U %G %s %l %n %T@\\n'], { maxBuffer: 64 << 20 });
  return stdout.split('\n').filter(Boolean).map((l) => {
    const parts = l.split(' ');
    if (parts[1] === 'd') parts[5] = '-'; // directory sizes depend on the filesystem
    if (parts[1] === 'l') parts[8] = '-'; // symlink times are not part of the contract
    return parts.join(' ');
  }).sort();
}

/** Only the paths, with their types: "etc/a f". */
export async function paths(dir: string): Promise<string[]> {
  const { stdout } = await run('find', [dir, '-mindepth', '1', '-printf', '%P %y\\n']);
  return stdout.split('\n').filter(Boolean).sort();
}

/** The xattrs of one path (relative to root), read through GNU tar's PAX output. */
export async function readXattrs(root: string, rel: string): Promise<Record<string, Buffer>> {
  const child = spawn('tar', ['-c', '--xattrs', '--xattrs-include=*', '--format=pax', '--no-recursion', '-f', '-', '-C', root, rel], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out: Record<string, Buffer> = {};
  const entries: TarEntry[] = [];
  const inspector = new TarInspector((e) => { entries.push(e); });
  child.stdout.pipe(inspector).resume();
  await new Promise<void>((resolve, reject) => {
    inspector.on('finish', resolve);
    inspector.on('error', reject);
  });
  for (const e of entries) for (const [k, v] of e.pax) if (k.startsWith('SCHILY.xattr.')) out[k.slice(13)] = v;
  return out;
}

export async function countEntries(dir: string): Promise<number> {
  try { return (await readdir(dir)).length; } catch { return 0; }
}

/** A valid VFS_CAP_REVISION_2 security.capability value granting cap_net_raw (effective). */
export function capNetRaw(): Buffer {
  const b = Buffer.alloc(20);
  b.writeUInt32LE(0x02000001, 0); // revision 2 | effective
  b.writeUInt32LE(1 << 13, 4); // permitted: CAP_NET_RAW
  return b;
}

export interface TestImage { manifest: Descriptor; config: Record<string, unknown>; layers: BuiltLayer[] }

/** Stores an image (gzip layers) in an OCI layout and tags it. */
export async function addImage(layout: ImageLayout, tag: string, layers: BuiltLayer[], config: Record<string, unknown> = {}, platform = { os: 'linux', architecture: 'amd64' }): Promise<TestImage> {
  for (const l of layers) await layout.writeSmall(l.gz, l.digest);
  const cfg = { ...platform, config: {}, ...config, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) } };
  const cfgBytes = Buffer.from(JSON.stringify(cfg));
  const cfgDigest = await layout.writeSmall(cfgBytes);
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: cfgDigest, size: cfgBytes.length },
    layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: l.digest, size: l.size })),
  };
  const mBytes = Buffer.from(JSON.stringify(manifest));
  const desc: Descriptor = { mediaType: manifest.mediaType, digest: await layout.writeSmall(mBytes), size: mBytes.length };
  await layout.setTag(desc, tag);
  return { manifest: desc, config: cfg, layers };
}
