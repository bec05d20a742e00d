// Applies one OCI layer into a fresh, empty directory with GNU tar (correct and fast: owners, modes,
// hardlinks, devices, binary xattrs, directory mtimes; see FACTS.md), converting OCI whiteouts to
// overlayfs form: `.wh.NAME` → a 0/0 character device NAME, `.wh..wh..opq` → the xattr
// trusted.overlay.opaque=y on its directory.
//
// The blob is streamed once: digest of the compressed bytes → gunzip → diff_id of the tar →
// TarInspector (validates every entry, collects whiteouts) → GNU tar. Nothing is trusted to tar
// alone: a name that is absolute or has "..", a write through a symlink of the layer, a hardlink to
// anything but an earlier entry of the layer, or a trusted.overlay.* xattr fails the whole layer.
// The layer is extracted into a staging directory next to `dest` and renamed onto it only after
// every check (digests included) passed, so a failed apply leaves nothing visible.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { HashingStream, parseDigest, type Digest } from '../oci/digest.js';
import { encodeTar, TarFormatError, TarInspector, type TarEntry, type TarWriteEntry } from './tar.js';

export class LayerError extends Error {
  constructor(message: string, readonly layer?: string) {
    super(layer ? `layer ${layer}: ${message}` : message);
  }
}

export type Compression = 'gzip' | 'none';

/** The compression of a layer media type; throws for what cannot be applied. */
export function layerCompression(mediaType: string): Compression {
  if (mediaType.endsWith('+gzip') || mediaType.endsWith('.tar.gzip')) return 'gzip';
  if (mediaType.endsWith('+zstd')) throw new LayerError(`zstd layers are not supported yet (${mediaType})`);
  if (mediaType.endsWith('.tar') || mediaType.endsWith('.v1.tar')) return 'none';
  throw new LayerError(`unsupported layer media type ${mediaType}`);
}

export interface ApplyOptions {
  /** How the blob is compressed (or give mediaType). Default: from mediaType, else 'gzip'. */
  compression?: Compression;
  mediaType?: string;
  /** The blob's expected digest (and size): checked at EOF. */
  digest?: Digest;
  size?: number;
  /** The expected diff_id (digest of the uncompressed tar). */
  diffId?: Digest;
  signal?: AbortSignal;
  /** The tar binary (default "tar", GNU tar). */
  tar?: string;
}

export interface ApplyResult {
  digest: Digest;
  size: number;
  diffId: Digest;
  uncompressedSize: number;
  entries: number;
  whiteouts: number;
  opaques: number;
}

const WH = '.wh.';
const OPAQUE = '.wh..wh..opq';
const META = '.wh..wh.';

const TAR_ARGS = ['-x', '-p', '--numeric-owner', '--xattrs', '--xattrs-include=*'];

type Kind = 'dir' | 'symlink' | 'other';

/** Normalises a tar entry name to "a/b/c" ("" is the root); throws on absolute paths and "..". */
export function cleanEntryName(raw: string, what = 'entry'): string {
  if (raw.startsWith('/')) throw new LayerError(`${what} "${printable(raw)}" is an absolute path`);
  const parts: string[] = [];
  for (const p of raw.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') throw new LayerError(`${what} "${printable(raw)}" contains ".."`);
    parts.push(p);
  }
  return parts.join('/');
}

function printable(s: string): string {
  return Buffer.from(s, 'latin1').toString('utf8').replace(/[\x00-\x1f\x7f]/g, '?').slice(0, 300);
}

function parentOf(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? '' : p.slice(0, i);
}

/** The policy every entry of a layer passes before GNU tar sees it. */
class LayerPolicy {
  readonly kinds = new Map<string, Kind>();
  readonly whiteouts = new Set<string>();
  readonly opaques = new Set<string>();

  check(e: TarEntry): void {
    const path = cleanEntryName(e.name);
    this.checkXattrs(e, path);
    const parts = path === '' ? [] : path.split('/');
    this.checkAncestors(parts, path);
    for (let i = 0; i < parts.length - 1; i++) {
      if (parts[i]!.startsWith(WH)) throw new LayerError(`entry "${printable(path)}" is inside a whiteout`);
    }
    const base = parts[parts.length - 1] ?? '';
    if (base.startsWith(WH)) {
      const dir = parentOf(path);
      if (base === OPAQUE) this.opaques.add(dir);
      else if (!base.startsWith(META)) {
        const target = base.slice(WH.length);
        if (target === '' || target === '.' || target === '..') throw new LayerError(`invalid whiteout "${printable(path)}"`);
        this.whiteouts.add(dir ? `${dir}/${target}` : target);
      }
      return;
    }
    if (path === '' && e.type !== 'dir') throw new LayerError(`the layer's root entry is a ${e.type}, not a directory`);
    let kind: Kind = e.type === 'dir' ? 'dir' : e.type === 'symlink' ? 'symlink' : 'other';
    if (e.type === 'link') {
      const target = cleanEntryName(e.linkname, `hardlink target of "${printable(path)}"`);
      const tk = this.kinds.get(target);
      if (tk === undefined) throw new LayerError(`hardlink "${printable(path)}" points to "${printable(target)}", which is not an earlier entry of this layer`);
      if (tk === 'dir') throw new LayerError(`hardlink "${printable(path)}" points to a directory`);
      this.checkAncestors(target === '' ? [] : target.split('/'), target);
      kind = tk;
    }
    if (e.type === 'file' && e.name.endsWith('/')) kind = 'dir'; // old tars mark directories this way
    if (kind === 'dir' && this.kinds.get(path) === 'symlink') {
      // GNU tar would keep a symlink that resolves to a directory and write the entries below through it
      throw new LayerError(`directory "${printable(path)}" replaces a symlink of the same layer`);
    }
    this.kinds.set(path, kind);
  }

