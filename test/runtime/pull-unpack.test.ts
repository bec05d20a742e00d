// `berth pull` into the local store, as root, unpacks the layers into snapshots while it downloads
// (as docker pull does), so the first `berth run` finds them ready. Root; real registry, real CLI.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ImageLayout } from '../../client/image-layout.js';
import { RuntimeImageStore } from '../../runtime/image-store.js';
import { OverlaySnapshotter } from '../../runtime/snapshotter.js';
import { runCli } from '../helpers/cli.js';
import { startTestServer, type TestServer } from '../helpers/registry.js';
import { addImage, isRoot, layer, removeDir, tempDir } from './helpers.js';

describe('pull unpacks while it downloads (root)', { skip: isRoot ? false : 'needs root' }, () => {
  let tmp: string;
  let server: TestServer;
  const env = (name: string) => ({ BERTH_STORE: join(tmp, name, 'store'), BERTH_ROOT: join(tmp, name, 'root') });

  before(async () => {
    tmp = await tempDir();
    server = await startTestServer();
    const src = await ImageLayout.open(join(tmp, 'src', 'store'), { create: true });
    const layers = [0, 1, 2].map((n) => layer([{ name: `f${n}`, type: 'file', data: Buffer.from(`${n}\n`.repeat(1000 * (n + 1))) }]));
    await addImage(src, 'localhost/app:1', layers, { config: { Cmd: ['/f0'] } });
    await addImage(src, 'localhost/evil:1', [layers[0]!, layer([{ name: '../../escape', type: 'file', data: Buffer.from('x') }])]);
    for (const name of ['app', 'evil']) {
      const r = await runCli(['push', `local:localhost/${name}:1`, `${server.host}/pu/${name}:1`], { env: env('src') });
      assert.equal(r.code, 0, r.stderr);
    }
  });
  after(async () => {
    await server?.stop();
    await removeDir(tmp);
  });

  async function chainsPresent(name: string, ref: string): Promise<boolean[]> {
    const store = await RuntimeImageStore.open({ dir: env(name).BERTH_STORE, create: false });
    const img = await store.resolve(ref);
    const snaps = await OverlaySnapshotter.open(env(name).BERTH_ROOT);
    return Promise.all(img.chainIds.map((c) => snaps.exists(c)));
  }

  test('every layer is in its snapshot when the pull returns; a second pull reuses them', async () => {
    const r = await runCli(['pull', '--json', `${server.host}/pu/app:1`], { env: env('a') });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).unpackedLayers, 3);
    assert.deepEqual(await chainsPresent('a', `${server.host}/pu/app:1`), [true, true, true]);
    const again = await runCli(['pull', '--json', `${server.host}/pu/app:1`], { env: env('a') });
    assert.equal(JSON.parse(again.stdout).unpackedLayers, 0);
  });

  test('--no-unpack, or an OCI layout destination, leaves the snapshots alone', async () => {
    const r = await runCli(['pull', '--no-unpack', `${server.host}/pu/app:1`], { env: env('b') });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await chainsPresent('b', `${server.host}/pu/app:1`), [false, false, false]);
    const o = await runCli(['pull', `${server.host}/pu/app:1`, `oci:${join(tmp, 'layout')}:1`], { env: env('c') });
    assert.equal(o.code, 0, o.stderr);
    const snaps = await OverlaySnapshotter.open(env('c').BERTH_ROOT);
    for await (const s of snaps.walk()) assert.fail(`unexpected snapshot ${s.key}`);
  });

  test('a hostile layer fails the pull with a clear error; nothing half-unpacked stays', async () => {
    const r = await runCli(['pull', `${server.host}/pu/evil:1`], { env: env('d') });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /\.\./);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    const snaps = await OverlaySnapshotter.open(env('d').BERTH_ROOT);
    for await (const s of snaps.walk()) assert.ok(!s.key.startsWith('extract-'), `left: ${s.key}`);
    // nor does the image keep the name: it cannot run
    const images = await runCli(['images', '--format', '{{.Repository}}:{{.Tag}}'], { env: env('d') });
    assert.doesNotMatch(images.stdout, /pu\/evil/);
  });
});
