// The whole runtime path with runc as the executor: a locally built busybox image is unpacked into
// snapshots and run by runEphemeral (snapshot → overlay rootfs → config.json from buildSpec → runc →
// teardown). Root; skipped when runc or busybox-static is missing.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ImageLayout } from '../../client/image-layout.js';
import { RuntimeImageStore } from '../../runtime/image-store.js';
import { OciRuntimeExecutor } from '../../runtime/executors/oci-runtime.js';
import { runEphemeral } from '../../runtime/run.js';
import { OverlaySnapshotter } from '../../runtime/snapshotter.js';
import type { RunOptions } from '../../runtime/spec.js';
import { addImage, isRoot, layer, removeDir, run, tempDir } from './helpers.js';

const BUSYBOX = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));
const RUNC = ['/usr/sbin/runc', '/usr/bin/runc'].find((p) => existsSync(p));
const skip = !isRoot ? 'needs root' : !BUSYBOX ? 'needs busybox-static' : !RUNC ? 'needs runc' : false;

describe('unpacked image + buildSpec run under runc (root, overlay)', { skip }, () => {
  let tmp: string;
  let snaps: OverlaySnapshotter;
  let store: RuntimeImageStore;
  let chainId: string;
  let executor: OciRuntimeExecutor;

  before(async () => {
    tmp = await tempDir();
    snaps = await OverlaySnapshotter.open(join(tmp, 'root'));
    const layout = await ImageLayout.open(join(tmp, 'store'), { create: true });
    const applets = ['sh', 'echo', 'id', 'hostname', 'cat', 'ls', 'grep', 'true'];
    const base = layer([
      { name: 'bin/', type: 'dir' },
      { name: 'bin/busybox', type: 'file', mode: 0o755, data: await readFile(BUSYBOX!) },
      ...applets.map((a) => ({ name: `bin/${a}`, type: 'symlink' as const, linkname: 'busybox' })),
      { name: 'etc/', type: 'dir' },
      { name: 'etc/passwd', type: 'file', data: Buffer.from('root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n') },
      { name: 'etc/group', type: 'file', data: Buffer.from('root:x:0:\napp:x:1000:\nstaff:x:50:app\n') },
      { name: 'hidden/', type: 'dir' },
      { name: 'hidden/old', type: 'file', data: Buffer.from('old') },
    ]);
    const top = layer([
      { name: 'hidden/', type: 'dir' },
      { name: 'hidden/.wh..wh..opq', type: 'file' },
      { name: 'hidden/new', type: 'file', data: Buffer.from('new\n') },
      { name: 'bin/', type: 'dir' },
      { name: 'bin/.wh.ls', type: 'file' },
    ]);
    await addImage(layout, 'localhost/bb:1', [base, top], { config: { Cmd: ['/bin/sh', '-c', 'echo default'], Env: ['GREETING=hello'], WorkingDir: '/' } });
    store = await RuntimeImageStore.open({ dir: layout.dir, platform: { os: 'linux', architecture: 'amd64' } });
    const img = await store.resolve('localhost/bb:1');
    chainId = (await store.unpack(img, snaps)).chainId!;
    executor = (await OciRuntimeExecutor.find(join(tmp, 'runc')))!;
  });
  after(async () => {
    await removeDir(tmp);
    // runc removes each container's cgroup, not the parent we named; remove that (empty) one too
    for (const c of await readdir('/sys/fs/cgroup').catch(() => [] as string[])) {
      for (const parent of ['berth-test', 'berth']) await rmdir(join('/sys/fs/cgroup', c, parent)).catch(() => undefined);
    }
  });

  async function runContainer(opts: RunOptions): Promise<{ code: number; stdout: string; stderr: string }> {
    const r = await runEphemeral({ store, snapshots: snaps, executor, root: join(tmp, 'root'), image: 'localhost/bb:1', run: { cgroupsPath: `/berth-test/${process.pid}-${Math.random().toString(16).slice(2)}`, ...opts }, capture: true });
    return { code: r.code, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  }

  test('the image CMD runs as PID 1 with the image env, our hostname and no_new_privs', async () => {
    const r = await runContainer({ hostname: 'ctr1', args: ['/bin/sh', '-c', 'echo $GREETING; echo $$; hostname; id -u; grep NoNewPrivs /proc/self/status; cat /hidden/*; test -e /hidden/old || echo old-hidden; test -e /bin/ls || echo ls-whited-out; test -e /bin/cat && echo cat-kept'] });
    assert.equal(r.stderr, '');
    assert.equal(r.code, 0);
    assert.deepEqual(r.stdout.split('\n').map((l) => l.replace(/\s+/g, ' ')), ['hello', '1', 'ctr1', '0', 'NoNewPrivs: 1', 'new', 'old-hidden', 'ls-whited-out', 'cat-kept', '']);
    const d = await runContainer({});
    assert.equal(d.stdout, 'default\n');
  });

  test('everything is removed after the run: snapshot, bundle, runtime state; the layers stay', async () => {
    await runContainer({ args: ['/bin/true'] });
    for await (const i of snaps.walk()) assert.ok(!i.key.startsWith('container-'), `left: ${i.key}`);
    assert.deepEqual(await readdir(join(tmp, 'root', 'containers')), []);
    assert.deepEqual(await readdir(join(tmp, 'runc')).catch(() => []), []);
    assert.equal(await snaps.exists(chainId), true);
    const r = await runContainer({ args: ['/bin/sh', '-c', 'cat /etc/hostname; grep -c localhost /etc/hosts'], hostname: 'named' });
    assert.equal(r.stdout, 'named\n2\n');
  });

  test('--user resolves against the image /etc/passwd; exit codes come through', async () => {
    const r = await runContainer({ user: 'app', args: ['/bin/sh', '-c', 'id; exit 7'] });
    assert.equal(r.code, 7);
    assert.match(r.stdout, /^uid=1000\(app\) gid=1000\(app\) groups=(1000\(app\),)?50\(staff\)\n$/);
  });

  describe('berth run --rm (runtime/cli.ts, in a child process)', () => {
    const probe = `
      import { Command } from ${JSON.stringify(new URL('../../cli/commander.js', import.meta.url).href)};
      import { registerRuntime } from ${JSON.stringify(new URL('../../runtime/cli.js', import.meta.url).href)};
      const p = new Command(); p.exitOverride(); registerRuntime(p);
      try { await p.parseAsync(JSON.parse(process.env.ARGS), { from: 'user' }); }
      catch (e) { process.stderr.write('berth: ' + e.message + '\\n'); process.exitCode = e.exitCode ?? 1; }`;
    function berth(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
      return new Promise((resolve, reject) => {
        const child = spawn(process.execPath, ['--input-type=module', '-e', probe], {
          env: { ...process.env, ARGS: JSON.stringify(args), BERTH_ROOT: join(tmp, 'cli-root'), BERTH_STORE: join(tmp, 'store') },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d) => { stdout += d; });
        child.stderr.on('data', (d) => { stderr += d; });
        child.on('error', reject);
        child.on('close', (code) => resolve({ code, stdout, stderr }));
      });
    }

    test('the exit code is the container\'s; options after the image belong to the command', async () => {
      const r = await berth(['run', '--rm', '-e', 'X=from-flag', 'localhost/bb:1', 'sh', '-c', 'echo $X $GREETING; exit 3']);
      assert.equal(r.stdout, 'from-flag hello\n');
      assert.equal(r.code, 3);
      const e = await berth(['run', '--rm', '--entrypoint', '/bin/echo', 'localhost/bb:1', 'a', '-w', '/x']);
      assert.equal(e.stdout, 'a -w /x\n');
      assert.equal(e.code, 0);
    });

    test('volumes, read-only root, workdir, hostname and user flags', async () => {
      const host = join(tmp, 'vol');
      await mkdir(host);
      await writeFile(join(host, 'f'), 'from host\n');
      const r = await berth(['run', '--rm', '-v', `${host}:/data:ro`, '--read-only', '-w', '/data', '-h', 'box', '-u', 'app', '--memory', '32m', '--pids-limit', '50',
        'localhost/bb:1', 'sh', '-c', 'cat f; hostname; id -u; touch /data/g 2>/dev/null || echo ro-volume; touch /x 2>/dev/null || echo ro-root; pwd']);
      assert.equal(r.stderr, '');
      assert.equal(r.stdout, 'from host\nbox\n1000\nro-volume\nro-root\n/data\n');
    });

    test('without --rm, with a bad flag or an unknown image: a clear error, nothing left behind', async () => {
      const noRm = await berth(['run', 'localhost/bb:1', 'true']);
      assert.notEqual(noRm.code, 0);
      assert.match(noRm.stderr, /add --rm/);
      const badNet = await berth(['run', '--rm', '--network', 'bridge', 'localhost/bb:1', 'true']);
      assert.match(badNet.stderr, /only none and host/);
      const absent = await berth(['run', '--rm', 'localhost/nope:1', 'true']);
      assert.match(absent.stderr, /not in the local store/);
      assert.deepEqual(await readdir(join(tmp, 'cli-root', 'containers')).catch(() => []), []);
    });
  });
});
