// Runtime commands of the `berth` CLI. cli/index.ts calls registerRuntime(program).
//   berth images [REPOSITORY] [-q] [--no-trunc] [--json] [--filter] [--format] · history IMAGE   images in the local store (shared with `berth pull`)
//   berth run · create                                     in run-cli.ts
//   berth container ls|ps [-a] [-q] · logs [-f] [-t] [--tail N] C · attach C · start [-ai] C… · stop|restart [-t S] C… · kill [-s SIG] C… · wait C… · rename C NAME · update C… · top C · rm [-f] C… · inspect C…
//   (ps, logs, start, stop, restart, kill, export… also at the top level; `berth rm` and `berth inspect` belong to the registry client)
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { collect } from '../cli/commander.js';
import { NotFoundError, UsageError } from '../client/errors.js';
import type { Container, ContainerConfig } from './containers.js';
import type { RuntimeSpec } from './spec.js';
import type { ImageConfig, ImageSummary } from './image-store.js';
import type { PortMapping } from './ports.js';
import { formatTable } from './table.js';

import { defaultRoot, listFormat, runtimeModules as mods } from './cli-modules.js';
import { envFromFlags, limitFlagOptions, limitOptions, processFlagOptions, registerRunCommands, type LimitFlags } from './run-cli.js';


function humanSize(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
  return `${i === 0 ? v : v.toPrecision(3).replace(/\.?0+$/, '')}${units[i]}`;
}

export function humanAge(iso: string | undefined, now = Date.now()): string {
  if (!iso) return 'N/A';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return 'N/A';
  const s = Math.max(0, Math.round((now - t) / 1000));
  const steps: Array<[number, string]> = [[60, 'second'], [60, 'minute'], [24, 'hour'], [7, 'day'], [4.35, 'week'], [12, 'month'], [Infinity, 'year']];
  let v = s;
  for (const [k, unit] of steps) {
    if (v < k) return v <= 1 && unit === 'second' ? 'Less than a second ago' : `${Math.floor(v)} ${unit}${Math.floor(v) === 1 ? '' : 's'} ago`;
    v /= k;
  }
  return 'N/A';
}

function shortId(d: string, noTrunc: boolean): string {
  return noTrunc ? d : d.replace(/^sha256:/, '').slice(0, 12);
}

/** The `berth images` table (Docker's columns). */
export function formatImages(images: ImageSummary[], opts: { quiet?: boolean; noTrunc?: boolean; now?: number } = {}): string {
  if (opts.quiet) return [...new Set(images.map((i) => shortId(i.id, !!opts.noTrunc)))].map((l) => `${l}\n`).join('');
  const rows = [['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE']];
  for (const i of images) {
    rows.push([i.repository, i.tag, shortId(i.id, !!opts.noTrunc), i.error ? 'unreadable' : humanAge(i.created, opts.now), i.error ? '-' : humanSize(i.size)]);
  }
  return formatTable(rows);
}

export interface Output { write(text: string): unknown }