  private checkAncestors(parts: string[], path: string): void {
    let prefix = '';
    for (let i = 0; i < parts.length - 1; i++) {
      prefix = prefix ? `${prefix}/${parts[i]}` : parts[i]!;
      const k = this.kinds.get(prefix);
      if (k === 'symlink') throw new LayerError(`entry "${printable(path)}" would be written through the symlink "${printable(prefix)}"`);
      if (k === 'other') throw new LayerError(`entry "${printable(path)}" is below "${printable(prefix)}", which is not a directory`);
    }
  }

  private checkXattrs(e: TarEntry, path: string): void {
    for (const key of e.pax.keys()) {
      let name: string | undefined;
      if (key.startsWith('SCHILY.xattr.')) name = key.slice('SCHILY.xattr.'.length);
      else if (key.startsWith('LIBARCHIVE.xattr.')) {
        try { name = decodeURIComponent(key.slice('LIBARCHIVE.xattr.'.length)); } catch { name = key; }
      }
      if (name !== undefined && name.startsWith('trusted.overlay.')) {
        throw new LayerError(`entry "${printable(path)}" carries the overlayfs xattr ${printable(name)}, which a layer may not set`);
      }
    }
  }
}

interface TarRun { done: Promise<void>; stdin: Writable; kill(): void }

function runTar(bin: string, args: string[]): TarRun {
  const child = spawn(bin, args, { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (s: string) => { if (stderr.length < 16384) stderr += s; });
  child.stdin!.on('error', () => { /* EPIPE when tar stops early: its exit status tells why */ });
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', (e) => reject(new LayerError(`cannot run ${bin}: ${e.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new LayerError(`tar failed (${signal ?? `exit ${code}`}): ${stderr.trim().split('\n').slice(0, 5).join('; ')}`));
    });
  });
  return { done, stdin: child.stdin!, kill: () => { child.kill('SIGKILL'); } };
}

/**
 * Applies the layer read from `source` into `dest`, which must not exist or be an empty directory.
 * On any failure (hostile entry, digest mismatch, tar error, abort) nothing is left at `dest`'s
 * side and `dest` is untouched.
 */
