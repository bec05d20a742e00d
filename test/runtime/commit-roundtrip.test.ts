// diff → commit → push → pull → run: a container's changes become an image in the local store,
// travel through a real berth registry and come back as a container that sees exactly them.
// Root; skipped without busybox-static.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ImageLayout } from '../../client/image-layout.js';
import { listContainers, removeContainer } from '../../runtime/containers.js';
import { RuntimeImageStore } from '../../runtime/image-store.js';
import { OverlaySnapshotter } from '../../runtime/snapshotter.js';
import { runCli } from '../helpers/cli.js';
import { startTestServer, type TestServer } from '../helpers/registry.js';
import { addImage, isRoot, layer, removeDir, tempDir } from './helpers.js';

const BUSYBOX = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));
const skip = !isRoot ? 'needs root' : !BUSYBOX ? 'needs busybox-static' : false;

describe('diff, commit, push, pull, run (root)', { skip }, () => {
  let tmp: string;
  let server: TestServer;
  let env: Record<string, string>;
  const berth = (args: string[]) => runCli(args, { env, timeoutMs: 120_000 });

  before(async () => {
    tmp = await tempDir();
    env = { BERTH_ROOT: join(tmp, 'root'), BERTH_STORE: join(tmp, 'store') };
    server = await startTestServer();
    const layout = await ImageLayout.open(env.BERTH_STORE!, { create: true });
    const applets = ['sh', 'echo', 'cat', 'rm', 'mkdir', 'test', 'sleep', 'ln'];
    await addImage(layout, 'localhost/base:1', [layer([
      { name: 'bin/', type: 'dir' },
      { name: 'bin/busybox', type: 'file', mode: 0o755, data: await readFile(BUSYBOX!) },
      ...applets.map((a) => ({ name: `bin/${a}`, type: 'symlink' as const, linkname: 'busybox' })),
      { name: 'etc/', type: 'dir' },
      { name: 'etc/gone', type: 'file', data: Buffer.from('to be deleted\n') },
      { name: 'etc/kept', type: 'file', data: Buffer.from('v1\n') },
    ])], { config: { Cmd: ['/bin/sh'] } });
  });

  after(async () => {
    for (const root of ['root', 'root2', 'root3'].map((r) => join(tmp, r))) {
      const snapshots = await OverlaySnapshotter.open(root).catch(() => undefined);
      for (const c of await listContainers(root)) if (snapshots) await removeContainer(root, snapshots, c, true).catch(() => undefined);
    }
    await server?.stop();
    await removeDir(tmp);
  });

  test('the committed image carries exactly the container\'s changes and the --change config', async () => {
    const run = await berth(['run', '-d', '--name', 'maker', 'localhost/base:1', 'sh', '-c', 'echo made > /made; rm /etc/gone; echo v2 > /etc/kept; mkdir -p /opt/new']);
    assert.equal(run.code, 0, run.stderr);
    for (let i = 0; i < 100 && !/Exited \(0\)/.test((await berth(['ps', '-a'])).stdout); i++) await new Promise((r) => setTimeout(r, 100));

    const diff = await berth(['diff', 'maker']);
    assert.equal(diff.code, 0, diff.stderr);
    assert.deepEqual(diff.stdout.trim().split('\n'), ['C /etc', 'D /etc/gone', 'C /etc/kept', 'A /made', 'A /opt', 'A /opt/new']);

    const commit = await berth(['commit', '-m', 'made it', '-c', 'CMD ["cat", "/made"]', '-c', 'ENV STAGE=committed', 'maker', 'localhost/made:v1']);
    assert.equal(commit.code, 0, commit.stderr);
    assert.match(commit.stdout, /^sha256:[0-9a-f]{64}\n$/);
    const badChange = await berth(['commit', '-c', 'RUN rm -rf /', 'maker']);
    assert.equal(badChange.code, 2);
    assert.match(badChange.stderr, /only CMD, ENTRYPOINT/);

    const push = await berth(['push', 'local:localhost/made:v1', `${server.host}/rt/made:v1`]);
    assert.equal(push.code, 0, push.stderr);
    // pulled into a fresh store and run by a fresh runtime root: only what went through the registry counts
    env = { BERTH_ROOT: join(tmp, 'root2'), BERTH_STORE: join(tmp, 'store2') };
    const pull = await berth(['pull', `${server.host}/rt/made:v1`]);
    assert.equal(pull.code, 0, pull.stderr);
    const out = await berth(['run', '--rm', `${server.host}/rt/made:v1`]);
    assert.equal(out.stdout, 'made\n', out.stderr);
    const check = await berth(['run', '--rm', `${server.host}/rt/made:v1`, 'sh', '-c', 'cat /etc/kept; test -e /etc/gone || echo gone; test -d /opt/new && echo dir; echo $STAGE']);
    assert.equal(check.stdout, 'v2\ngone\ndir\ncommitted\n', check.stderr);
  });

  test('commit freezes a running container: a directory swapped for a symlink to the host meanwhile never brings host files into the layer', async () => {
    env = { BERTH_ROOT: join(tmp, 'root'), BERTH_STORE: join(tmp, 'store') };
    const host = join(tmp, 'host-secret');
    await mkdir(host);
    await writeFile(join(host, 'shadow'), 'HOSTSECRET\n');
    const swap = `while :; do rm -f /d; mkdir /d; echo mine > /d/shadow; sleep 0.01; rm -rf /d; ln -s ${host} /d; sleep 0.01; done`;
    const run = await berth(['run', '-d', '--name', 'swapper', 'localhost/base:1', 'sh', '-c', swap]);
    assert.equal(run.code, 0, run.stderr);
    const store = await RuntimeImageStore.open({ dir: env.BERTH_STORE });
    // unfrozen, about a third of the commits caught the swap (a layer with d -> host and d/shadow from the host)
    for (let i = 0; i < 12; i++) {
      const commit = await berth(['commit', 'swapper', `localhost/swapped:${i}`]);
      assert.equal(commit.code, 0, commit.stderr);
      const img = await store.resolve(`localhost/swapped:${i}`);
      const contents = execFileSync('tar', ['-xzOf', store.layout.blobPath(img.layers[img.layers.length - 1]!.digest)]).toString('latin1');
      assert.doesNotMatch(contents, /HOSTSECRET/, `commit ${i}`);
    }
    assert.doesNotMatch((await berth(['ps', '--filter', 'name=swapper', '--format', '{{.Status}}'])).stdout, /Paused/, 'thawed after');
    assert.equal((await berth(['container', 'rm', '-f', 'swapper'])).code, 0);
  });

  test('run and create pull what the local store lacks (--pull missing, always, never); create makes a container start runs', async () => {
    const first = { BERTH_ROOT: join(tmp, 'root'), BERTH_STORE: join(tmp, 'store') };
    const ref = `${server.host}/rt/base:1`;
    env = first;
    assert.equal((await berth(['push', 'local:localhost/base:1', ref])).code, 0);
    env = { BERTH_ROOT: join(tmp, 'root3'), BERTH_STORE: join(tmp, 'store3') };

    const never = await berth(['run', '--rm', '--pull', 'never', ref, 'echo', 'hi']);
    assert.equal(never.code, 3);
    assert.match(never.stderr, /not in the local store/);
    const bad = await berth(['run', '--rm', '--pull', 'sometimes', ref, 'echo', 'hi']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--pull sometimes: expected missing, always or never/);

    // pulled first; stdout keeps only the container's output
    const pulled = await berth(['run', '--rm', ref, 'cat', '/etc/kept']);
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.equal(pulled.stdout, 'v1\n');
    assert.match(pulled.stderr, new RegExp(`Unable to find image '${ref}' locally`));
    assert.match(pulled.stderr, /Pulled /);

    // the tag moves in the registry: missing keeps what is here, always fetches the new one
    env = first;
    await addImage(await ImageLayout.open(first.BERTH_STORE, {}), 'localhost/base:2', [layer([
      { name: 'bin/', type: 'dir' },
      { name: 'bin/busybox', type: 'file', mode: 0o755, data: await readFile(BUSYBOX!) },
      { name: 'bin/cat', type: 'symlink', linkname: 'busybox' },
      { name: 'bin/sh', type: 'symlink', linkname: 'busybox' },
      { name: 'etc/', type: 'dir' },
      { name: 'etc/kept', type: 'file', data: Buffer.from('v3\n') },
    ])], { config: { Cmd: ['/bin/sh'] } });
    assert.equal((await berth(['push', 'local:localhost/base:2', ref])).code, 0);
    env = { BERTH_ROOT: join(tmp, 'root3'), BERTH_STORE: join(tmp, 'store3') };
    const kept = await berth(['run', '--rm', ref, 'cat', '/etc/kept']);
    assert.equal(kept.stdout, 'v1\n', kept.stderr);
    assert.doesNotMatch(kept.stderr, /Unable to find|Pulled/);
    const always = await berth(['run', '--rm', '-q', '--pull', 'always', ref, 'cat', '/etc/kept']);
    assert.equal(always.stdout, 'v3\n', always.stderr);
    assert.equal(always.stderr, '');

    // create: a container that exists but does not run until started
    const created = await berth(['create', '--name', 'later', ref, 'sh', '-c', 'echo ran later; exit 3']);
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /^[0-9a-f]{64}\n$/);
    assert.equal((await berth(['ps', '-q'])).stdout, '');
    assert.match((await berth(['ps', '-a'])).stdout, /Created\s.*later/);
    assert.equal((await berth(['logs', 'later'])).stdout, '');
    const started = await berth(['start', '-a', 'later']);
    assert.equal(started.stdout, 'ran later\n', started.stderr);
    assert.equal(started.code, 3);
    assert.match((await berth(['ps', '-a'])).stdout, /Exited \(3\).*later/);
    // a container never started is removed without -f; one that is missing its image cannot be made
    assert.equal((await berth(['container', 'create', '--name', 'unused', ref])).code, 0);
    assert.equal((await berth(['container', 'rm', 'unused'])).code, 0);
    const missing = await berth(['create', '--pull', 'never', `${server.host}/rt/nothing:1`]);
    assert.equal(missing.code, 3);
    assert.match(missing.stderr, /not in the local store/);
    assert.equal((await berth(['container', 'rm', 'later'])).code, 0);
  });
});
