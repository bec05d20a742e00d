// Housekeeping commands of the `berth` CLI (the logic is in image-remove.ts and volumes.ts):
//   berth rmi [-f] IMAGE…            also `berth image rm|remove`: untag, and delete what no image or container needs
//   berth image prune [-a] [-f]       dangling images (-a: every image no container uses), unreferenced blobs and layers
//   berth container prune [-f]      every stopped container · network prune [-f]  unused user-defined networks
//   berth system prune [-a] [--volumes] [-f] · system df
//   berth volume create [--label K=V] [NAME] · ls|list [-q] · inspect NAME… · rm|remove [-f] NAME… · prune [-f]
// prune asks for confirmation on a terminal; without one it needs -f.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { collect } from '../cli/commander.js';
import { ClientError, ExitCode, NotFoundError, UsageError } from '../client/errors.js';
import type { Output } from './cli.js';
import { parseLabels } from './labels.js';
import type { RuntimeImageStore } from './image-store.js';
import type { OverlaySnapshotter } from './snapshotter.js';
import { listFormat } from './cli-modules.js';


export interface HousekeepingIo {
  /**
   * Asks to go on (prune). Default: a "[y/N]" prompt on the terminal (stderr); a UsageError when
   * standard input is not a terminal (use -f then).
   */
  confirm?: (warning: string) => Promise<boolean>;
  /** Where notes go (default: stderr when `out` is stdout, else `out`). */
  err?: Output;
}

/** Docker's units.HumanSize: decimal units, 4 significant digits ("12.35MB", "0B"). */
export function humanSize(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
  return `${Number(v.toPrecision(4))}${units[i]}`;
}

async function confirmOnTerminal(warning: string): Promise<boolean> {
  if (!process.stdin.isTTY) throw new UsageError(`${warning} Standard input is not a terminal to confirm on: add -f (--force) to go ahead without confirmation`);
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  try {
    const answer = await new Promise<string>((resolve) => {
      rl.on('SIGINT', () => resolve(''));
      rl.question(`${warning}\nAre you sure you want to continue? [y/N] `, resolve);
    });
    return /^y(es)?$/i.test(answer.trim());
  } finally { rl.close(); }
}

/** Runs `fn` on every argument, going on after a failure as Docker does; then throws what failed. */
export async function eachArg(args: string[], fn: (a: string) => Promise<void>): Promise<void> {
  const errors: Error[] = [];
  for (const a of args) {
    try { await fn(a); } catch (e) { errors.push(e as Error); }
  }
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) {
    const allNotFound = errors.every((e) => e instanceof NotFoundError);
    const code = allNotFound ? ExitCode.NotFound : ((errors.find((e) => !(e instanceof NotFoundError)) as ClientError | undefined)?.exitCode ?? ExitCode.Failure);
    throw new ClientError(errors.map((e) => e.message).join('\n'), code);
  }
}

interface ImageContext { store?: RuntimeImageStore; root: string; snapshots?: OverlaySnapshotter }

async function imageContext(): Promise<ImageContext> {
  const { RuntimeImageStore } = await import('./image-store.js');
  const { defaultRuntimeRoot, OverlaySnapshotter } = await import('./snapshotter.js');
  const root = defaultRuntimeRoot();
  let store: RuntimeImageStore | undefined;
  try { store = await RuntimeImageStore.open({ create: false }); } catch (e) {
    if (!(e instanceof NotFoundError)) throw e; // no store yet: no images
  }
  const snapshots = existsSync(join(root, 'snapshots', 'meta')) ? await OverlaySnapshotter.open(root) : undefined;
  return { root, ...(store ? { store } : {}), ...(snapshots ? { snapshots } : {}) };
}

/** Dangling images (all: every image no container uses), their unreferenced blobs and layer snapshots. */
async function pruneUnusedImages(all: boolean): Promise<{ untagged: string[]; deleted: string[]; reclaimed: number }> {
  const ctx = await imageContext();
  if (!ctx.store) return { untagged: [], deleted: [], reclaimed: 0 };
  const { pruneImages } = await import('./image-remove.js');
  return pruneImages({ store: ctx.store, root: ctx.root, ...(ctx.snapshots ? { snapshots: ctx.snapshots } : {}), all });
}

