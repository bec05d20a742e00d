// Images as the runtime sees them: read from the client's local store (an OCI image layout whose
// tags are full references, see client/location.ts), an index resolved to the host's platform,
// the config and layers verified, and the layers unpacked into committed snapshots keyed by
// chainID, so a layer shared between images is unpacked once.
import { createHash, randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { parseDigest, type Digest } from '../oci/digest.js';
import { familiarReference, parseImageReference, type ImageReference } from '../oci/image-reference.js';
import type { Descriptor } from '../oci/manifest.js';
import { manifestKind, MediaType } from '../oci/media-types.js';
import { localName } from '../client/location.js';
import { ImageLayout, REF_NAME } from '../client/image-layout.js';
import { localStoreDir } from '../client/location.js';
import { ExitCode } from '../client/errors.js';
import type { ImageHealthcheck } from './health.js';
import { formatPlatform, hostPlatform, listPlatforms, selectPlatform, type Platform } from '../client/platform.js';
// apply-layer.js (zlib, the tar machinery) is loaded only when a layer is applied: `run` of an
// unpacked image does without it
import type { ApplyResult } from './apply-layer.js';
import { SnapshotError, type OverlaySnapshotter } from './snapshotter.js';

export class ImageError extends Error {}
/** The local store has no such image (run --pull missing pulls it then). */
export class ImageNotFoundError extends ImageError { readonly exitCode = ExitCode.NotFound; }
/** What was given is no image reference at all: a usage error (exit 2). */
export class ImageReferenceError extends ImageError { readonly exitCode = ExitCode.Usage; }

/** The parts of an image config (image-spec config.json) the runtime uses. */
export interface ImageConfig {
  created?: string;
  architecture?: string;
  os?: string;
  variant?: string;
  config?: {
    User?: string;
    Env?: string[];
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    WorkingDir?: string;
    ExposedPorts?: Record<string, object>;
    Volumes?: Record<string, object>;
    Labels?: Record<string, string>;
    StopSignal?: string;
    Healthcheck?: ImageHealthcheck;
  };
  rootfs: { type: string; diff_ids: Digest[] };
  /** One entry per build step; those with empty_layer made no layer. */
  history?: Array<{ created?: string; created_by?: string; comment?: string; empty_layer?: boolean }>;
}

export interface ImageSummary {
  /** Docker's short form of the repository ("busybox", "localhost:5000/app"), or "<none>". */
  repository: string;
  tag: string;
  /** The store's name for it (full reference) or the manifest digest. */
  name: string;
  /** Manifest (or index) digest. */
  digest: Digest;
  /** The image ID: the config digest of the manifest for this platform. */
  id: Digest;
  /** Compressed bytes: config + layers. */
  size: number;
  created?: string;
  /** The image config's Labels. */
  labels?: Record<string, string>;
  /** Why the image could not be read (for example, no manifest for this platform). */
  error?: string;
}

export interface ResolvedImage {
  /** What was asked for, normalised ("docker.io/library/busybox:latest"), or the digest. */
  name: string;
  manifest: Descriptor;
  config: ImageConfig;
  configDescriptor: Descriptor;
  layers: Descriptor[];
  diffIds: Digest[];
  chainIds: Digest[];
}

/** containerd/image-spec ChainID: chain[0] = diff[0]; chain[i] = sha256(chain[i-1] + " " + diff[i]). */
export function chainIds(diffIds: readonly Digest[]): Digest[] {
  const out: Digest[] = [];
  for (const d of diffIds) {
    const prev = out[out.length - 1];
    out.push(prev === undefined ? d : `sha256:${createHash('sha256').update(`${prev} ${d}`).digest('hex')}` as Digest);
  }
  return out;
}

export const LAYER_TYPES = /^application\/vnd\.(oci\.image\.layer\.(nondistributable\.)?v1\.tar(\+gzip|\+zstd)?|docker\.image\.rootfs\.(foreign\.)?diff\.tar\.gzip)$/;

export interface UnpackResult {
  /** The chainID of the top layer: the parent for a container's snapshot (undefined: no layers). */
  chainId?: Digest;
  applied: ApplyResult[];
  reused: number;
}

/** Layers applied side by side by unpack (GNU tar processes; the machine's cores bound the gain). */
export const UNPACK_JOBS = 3;

export class RuntimeImageStore {
  private constructor(readonly layout: ImageLayout, readonly platform: Platform) {}

  static async open(opts: { dir?: string; env?: NodeJS.ProcessEnv; platform?: Platform; create?: boolean } = {}): Promise<RuntimeImageStore> {
    const layout = await ImageLayout.open(opts.dir ?? localStoreDir(opts.env), { create: opts.create ?? true });
    return new RuntimeImageStore(layout, opts.platform ?? hostPlatform());
  }

  /** Finds the image manifest for a reference (tag or digest) or a bare manifest digest. */
  async resolve(input: string): Promise<ResolvedImage> {
    let top: Descriptor;
    let name: string;
    if (/^sha(256|512):/.test(input)) {
      top = await this.byDigest(parseDigest(input).digest);
      name = input;
    } else {
      let ref: ImageReference;
      try { ref = parseImageReference(input); } catch (e) { throw new ImageReferenceError((e as Error).message); }
      name = localName(ref);
      if (ref.digest) {
        top = await this.byDigest(ref.digest);
        name = `${name}@${ref.digest}`;
      } else {
        try { top = await this.layout.resolve(name); } catch {
          throw new ImageNotFoundError(`image ${name} is not in the local store (${this.layout.dir}); pull it first`);
        }
      }
    }
    return this.load(name, top);
  }

  private async byDigest(digest: Digest): Promise<Descriptor> {
    const idx = await this.layout.readIndex();
    const entry = idx.manifests.find((m) => m.digest === digest);
    if (entry) return entry;
    let size: number;
    try { size = (await stat(this.layout.blobPath(digest))).size; } catch { throw new ImageNotFoundError(`manifest ${digest} is not in the local store`); }
    const bytes = await this.layout.readSmall({ digest, size });
    const mediaType = (JSON.parse(bytes.toString('utf8')) as { mediaType?: string }).mediaType ?? MediaType.OciManifest;
    return { mediaType, digest, size: bytes.length };
  }

  private async readJson<T>(desc: Descriptor): Promise<T> {
    const bytes = await this.layout.readSmall(desc);
    try { return JSON.parse(bytes.toString('utf8')) as T; } catch (e) { throw new ImageError(`${desc.digest} is not valid JSON: ${(e as Error).message}`); }
  }

  private async load(name: string, top: Descriptor): Promise<ResolvedImage> {
    let desc = top;
    for (let depth = 0; manifestKind(desc.mediaType) === 'index'; depth++) {
      if (depth > 4) throw new ImageError(`${name}: image indexes nested too deeply`);
      const index = await this.readJson<{ manifests?: Descriptor[] }>(desc);
      const manifests = index.manifests ?? [];
      const pick = selectPlatform(manifests, this.platform);
      if (!pick) throw new ImageError(`${name} has no image for ${formatPlatform(this.platform)} (it has: ${listPlatforms(manifests).join(', ') || 'none'})`);
      desc = pick;
    }
    if (manifestKind(desc.mediaType) !== 'image') throw new ImageError(`${name}: ${desc.mediaType} is not an image manifest`);
    const manifest = await this.readJson<{ config?: Descriptor; layers?: Descriptor[] }>(desc);
    if (!manifest.config || !Array.isArray(manifest.layers)) throw new ImageError(`${name}: manifest ${desc.digest} has no config or layers`);
    return this.imageFrom(name, desc, manifest, await this.readJson<ImageConfig>(manifest.config));
  }

  /** An image from its manifest and config (already read), checked as resolve() checks it. */
  imageFrom(name: string, desc: Descriptor, manifest: { config?: Descriptor; layers?: Descriptor[] }, config: ImageConfig): ResolvedImage {
    if (!manifest.config || !Array.isArray(manifest.layers)) throw new ImageError(`${name}: manifest ${desc.digest} has no config or layers`);
    const diffIds = config.rootfs?.diff_ids;
    if (!Array.isArray(diffIds)) throw new ImageError(`${name}: config ${manifest.config.digest} has no rootfs.diff_ids`);
    const layers = manifest.layers;
    if (layers.length !== diffIds.length) throw new ImageError(`${name}: ${layers.length} layers but ${diffIds.length} diff_ids in the config`);
    for (const l of layers) {
      if (!LAYER_TYPES.test(l.mediaType)) throw new ImageError(`${name}: layer ${l.digest} has unsupported media type ${l.mediaType}`);
      parseDigest(l.digest);
    }
    for (const d of diffIds) parseDigest(d);
    return { name, manifest: desc, config, configDescriptor: manifest.config, layers, diffIds, chainIds: chainIds(diffIds) };
  }

  /** Every tagged image of the store, resolved for this store's platform where possible. */
  async list(): Promise<ImageSummary[]> {
    const out: ImageSummary[] = [];
    for (const entry of (await this.layout.readIndex()).manifests) {
      const tag = entry.annotations?.[REF_NAME];
      let repository = '<none>';
      let tagName = '<none>';
      if (tag) {
        try {
          const ref = parseImageReference(tag, { defaultTag: false });
          repository = familiarReference({ registry: ref.registry, repository: ref.repository });
          if (ref.tag) tagName = ref.tag;
        } catch { repository = tag; }
      }
      const summary: ImageSummary = { repository, tag: tagName, name: tag ?? entry.digest, digest: entry.digest, id: entry.digest, size: 0 };
      try {
        const img = await this.load(tag ?? entry.digest, entry);
        summary.id = img.configDescriptor.digest;
        summary.size = img.configDescriptor.size + img.layers.reduce((n, l) => n + l.size, 0);
        if (img.config.created) summary.created = img.config.created;
        if (img.config.config?.Labels) summary.labels = img.config.config.Labels;
      } catch (e) {
        summary.error = (e as Error).message;
      }
      out.push(summary);
    }
    return out;
  }

  /**
   * Unpacks the image's missing layers into committed snapshots. Each layer is applied into an
   * empty directory, so up to UNPACK_JOBS of them are applied side by side; they are chained
   * (committed on their parent) in order as they finish. A failure removes what was half done.
   */
  async unpack(img: ResolvedImage, snapshots: OverlaySnapshotter, opts: {
    signal?: AbortSignal; onLayer?: (i: number, status: 'reused' | 'applied') => void; jobs?: number;
    /** For unpacking while a pull is still downloading: resolves once the blob is in the store. */
    waitForBlob?: (layer: Descriptor) => Promise<void>;
  } = {}): Promise<UnpackResult> {
    const applied: ApplyResult[] = [];
    let reused = 0;
    const missing: number[] = [];
    for (let i = 0; i < img.layers.length; i++) {
      if (await snapshots.exists(img.chainIds[i]!)) continue;
      if (!opts.waitForBlob && !(await this.layout.hasBlob(img.layers[i]!))) throw new ImageError(`${img.name}: layer ${img.layers[i]!.digest} is not in the local store`);
      missing.push(i);
    }
    const abort = new AbortController();
    const onOuterAbort = () => abort.abort(opts.signal?.reason);
    opts.signal?.addEventListener('abort', onOuterAbort, { once: true });
    const keys = new Map<number, string>();
    const results = new Map<number, Promise<ApplyResult>>();
    const applyOne = async (i: number): Promise<ApplyResult> => {
      const layer = img.layers[i]!;
      await opts.waitForBlob?.(layer);
      const key = `extract-${randomBytes(6).toString('hex')}-${img.chainIds[i]}`;
      await snapshots.prepare(key);
      keys.set(i, key);
      const info = await snapshots.stat(key);
      const { applyLayer } = await import('./apply-layer.js');
      return applyLayer(await this.layout.openBlob(layer.digest), snapshots.fsDir(info), {
        mediaType: layer.mediaType, digest: layer.digest, size: layer.size, diffId: img.diffIds[i]!, signal: abort.signal,
      });
    };
    // a small pool, started in layer order
    let next = 0;
    const jobs = Math.max(1, opts.jobs ?? UNPACK_JOBS);
    const startMore = () => {
      while (next < missing.length && [...results.keys()].filter((i) => !settled.has(i)).length < jobs) {
        const i = missing[next++]!;
        const p = applyOne(i);
        results.set(i, p);
        p.then(() => { settled.add(i); startMore(); }, () => { settled.add(i); });
      }
    };
    const settled = new Set<number>();
    try {
      startMore();
      for (let i = 0; i < img.layers.length; i++) {
        const chainId = img.chainIds[i]!;
        const pending = results.get(i);
        if (!pending) {
          // present before we started (or unpacked by someone else meanwhile)
          if (!(await snapshots.exists(chainId))) throw new ImageError(`${img.name}: layer snapshot ${chainId} disappeared while unpacking`);
          reused++;
          opts.onLayer?.(i, 'reused');
          continue;
        }
        const r = await pending;
        const key = keys.get(i)!;
        try {
          await snapshots.commit(chainId, key, i === 0 ? {} : { parent: img.chainIds[i - 1]! });
          keys.delete(i);
          applied.push(r);
          opts.onLayer?.(i, 'applied');
        } catch (e) {
          if (!(e instanceof SnapshotError && e.code === 'ALREADY_EXISTS')) throw e;
          await snapshots.remove(key); // unpacked concurrently by someone else: theirs is the same
          keys.delete(i);
          reused++;
          opts.onLayer?.(i, 'reused');
        }
      }
    } catch (e) {
      abort.abort();
      await Promise.allSettled(results.values());
      for (const key of keys.values()) if (await snapshots.exists(key)) await snapshots.remove(key);
      if (e instanceof (await import('./apply-layer.js')).LayerError) throw new ImageError(`${img.name}: ${e.message}`);
      throw e;
    } finally {
      opts.signal?.removeEventListener('abort', onOuterAbort);
    }
    return { ...(img.chainIds.length ? { chainId: img.chainIds[img.chainIds.length - 1]! } : {}), applied, reused };
  }

}
