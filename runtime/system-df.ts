// berth system df: what images, containers and volumes take on disk, and what the prunes would give
// back. Images count their blobs in the local store (compressed, as `berth images` shows them), each
// blob once however many images share it; containers their own upper directories; volumes their files.
import { join } from 'node:path';
import { listContainers, type Container } from './containers.js';
import { diskUsage } from './disk-usage.js';
import type { RuntimeImageStore } from './image-store.js';
import type { OverlaySnapshotter } from './snapshotter.js';
import type { VolumeStore } from './volumes.js';

export interface DiskUsageRow { type: 'Images' | 'Containers' | 'Local Volumes'; total: number; active: number; size: number; reclaimable: number }

const running = (c: Container) => c.state.status === 'running' || c.state.status === 'restarting';

export async function systemDiskUsage(o: { root: string; store?: RuntimeImageStore; snapshots?: OverlaySnapshotter; volumes: VolumeStore }): Promise<DiskUsageRow[]> {
  const containers = await listContainers(o.root);

  // images: blob → size, and the blobs some container's image needs
  const blobs = new Map<string, number>();
  const needed = new Set<string>();
  let images = 0;
  let active = 0;
  const seen = new Set<string>();
  for (const i of o.store ? await o.store.list() : []) {
    if (i.error || seen.has(i.id)) continue;
    seen.add(i.id);
    images++;
    const img = await o.store!.resolve(i.name).catch(() => undefined);
    if (!img) continue;
    const own = [img.configDescriptor, ...img.layers];
    for (const b of own) blobs.set(b.digest, b.size);
    const used = containers.some((c) => c.config.imageId === i.id || c.config.imageDigest === img.manifest.digest);
    if (used) {
      active++;
      for (const b of own) needed.add(b.digest);
    }
  }
  const imageBytes = [...blobs.values()].reduce((a, b) => a + b, 0);
  const neededBytes = [...needed].reduce((a, d) => a + (blobs.get(d) ?? 0), 0);

  let containerBytes = 0;
  let stoppedBytes = 0;
  for (const c of containers) {
    const info = o.snapshots ? await o.snapshots.stat(c.config.snapshotKey).catch(() => undefined) : undefined;
    const size = info ? await diskUsage(join(o.snapshots!.dir, info.id)) : 0;
    containerBytes += size;
    if (!running(c)) stoppedBytes += size;
  }

  let volumeBytes = 0;
  let unusedBytes = 0;
  let usedVolumes = 0;
  const vols = await o.volumes.list();
  for (const v of vols) {
    const size = await diskUsage(v.Mountpoint);
    volumeBytes += size;
    if ((await o.volumes.usedBy(v.Name)).length) usedVolumes++;
    else unusedBytes += size;
  }

  return [
    { type: 'Images', total: images, active, size: imageBytes, reclaimable: imageBytes - neededBytes },
    { type: 'Containers', total: containers.length, active: containers.filter(running).length, size: containerBytes, reclaimable: stoppedBytes },
    { type: 'Local Volumes', total: vols.length, active: usedVolumes, size: volumeBytes, reclaimable: unusedBytes },
  ];
}
