// One container run from start to removal (what `berth run --rm` does): resolve and unpack the
// image, prepare a snapshot on its top layer, mount it as the bundle's rootfs, write config.json
// (and the /etc/hostname, /etc/hosts, /etc/resolv.conf it bind-mounts), run it in the foreground
// with the executor, then unmount and remove everything, whatever happened.
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StdioOptions } from 'node:child_process';
import { runToEnd, type Executor, type RunResult } from './executors/executor.js';
import type { RuntimeImageStore } from './image-store.js';
import { containerParent } from './init-layer.js';
import { mountAll, unmount } from './mount.js';
import { hostsMember, writeEtcFiles, type EtcOptions } from './etc-files.js';
import { bridgeFor } from './networks.js';
import { connect, disconnect, netnsPath, type BridgeNetwork, type NetworkAttachment } from './network.js';
import { PortProxy, portsToPublish, type PublishOptions } from './ports.js';
import type { OverlaySnapshotter } from './snapshotter.js';
import { buildSpec, specJson, type RunOptions } from './spec.js';
import { copyUpVolumes, materializeVolumes, removeAnonymousVolumes } from './volumes.js';

export interface EphemeralRunOptions extends PublishOptions {
  /** A user-defined network to join (run.network is then bridge), and the extra names others find it by there. */
  networkName?: string;
  aliases?: string[];
  etc?: EtcOptions;
  store: RuntimeImageStore;
  snapshots: OverlaySnapshotter;
  executor: Executor;
  /** Where bundles live (a "containers" directory is made in it). */
  root: string;
  image: string;
  run?: RunOptions;
  capture?: boolean;
  /** The container's stdio (default: inherited); ignored with capture. */
  stdio?: StdioOptions;
  signal?: AbortSignal;
}

export async function runEphemeral(o: EphemeralRunOptions): Promise<RunResult & { id: string }> {
  const network = o.run?.network ?? 'none';
  const img = await o.store.resolve(o.image);
  const ports = portsToPublish(network, o, img.config.config?.ExposedPorts);
  const { chainId } = await o.store.unpack(img, o.snapshots, o.signal ? { signal: o.signal } : {});
  const volumes = await materializeVolumes(o.root, o.run?.volumes ?? [], img.config.config?.Volumes);
  const run = { ...o.run, volumes };
  const id = randomBytes(32).toString('hex');
  const key = `container-${id}`;
  const bundle = join(o.root, 'containers', id);
  const rootfs = join(bundle, 'rootfs');
  const hostname = o.run?.hostname ?? id.slice(0, 12);
  await mkdir(rootfs, { recursive: true, mode: 0o700 });
  let mounted = false;
  let prepared = false;
  let attachment: NetworkAttachment | undefined;
  let net: BridgeNetwork | undefined;
  let proxy: PortProxy | undefined;
  try {
    const mounts = await o.snapshots.prepare(key, await containerParent(o.snapshots, chainId), { labels: { 'berth.image': img.name } });
    prepared = true;
    await mountAll(mounts, rootfs);
    mounted = true;
    await copyUpVolumes(rootfs, volumes);
    const etcFiles = await writeEtcFiles(bundle, hostname, network, o.etc);
    net = network === 'bridge' ? await bridgeFor(o.root, o.networkName ?? 'bridge') : undefined;
    if (net) {
      const member = hostsMember(etcFiles.hosts, hostname, o.networkName ? [id.slice(0, 12), ...o.aliases ?? []] : [], o.etc?.addHosts, net.gateway);
      attachment = await connect(id, net, member).catch(async (e: Error) => { await disconnect(id, net).catch(() => undefined); throw e; });
      proxy = await PortProxy.open(ports, attachment.ip); // this process keeps the container, so it relays its ports
    }
    const spec = await buildSpec(img.config, rootfs, {
      cgroupsPath: `/berth/${id}`,
      ...run,
      hostname,
      etcFiles,
      ...(attachment ? { netnsPath: netnsPath(id) } : {}),
    });
    await writeFile(join(bundle, 'config.json'), specJson(spec));
    try {
      const r = await runToEnd(o.executor, id, bundle, { ...(o.capture ? { capture: true } : {}), ...(o.stdio ? { stdio: o.stdio } : {}), ...(o.signal ? { signal: o.signal } : {}) });
      return { ...r, id };
    } finally {
      await o.executor.delete(id);
    }
  } finally {
    proxy?.close();
    // (whatever happens here, the rest of the clean-up must run)
    if (attachment) await disconnect(id, net).catch((e: Error) => process.stderr.write(`berth: ${e.message}\n`));
    // lazily: the container's processes are gone, and a synchronous umount costs ~20 ms of cache flushing
    if (mounted) await unmount(rootfs, { lazy: true });
    if (prepared) await o.snapshots.remove(key);
    await rm(bundle, { recursive: true, force: true }); // unmount threw above if rootfs is still mounted
    // like docker run --rm: the anonymous volumes go with the container
    await removeAnonymousVolumes(o.root, volumes.filter((v) => v.volume?.anonymous).map((v) => v.volume!.name));
  }
}
