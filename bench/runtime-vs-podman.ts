// berth's runtime against podman 4.3 (Debian), same image, same registry, one run:
//   cold: berth pull IMG (downloads and unpacks into snapshots, as root)    vs   podman pull IMG into a fresh root
//         berth pull IMG + berth run --rm IMG true (CLI only, fresh)        vs   podman pull IMG + podman run --rm IMG true
//   warm: berth run --rm IMG echo hi                                         vs   podman run --rm IMG echo hi
// The image is built locally (no downloads): a busybox rootfs (Debian busybox-static) plus thousands of files
// in three more layers, mostly incompressible, gzip (or --compression zstd). It is pushed once to a
// `berth serve` of its own (a separate process, a fresh root, a free port) that both tools pull from.
//
// Like podman pull, `berth pull` into the local store unpacks every layer into its snapshot while the
// others download (runtime/pull-unpack.ts); the bench checks afterwards that every layer snapshot is
// there (an unpack in this process finds them all and applies none). The second cold row includes one
// container run on each side.
// Every cold round uses fresh directories for both tools, and nothing is deleted until the end (unpacking
// right after a big rm -rf is slow on ext4, see FACTS.md); an untimed `sync` runs before every cold step, so
// neither tool waits for the write-back of what the other one (or the image build) wrote. podman gets a private --root/--runroot/--tmpdir
// (overlay driver) in the bench's temp dir, initialised untimed before its timed pull; it runs with the
// flags this host needs (cgroupfs, file events, --network none, --ulimit, runc); berth runs with
// --network none too (its default is a bridge, as docker's). Which tool goes first
// alternates every round. Figures are medians of wall time per command, process start included.
// The cleanup at the end deletes ≈ 1.5 GB: a run started within a minute or two of that (or of any
// big delete on the same filesystem) unpacks several times slower on both sides, so wait between runs.
//
//   npm run bench:runtime
//   node dist/bench/runtime-vs-podman.js [--rounds 7] [--cold-rounds 5] [--files 6600] [--size-mib 64]
//        [--compression gzip|zstd] [--berth-runtime auto|builtin|runc|crun] [--keep]
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { MediaType } from '../oci/media-types.js';
import { zstdDecoderName } from '../runtime/apply-layer.js';
import { pickExecutor } from '../runtime/executors/index.js';
import { RuntimeImageStore } from '../runtime/image-store.js';
import { OverlaySnapshotter } from '../runtime/snapshotter.js';
import { BUSYBOX_APPLETS, createTar, findBusybox, hostPlatform, OciLayout, seededRandomBytes, type TarEntry } from '../test/fixtures/oci-layout.js';
import { CLI, startServe, type ServeProcess } from '../test/helpers/cli.js';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '7' },
    'cold-rounds': { type: 'string', default: '5' },
    files: { type: 'string', default: '6600' },
    'size-mib': { type: 'string', default: '64' },
    compression: { type: 'string', default: 'gzip' },
    'berth-runtime': { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});
const rounds = Number(args.rounds);
const coldRounds = Number(args['cold-rounds']);
const fileCount = Number(args.files);
const sizeMiB = Number(args['size-mib']);
const compression = args.compression;
const berthRuntime = args['berth-runtime'];
if (!(rounds >= 1 && coldRounds >= 1 && fileCount >= 3 && sizeMiB >= 1)) throw new Error('--rounds, --cold-rounds, --files and --size-mib must be positive');
if (compression !== 'gzip' && compression !== 'zstd') throw new Error('--compression: gzip or zstd');

interface Run { code: number | null; stdout: string; stderr: string; seconds: number }

function run(cmd: string, argv: string[], env?: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], ...(env ? { env } : {}) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, seconds: (performance.now() - t0) / 1000 }));
  });
}

