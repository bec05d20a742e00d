// CLI commands over the local image store that need no container: berth save / berth load (an image
// as a docker-archive tarball and back, through files and through standard output and input, the way
// docker save and docker load are used) and berth history.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { ImageLayout } from '../../client/image-layout.js';
import { addImage, layer, removeDir, tempDir } from '../runtime/helpers.js';

const cli = fileURLToPath(new URL('../../cli/index.js', import.meta.url));
let tmp: string;
let sizes: number[] = [];

function berth(store: string, args: string[], stdio: { stdin?: string; stdout?: string } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const inFd = stdio.stdin ? openSync(stdio.stdin, 'r') : 'ignore';
    const outFd = stdio.stdout ? openSync(stdio.stdout, 'w') : 'pipe';
    const child = spawn(process.execPath, [cli, ...args], { env: { ...process.env, BERTH_STORE: store }, stdio: [inFd, outFd, 'pipe'] });
    for (const fd of [inFd, outFd]) if (typeof fd === 'number') closeSync(fd);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d) => { stdout += d; });
    child.stderr!.on('data', (d) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const imageId = async (store: string, name: string) => {
  const r = await berth(store, ['images', '--no-trunc', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}']);
  return r.stdout.split('\n').find((l) => l.startsWith(`${name} `))?.split(' ')[1];
};

before(async () => {
  tmp = await tempDir('berth-save-');
  const layout = await ImageLayout.open(join(tmp, 'a'), { create: true });
  await addImage(layout, 'localhost/app:v1', [layer([{ name: 'hello.txt', type: 'file', data: Buffer.from('hello\n') }])], { config: { Cmd: ['/hello'] } });
  const base = layer([{ name: 'base.txt', type: 'file', data: Buffer.from('base\n') }]);
  const built = layer([{ name: 'out/app', type: 'file', data: Buffer.alloc(5000, 7) }]);
  sizes = [base.size, built.size];
  const created = '2026-01-02T03:04:05Z';
  await addImage(layout, 'localhost/hist:1', [base, built], {
    created,
    history: [
      { created, created_by: '/bin/sh -c #(nop) ADD file:0123abcd in / ' },
      { created, created_by: '/bin/sh -c #(nop)  ENV A=1', empty_layer: true },
      { created, created_by: 'RUN /bin/sh -c make all && make install && rm -rf /var/cache/something', comment: 'buildkit.dockerfile.v0' },
    ],
  });
});
after(async () => { await removeDir(tmp); });

test('save -o and load -i move an image between local stores with its ID and name', async () => {
  const file = join(tmp, 'app.tar');
  const saved = await berth(join(tmp, 'a'), ['save', '-o', file, 'localhost/app:v1']);
  assert.equal(saved.code, 0, saved.stderr);
  const manifest = JSON.parse((await readFile(file)).toString('latin1').match(/\[\{"Config".*?\}\]/)![0]) as Array<{ RepoTags: string[] }>;
  assert.deepEqual(manifest[0]!.RepoTags, ['localhost/app:v1']);
  const loaded = await berth(join(tmp, 'b'), ['load', '-i', file]);
  assert.deepEqual([loaded.code, loaded.stdout], [0, 'Loaded image: localhost/app:v1\n'], loaded.stderr);
  const id = await imageId(join(tmp, 'a'), 'localhost/app:v1');
  assert.match(id ?? '', /^sha256:[0-9a-f]{64}$/);
  assert.equal(await imageId(join(tmp, 'b'), 'localhost/app:v1'), id);
  // its blobs are staged side by side while they are copied in parallel: nothing of that stays
  const dir = join(tmp, 'staged');
  assert.equal((await berth(join(tmp, 'a'), ['save', '-o', join(dir, 'hist.tar'), 'localhost/hist:1'])).code, 0);
  assert.deepEqual(await readdir(dir), ['hist.tar']);
});

test('save to standard output and load from standard input (save IMG > f; load < f)', async () => {
  const file = join(tmp, 'piped.tar');
  assert.equal((await berth(join(tmp, 'a'), ['save', 'localhost/app:v1'], { stdout: file })).code, 0);
  const loaded = await berth(join(tmp, 'c'), ['load', '-q'], { stdin: file });
  assert.deepEqual([loaded.code, loaded.stdout], [0, ''], loaded.stderr);
  assert.equal(await imageId(join(tmp, 'c'), 'localhost/app:v1'), await imageId(join(tmp, 'a'), 'localhost/app:v1'));
});

test('save of an image the store lacks, and load of what is no archive, fail with one line', async () => {
  const missing = await berth(join(tmp, 'a'), ['save', '-o', join(tmp, 'x.tar'), 'localhost/nothere:1']);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /^berth: .*nothere/);
  assert.equal(missing.stderr.trim().split('\n').length, 1);
  const junk = join(tmp, 'junk.tar');
  await import('node:fs/promises').then((fs) => fs.writeFile(junk, 'not a tar at all'));
  const bad = await berth(join(tmp, 'd'), ['load', '-i', junk]);
  assert.notEqual(bad.code, 0);
  assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
  assert.match(bad.stderr, /^berth: /);
  const absent = await berth(join(tmp, 'd'), ['load', '-i', join(tmp, 'no-such.tar')]);
  assert.deepEqual([absent.code, absent.stderr], [3, `berth: ${join(tmp, 'no-such.tar')}: no such file\n`]);
  const notRef = await berth(join(tmp, 'a'), ['history', 'BAD REF']);
  assert.deepEqual([notRef.code, notRef.stderr], [2, 'berth: invalid reference "BAD REF": contains whitespace\n']);
});

test('load of an archive whose layer is not the one its config names fails (exit 6) and names nothing', async () => {
  const good = join(tmp, 'good.tar');
  assert.equal((await berth(join(tmp, 'a'), ['save', '-o', good, 'localhost/app:v1'])).code, 0);
  const dir = join(tmp, 'unpacked');
  await mkdir(dir);
  execFileSync('tar', ['-xf', good, '-C', dir]);
  const [entry] = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as Array<{ Layers: string[] }>;
  await writeFile(join(dir, entry!.Layers[0]!), Buffer.alloc(1024)); // two empty tar blocks: a valid, empty, other layer
  const bad = join(tmp, 'swapped.tar');
  execFileSync('tar', ['-cf', bad, '-C', dir, '.']);
  const loaded = await berth(join(tmp, 'e'), ['load', '-i', bad]);
  assert.equal(loaded.code, 6, loaded.stderr);
  assert.match(loaded.stderr, /^berth: .* is not the one the image config names: its tar hashes to sha256:[0-9a-f]{64}, the diff_id is sha256:/);
  assert.equal((await berth(join(tmp, 'e'), ['images', '-q'])).stdout, '');
});

test('history: newest step first, the image ID on top, each layer\'s size, 0B for steps without one; --no-trunc, --format, -q', async () => {
  const store = join(tmp, 'a');
  const id = (await imageId(store, 'localhost/hist:1'))!;
  const table = (await berth(store, ['history', 'localhost/hist:1'])).stdout.trimEnd().split('\n');
  assert.match(table[0]!, /^IMAGE\s+CREATED\s+CREATED BY\s+SIZE\s+COMMENT$/);
  assert.equal(table.length, 4);
  assert.match(table[1]!, new RegExp(`^${id.slice(7, 19)}\\s+.* ago\\s+RUN /bin/sh -c make all && make install && r…\\s+\\S+B\\s+buildkit.dockerfile.v0$`));
  assert.match(table[2]!, /^<missing>\s+.* ago\s+\/bin\/sh -c #\(nop\) ENV A=1\s+0B\s*$/);
  const f = await berth(store, ['history', '--no-trunc', '--format', '{{.ID}}|{{.CreatedBy}}|{{.Size}}', 'localhost/hist:1']);
  const fmt = (n: number) => `${n}B`.replace(/^(\d+)(\d{3})B$/, (_, a: string, b: string) => `${(Number(a + b) / 1000).toPrecision(3).replace(/\.?0+$/, '')}kB`);
  assert.deepEqual(f.stdout.trim().split('\n'), [
    `${id}|RUN /bin/sh -c make all && make install && rm -rf /var/cache/something|${fmt(sizes[1]!)}`,
    '<missing>|/bin/sh -c #(nop) ENV A=1|0B',
    `<missing>|/bin/sh -c #(nop) ADD file:0123abcd in / |${fmt(sizes[0]!)}`,
  ]);
  assert.equal((await berth(store, ['history', '-q', 'localhost/hist:1'])).stdout, `${id.slice(7, 19)}\n`);
  const none = await berth(store, ['history', 'localhost/none:1']);
  assert.equal(none.code, 3);
  assert.match(none.stderr, /^berth: .*localhost\/none:1/);
});

