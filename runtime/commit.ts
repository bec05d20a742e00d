// A container's changes as an OCI layer, and `commit`: that layer on top of the container's image
// as a new image in the local store (pushable with `berth push`).
//
// The layer is the upper directory with overlay's whiteouts turned back into OCI ones: a 0/0
// character device NAME → an empty `.wh.NAME`, an opaque directory → `.wh..wh..opq` inside it. The
// whiteout entries come first (as the image-spec recommends), then GNU tar archives everything
// else (owners, modes, hardlinks, xattrs except trusted.overlay.*; no atime/ctime, so the same
// upper dir gives the same bytes). gzip + digest + diff_id are computed as the bytes stream.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { lstat, mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { commitFile } from '../client/atomic.js';
import { localName } from '../client/location.js';
import { parseImageReference } from '../oci/image-reference.js';
import { HashingStream, type Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/manifest.js';
import { MediaType } from '../oci/media-types.js';
import { opaqueDirs } from './diff.js';
import { initName } from './init-layer.js';
import type { ImageConfig, ResolvedImage, RuntimeImageStore } from './image-store.js';
import type { OverlaySnapshotter } from './snapshotter.js';
import { encodeTar, type TarWriteEntry } from './tar.js';

function bp(root: string, rel: string): Buffer {
  return rel === '' ? Buffer.from(root) : Buffer.concat([Buffer.from(`${root}/`), Buffer.from(rel, 'latin1')]);
}

function parentOf(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? '' : p.slice(0, i);
}

export interface LayerBlob { digest: Digest; diffId: Digest; size: number; mediaType: string }

/** Streams the OCI layer of `upper` (an overlay upper dir) into `file`, gzip-compressed. */
export async function writeLayer(upper: string, file: string): Promise<LayerBlob> {
  const paths: string[] = [];
  const dirs: string[] = [];
  const whiteouts: TarWriteEntry[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(bp(upper, rel), { encoding: 'latin1' })).sort()) {
      const p = rel ? `${rel}/${name}` : name;
      const st = await lstat(bp(upper, p));
      if (st.isCharacterDevice() && st.rdev === 0) {
        const dir = parentOf(p);
        whiteouts.push({ name: `${dir ? `${dir}/` : ''}.wh.${name}`, type: 'file', mode: 0o644, mtime: Math.floor(st.mtimeMs / 1000) });
        continue;
      }
      paths.push(p);
      if (st.isDirectory()) { dirs.push(p); await walk(p); }
    }
  };
  await walk('');
  for (const d of await opaqueDirs(upper, dirs)) {
    whiteouts.push({ name: d ? `${d}/.wh..wh..opq` : '.wh..wh..opq', type: 'file', mode: 0o644, mtime: 0 });
  }
  const head = encodeTar(whiteouts).subarray(0, -1024); // GNU tar's archive follows: no end marker here
  const tar = spawn('tar', [
    '-c', '--numeric-owner', '--xattrs', '--xattrs-include=*', '--xattrs-exclude=trusted.overlay.*', '--format=pax',
    '--pax-option=delete=atime,delete=ctime', '--no-recursion', '-f', '-', '-C', upper, '--null', '--verbatim-files-from', '-T', '-',
  ], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  tar.stderr.setEncoding('utf8').on('data', (s: string) => { if (stderr.length < 16384) stderr += s; });
  const exited = new Promise<void>((resolve, reject) => {
    tar.on('error', reject);
    tar.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`tar (creating the layer) failed: ${stderr.trim()}`))));
  });
  exited.catch(() => undefined); // awaited below; a failure before then must not be an unhandled rejection
  tar.stdin.on('error', () => undefined);
  tar.stdin.end(Buffer.concat(paths.map((p) => Buffer.from(`${p}\0`, 'latin1'))));
  const diff = new HashingStream();
  const blob = new HashingStream();
  try {
    await pipeline(
      async function* () { yield head; yield* tar.stdout; },
      diff,
      createGzip({ chunkSize: 1 << 20 }),
      blob,
      createWriteStream(file, { flags: 'wx', mode: 0o644 }),
    );
    await exited;
  } catch (e) {
    tar.kill('SIGKILL');
    await exited.catch(() => undefined);
    await rm(file, { force: true });
    throw e;
  }
  return { digest: blob.digest(), diffId: diff.digest(), size: blob.bytes, mediaType: MediaType.OciLayerTarGzip };
}

export interface CommitOptions {
  /** The new image's name in the local store, e.g. "localhost:5000/team/app:v2". */
  tag?: string;
  author?: string;
  comment?: string;
  /** Replaces parts of the image's runtime config (Cmd, Env, …). */
  config?: ImageConfig['config'];
  now?: Date;
}

export interface CommitResult { manifest: Descriptor; config: Descriptor; layer: LayerBlob }