/** Every stopped (created or exited) container, removed with its snapshot; one started meanwhile stays. */
async function pruneContainers(): Promise<{ deleted: string[]; reclaimed: number }> {
  const { idle, listContainers, removeContainer } = await import('./containers.js');
  const { defaultRuntimeRoot, OverlaySnapshotter } = await import('./snapshotter.js');
  const { diskUsage } = await import('./disk-usage.js');
  const root = defaultRuntimeRoot();
  const stopped = (await listContainers(root)).filter(idle);
  const deleted: string[] = [];
  let reclaimed = 0;
  if (!stopped.length) return { deleted, reclaimed };
  const snapshots = await OverlaySnapshotter.open(root);
  for (const c of stopped) {
    const size = await snapshots.stat(c.config.snapshotKey).then((i) => diskUsage(join(snapshots.dir, i.id)), () => 0);
    try { await removeContainer(root, snapshots, c); } catch { continue; } // removeContainer refuses one started meanwhile
    deleted.push(c.config.id);
    reclaimed += size;
  }
  return { deleted, reclaimed };
}

/** User-defined networks no container (running or not) is on. */
async function pruneNetworks(): Promise<string[]> {
  const { listNetworks, removeNetwork } = await import('./networks.js');
  const { listContainers } = await import('./containers.js');
  const { defaultRuntimeRoot } = await import('./snapshotter.js');
  const root = defaultRuntimeRoot();
  const used = new Set((await listContainers(root)).flatMap((c) => [c.config.networkName, ...(c.config.extraNetworks ?? []).map((n) => n.name)]));
  const removed: string[] = [];
  for (const n of await listNetworks(root)) {
    if (used.has(n.name)) continue;
    try { await removeNetwork(root, n); removed.push(n.name); } catch { /* joined meanwhile */ }
  }
  return removed;
}