async function timed(what: string, cmd: string, argv: string[], env?: NodeJS.ProcessEnv, expect?: string): Promise<number> {
  const r = await run(cmd, argv, env);
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}): ${cmd} ${argv.join(' ')}\n${r.stderr}`);
  if (expect !== undefined && r.stdout !== expect) throw new Error(`${what}: printed ${JSON.stringify(r.stdout)}, expected ${JSON.stringify(expect)}`);
  return r.seconds;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function version(cmd: string, argv: string[], re: RegExp): string {
  const r = spawnSync(cmd, argv, { encoding: 'utf8' });
  return re.exec(`${r.stdout}${r.stderr}`)?.[1] ?? '?';
}

// ---------------------------------------------------------------------------------------------
// The image

/** A deterministic pseudo-random sequence in [0, 1). */
function* unit(seed: number): Generator<number> {
  let x = seed >>> 0 || 1;
  for (;;) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    yield x / 2 ** 32;
  }
}

function textBytes(size: number, seed: number): Buffer {
  const words = ['container', 'layer', 'overlay', 'registry', 'digest', 'manifest', 'snapshot', 'runtime', 'berth', 'podman', 'tar', 'gzip', 'zstd', 'blob', 'config', 'index'];
  const r = unit(seed);
  const parts: string[] = [];
  let n = 0;
  while (n < size) {
    const line = `${Array.from({ length: 8 }, () => words[Math.floor(r.next().value! * words.length)]).join(' ')} ${Math.floor(r.next().value! * 1e6)}\n`;
    parts.push(line);
    n += line.length;
  }
  return Buffer.from(parts.join('').slice(0, size));
}

function compress(tar: Buffer): { blob: Buffer; mediaType: string } {
  if (compression === 'gzip') return { blob: gzipSync(tar), mediaType: MediaType.OciLayerTarGzip };
  const r = spawnSync('zstd', ['-q', '-c', '-3'], { input: tar, maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`zstd failed (apt-get install zstd): ${r.stderr ?? r.error}`);
  return { blob: r.stdout, mediaType: MediaType.OciLayerTarZstd };
}

interface BenchImage { dir: string; bytes: number; uncompressed: number; files: number; layers: number }

/** busybox + `fileCount` files of log-spread sizes (64 B … 512 KiB) summing to `sizeMiB`, 3/4 incompressible. */
async function buildImage(dir: string): Promise<BenchImage> {
  const busybox = findBusybox();
  if (!busybox) throw new Error('busybox not found: apt-get install busybox-static');
  const base: TarEntry[] = [
    { type: 'dir', path: 'bin' },
    { type: 'file', path: 'bin/busybox', content: await readFile(busybox), mode: 0o755 },
    ...BUSYBOX_APPLETS.map((a): TarEntry => ({ type: 'symlink', path: `bin/${a}`, target: 'busybox' })),
    { type: 'dir', path: 'dev' },
    { type: 'dir', path: 'etc' },
    { type: 'file', path: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\n' },
    { type: 'file', path: 'etc/group', content: 'root:x:0:\n' },
    { type: 'dir', path: 'proc', mode: 0o555 },
    { type: 'dir', path: 'root', mode: 0o700 },
    { type: 'dir', path: 'sys', mode: 0o555 },
    { type: 'dir', path: 'tmp', mode: 0o1777 },
    { type: 'dir', path: 'usr' },
    { type: 'symlink', path: 'usr/bin', target: '../bin' },
    { type: 'dir', path: 'var' },
  ];
  const r = unit(42);
  const weights = Array.from({ length: fileCount }, () => Math.exp(Math.log(64) + r.next().value! * (Math.log(512 << 10) - Math.log(64))));
  const total = weights.reduce((a, b) => a + b, 0);
  const sizes = weights.map((w) => Math.max(1, Math.round((w / total) * sizeMiB * (1 << 20))));
  const randomTotal = sizes.reduce((a, s, i) => a + (i % 4 === 3 ? 0 : s), 0);
  const random = seededRandomBytes(randomTotal, 'runtime-vs-podman');
  let offset = 0;
  const layerEntries: TarEntry[][] = [[], [], []];
  for (let i = 0; i < fileCount; i++) {
    const size = sizes[i]!;
    const content = i % 4 === 3 ? textBytes(size, i + 1) : random.subarray(offset, (offset += size));
    const l = layerEntries[i % 3]!;
    const d = `usr/share/bench/l${i % 3}/d${Math.floor(i / 300)}`;
    l.push({ type: 'file', path: `${d}/f${i}${i % 4 === 3 ? '.txt' : '.bin'}`, content, mode: i % 10 === 0 ? 0o755 : 0o644 });
  }
  const layout = await OciLayout.open(dir);
  const diffIds: string[] = [];
  const descs = [];
  let uncompressed = 0;
  for (const entries of [base, ...layerEntries]) {
    const tar = createTar(entries);
    uncompressed += tar.length;
    const { blob, mediaType } = compress(tar);
    diffIds.push(`sha256:${createHash('sha256').update(tar).digest('hex')}`);
    descs.push(await layout.writeBlob(blob, mediaType));
  }
  const platform = hostPlatform();
  const config = await layout.writeBlob(Buffer.from(JSON.stringify({
    created: '1970-01-01T00:00:00Z', architecture: platform.architecture, os: platform.os,
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'] },
    rootfs: { type: 'layers', diff_ids: diffIds },
  })), MediaType.OciConfig);
  const manifest = await layout.writeBlob(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: descs })), MediaType.OciManifest);
  layout.tag(manifest, 'v1');
  await layout.save();
  const files = base.filter((e) => e.type === 'file' || e.type === 'symlink').length + fileCount;
  return { dir, bytes: config.size + descs.reduce((a, d) => a + d.size, 0), uncompressed, files, layers: descs.length };
}

// ---------------------------------------------------------------------------------------------
// podman on a private store

class Podman {
  readonly globals: string[];
  readonly env: NodeJS.ProcessEnv;
  /** runroot: podman refuses one longer than 50 characters, so it lives under a short directory of its own */
  constructor(readonly dir: string, work: string, readonly runroot: string) {
    this.globals = [
      '--root', join(dir, 'root'), '--runroot', runroot, '--tmpdir', join(dir, 'tmp'),
      '--network-config-dir', join(dir, 'net'), '--storage-driver', 'overlay',
      '--cgroup-manager', 'cgroupfs', '--events-backend', 'file', '--runtime', 'runc',
    ];
    // TMPDIR: where containers/image stages blobs during a pull; an empty auth file of our own
    this.env = { ...process.env, TMPDIR: join(dir, 'blobtmp'), REGISTRY_AUTH_FILE: join(work, 'auth.json') };
  }

  async init(): Promise<void> {
    for (const d of ['root', 'tmp', 'net', 'blobtmp']) await mkdir(join(this.dir, d), { recursive: true });
    await mkdir(this.runroot, { recursive: true });
    await timed('podman images (init)', 'podman', [...this.globals, 'images', '-q'], this.env);
  }

  pull(ref: string): Promise<number> {
    return timed('podman pull', 'podman', [...this.globals, 'pull', '-q', '--tls-verify=false', ref], this.env);
  }

  run(ref: string, cmd: string[], expect: string): Promise<number> {
    return timed('podman run', 'podman', [
      ...this.globals, 'run', '--rm', '--network', 'none', '--ulimit', 'nofile=16384:16384', '--ulimit', 'nproc=16384:16384', ref, ...cmd,
    ], this.env, expect);
  }

  async clean(): Promise<void> {
    await run('podman', [...this.globals, 'rm', '--all', '--force', '--time', '0'], this.env).catch(() => undefined);
    await run('podman', [...this.globals, 'rmi', '--all', '--force'], this.env).catch(() => undefined);
  }
}

async function flush(): Promise<void> {
  await timed('sync', 'sync', []);
}

async function unmountUnder(dir: string): Promise<void> {
  const mounts = (await readFile('/proc/self/mounts', 'utf8')).split('\n').map((l) => l.split(' ')[1] ?? '').filter((m) => m.startsWith(`${dir}/`));
  for (const m of mounts.reverse()) await run('umount', ['-l', m]).catch(() => undefined);
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'berth-bench-podman-'));
  const runroots = await mkdtemp('/tmp/bpr-');
  const podmans: Podman[] = [];
  let serve: ServeProcess | undefined;
  try {
    await writeFile(join(work, 'auth.json'), '{}');
    const t0 = performance.now();
    const image = await buildImage(join(work, 'image'));
    process.stderr.write(`image: ${image.layers} ${compression} layers, ${(image.bytes / 1e6).toFixed(1)} MB compressed, ${(image.uncompressed / 1e6).toFixed(1)} MB of tar, ${image.files} files (built in ${((performance.now() - t0) / 1000).toFixed(1)} s)\n`);

    serve = await startServe(['--addr', '127.0.0.1:0', '--root', join(work, 'registry')]);
    const host = new URL(serve.url).host;
    const ref = `${host}/bench/runtime:v1`;
    const clientEnv = { HOME: work, DOCKER_CONFIG: join(work, 'docker'), XDG_RUNTIME_DIR: join(work, 'xdg') };
    const berthEnv = (store: string, root: string): NodeJS.ProcessEnv => ({ ...process.env, ...clientEnv, BERTH_STORE: store, BERTH_ROOT: root });
    await timed('berth push', process.execPath, [CLI, 'push', '-q', `oci:${image.dir}:v1`, ref], berthEnv(join(work, 'push-store'), join(work, 'push-root')));

    const runtimeFlag = berthRuntime ? ['--runtime', berthRuntime] : [];
    const executor = await pickExecutor(join(work, 'probe-root'), berthRuntime ?? 'auto');
    const runtimeLabel = berthRuntime ? `--runtime ${berthRuntime} (${executor.name})` : `berth's default (auto → ${executor.name})`;
    process.stderr.write(`berth runtime: ${runtimeLabel}${compression === 'zstd' ? `; zstd via ${zstdDecoderName()}` : ''}\n`);
    const berthRun = (store: string, root: string, cmd: string[], expect: string) =>
      // --network none on both sides: podman needs it here (FACTS), so berth leaves its default bridge too
      timed('berth run', process.execPath, [CLI, 'run', '--rm', '--network', 'none', ...runtimeFlag, ref, ...cmd], berthEnv(store, root), expect);

    const t = {
      berthPull: [] as number[], berthUnpack: [] as number[], berthPullUnpack: [] as number[], podmanPull: [] as number[],
      berthCli: [] as number[], podmanCli: [] as number[], berthWarm: [] as number[], podmanWarm: [] as number[],
      berthFloor: [] as number[], podmanFloor: [] as number[],
    };
    let warm: { store: string; root: string; podman: Podman } | undefined;
    for (let round = 0; round < coldRounds; round++) {
      const dir = join(work, `cold-${round}`);
      const pa = new Podman(join(dir, 'podman-a'), work, join(runroots, `${round}a`));
      const pb = new Podman(join(dir, 'podman-b'), work, join(runroots, `${round}b`));
      podmans.push(pa, pb);
      await pa.init();
      await pb.init();
      const store = join(dir, 'berth-store');
      const root = join(dir, 'berth-root');
      const steps = [
        async () => {
          const pull = await timed('berth pull', process.execPath, [CLI, 'pull', '-q', ref], berthEnv(store, root));
          const st = await RuntimeImageStore.open({ dir: store, create: false });
          const img = await st.resolve(ref);
          const res = await st.unpack(img, await OverlaySnapshotter.open(root));
          if (res.applied.length !== 0 || res.reused !== image.layers) throw new Error(`berth pull left ${res.applied.length} of ${image.layers} layers unpacked`);
          t.berthPull.push(pull);
          t.berthPullUnpack.push(pull);
        },
        async () => { t.podmanPull.push(await pa.pull(ref)); },
      ];
      const cli = [
        async () => {
          const s = join(dir, 'berth-store-cli');
          const r = join(dir, 'berth-root-cli');
          t.berthCli.push(await timed('berth pull', process.execPath, [CLI, 'pull', '-q', ref], berthEnv(s, r)) + await berthRun(s, r, ['true'], ''));
        },
        async () => { t.podmanCli.push(await pb.pull(ref) + await pb.run(ref, ['true'], '')); },
      ];
      if (round % 2) { steps.reverse(); cli.reverse(); }
      // untimed `sync` before each step: neither tool pays for writing back what the other (or the image build) left dirty
      for (const s of [...steps, ...cli]) { await flush(); await s(); }
      process.stderr.write(`cold ${round + 1}/${coldRounds}: berth pull ${t.berthPull.at(-1)!.toFixed(2)} s, podman pull ${t.podmanPull.at(-1)!.toFixed(2)} s; `
        + `pull + first run: berth ${t.berthCli.at(-1)!.toFixed(2)} s, podman ${t.podmanCli.at(-1)!.toFixed(2)} s\n`);
      warm = { store, root, podman: pa };
    }

    // warm: the image is pulled and unpacked on both sides; one untimed run each first
    const w = warm!;
    await flush();
    await berthRun(w.store, w.root, ['echo', 'hi'], 'hi\n');
    await w.podman.run(ref, ['echo', 'hi'], 'hi\n');
    for (let round = 0; round < rounds; round++) {
      const steps = [
        async () => { t.berthWarm.push(await berthRun(w.store, w.root, ['echo', 'hi'], 'hi\n')); },
        async () => { t.podmanWarm.push(await w.podman.run(ref, ['echo', 'hi'], 'hi\n')); },
        async () => { t.berthFloor.push(await timed('berth --version', process.execPath, [CLI, '--version'])); },
        async () => { t.podmanFloor.push(await timed('podman --version', 'podman', ['--version'])); },
      ];
      if (round % 2) steps.reverse();
      for (const s of steps) await s();
      process.stderr.write(`warm ${round + 1}/${rounds}: berth ${t.berthWarm.at(-1)!.toFixed(3)} s, podman ${t.podmanWarm.at(-1)!.toFixed(3)} s\n`);
    }

    const s = (x: number) => `${x.toFixed(x < 1 ? 3 : 2)} s`;
    const row = (op: string, b: number[], p: number[], target: string, detail = '') => {
      const mb = median(b);
      const mp = median(p);
      return `| ${op} | ${s(mb)}${detail} | ${s(mp)} | ${(mb / mp).toFixed(2)} | ${target} |`;
    };
    const out = [
      `${(image.bytes / 1e6).toFixed(1)} MB image (${image.layers} ${compression} layers, ${(image.uncompressed / 1e6).toFixed(1)} MB of tar, ${image.files} files), `
        + `${coldRounds} cold rounds, ${rounds} warm rounds, medians of wall time per command (process start included); `
        + `berth runtime: ${runtimeLabel}; podman ${version('podman', ['--version'], /version (\S+)/)} with runc ${version('runc', ['--version'], /version (\S+)/)}, overlay; Node ${process.version}; ${spawnSync('nproc', { encoding: 'utf8' }).stdout.trim()} cores`,
      '',
      '| operation | berth | podman | berth/podman | target |',
      '|---|---|---|---|---|',
      row('cold pull + unpack: `berth pull` vs `podman pull` (both download and unpack)', t.berthPullUnpack, t.podmanPull, '≤ 0.5'),
      row('cold pull + first run, CLI only: `pull` + `run --rm IMG true`', t.berthCli, t.podmanCli, '—'),
      row('warm `run --rm IMG echo hi`', t.berthWarm, t.podmanWarm, '≤ 0.25'),
      row('process start floor: `berth --version` vs `podman --version`', t.berthFloor, t.podmanFloor, '—'),
    ];
    process.stdout.write(`${out.join('\n')}\n`);
  } finally {
    for (const p of podmans) await p.clean();
    await unmountUnder(work);
    await unmountUnder(runroots);
    if (serve && serve.child.exitCode === null) {
      const exited = new Promise((r) => serve!.child.once('exit', r));
      serve.child.kill('SIGTERM');
      await exited;
    }
    if (args.keep) process.stderr.write(`kept ${work} and ${runroots}\n`);
    else {
      await rm(work, { recursive: true, force: true });
      await rm(runroots, { recursive: true, force: true });
    }
  }
}

await main();