/** Commits the changes of active snapshot `key` (a container of `image`) as a new image. */
export async function commitContainer(store: RuntimeImageStore, snapshots: OverlaySnapshotter, key: string, image: ResolvedImage, opts: CommitOptions = {}): Promise<CommitResult> {
  const info = await snapshots.stat(key);
  if (info.kind !== 'active') throw new Error(`snapshot "${key}" is not a container's snapshot`);
  const top = image.chainIds[image.chainIds.length - 1];
  if (info.parent !== top && info.parent !== initName(top)) throw new Error(`snapshot "${key}" is not based on ${image.name}`);
  const layout = store.layout;
  const tmpDir = join(layout.dir, 'blobs', 'sha256');
  await mkdir(tmpDir, { recursive: true });
  const tmp = join(tmpDir, `.commit-${randomBytes(6).toString('hex')}.tmp`);
  const layer = await writeLayer(snapshots.fsDir(info), tmp);
  if (await layout.hasBlob(layer)) await rm(tmp, { force: true });
  else await commitFile(tmp, layout.blobPath(layer.digest));

  const created = (opts.now ?? new Date()).toISOString();
  const base = image.config as ImageConfig & { history?: unknown[]; author?: string };
  const config = {
    ...base,
    created,
    ...(opts.author ? { author: opts.author } : {}),
    config: { ...base.config, ...opts.config },
    rootfs: { type: 'layers', diff_ids: [...image.diffIds, layer.diffId] },
    history: [...(base.history ?? []), { created, created_by: 'berth commit', ...(opts.author ? { author: opts.author } : {}), ...(opts.comment ? { comment: opts.comment } : {}) }],
  };
  const configBytes = Buffer.from(JSON.stringify(config));
  const configDesc: Descriptor = { mediaType: MediaType.OciConfig, digest: await layout.writeSmall(configBytes), size: configBytes.length };
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: configDesc,
    layers: [...image.layers, { mediaType: layer.mediaType, digest: layer.digest, size: layer.size }],
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const manifestDesc: Descriptor = { mediaType: MediaType.OciManifest, digest: await layout.writeSmall(manifestBytes), size: manifestBytes.length };
  await layout.setTag(manifestDesc, opts.tag ? localName(parseImageReference(opts.tag)) : undefined);
  return { manifest: manifestDesc, config: configDesc, layer };
}

/**
 * `commit --change`: the Dockerfile instructions Docker accepts there (CMD, ENTRYPOINT, ENV, EXPOSE,
 * LABEL, USER, VOLUME, WORKDIR), applied over the image's runtime config.
 */
export function applyChanges(base: ImageConfig['config'] = {}, changes: string[]): ImageConfig['config'] {
  const cfg: NonNullable<ImageConfig['config']> & Record<string, unknown> = { ...base };
  const words = (rest: string): string[] => {
    if (rest.startsWith('[')) {
      try {
        const v = JSON.parse(rest) as unknown;
        if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
      } catch { /* shell form */ }
    }
    return ['/bin/sh', '-c', rest];
  };
  const pairs = (rest: string): Array<[string, string]> => {
    const m = /^(\S+)\s+(.*)$/.exec(rest);
    if (m && !m[1]!.includes('=')) return [[m[1]!, m[2]!]]; // ENV KEY value
    return rest.split(/\s+/).filter(Boolean).map((kv) => {
      const i = kv.indexOf('=');
      if (i <= 0) throw new CommitError(`--change: expected KEY=VALUE, got "${kv}"`);
      return [kv.slice(0, i), kv.slice(i + 1).replace(/^"(.*)"$/, '$1')];
    });
  };
  for (const change of changes) {
    const m = /^\s*([A-Za-z]+)\s+(.*?)\s*$/s.exec(change);
    if (!m) throw new CommitError(`--change "${change}": expected an instruction and its arguments`);
    const [, instr, rest] = m as unknown as [string, string, string];
    switch (instr.toUpperCase()) {
      case 'CMD': cfg.Cmd = words(rest); break;
      case 'ENTRYPOINT': cfg.Entrypoint = words(rest); break;
      case 'WORKDIR': cfg.WorkingDir = rest; break;
      case 'USER': cfg.User = rest; break;
      case 'ENV': {
        const env = [...(cfg.Env ?? [])];
        for (const [k, v] of pairs(rest)) {
          const i = env.findIndex((e) => e.startsWith(`${k}=`));
          if (i >= 0) env[i] = `${k}=${v}`; else env.push(`${k}=${v}`);
        }
        cfg.Env = env;
        break;
      }
      case 'LABEL': cfg.Labels = { ...(cfg.Labels ?? {}), ...Object.fromEntries(pairs(rest)) }; break;
      case 'EXPOSE': cfg.ExposedPorts = { ...(cfg.ExposedPorts as Record<string, object> | undefined ?? {}), ...Object.fromEntries(rest.split(/\s+/).map((p) => [p.includes('/') ? p : `${p}/tcp`, {}])) }; break;
      case 'VOLUME': cfg.Volumes = { ...(cfg.Volumes ?? {}), ...Object.fromEntries((rest.startsWith('[') ? JSON.parse(rest) as string[] : rest.split(/\s+/)).map((v) => [v, {}])) }; break;
      default: throw new CommitError(`--change ${instr}: only CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME and WORKDIR can be changed`);
    }
  }
  return cfg;
}

export class CommitError extends Error {}
