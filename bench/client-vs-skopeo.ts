// berth's client against skopeo 1.9 (Debian), same image, same registry, one run:
//   push: berth push oci:<dir>:tag <host>/…   vs   skopeo copy oci:<dir>:tag docker://<host>/…
//   pull: berth pull <host>/… oci:<out>:tag   vs   skopeo copy docker://<host>/… oci:<out2>:tag
// The image is built locally (incompressible random layers, no downloads). Every round starts a
// fresh `berth serve` (a separate process, filesystem storage, a fresh root on a fresh port), so
// both tools really upload every blob (nothing to skip, nothing for skopeo's blob-info cache to
// mount), and every pull goes into a fresh directory. Which tool goes first alternates by round.
// Wall times are for the whole command, process start-up included. Prints a Markdown table.
//
//   npm run build && node dist/bench/client-vs-skopeo.js [--size-mib 64] [--layers 4] [--rounds 5] [--jobs 4]
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createImageLayout, seededRandomBytes } from '../test/fixtures/oci-layout.js';
import { CLI, startServe, type ServeProcess } from '../test/helpers/cli.js';

const { values: args } = parseArgs({
  options: {
    'size-mib': { type: 'string', default: '64' },
    layers: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '5' },
    jobs: { type: 'string', default: '4' },
    keep: { type: 'boolean', default: false },
  },
});
const sizeMiB = Number(args['size-mib']);
const layerCount = Number(args.layers);
const rounds = Number(args.rounds);
const jobs = String(Number(args.jobs));
if (!(sizeMiB >= 1 && layerCount >= 1 && rounds >= 1)) throw new Error('--size-mib, --layers and --rounds must be positive');

interface Run { code: number | null; stderr: string; seconds: number }

function run(cmd: string, argv: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr, seconds: (performance.now() - t0) / 1000 }));
  });
}

async function timed(what: string, cmd: string, argv: string[]): Promise<number> {
  const r = await run(cmd, argv);
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}): ${cmd} ${argv.join(' ')}\n${r.stderr}`);
  return r.seconds;
}

const berth = (argv: string[]) => timed(`berth ${argv[0]}`, process.execPath, [CLI, ...argv]);
const skopeo = (what: string, argv: string[]) => timed(`skopeo (${what})`, 'skopeo', argv);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'berth-bench-skopeo-'));
  const cleanup: (() => Promise<void>)[] = [];
  try {
    const perLayer = Math.ceil((sizeMiB << 20) / layerCount);
    const src = join(work, 'image');
    const image = await createImageLayout(src, {
      tag: 'v1',
      layers: Array.from({ length: layerCount }, (_, i) => ({
        files: { [`data/layer-${i}.bin`]: seededRandomBytes(perLayer, `bench-${i}`) },
        compression: 'none' as const,
      })),
    });
    const bytes = image.layers.reduce((a, l) => a + l.descriptor.size, 0) + image.config.descriptor.size;
    process.stderr.write(`image: ${layerCount} layers + config, ${(bytes / 1e6).toFixed(1)} MB, ${image.manifest.descriptor.digest}\n`);

    const times = { berthPush: [] as number[], skopeoPush: [] as number[], berthPull: [] as number[], skopeoPull: [] as number[] };
    for (let round = 0; round < rounds; round++) {
      const dir = join(work, `round-${round}`);
      await mkdir(dir, { recursive: true });
      const serve: ServeProcess = await startServe(['--addr', '127.0.0.1:0', '--root', join(dir, 'registry')]);
      const stop = async () => {
        if (serve.child.exitCode !== null) return;
        const exited = new Promise((r) => serve.child.once('exit', r));
        serve.child.kill('SIGTERM');
        await exited;
      };
      cleanup.push(stop);
      try {
        const host = new URL(serve.url).host;
        const berthRef = `${host}/bench/berth-${round}:v1`;
        const skopeoRef = `${host}/bench/skopeo-${round}:v1`;
        const pushes = [
          async () => { times.berthPush.push(await berth(['push', '-q', '-j', jobs, `oci:${src}:v1`, berthRef])); },
          async () => { times.skopeoPush.push(await skopeo('push', ['copy', '-q', '--dest-tls-verify=false', `oci:${src}:v1`, `docker://${skopeoRef}`])); },
        ];
        // both pull the same image (the one berth pushed), each into a fresh directory
        const pulls = [
          async () => { times.berthPull.push(await berth(['pull', '-q', '-j', jobs, berthRef, `oci:${join(dir, 'pull-berth')}:v1`])); },
          async () => { times.skopeoPull.push(await skopeo('pull', ['copy', '-q', '--src-tls-verify=false', `docker://${berthRef}`, `oci:${join(dir, 'pull-skopeo')}:v1`])); },
        ];
        if (round % 2) { pushes.reverse(); pulls.reverse(); }
        for (const p of pushes) await p();
        for (const p of pulls) await p();
        // what both pulled must be the image that was pushed
        for (const out of ['pull-berth', 'pull-skopeo']) {
          const r = await run(process.execPath, [CLI, 'digest', `oci:${join(dir, out)}:v1`]);
          if (r.code !== 0) throw new Error(`berth digest of ${out} failed: ${r.stderr}`);
        }
        process.stderr.write(`round ${round + 1}/${rounds}: push berth ${times.berthPush.at(-1)!.toFixed(2)} s, skopeo ${times.skopeoPush.at(-1)!.toFixed(2)} s; `
          + `pull berth ${times.berthPull.at(-1)!.toFixed(2)} s, skopeo ${times.skopeoPull.at(-1)!.toFixed(2)} s\n`);
      } finally {
        await stop();
        if (!args.keep) await rm(dir, { recursive: true, force: true });
      }
    }

    const row = (op: string, b: number[], s: number[]) => {
      const mb = median(b);
      const ms = median(s);
      return `| ${op} | ${mb.toFixed(2)} s | ${ms.toFixed(2)} s | ${(mb / ms).toFixed(2)} | ${(bytes / 1e6 / mb).toFixed(0)} MB/s | ${(bytes / 1e6 / ms).toFixed(0)} MB/s |`;
    };
    const out = [
      `${(bytes / 1e6).toFixed(1)} MB image (${layerCount} incompressible layers), ${rounds} rounds, median wall time per command (process start included), berth -j ${jobs}, skopeo ${await skopeoVersion()}, Node ${process.version}`,
      '',
      '| operation | berth | skopeo | berth/skopeo | berth rate | skopeo rate |',
      '|---|---|---|---|---|---|',
      row('push (oci layout → registry)', times.berthPush, times.skopeoPush),
      row('pull (registry → oci layout)', times.berthPull, times.skopeoPull),
    ];
    process.stdout.write(`${out.join('\n')}\n`);
  } finally {
    for (const c of cleanup) await c().catch(() => undefined);
    if (!args.keep) await rm(work, { recursive: true, force: true });
  }
}

async function skopeoVersion(): Promise<string> {
  return new Promise((resolve) => {
    const c = spawn('skopeo', ['--version'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let s = '';
    c.stdout.on('data', (d) => { s += d; });
    c.on('close', () => resolve(/version (\S+)/.exec(s)?.[1] ?? '?'));
    c.on('error', () => resolve('?'));
  });
}

await main();
