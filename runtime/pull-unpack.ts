// Unpacking while pulling, as docker and podman pull do: when `berth pull` fills the local store
// (as root, where snapshots can be made), each layer of the host-platform image is applied into
// its snapshot as soon as its blob is in the store, while the other layers still download. The
// copy engine tells us (client/copy.ts CopyObserver) when an image manifest starts and when each
// blob has landed; RuntimeImageStore.unpack waits for the blobs it needs and does the rest.
import { readFile } from 'node:fs/promises';
import type { CopyObserver } from '../client/copy.js';
import type { ManifestBlob } from '../client/image-source.js';
import type { Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/manifest.js';
import { ImageError, LAYER_TYPES, RuntimeImageStore, type ImageConfig, type UnpackResult } from './image-store.js';
import { defaultRuntimeRoot, OverlaySnapshotter } from './snapshotter.js';

interface Deferred { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void }

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<void>((res, rej) => { resolve = res; reject = rej; });
  promise.catch(() => undefined); // a blob nobody waited for may be cancelled
  return { promise, resolve, reject };
}

export class PullUnpacker {
  private readonly blobs = new Map<Digest, Deferred>();
  private readonly jobs: Array<Promise<UnpackResult | undefined>> = [];
  private readonly abort = new AbortController();

  private constructor(private readonly store: RuntimeImageStore, private readonly snapshots: OverlaySnapshotter, private readonly name: string) {}

  /** An unpacker for pulls into the local store, when this process can make snapshots (root). */
  static async open(name: string): Promise<PullUnpacker | undefined> {
    if (process.getuid?.() !== 0) return undefined;
    const store = await RuntimeImageStore.open({ create: false });
    return new PullUnpacker(store, await OverlaySnapshotter.open(defaultRuntimeRoot()), name);
  }

  readonly observer: CopyObserver = {
    imageManifest: (m) => {
      const job = this.unpackImage(m);
      job.catch(() => undefined); // reported by finish(), after the copy
      this.jobs.push(job);
    },
    blobDone: (desc) => { this.blob(desc.digest).resolve(); },
  };

  private blob(d: Digest): Deferred {
    let b = this.blobs.get(d);
    if (!b) { b = deferred(); this.blobs.set(d, b); }
    return b;
  }

  private async unpackImage(m: ManifestBlob): Promise<UnpackResult | undefined> {
    let manifest: { config?: Descriptor; layers?: Descriptor[] };
    try { manifest = JSON.parse(m.bytes.toString('utf8')) as typeof manifest; } catch { return undefined; }
    // artifacts (signatures, SBOMs, …) are not filesystems: nothing to unpack
    if (!manifest.config || !Array.isArray(manifest.layers) || !manifest.layers.every((l) => LAYER_TYPES.test(l.mediaType))) return undefined;
    await this.blob(manifest.config.digest).promise;
    const config = JSON.parse(await readFile(this.store.layout.blobPath(manifest.config.digest), 'utf8')) as ImageConfig;
    const want = this.store.platform;
    if ((config.os && config.os !== want.os) || (config.architecture && config.architecture !== want.architecture)) return undefined; // another platform (copy --all)
    const img = this.store.imageFrom(this.name, m.descriptor, manifest, config);
    return this.store.unpack(img, this.snapshots, { signal: this.abort.signal, waitForBlob: (l) => this.blob(l.digest).promise });
  }

  /** After the copy: waits for every unpack; the layers applied. */
  async finish(): Promise<number> {
    let applied = 0;
    for (const r of await Promise.all(this.jobs)) applied += r?.applied.length ?? 0;
    return applied;
  }

  /** The copy failed: stop, and leave no half-unpacked layer behind. */
  async cancel(): Promise<void> {
    this.abort.abort();
    for (const b of this.blobs.values()) b.reject(new ImageError('the pull failed'));
    await Promise.allSettled(this.jobs);
  }
}