export async function applyLayer(source: Readable, dest: string, opts: ApplyOptions = {}): Promise<ApplyResult> {
  const label = opts.digest;
  const compression = opts.compression ?? (opts.mediaType ? layerCompression(opts.mediaType) : 'gzip');
  const staging = join(dirname(dest), `.${basename(dest)}.apply-${randomBytes(6).toString('hex')}`);
  try {
    await mkdir(staging, { mode: 0o755 });
    await chmod(staging, 0o755);
  } catch (e) {
    source.destroy();
    throw e;
  }
  const tarBin = opts.tar ?? 'tar';
  try {
    const policy = new LayerPolicy();
    const blobHash = new HashingStream(opts.digest ? parseDigest(opts.digest).algorithm : 'sha256');
    const tarHash = new HashingStream(opts.diffId ? parseDigest(opts.diffId).algorithm : 'sha256');
    const inspector = new TarInspector((e) => policy.check(e));
    const tar = runTar(tarBin, [...TAR_ARGS, '--xattrs-exclude=trusted.overlay.*', `--exclude=${WH}*`, '-f', '-', '-C', staging]);
    const stages = compression === 'gzip'
      ? [blobHash, createGunzip({ chunkSize: 1 << 20 }), tarHash, inspector]
      : [blobHash, tarHash, inspector];
    try {
      await pipeline([source, ...stages, tar.stdin], opts.signal ? { signal: opts.signal } : {});
    } catch (e) {
      // When tar itself stopped early, writing to it fails (EPIPE, premature close…): then tar's own exit
      // status says why, so let it finish instead of killing it first. Any other failure stops tar.
      const code = (e as NodeJS.ErrnoException).code;
      const tarSide = code === 'EPIPE' || code === 'ERR_STREAM_DESTROYED' || code === 'ERR_STREAM_PREMATURE_CLOSE'
        || code === 'ECONNRESET' || code === 'ERR_STREAM_WRITE_AFTER_END';
      const killer = setTimeout(() => tar.kill(), tarSide ? 10_000 : 0);
      const tarError = await tar.done.then(() => undefined, (x: Error) => x);
      clearTimeout(killer);
      if (e instanceof LayerError) throw new LayerError(e.message.replace(/^layer \S+: /, ''), label);
      if (e instanceof TarFormatError) throw new LayerError(e.message, label);
      if ((e as NodeJS.ErrnoException).code === 'Z_DATA_ERROR' || (e as NodeJS.ErrnoException).code === 'Z_BUF_ERROR') {
        throw new LayerError(`not valid gzip data: ${(e as Error).message}`, label);
      }
      if (tarError && tarSide) throw new LayerError(tarError.message, label);
      throw e;
    }
    await tar.done.catch((e: Error) => { throw new LayerError(e.message, label); });
    const digest = blobHash.digest();
    if (opts.digest && digest !== opts.digest) throw new LayerError(`digest mismatch: the blob's bytes hash to ${digest}`, label);
    if (opts.size !== undefined && blobHash.bytes !== opts.size) throw new LayerError(`size mismatch: ${blobHash.bytes} bytes, expected ${opts.size}`, label);
    const diffId = tarHash.digest();
    if (opts.diffId && diffId !== opts.diffId) throw new LayerError(`diff_id mismatch: the tar hashes to ${diffId}, the image config says ${opts.diffId}`, label);

    const whiteouts = [...policy.whiteouts].filter((p) => !policy.kinds.has(p));
    if (whiteouts.length || policy.opaques.size) {
      await applyWhiteouts(staging, whiteouts, policy, tarBin, label);
    }
    await replaceDir(staging, dest);
    return {
      digest, size: blobHash.bytes, diffId, uncompressedSize: tarHash.bytes, entries: inspector.entries,
      whiteouts: whiteouts.length, opaques: policy.opaques.size,
    };
  } catch (e) {
    source.destroy();
    await rm(staging, { recursive: true, force: true });
    throw e;
  }
}

async function replaceDir(staging: string, dest: string): Promise<void> {
  try {
    await rename(staging, dest);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOTEMPTY' || code === 'EEXIST') throw new LayerError(`cannot apply into ${dest}: it is not empty`);
    throw e;
  }
}

function bpath(root: string, rel: string): Buffer {
  return rel === '' ? Buffer.from(root) : Buffer.concat([Buffer.from(`${root}/`), Buffer.from(rel, 'latin1')]);
}

function sortKey(p: string): string[] { return p === '' ? [] : p.split('/'); }
function comparePaths(a: string, b: string): number {
  const x = sortKey(a); const y = sortKey(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i]! < y[i]! ? -1 : 1;
  }
  return x.length - y.length;
}

/**
 * Creates whiteout devices and opaque xattrs with a generated tar fed to GNU tar (Node has no
 * mknod/setxattr). Every directory touched is re-declared with its current mode, owner and mtime
 * so that GNU tar restores them afterwards (directory mtimes are part of the layer).
 */
async function applyWhiteouts(staging: string, whiteouts: string[], policy: LayerPolicy, tarBin: string, label?: string): Promise<void> {
  const now = Math.floor(Date.now() / 1000);
  const dirs = new Map<string, TarWriteEntry>();
  const pending = [...whiteouts.map(parentOf), ...policy.opaques];
  while (pending.length) {
    const d = pending.pop()!;
    if (dirs.has(d)) continue;
    const name = d === '' ? './' : `${d}/`;
    let st;
    try {
      st = await lstat(bpath(staging, d), { bigint: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (st && !st.isDirectory()) throw new LayerError(`whiteout in "${printable(d)}", which is not a directory in this layer`, label);
    const entry: TarWriteEntry = st
      ? { name, type: 'dir', mode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid), mtime: `${st.mtimeNs / 1_000_000_000n}.${String(st.mtimeNs % 1_000_000_000n).padStart(9, '0')}` }
      : { name, type: 'dir', mode: 0o755, mtime: now };
    if (policy.opaques.has(d)) entry.xattrs = { 'trusted.overlay.opaque': 'y' };
    dirs.set(d, entry);
    if (!st && d !== '') pending.push(parentOf(d)); // creating d changes its parent's mtime
  }
  const entries = [
    ...[...dirs.entries()].map(([p, e]) => ({ p, e })),
    ...whiteouts.map((p) => ({ p, e: { name: p, type: 'char', mode: 0, devmajor: 0, devminor: 0, mtime: now } as TarWriteEntry })),
  ].sort((a, b) => comparePaths(a.p, b.p)).map((x) => x.e);
  const tar = runTar(tarBin, [...TAR_ARGS, '-f', '-', '-C', staging]);
  tar.stdin.end(encodeTar(entries));
  await tar.done.catch((e: Error) => { throw new LayerError(`creating whiteouts: ${e.message}`, label); });
}
