// Several `berth pull`s into one local store at once, as scripts and CI jobs do: every one succeeds,
// a blob they share is downloaded into place once (the others wait for it and find it there), and
// every image keeps its name (index.json is updated under a lock all processes take); an rmi deleting
// a blob the pull found in place does not leave the pulled image without it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { writeFileAtomic } from '../../client/atomic.js';
import { ImageLayout } from '../../client/image-layout.js';
import { acquireLock } from '../../client/pid-lock.js';
import type { Digest } from '../../oci/digest.js';
import type { Descriptor } from '../../oci/manifest.js';
import { startTestServer, type TestServer } from '../helpers/registry.js';
import { addImage, layer, removeDir, tempDir } from '../runtime/helpers.js';

const cli = fileURLToPath(new URL('../../cli/index.js', import.meta.url));
const COUNT = 6;
let tmp: string;
let srv: TestServer;

function berth(args: string[], store: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], {
      env: { ...process.env, BERTH_STORE: store, HOME: tmp, DOCKER_CONFIG: join(tmp, 'docker') }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

before(async () => {
  tmp = await tempDir('berth-concurrent-');
  srv = await startTestServer();
  // one big layer they all share (incompressible), and a small one of each image's own
  const shared = layer([{ name: 'shared.bin', type: 'file', data: randomBytes(12 << 20) }]);
  const layout = await ImageLayout.open(join(tmp, 'src'), { create: true });
  for (let i = 0; i < COUNT; i++) {
    await addImage(layout, `v${i}`, [shared, layer([{ name: `own${i}.txt`, type: 'file', data: Buffer.from(`image ${i}\n`) }])]);
    const pushed = await berth(['push', '-q', `oci:${join(tmp, 'src')}:v${i}`, `${srv.host}/many/r${i}:v1`], join(tmp, 'push-store'));
    assert.equal(pushed.code, 0, pushed.stderr);
  }
});
after(async () => { await srv.stop(); await removeDir(tmp); });

test(`${COUNT} pulls of one image into one store at once all succeed; the store holds it once`, async () => {
  const store = join(tmp, 'same');
  const runs = await Promise.all(Array.from({ length: COUNT }, () => berth(['pull', '--no-unpack', '-q', `${srv.host}/many/r0:v1`], store)));
  for (const r of runs) assert.equal(r.code, 0, r.stderr);
  assert.equal(new Set(runs.map((r) => r.stdout)).size, 1, 'one digest');
  const listed = await berth(['images', '--format', '{{.Repository}}:{{.Tag}}'], store);
  assert.equal(listed.stdout, `${srv.host}/many/r0:v1\n`);
  assert.deepEqual(await readdir(join(store, '.berth-ingest')).catch(() => []), [], 'no partial download or lock left');
});

test(`${COUNT} pulls of different images into one store at once: every image keeps its name`, async () => {
  const store = join(tmp, 'many');
  const runs = await Promise.all(Array.from({ length: COUNT }, (_, i) => berth(['pull', '--no-unpack', '-q', `${srv.host}/many/r${i}:v1`], store)));
  for (const r of runs) assert.equal(r.code, 0, r.stderr);
  const listed = (await berth(['images', '--format', '{{.Repository}}:{{.Tag}}'], store)).stdout.trim().split('\n').sort();
  assert.deepEqual(listed, Array.from({ length: COUNT }, (_, i) => `${srv.host}/many/r${i}:v1`).sort());
});

test('a shared blob found in place, then deleted by an rmi before the pull names its image, is fetched again: the image is never named without it', async () => {
  const store = join(tmp, 'rmi-race');
  const first = await berth(['pull', '--no-unpack', '-q', `${srv.host}/many/r1:v1`], store);
  assert.equal(first.code, 0, first.stderr);
  const layout = await ImageLayout.open(store);
  const r1 = await layout.resolve(`${srv.host}/many/r1:v1`);
  const shared = (JSON.parse((await layout.readSmall(r1)).toString()) as { layers: Descriptor[] }).layers[0]!;
  const digest = (await berth(['digest', `${srv.host}/many/r0:v1`], store)).stdout.trim() as Digest;

  // the index lock is what rmi and prune hold while they decide and delete: the pull finds the shared
  // layer in place, fetches the rest, and waits for the lock to name r0
  const release = await acquireLock(join(store, 'index.json.lock'));
  const pull = berth(['pull', '--no-unpack', '-q', `${srv.host}/many/r0:v1`], store);
  for (let i = 0; !existsSync(layout.blobPath(digest)); i++) {
    assert.ok(i < 400, 'the pull wrote its manifest');
    await delay(25);
  }
  // meanwhile `berth rmi r1` (which saw no r0 yet): r1's name goes, and the blobs no named image needs
  const idx = await layout.readIndex();
  await writeFileAtomic(join(store, 'index.json'), JSON.stringify({ ...idx, manifests: idx.manifests.filter((m) => m.digest !== r1.digest) }));
  await unlink(layout.blobPath(shared.digest));
  await release();

  const r = await pull;
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(await layout.tags(), [`${srv.host}/many/r0:v1`]);
  const m = JSON.parse((await layout.readSmall(await layout.resolve(`${srv.host}/many/r0:v1`))).toString()) as { config: Descriptor; layers: Descriptor[] };
  for (const b of [m.config, ...m.layers]) assert.ok(await layout.hasBlob(b), `${b.digest} is in the store`);
});