/** Adds rmi, the `image` group's rm and prune, and the `volume` group; `out` is where they print. */
export function registerHousekeeping(program: Command, out: Output = process.stdout, io: HousekeepingIo = {}): void {
  const err: Output = io.err ?? (out === process.stdout ? process.stderr : out);
  const confirm = io.confirm ?? confirmOnTerminal;
  const group = (name: string, description: string): Command => program.commands.find((c) => c.name() === name) ?? program.command(name).description(description);
  const free = (parent: Command, name: string) => !parent.commands.some((c) => c.name() === name || c.aliases().includes(name));

  const printList = (title: string, items: string[]) => { if (items.length) out.write(`${title}:\n${items.map((i) => `${i}\n`).join('')}\n`); };
  const printImagePrune = (r: { untagged: string[]; deleted: string[] }) => {
    printList('Deleted Images', [...r.untagged.map((u) => `untagged: ${u}`), ...r.deleted.map((d) => `deleted: ${d}`)]);
  };

  const rmi = (cmd: Command) => cmd
    .description('remove images from the local store: untag them, and delete what no other image or container needs')
    .argument('<images...>', 'name[:tag], name@digest, or image ID (full or a unique prefix)')
    .option('-f, --force', 'untag an image a container uses (it stays, untagged, until the container is gone); remove an ID tagged in several repositories')
    .action(async (images: string[], f: { force?: boolean }) => {
      const ctx = await imageContext();
      const { removeImage } = await import('./image-remove.js');
      await eachArg(images, async (ref) => {
        if (!ctx.store) throw new NotFoundError(`No such image: ${ref}`);
        const r = await removeImage(ref, { store: ctx.store, root: ctx.root, ...(ctx.snapshots ? { snapshots: ctx.snapshots } : {}), force: !!f.force });
        for (const u of r.untagged) out.write(`Untagged: ${u}\n`);
        for (const d of r.deleted) out.write(`Deleted: ${d}\n`);
        if (r.keptFor) {
          const ids = [...new Set(r.keptFor.map((u) => u.id.slice(0, 12)))];
          const who = ids.length === 1 ? `container ${ids[0]} uses it` : `containers ${ids.join(', ')} use it`;
          err.write(`berth: the image of ${ref} stays, untagged, because ${who}; berth image prune removes it once ${ids.length === 1 ? 'the container is' : 'they are'} gone\n`);
        }
      });
    });

  if (free(program, 'rmi')) rmi(program.command('rmi'));
  const image = group('image', 'manage images in the local store: rm, prune');
  if (free(image, 'rm')) rmi(image.command('rm').alias('remove'));
  if (free(image, 'prune')) {
    image.command('prune')
      .description('remove dangling images (-a: every image no container uses), unreferenced blobs and unused layer snapshots')
      .option('-a, --all', 'remove every image without at least one container using it, not only dangling ones')
      .option('-f, --force', 'do not prompt for confirmation')
      .action(async (f: { all?: boolean; force?: boolean }) => {
        if (!f.force) {
          const warning = f.all ? 'WARNING! This will remove all images without at least one container associated to them.' : 'WARNING! This will remove all dangling images.';
          if (!(await confirm(warning))) throw new ClientError('image prune has been cancelled');
        }
        const r = await pruneUnusedImages(!!f.all);
        printImagePrune(r);
        out.write(`Total reclaimed space: ${humanSize(r.reclaimed)}\n`);
      });
  }

  const container = group('container', 'manage containers');
  if (free(container, 'prune')) {
    container.command('prune')
      .description('remove every stopped container (created or exited): its snapshot, state and logs; volumes stay')
      .option('-f, --force', 'do not prompt for confirmation')
      .action(async (f: { force?: boolean }) => {
        if (!f.force && !(await confirm('WARNING! This will remove all stopped containers.'))) throw new ClientError('container prune has been cancelled');
        const { deleted, reclaimed } = await pruneContainers();
        printList('Deleted Containers', deleted);
        out.write(`Total reclaimed space: ${humanSize(reclaimed)}\n`);
      });
  }

  const network = group('network', 'manage networks');
  if (free(network, 'prune')) {
    network.command('prune')
      .description('remove every user-defined network no container (running or not) is on')
      .option('-f, --force', 'do not prompt for confirmation')
      .action(async (f: { force?: boolean }) => {
        if (!f.force && !(await confirm('WARNING! This will remove all custom networks not used by at least one container.'))) throw new ClientError('network prune has been cancelled');
        printList('Deleted Networks', await pruneNetworks());
      });
  }

  const system = group('system', 'the runtime\'s disk use, and pruning it all at once');
  if (free(system, 'prune')) {
    system.command('prune')
      .description('remove stopped containers, unused networks, dangling images (-a: every image no container uses) and with --volumes unused volumes')
      .option('-a, --all', 'every image without a container, not only dangling ones')
      .option('--volumes', 'also volumes no container uses')
      .option('-f, --force', 'do not prompt for confirmation')
      .action(async (f: { all?: boolean; volumes?: boolean; force?: boolean }) => {
        const what = ['all stopped containers', 'all networks not used by at least one container', f.volumes ? 'all volumes not used by at least one container' : '', f.all ? 'all images without at least one container associated to them' : 'all dangling images'].filter(Boolean);
        if (!f.force && !(await confirm(`WARNING! This will remove:\n${what.map((w) => `  - ${w}`).join('\n')}`))) throw new ClientError('system prune has been cancelled');
        const c = await pruneContainers();
        printList('Deleted Containers', c.deleted);
        printList('Deleted Networks', await pruneNetworks());
        let reclaimed = c.reclaimed;
        if (f.volumes) {
          const v = await (await volumes()).prune();
          printList('Deleted Volumes', v.removed);
          reclaimed += v.reclaimed;
        }
        const i = await pruneUnusedImages(!!f.all);
        printImagePrune(i);
        out.write(`Total reclaimed space: ${humanSize(reclaimed + i.reclaimed)}\n`);
      });
  }
  if (free(system, 'df')) {
    system.command('df')
      .description('disk use of images, containers and volumes, and how much of it a prune would give back')
      .action(async () => {
        const { systemDiskUsage } = await import('./system-df.js');
        const ctx = await imageContext();
        const rows = await systemDiskUsage({ root: ctx.root, ...(ctx.store ? { store: ctx.store } : {}), ...(ctx.snapshots ? { snapshots: ctx.snapshots } : {}), volumes: await volumes() });
        const { formatTable } = await import('./table.js');
        const pct = (part: number, whole: number) => (whole ? ` (${Math.round((100 * part) / whole)}%)` : '');
        out.write(formatTable([['TYPE', 'TOTAL', 'ACTIVE', 'SIZE', 'RECLAIMABLE'], ...rows.map((r) => [r.type, String(r.total), String(r.active), humanSize(r.size), `${humanSize(r.reclaimable)}${pct(r.reclaimable, r.size)}`])]));
      });
  }

  const volumes = async () => {
    const { VolumeStore } = await import('./volumes.js');
    const { defaultRuntimeRoot } = await import('./snapshotter.js');
    return new VolumeStore(defaultRuntimeRoot());
  };
  const volume = group('volume', 'manage named volumes: create, ls, inspect, rm, prune');
  if (free(volume, 'create')) {
    volume.command('create')
      .description('create a volume (a random name when none is given); an existing one is left as it is')
      .argument('[name]', 'the volume name: [a-zA-Z0-9][a-zA-Z0-9_.-]+')
      .option('--label <key=value>', 'set a label on the volume', collect)
      .action(async (name: string | undefined, f: { label?: string[] }) => {
        const { volume: v } = await (await volumes()).create(name, { labels: parseLabels(f.label) });
        out.write(`${v.Name}\n`);
      });
  }
  if (free(volume, 'ls')) {
    volume.command('ls').alias('list')
      .description('list volumes')
      .option('-q, --quiet', 'only volume names')
      .option('--format <format>', 'table, table TEMPLATE, json, or a Go template; fields Name, Driver, Scope, Mountpoint, Labels')
      .option('-f, --filter <key=value>', 'only volumes that match: dangling=true|false (used by no container), name (a part of it), label (KEY or KEY=VALUE), driver; repeatable', collect)
      .action(async (f: { quiet?: boolean; format?: string; filter?: string[] }) => {
        const store = await volumes();
        let all = await store.list();
        if (f.filter?.length) {
          const { filterVolumes, parseVolumeFilters } = await import('./volume-filter.js');
          all = await filterVolumes(all, parseVolumeFilters(f.filter), async (name) => (await store.usedBy(name)).length > 0);
        }
        if (f.quiet) { out.write(all.map((v) => `${v.Name}\n`).join('')); return; }
        const table = () => `${'DRIVER'.padEnd(10)}VOLUME NAME\n${all.map((v) => `${v.Driver.padEnd(10)}${v.Name}\n`).join('')}`;
        const rows = all.map((v) => ({ Name: v.Name, Driver: v.Driver, Scope: v.Scope, Mountpoint: v.Mountpoint, Labels: Object.entries(v.Labels ?? {}).map(([k, x]) => `${k}=${x}`).join(',') }));
        out.write((await listFormat()).formatList(f.format, rows, { Name: 'VOLUME NAME' }, table));
      });
  }
  if (free(volume, 'inspect')) {
    volume.command('inspect')
      .description("volumes' details as JSON (Docker's fields)")
      .argument('<names...>')
      .option('-f, --format <template>', 'a Go template for each, e.g. \'{{.Mountpoint}}\'')
      .action(async (names: string[], f: { format?: string }) => {
        const store = await volumes();
        const found = [];
        const errors: string[] = [];
        for (const n of names) {
          try { found.push(await store.inspect(n)); } catch (e) {
            if (!(e instanceof NotFoundError)) throw e;
            errors.push(e.message);
          }
        }
        const docs = found.map((v) => ({ CreatedAt: v.CreatedAt, Driver: v.Driver, Labels: v.Labels, Mountpoint: v.Mountpoint, Name: v.Name, Options: v.Options, Scope: v.Scope }));
        out.write(f.format !== undefined ? (await listFormat()).formatEach(f.format, docs) : `${JSON.stringify(docs, null, 4)}\n`);
        if (errors.length) throw new NotFoundError(errors.join('\n'));
      });
  }
  if (free(volume, 'rm')) {
    volume.command('rm').alias('remove')
      .description('remove volumes (never one a container uses)')
      .argument('<names...>')
      .option('-f, --force', 'no error for volumes that do not exist')
      .action(async (names: string[], f: { force?: boolean }) => {
        const store = await volumes();
        await eachArg(names, async (n) => {
          await store.remove(n, { force: !!f.force });
          out.write(`${n}\n`);
        });
      });
  }
  if (free(volume, 'prune')) {
    volume.command('prune')
      .description('remove every volume no container uses')
      .option('-f, --force', 'do not prompt for confirmation')
      .action(async (f: { force?: boolean }) => {
        if (!f.force && !(await confirm('WARNING! This will remove all local volumes not used by at least one container.'))) {
          throw new ClientError('volume prune has been cancelled');
        }
        const r = await (await volumes()).prune();
        printList('Deleted Volumes', r.removed);
        out.write(`Total reclaimed space: ${humanSize(r.reclaimed)}\n`);
      });
  }
}