/** Adds the runtime commands; `out` is where they print (stdout; tests pass their own). */
export function registerRuntime(program: Command, out: Output = process.stdout): void {
  program
    .command('images')
    .description('list the images in the local store (where `berth pull` puts them)')
    .argument('[repository]', 'only this repository, e.g. busybox or localhost:5000/team/app')
    .option('-q, --quiet', 'only image IDs')
    .option('--no-trunc', 'full image IDs')
    .option('--json', 'print the list as JSON')
    .option('--format <format>', `${FORMAT_HELP}; fields ID, Repository, Tag, Digest, CreatedSince, CreatedAt, Size`)
    .option('-f, --filter <key=value>', 'only images that match: dangling=true|false, reference (a pattern such as \'app:v*\'), label (KEY or KEY=VALUE), before or since (an image); repeatable', collect)
    .action(async (repository: string | undefined, flags: { quiet?: boolean; trunc?: boolean; json?: boolean; format?: string; filter?: string[] }) => {
      const m = await mods();
      let images: ImageSummary[] = [];
      try {
        images = await (await m.RuntimeImageStore.open({ create: false })).list();
      } catch (e) {
        if (!(e instanceof NotFoundError)) throw e; // no store yet: no images
      }
      if (repository) {
        const want = repository.replace(/:[^/:]*$/, '');
        images = images.filter((i) => i.repository === want || i.name.startsWith(`${want}:`) || i.name === want);
      }
      if (flags.filter?.length) {
        const { filterImages, parseImageFilters } = await import('./image-filter.js');
        images = filterImages(images, parseImageFilters(flags.filter));
      }
      if (flags.json) out.write(`${JSON.stringify({ store: m.localStoreDir(), images }, null, 2)}\n`);
      else if (flags.quiet || flags.format === undefined) out.write(formatImages(images, { quiet: !!flags.quiet, noTrunc: flags.trunc === false }));
      else {
        const rows = images.map((i) => ({
          ID: shortId(i.id, flags.trunc === false), Repository: i.repository, Tag: i.tag, Digest: i.digest ?? '<none>',
          CreatedSince: i.error ? 'unreadable' : humanAge(i.created), CreatedAt: i.created ? goTime(i.created) : '', Size: i.error ? '-' : humanSize(i.size),
        }));
        out.write((await listFormat()).formatList(flags.format, rows, { ID: 'IMAGE ID', CreatedSince: 'CREATED' }, () => formatImages(images, { noTrunc: flags.trunc === false })));
      }
    });

  program
    .command('history')
    .description('the build steps of an image in the local store: when, by what command, and the size of the layer each made')
    .argument('<image>', 'an image reference or image ID')
    .option('--no-trunc', 'whole commands')
    .option('-q, --quiet', 'only the image ID')
    .option('--format <format>', `${FORMAT_HELP}; fields ID, CreatedSince, CreatedAt, CreatedBy, Size, Comment`)
    .action(async (image: string, f: { trunc?: boolean; quiet?: boolean; format?: string }) => {
      const m = await mods();
      const img = await (await m.RuntimeImageStore.open({ create: false })).resolve(image);
      if (f.quiet) { out.write(`${shortId(img.configDescriptor.digest, f.trunc === false)}\n`); return; }
      const rows = historyRows(img, f.trunc === false);
      const table = () => formatTable([['IMAGE', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT'], ...rows.map((r) => [r.ID, r.CreatedSince, r.CreatedBy, r.Size, r.Comment])]);
      out.write(f.format === undefined ? table() : (await listFormat()).formatList(f.format, rows, { ID: 'IMAGE', CreatedSince: 'CREATED' }, table));
    });

  registerRunCommands(program, out);

  // Docker's `container` group has them all; at the top level only the names the registry client
  // has not taken (`berth rm` is `berth delete`, `berth inspect` inspects images)
  const group = program.command('container').description('manage containers: run, create, ls|ps, logs, export, prune, attach, exec, start, stop, restart, pause, unpause, kill, wait, rename, update, top, port, cp, stats, diff, commit, rm, inspect').enablePositionalOptions();
  registerContainerCommands(group, out, true);
  registerRunCommands(group, out);
  registerContainerCommands(program, out, false);
}

function statusText(c: Container, now = Date.now()): string {
  const s = c.state;
  const ago = (t?: string) => humanAge(t, now).replace(/ ago$/, '');
  const health = s.health ? ` (${s.health.status === 'starting' ? 'health: starting' : s.health.status})` : '';
  if (s.status === 'running') return `Up ${ago(s.startedAt).replace(/^Less than a second$/, 'Less than a second')}${existsSync(join(c.dir, 'paused')) ? ' (Paused)' : health}`;
  if (s.status === 'restarting') return `Restarting (${s.exitCode ?? 0}) ${humanAge(s.finishedAt, now)}`;
  if (s.status === 'created') return 'Created';
  return `Exited (${s.exitCode ?? 0}) ${humanAge(s.finishedAt, now)}`;
}

/** ps's PORTS: the host ports a running container's -p got (0.0.0.0:8080->80/tcp). */
function portsText(c: Container): string {
  if (c.state.status !== 'running' && c.state.status !== 'restarting') return '';
  return (c.state.ports ?? []).map((p) => `${p.hostIp || '0.0.0.0'}:${p.hostPort}->${p.containerPort}/${p.protocol}`).join(', ');
}

/** The `berth ps` table (Docker's columns). */
export function formatPs(cs: Container[], opts: { quiet?: boolean; noTrunc?: boolean; now?: number } = {}): string {
  if (opts.quiet) return cs.map((c) => `${opts.noTrunc ? c.config.id : c.config.id.slice(0, 12)}\n`).join('');
  const rows = [['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES']];
  for (const c of cs) {
    let cmd = c.config.command.join(' ');
    if (!opts.noTrunc && cmd.length > 20) cmd = `${cmd.slice(0, 19)}…`;
    rows.push([opts.noTrunc ? c.config.id : c.config.id.slice(0, 12), c.config.image, `"${cmd}"`, humanAge(c.config.created, opts.now), statusText(c, opts.now), portsText(c), c.config.name]);
  }
  return formatTable(rows);
}


/** Go's time.Time as docker prints CreatedAt: "2026-12-07 14:00:00 +0000 UTC". */
function goTime(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : `${d.toISOString().slice(0, 19).replace('T', ' ')} +0000 UTC`;
}

const FORMAT_HELP = 'table, table TEMPLATE, json, or a Go template (e.g. \'{{.Names}}\\t{{.Status}}\')';

/** logs --since/--until: Unix seconds, a date or RFC 3339 time, or a Go duration ago; ms since the epoch. */
async function logTime(text: string, flag: string, now: number): Promise<number> {
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  if (/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(text)) return now - (await import('./health.js')).parseDuration(text, flag);
  const t = /^\d{4}-\d{2}-\d{2}/.test(text) ? Date.parse(text) : NaN;
  if (Number.isNaN(t)) throw new UsageError(`${flag} ${text}: expected a timestamp (2026-12-07T14:00:00Z, Unix seconds) or a duration ago (10m, 1h30m)`);
  return t;
}

/**
 * docker history's rows, newest first: each build step with the compressed size of the layer it made
 * (0B for steps that made none). The top row carries the image ID; the others are <missing>, as docker
 * shows for what it pulled. An image without history has one row per layer.
 */
function historyRows(img: { config: ImageConfig; configDescriptor: { digest: string }; layers: Array<{ size: number }> }, noTrunc: boolean): Array<Record<string, string>> {
  const history = img.config.history?.length ? img.config.history : img.layers.map(() => ({}) as NonNullable<ImageConfig['history']>[number]);
  let layer = 0;
  const rows = history.map((h) => {
    const size = h.empty_layer ? 0 : img.layers[layer++]?.size ?? 0;
    let by = (h.created_by ?? '').replace(/\s+/g, ' ');
    if (!noTrunc && by.length > 45) by = `${by.slice(0, 44)}…`;
    return { ID: '<missing>', CreatedSince: humanAge(h.created ?? img.config.created), CreatedAt: h.created ? goTime(h.created) : '', CreatedBy: by, Size: humanSize(size), Comment: h.comment ?? '' };
  }).reverse();
  if (rows[0]) rows[0].ID = shortId(img.configDescriptor.digest, noTrunc);
  return rows;
}

/** A container as `ps --format` names its fields (docker's). */
function psRow(c: Container, noTrunc: boolean, now = Date.now()): Record<string, unknown> {
  let cmd = c.config.command.join(' ');
  if (!noTrunc && cmd.length > 20) cmd = `${cmd.slice(0, 19)}…`;
  const paused = existsSync(join(c.dir, 'paused')) && c.state.status === 'running';
  return {
    ID: noTrunc ? c.config.id : c.config.id.slice(0, 12), Image: c.config.image, Command: `"${cmd}"`, CreatedAt: goTime(c.config.created),
    RunningFor: humanAge(c.config.created, now), Ports: portsText(c), State: paused ? 'paused' : c.state.status, Status: statusText(c, now),
    Names: c.config.name, Labels: Object.entries(c.config.labels ?? {}).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}=${v}`).join(','),
    Networks: [c.config.networkName ?? c.config.network ?? '', ...(c.config.extraNetworks ?? []).map((n) => n.name)].filter(Boolean).join(','),
  };
}
const PS_HEADERS = { ID: 'CONTAINER ID', RunningFor: 'CREATED' };

/** stop/restart -t: seconds, or undefined for the container's own --stop-timeout. */
function stopSeconds(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const t = Number(v);
  if (!Number.isFinite(t) || t < 0) throw new UsageError(`-t ${v}: expected seconds`);
  return t;
}

/**
 * `start --all [--filter restart-policy=P]…`: the stopped containers to bring back. This is what
 * Docker's daemon does when it starts (and podman-restart.service): `always` comes back even after
 * a manual stop, `unless-stopped` only when it was not stopped by hand.
 */
export async function bootCandidates(root: string, filters: string[]): Promise<Container[]> {
  const m = await mods();
  const policies = new Set<string>();
  for (const f of filters) {
    const m = /^restart-policy=(no|always|on-failure|unless-stopped)$/.exec(f);
    if (!m) throw new UsageError(`--filter ${f}: expected restart-policy=no|always|on-failure|unless-stopped`);
    policies.add(m[1]!);
  }
  const out: Container[] = [];
  for (const c of await m.listContainers(root)) {
    if (c.state.status === 'running' || c.state.status === 'restarting') continue;
    if (c.config.foreground) continue; // (a run --rm whose CLI was killed: rm, not start, is for it)
    const p = c.config.restartPolicy.name;
    if (policies.size && !policies.has(p)) continue;
    if (p === 'unless-stopped' && existsSync(join(c.dir, 'stop-requested'))) continue;
    out.push(c);
  }
  return out;
}

/** Runs `fn`; if the CLI is interrupted meanwhile, `undo` (thaw, remove staging) runs before the usual exit. */
async function undoingOnInterrupt<T>(undo: () => Promise<void>, fn: () => Promise<T>): Promise<T> {
  const interrupted = (sig: NodeJS.Signals) => { void undo().finally(() => process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGHUP' ? 1 : 15))); };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(sig, interrupted);
  try { return await fn(); } finally {
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(sig, interrupted);
  }
}

function registerContainerCommands(parent: Command, out: Output, inGroup: boolean): void {
  const root = () => defaultRoot();
  const taken = (name: string) => parent.commands.some((c) => c.name() === name || c.aliases().includes(name));
  const add = (name: string) => (taken(name) ? undefined : parent.command(name));
  (inGroup ? add('ls')?.alias('ps') : add('ps'))
    ?.description('list containers (running ones; -a: all)')
    .option('-a, --all', 'also stopped containers')
    .option('-q, --quiet', 'only container IDs')
    .option('--no-trunc', 'full IDs and commands')
    .option('-f, --filter <key=value>', 'only containers that match: id, name (a regular expression), label (KEY or KEY=VALUE), status, exited (a code), ancestor (an image), network, health; repeatable', collect)
    .option('--format <format>', `${FORMAT_HELP}; fields ID, Image, Command, CreatedAt, RunningFor, Ports, State, Status, Names, Labels, Networks`)
    .action(async (f: { all?: boolean; quiet?: boolean; trunc?: boolean; filter?: string[]; format?: string }) => {
      const m = await mods();
      const { filterContainers, filtersIncludeStopped, parsePsFilters } = await import('./ps-filter.js');
      const filters = parsePsFilters(f.filter ?? []);
      let cs = filterContainers(await m.listContainers(root()), filters, m.isPaused);
      if (!f.all && !filtersIncludeStopped(filters)) cs = cs.filter((c) => c.state.status === 'running' || c.state.status === 'restarting');
      const noTrunc = f.trunc === false;
      if (f.quiet || f.format === undefined) out.write(formatPs(cs, { quiet: !!f.quiet, noTrunc }));
      else out.write((await listFormat()).formatList(f.format, cs.map((c) => psRow(c, noTrunc)), PS_HEADERS, () => formatPs(cs, { noTrunc })));
    });

  add('logs')
    ?.description("print a container's output")
    .argument('<container>')
    .option('-f, --follow', 'keep printing until the container stops')
    .option('-t, --timestamps', 'prefix each line with its time')
    .option('-n, --tail <n>', 'only the last N lines ("all" for every line)', 'all')
    .option('--since <time>', 'only lines from then on: a timestamp (2026-12-07T14:00:00Z, Unix seconds) or a time ago (10m, 1h30m)')
    .option('--until <time>', 'only lines up to then (the same forms); with -f, stop following then')
    .action(async (ref: string, f: { follow?: boolean; timestamps?: boolean; tail: string; since?: string; until?: string }) => {
      const m = await mods();
      const now = Date.now();
      const since = f.since !== undefined ? await logTime(f.since, '--since', now) : undefined;
      const until = f.until !== undefined ? await logTime(f.until, '--until', now) : undefined;
      let tail: number | undefined;
      if (f.tail !== 'all') {
        tail = Number(f.tail);
        if (!Number.isInteger(tail)) throw new UsageError(`--tail ${f.tail}: expected a number or "all"`);
      }
      const c = await m.findContainer(root(), ref);
      m.assertReadableLog(c);
      const ac = new AbortController();
      const onSig = () => ac.abort();
      process.once('SIGINT', onSig);
      try {
        await m.streamLogs(root(), c, {
          ...(f.follow ? { follow: true } : {}), ...(f.timestamps ? { timestamps: true } : {}), ...(tail !== undefined ? { tail } : {}),
          ...(since !== undefined ? { since } : {}), ...(until !== undefined ? { until } : {}),
          signal: ac.signal,
          write: (s, stream) => (stream === 'stderr' && out === process.stdout ? process.stderr.write(s) : out.write(s)),
        });
      } finally { process.off('SIGINT', onSig); }
    });

  add('stop')
    ?.description("stop containers: SIGTERM (or the container's stop signal), then SIGKILL after the timeout")
    .argument('<containers...>')
    .option('-t, --time <seconds>', "seconds to wait before killing (default: the container's --stop-timeout, else 10)")
    .action(async (refs: string[], f: { time?: string }) => {
      const m = await mods();
      const t = stopSeconds(f.time);
      for (const ref of refs) {
        await m.stopContainer(root(), await m.findContainer(root(), ref), t);
        out.write(`${ref}\n`);
      }
    });

  add('start')
    ?.description('start stopped containers again (--all --filter restart-policy=always: what a boot should bring back)')
    .argument('[containers...]')
    .option('-a, --attach', 'stay attached to the (one) container\'s output, forward signals, exit with its code')
    .option('-i, --interactive', 'attach stdin too (a container run with -i; implies --attach)')
    .option('--all', 'every stopped container (narrowed by --filter)')
    .option('--filter <restart-policy=P>', 'with --all: only containers with this restart policy (repeatable); an unless-stopped container stopped by hand stays stopped', collect)
    .option('--detach-keys <keys>', 'the keys that detach, e.g. ctrl-a,d (default ctrl-p,ctrl-q)')
    .action(async (refs: string[], f: { all?: boolean; attach?: boolean; interactive?: boolean; filter?: string[]; detachKeys?: string }) => {
      const m = await mods();
      const detachKeys = f.detachKeys !== undefined ? m.parseDetachKeys(f.detachKeys) : undefined;
      const snapshots = await m.OverlaySnapshotter.open(root());
      if (f.attach || f.interactive) {
        if (f.all || refs.length !== 1) throw new UsageError('start --attach takes exactly one container');
        const stopped = await m.findContainer(root(), refs[0]!);
        if (m.hasAttachSocket(stopped)) {
          const c = await m.startContainer(root(), snapshots, stopped, { waitAttach: true });
          process.exitCode = await m.attachToSocket(root(), c, { stdin: !!f.interactive && stopped.config.interactive === true, detachKeys });
          return;
        }
        const after = await m.logEnd(stopped); // before the start: none of the new run's output is missed
        const c = await m.startContainer(root(), snapshots, stopped);
        process.exitCode = await m.attachUntilExit(root(), c, process, after);
        return;
      }
      if (f.all) {
        if (refs.length) throw new UsageError('give container names or --all, not both');
        for (const c of await bootCandidates(root(), f.filter ?? [])) {
          await m.startContainer(root(), snapshots, c);
          out.write(`${c.config.name}\n`);
        }
        return;
      }
      if (!refs.length) throw new UsageError('berth start needs container names, or --all');
      for (const ref of refs) {
        await m.startContainer(root(), snapshots, await m.findContainer(root(), ref));
        out.write(`${ref}\n`);
      }
    });

  add('attach')
    ?.description('attach to a running container\'s output (from now on), and with -i/-t its stdin and terminal (detach: ctrl-p ctrl-q, or --detach-keys); exit with its code')
    .argument('<container>')
    .option('--no-stdin', 'do not attach stdin')
    .option('--detach-keys <keys>', 'the keys that detach, e.g. ctrl-a,d (default ctrl-p,ctrl-q)')
    .action(async (ref: string, f: { stdin?: boolean; detachKeys?: string }) => {
      const m = await mods();
      const detachKeys = f.detachKeys !== undefined ? m.parseDetachKeys(f.detachKeys) : undefined;
      const c = await m.findContainer(root(), ref);
      if (c.state.status !== 'running' && c.state.status !== 'restarting') throw new UsageError(`container ${c.config.name} is not running: berth start -a ${c.config.name}`);
      m.assertLogged(c, 'attach to');
      if (m.hasAttachSocket(c)) process.exitCode = await m.attachToSocket(root(), c, { stdin: c.config.interactive === true && f.stdin !== false, detachKeys });
      else process.exitCode = await m.attachUntilExit(root(), c, process, await m.logEnd(c));
    });

  add('stats')
    ?.description('CPU, memory, network and block I/O and process count of running containers (all running ones when none is named)')
    .argument('[containers...]')
    .option('--no-stream', 'print one sample and exit (default: a new sample every second until interrupted)')
    .option('--json', 'print the samples as JSON')
    .option('--format <format>', `${FORMAT_HELP}; fields Container, ID, Name, CPUPerc, MemUsage, MemPerc, NetIO, BlockIO, PIDs`)
    .action(async (refs: string[], f: { stream?: boolean; json?: boolean; format?: string }) => {
      const format = f.format !== undefined ? (await listFormat()).formatList : undefined;
      const m = await mods();
      const pick = async () => refs.length
        ? Promise.all(refs.map((r) => m.findContainer(root(), r)))
        : (await m.listContainers(root())).filter((c) => c.state.status === 'running');
      for (;;) {
        const rows = await m.sampleStats(await pick());
        const text = f.json ? `${JSON.stringify(rows)}\n` : format ? format(f.format, rows.map(m.statsRow), m.STATS_HEADERS, () => m.formatStats(rows)) : m.formatStats(rows);
        // streaming on a terminal redraws in place, as docker stats does
        out.write(f.stream !== false && process.stdout.isTTY ? `\x1b[2J\x1b[H${text}` : text);
        if (f.stream === false) return;
        await new Promise((r) => setTimeout(r, 500));
      }
    });

  const freezing = [
    ['pause', 'freeze every process of running containers (cgroup freezer)', 'pauseContainer'],
    ['unpause', 'thaw paused containers', 'unpauseContainer'],
  ] as const;
  for (const [name, description, action] of freezing) {
    add(name)
      ?.description(description)
      .argument('<containers...>')
      .action(async (refs: string[]) => {
        const m = await mods();
        for (const ref of refs) {
          await m[action](await m.findContainer(root(), ref));
          out.write(`${ref}\n`);
        }
      });
  }

  add('restart')
    ?.description("stop (SIGTERM or the container's stop signal, then SIGKILL after the timeout) and start containers")
    .argument('<containers...>')
    .option('-t, --time <seconds>', "seconds to wait before killing (default: the container's --stop-timeout, else 10)")
    .action(async (refs: string[], f: { time?: string }) => {
      const m = await mods();
      const t = stopSeconds(f.time);
      const snapshots = await m.OverlaySnapshotter.open(root());
      for (const ref of refs) {
        await m.restartContainer(root(), snapshots, await m.findContainer(root(), ref), t);
        out.write(`${ref}\n`);
      }
    });

  add('kill')
    ?.description('send a signal (default SIGKILL) to running containers')
    .argument('<containers...>')
    .option('-s, --signal <signal>', 'the signal', 'KILL')
    .action(async (refs: string[], f: { signal: string }) => {
      const m = await mods();
      for (const ref of refs) {
        await m.killContainer(await m.findContainer(root(), ref), f.signal);
        out.write(`${ref}\n`);
      }
    });

  add('top')
    ?.description('the processes of a running container (host PIDs, as docker top shows them)')
    .argument('<container>')
    .action(async (ref: string) => {
      const m = await mods();
      out.write(m.formatTop(await m.topContainer(await m.findContainer(root(), ref))));
    });

  add('cp')
    ?.description('copy files between a container and the host: CONTAINER:SRC DEST, SRC CONTAINER:DEST, "-" for a tar archive on stdin or stdout')
    .argument('<src>')
    .argument('<dest>')
    .option('-a, --archive', 'keep owners (uid/gid) and modes as they are (default: root owns what comes in; what goes out is yours, without setuid bits)')
    .option('-L, --follow-link', 'copy what a symlink SRC points to, not the link')
    .action(async (srcArg: string, destArg: string, f: { archive?: boolean; followLink?: boolean }) => {
      const m = await mods();
      const ref = (a: string) => /^([A-Za-z0-9][A-Za-z0-9_.-]*):(.*)$/.exec(a);
      const [from, to] = [ref(srcArg), ref(destArg)];
      if (!!from === !!to) throw new UsageError('cp: exactly one of SRC and DEST must be CONTAINER:PATH (a local path with a colon: ./name:x)');
      const snapshots = await m.OverlaySnapshotter.open(root());
      const c = await m.findContainer(root(), (from ?? to)![1]!);
      const o = { follow: !!f.followLink, archive: !!f.archive };
      await undoingOnInterrupt(m.undoInterruptedCopy, async () => {
        if (from && destArg === '-') await m.copyOutTar(c, snapshots, from[2] || '/', process.stdout, o);
        else if (from) await m.copyOut(c, snapshots, from[2] || '/', destArg, o);
        else await m.copyIn(c, snapshots, srcArg === '-' ? process.stdin : srcArg, to![2] || '/', o);
      });
    });

  add('export')
    ?.description("a container's filesystem as a tar archive (its image's files and its changes; not its volumes)")
    .argument('<container>')
    .option('-o, --output <file>', 'write it to this file (default: standard output, which must not be a terminal)')
    .action(async (ref: string, f: { output?: string }) => {
      const m = await mods();
      if (!f.output && process.stdout.isTTY) throw new UsageError('refusing to write a tar archive to a terminal: use -o FILE or redirect the output');
      const c = await m.findContainer(root(), ref);
      const { exportContainer } = await import('./export.js');
      const snapshots = await m.OverlaySnapshotter.open(root());
      // a running one frozen meanwhile, as cp and commit do: a file it writes would fail tar ("changed as we read it")
      await undoingOnInterrupt(m.undoInterruptedCopy, () => m.holdStill(c, () => exportContainer(c, snapshots, f.output ? { file: f.output } : process.stdout)));
    });

  add('port')
    ?.description("the host ports a running container's ports are published on")
    .argument('<container>')
    .argument('[port]', 'one container port, PORT[/tcp|udp]')
    .action(async (ref: string, which?: string) => {
      const m = await mods();
      const c = await m.findContainer(root(), ref);
      const bound = c.state.status === 'running' || c.state.status === 'restarting' ? c.state.ports ?? [] : [];
      if (which === undefined) { for (const p of bound) out.write(`${m.formatMapping(p)}\n`); return; }
      const w = /^(\d+)(?:\/(tcp|udp))?$/.exec(which);
      if (!w) throw new UsageError(`${which}: expected PORT[/tcp|udp]`);
      const hits = bound.filter((p) => p.containerPort === Number(w[1]) && p.protocol === (w[2] ?? 'tcp'));
      if (!hits.length) throw new UsageError(`no public port '${w[1]}/${w[2] ?? 'tcp'}' published for ${ref}`);
      for (const p of hits) out.write(`${m.formatMapping(p).replace(/^.* -> /, '')}\n`);
    });

  add('wait')
    ?.description('wait until containers have ended for good (restarts included); print their exit codes')
    .argument('<containers...>')
    .action(async (refs: string[]) => {
      const m = await mods();
      for (const ref of refs) out.write(`${await m.waitContainer(root(), await m.findContainer(root(), ref))}\n`);
    });

  add('rename')
    ?.description('give a container another name')
    .argument('<container>')
    .argument('<new-name>')
    .action(async (ref: string, name: string) => {
      const m = await mods();
      await m.renameContainer(root(), await m.findContainer(root(), ref), name);
    });

  const update = add('update')
    ?.description('change containers\' restart policy and limits; a running one gets the new limits at once')
    .argument('<containers...>')
    .option('--restart <policy>', 'no, always, on-failure[:N] or unless-stopped');
  if (update) {
    limitFlagOptions(update).action(async (refs: string[], f: LimitFlags & { restart?: string }) => {
      const m = await mods();
      const limits = await limitOptions(f);
      const restartPolicy = f.restart !== undefined ? m.parseRestartPolicy(f.restart) : undefined;
      if (!restartPolicy && !Object.keys(limits).length) throw new UsageError('berth update needs at least one flag: --restart, --memory, --cpus…');
      const { updateContainer } = await import('./update.js');
      for (const ref of refs) {
        await updateContainer(await m.findContainer(root(), ref), { ...(restartPolicy ? { restartPolicy } : {}), limits });
        out.write(`${ref}\n`);
      }
    });
  }

  add('rm')
    ?.description('remove containers (unmount, delete the snapshot and state)')
    .argument('<containers...>')
    .option('-f, --force', 'kill running containers first')
    .option('-v, --volumes', 'also remove their anonymous volumes (named volumes stay)')
    .action(async (refs: string[], f: { force?: boolean; volumes?: boolean }) => {
      const m = await mods();
      const snapshots = await m.OverlaySnapshotter.open(root());
      for (const ref of refs) {
        await m.removeContainer(root(), snapshots, await m.findContainer(root(), ref), !!f.force, !!f.volumes);
        out.write(`${ref}\n`);
      }
    });

  const exec = add('exec')
    ?.description('run a command in a running container')
    .argument('<container>')
    .argument('<command...>', 'the command and its arguments')
    .passThroughOptions()
    .option('-i, --interactive', 'keep stdin open')
    .option('-t, --tty', 'give the process a terminal')
    .option('-d, --detach', 'run the command in the background (nothing is printed)');
  if (exec) processFlagOptions(exec).action(async (ref: string, command: string[], f: { detach?: boolean; interactive?: boolean; tty?: boolean; env?: string[]; envFile?: string[]; workdir?: string; user?: string }) => {
      const m = await mods();
      if (f.detach && (f.interactive || f.tty)) throw new UsageError('-d runs the command in the background: it takes no -i or -t');
      const env = await envFromFlags(f);
      const c = await m.findContainer(root(), ref);
      if (m.isPaused(c)) throw new UsageError(`container ${c.config.name} is paused: berth unpause ${c.config.name} first`);
      if (f.detach) {
        await m.execDetached(c, { args: command, env, ...(f.workdir !== undefined ? { workdir: f.workdir } : {}), ...(f.user !== undefined ? { user: f.user } : {}) });
        return;
      }
      const raw = !!f.tty && !!f.interactive && process.stdin.isTTY;
      if (raw) process.stdin.setRawMode(true);
      try {
        process.exitCode = await m.execInContainer(c, {
          args: command, env, ...(f.workdir !== undefined ? { workdir: f.workdir } : {}),
          ...(f.user !== undefined ? { user: f.user } : {}), tty: !!f.tty, interactive: !!f.interactive,
        });
      } finally { if (raw) process.stdin.setRawMode(false); }
    });

  add('diff')
    ?.description("what a container changed in its filesystem: A added, C changed, D deleted")
    .argument('<container>')
    .action(async (ref: string) => {
      const m = await mods();
      const c = await m.findContainer(root(), ref);
      const { changes } = await import('./diff.js');
      for (const ch of await changes(await m.OverlaySnapshotter.open(root()), c.config.snapshotKey)) out.write(`${ch.kind} ${ch.path}\n`);
    });

  add('commit')
    ?.description("a new image in the local store from a container's changes (push it with berth push local:NAME …)")
    .argument('<container>')
    .argument('[repository[:tag]]', 'its name in the local store')
    .option('-m, --message <text>', 'commit message')
    .option('-a, --author <name>', 'author, e.g. "Jane <jane@example.com>"')
    .option('-c, --change <instruction>', 'a Dockerfile instruction for the config: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR', collect)
    .action(async (ref: string, name: string | undefined, f: { message?: string; author?: string; change?: string[] }) => {
      const m = await mods();
      const c = await m.findContainer(root(), ref);
      const { applyChanges, commitContainer, CommitError } = await import('./commit.js');
      const store = await m.RuntimeImageStore.open({ create: false });
      const img = await store.resolve(c.config.imageDigest);
      let config;
      try { config = f.change?.length ? applyChanges(img.config.config, f.change) : undefined; } catch (e) {
        if (e instanceof CommitError) throw new UsageError(e.message);
        throw e;
      }
      const snapshots = await m.OverlaySnapshotter.open(root());
      // frozen while its changes are read, as docker commit pauses it: a process swapping a directory
      // for a symlink meanwhile would otherwise lead tar to the host's files
      const r = await undoingOnInterrupt(m.undoInterruptedCopy, () => m.holdStill(c, () => commitContainer(store, snapshots, c.config.snapshotKey, img, {
        ...(name ? { tag: name } : {}), ...(f.author ? { author: f.author } : {}), ...(f.message ? { comment: f.message } : {}), ...(config ? { config } : {}),
      })));
      out.write(`${r.config.digest}\n`);
    });

  add('inspect')
    ?.description("containers' configuration and state as JSON")
    .argument('<containers...>')
    .option('-f, --format <template>', 'a Go template for each, e.g. \'{{.State.Pid}}\' or \'{{json .Config}}\'')
    .action(async (refs: string[], f: { format?: string }) => {
      const m = await mods();
      const res = [];
      for (const ref of refs) {
        const c = await m.findContainer(root(), ref);
        const s = c.state;
        const spec = JSON.parse(await readFile(join(c.dir, 'config.json'), 'utf8').catch(() => '{}')) as Partial<RuntimeSpec>;
        res.push({
          Id: c.config.id,
          Created: c.config.created,
          Path: c.config.command[0] ?? '',
          Args: c.config.command.slice(1),
          State: {
            Status: m.isPaused(c) ? 'paused' : s.status, Running: s.status === 'running', Paused: m.isPaused(c), Restarting: s.status === 'restarting',
            Pid: s.status === 'running' ? s.pid ?? 0 : 0, ExitCode: s.exitCode ?? 0, Error: s.error ?? '',
            StartedAt: s.startedAt ?? '', FinishedAt: s.finishedAt ?? '', SupervisorPid: s.supervisorPid ?? 0,
            ...(s.health ? { Health: { Status: s.health.status, FailingStreak: s.health.failingStreak, Log: s.health.log.map((l) => ({ Start: l.start, End: l.end, ExitCode: l.exitCode, Output: l.output })) } } : {}),
          },
          Image: c.config.imageDigest,
          Name: `/${c.config.name}`,
          RestartCount: s.restartCount,
          LogPath: `${c.dir}/${c.config.id}-json.log`,
          HostConfig: { RestartPolicy: { Name: c.config.restartPolicy.name, MaximumRetryCount: c.config.restartPolicy.name === 'on-failure' ? c.config.restartPolicy.maximumRetryCount : 0 }, LogConfig: logConfig(c.config.log), NetworkMode: c.config.networkName ?? c.config.network ?? '', PortBindings: portBindings(c.config.ports ?? []),
            ...hostConfigLimits(spec.linux?.resources), CgroupnsMode: spec.linux?.namespaces?.some((n) => n.type === 'cgroup') ? 'private' : 'host',
            AutoRemove: c.config.autoRemove === true, CapAdd: c.config.capAdd ?? null, CapDrop: c.config.capDrop ?? null, Privileged: c.config.privileged === true, SecurityOpt: c.config.securityOpt ?? null,
            Dns: c.config.etc?.dns ?? [], DnsSearch: c.config.etc?.dnsSearch ?? [], DnsOptions: c.config.etc?.dnsOptions ?? [], ExtraHosts: (c.config.etc?.addHosts ?? []).map((h) => `${h.name}:${h.ip}`) },
          Mounts: inspectMounts(c, spec, join(root(), 'volumes')),
          Config: {
            Hostname: spec.hostname ?? '', Env: spec.process?.env ?? [], WorkingDir: spec.process?.cwd ?? '',
            Image: c.config.image, Cmd: c.config.command, Tty: c.config.tty === true, OpenStdin: c.config.interactive === true, StdinOnce: c.config.stdinOnce === true,
            Labels: c.config.labels ?? {},
            ...(c.config.healthcheck ? { Healthcheck: { Test: c.config.healthcheck.test, Interval: c.config.healthcheck.intervalMs * 1e6, Timeout: c.config.healthcheck.timeoutMs * 1e6, Retries: c.config.healthcheck.retries, StartPeriod: c.config.healthcheck.startPeriodMs * 1e6 } } : {}), StopSignal: `SIG${c.config.stopSignal ?? 'TERM'}`.replace(/^SIG(\d+)$/, '$1'), ...(c.config.stopTimeout !== undefined ? { StopTimeout: c.config.stopTimeout } : {}),
          },
          NetworkSettings: await networkSettings(c, async (name) => {
            const [net, { members, macFor }] = await Promise.all([m.bridgeFor(root(), name), import('./network.js')]);
            const ip = net && (await members(net)).find((x) => x.id === c.config.id)?.ip;
            return net && ip ? { IPAddress: ip, IPPrefixLen: net.prefixLen, Gateway: net.gateway, MacAddress: macFor(ip) } : undefined;
          }),
          GraphDriver: { Name: 'overlay', Data: { MergedDir: `${c.dir}/rootfs`, SnapshotKey: c.config.snapshotKey } },
        });
      }
      out.write(f.format !== undefined ? (await listFormat()).formatEach(f.format, res) : `${JSON.stringify(res, null, 2)}\n`);
    });
}

/** docker inspect's HostConfig limits (0 or "": none). */
function hostConfigLimits(res: Partial<RuntimeSpec['linux']['resources']> | undefined): Record<string, number | string> {
  const m = res?.memory;
  const c = res?.cpu;
  return {
    Memory: m?.limit ?? 0, MemorySwap: m?.swap ?? 0, MemoryReservation: m?.reservation ?? 0,
    NanoCpus: c?.quota !== undefined ? Math.round((c.quota / (c.period ?? 100_000)) * 1e9) : 0, CpuShares: c?.shares ?? 0,
    CpusetCpus: c?.cpus ?? '', CpusetMems: c?.mems ?? '', PidsLimit: res?.pids?.limit ?? 0,
  };
}

/** docker inspect's Mounts: the container's volumes, bind mounts and --tmpfs (not what every container has). */
function inspectMounts(c: Container, spec: Partial<RuntimeSpec>, volumesDir: string): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const m of spec.mounts ?? []) {
    const rw = !m.options?.includes('ro');
    if (m.type === 'tmpfs' && m.source === 'tmpfs' && m.destination !== '/dev') {
      out.push({ Type: 'tmpfs', Source: '', Destination: m.destination, Mode: '', RW: rw, Propagation: '' });
    } else if (m.type === 'bind' && m.source && !m.source.startsWith(`${c.dir}/`) && m.destination !== '/dev/init' && m.destination !== '/sys') {
      const volume = m.source.startsWith(`${volumesDir}/`) ? m.source.slice(volumesDir.length + 1).split('/')[0] : undefined;
      out.push(volume
        ? { Type: 'volume', Name: volume, Source: m.source, Destination: m.destination, Driver: 'local', Mode: '', RW: rw, Propagation: '' }
        : { Type: 'bind', Source: m.source, Destination: m.destination, Mode: '', RW: rw, Propagation: 'rprivate' });
    }
  }
  return out;
}

/** docker's {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]} */
/** inspect's HostConfig.LogConfig. */
function logConfig(log: ContainerConfig['log']): { Type: string; Config: Record<string, string> } {
  const driver = log.driver ?? 'json-file';
  return { Type: driver, Config: driver === 'none' ? {} : { 'max-size': String(log.maxSize), 'max-file': String(log.maxFiles ?? 2) } };
}

function portBindings(ports: PortMapping[]): Record<string, Array<{ HostIp: string; HostPort: string }>> {
  const out: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
  for (const p of ports) (out[`${p.containerPort}/${p.protocol}`] ??= []).push({ HostIp: p.hostIp, HostPort: p.hostPort ? String(p.hostPort) : '' });
  return out;
}

/**
 * inspect's NetworkSettings: the address and ports of a running bridge container (empty otherwise, as
 * docker's), and its address on each network `network connect` added (`lease` finds it).
 */
async function networkSettings(c: Container, lease: (name: string) => Promise<{ IPAddress: string; IPPrefixLen: number; Gateway: string; MacAddress: string } | undefined>): Promise<Record<string, unknown>> {
  const n = c.state.status === 'running' || c.state.status === 'restarting' ? c.state.network : undefined;
  const ports = n ? portBindings(c.state.ports ?? []) : {};
  const endpoint = { IPAddress: n?.ip ?? '', IPPrefixLen: n?.prefixLen ?? 0, Gateway: n?.gateway ?? '', MacAddress: n?.mac ?? '' };
  const networks: Record<string, unknown> = c.config.network === 'bridge'
    ? { [c.config.networkName ?? 'bridge']: { ...endpoint, Aliases: c.config.aliases ?? [] } }
    : c.config.network ? { [c.config.network]: { IPAddress: '', IPPrefixLen: 0, Gateway: '', MacAddress: '' } } : {};
  for (const extra of c.config.extraNetworks ?? []) {
    const l = n ? await lease(extra.name).catch(() => undefined) : undefined; // (a network removed since)
    networks[extra.name] = { ...l ?? { IPAddress: '', IPPrefixLen: 0, Gateway: '', MacAddress: '' }, Aliases: extra.aliases ?? [] };
  }
  return { SandboxKey: n?.netns ?? '', Ports: ports, ...endpoint, Networks: networks };
}

