// diff → commit → push → pull → run: a container's changes become an image in the local store,
// travel through a real berth registry and come back as a container that sees exactly them.
// Root; skipped without busybox-static.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ImageLayout } from '../../client/image-layout.js';
import { listContainers, removeContainer } from '../../runtime/containers.js';
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
    const applets = ['sh', 'echo', 'cat', 'rm', 'mkdir', 'test', 'sleep'];
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
    for (const root of ['root', 'root2'].map((r) => join(tmp, r))) {
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
});
