// The whole runtime path, once per executor (built-in, runc, crun): a locally built busybox image is
// unpacked into snapshots and run by runEphemeral (snapshot → overlay rootfs → config.json from
// buildSpec → executor → teardown). Root; an executor whose program is missing is skipped.
import assert from 'node:assert/strict';
import { existsSync, readlinkSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ImageLayout } from '../../client/image-layout.js';
import { RuntimeImageStore } from '../../runtime/image-store.js';
import type { Executor } from '../../runtime/executors/executor.js';
import { pickExecutor } from '../../runtime/executors/index.js';
import { runEphemeral } from '../../runtime/run.js';
import { OverlaySnapshotter } from '../../runtime/snapshotter.js';
import type { RunOptions } from '../../runtime/spec.js';
import { addImage, isRoot, layer, removeDir, run, tempDir } from './helpers.js';

const BUSYBOX = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));
const installed = (name: string) => name === 'builtin' ? existsSync('/usr/bin/perl') : ['/usr/sbin', '/usr/bin'].some((d) => existsSync(join(d, name)));

for (const kind of ['builtin', 'runc', 'crun']) {
const skip = !isRoot ? 'needs root' : !BUSYBOX ? 'needs busybox-static' : !installed(kind) ? `needs ${kind}` : false;

describe(`unpacked image + buildSpec run under the ${kind} executor (root, overlay)`, { skip }, () => {
  let tmp: string;
  let snaps: OverlaySnapshotter;
  let store: RuntimeImageStore;
  let chainId: string;
  let executor: Executor;

  before(async () => {
    tmp = await tempDir();
    snaps = await OverlaySnapshotter.open(join(tmp, 'root'));
    const layout = await ImageLayout.open(join(tmp, 'store'), { create: true });
    const applets = ['sh', 'echo', 'id', 'hostname', 'cat', 'ls', 'grep', 'true', 'sed', 'tr', 'cut', 'sort', 'head', 'tail', 'sleep', 'readlink', 'tty', 'stty'];
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
    executor = await pickExecutor(join(tmp, 'exec-root'), kind);
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
    assert.deepEqual(await readdir(join(tmp, 'exec-root', 'runtime', kind)).catch(() => []).then((l) => l.filter((n) => !n.startsWith('empty-'))), []);
    assert.equal(await snaps.exists(chainId), true);
    const r = await runContainer({ args: ['/bin/sh', '-c', 'cat /etc/hostname; grep -c localhost /etc/hosts'], hostname: 'named' });
    assert.equal(r.stdout, 'named\n2\n');
  });

  test('--user resolves against the image /etc/passwd; exit codes come through', async () => {
    const r = await runContainer({ user: 'app', args: ['/bin/sh', '-c', 'id; exit 7'] });
    assert.equal(r.code, 7);
    assert.match(r.stdout, /^uid=1000\(app\) gid=1000\(app\) groups=(1000\(app\),)?50\(staff\)\n$/);
  });

  test('isolation: own pid, uts, ipc, mount and net namespaces; Docker\'s capabilities; pivot_root, not chroot', async () => {
    const host = (ns: string) => readlinkSync(`/proc/self/ns/${ns}`);
    const r = await runContainer({ hostname: 'iso', args: ['/bin/sh', '-c', [
      'for n in pid uts ipc mnt net; do readlink /proc/self/ns/$n; done',
      'grep -E "^Cap(Bnd|Eff)" /proc/self/status',
      'cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d " "',
      'cat /sys/class/net/lo/operstate',
      'cat /proc/self/mountinfo | cut -d" " -f5 | sort -u | tr "\n" " "',
    ].join('; ')] });
    assert.equal(r.stderr, '');
    const lines = r.stdout.split('\n');
    for (const [i, ns] of ['pid', 'uts', 'ipc', 'mnt', 'net'].entries()) assert.notEqual(lines[i], host(ns), `${ns} namespace is the host's`);
    assert.match(lines[5]!, /^CapEff:\s+00000000a80425fb$/);
    assert.match(lines[6]!, /^CapBnd:\s+00000000a80425fb$/);
    assert.equal(lines[7], 'lo', 'only the loopback interface');
    assert.match(lines[8]!, /^(unknown|up)$/, 'loopback is up');
    // the old root is gone from the mount table: no host mount (say /sys/fs/cgroup/memory's host path, or the bundle) is visible
    const mountpoints = lines[9]!.trim().split(' ');
    assert.ok(mountpoints.includes('/'), mountpoints.join(' '));
    assert.ok(!mountpoints.some((m) => m.includes(tmp)), `host paths visible: ${mountpoints.join(' ')}`);
    assert.ok(!mountpoints.includes('/boot') && !mountpoints.includes('/work') && !mountpoints.includes('/tmp'), mountpoints.join(' '));
  });

  test('a memory limit kills an over-allocating process; a pids limit stops a fork bomb', async () => {
    // 64 MB of zeros held in one shell variable under a 32 MB limit
    const oom = await runContainer({ memory: 32 * 1024 * 1024, args: ['/bin/sh', '-c', 'x=$(head -c 67108864 /dev/zero | tr "\\0" a); echo survived ${#x}'] });
    assert.equal(oom.code, 137, `exit ${oom.code}: ${oom.stdout}${oom.stderr}`);
    // 20 background sleeps under a limit of 8 processes: a fork fails and the shell gives up
    const bomb = 'i=0; while [ $i -lt 20 ]; do sleep 5 & i=$((i+1)); done; echo all-started';
    const limited = await runContainer({ pidsLimit: 8, args: ['/bin/sh', '-c', bomb] });
    assert.doesNotMatch(limited.stdout, /all-started/);
    assert.match(limited.stderr, /can't fork|Resource temporarily unavailable/);
    const free = await runContainer({ args: ['/bin/sh', '-c', bomb] });
    assert.equal(free.stdout, 'all-started\n');
  });

  describe('berth run --rm (runtime/cli.ts, in a child process)', () => {
    const probe = `
      import { Command } from ${JSON.stringify(new URL('../../cli/commander.js', import.meta.url).href)};
      import { registerRuntime } from ${JSON.stringify(new URL('../../runtime/cli.js', import.meta.url).href)};
      const p = new Command(); p.exitOverride(); registerRuntime(p);
      try { await p.parseAsync(JSON.parse(process.env.ARGS), { from: 'user' }); }
      catch (e) { process.stderr.write('berth: ' + e.message + '\\n'); process.exitCode = e.exitCode ?? 1; }`;
    function berth(args: string[], opts: { input?: string; underScript?: boolean } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
      if (args[0] === 'run') args = ['run', '--runtime', kind, ...args.slice(1)];
      return new Promise((resolve, reject) => {
        const env = { ...process.env, ARGS: JSON.stringify(args), BERTH_ROOT: join(tmp, 'cli-root'), BERTH_STORE: join(tmp, 'store') };
        const argv = [process.execPath, '--input-type=module', '-e', probe];
        // underScript: as from a terminal (script(1) gives berth a pty)
        const child = opts.underScript
          ? spawn('script', ['-qec', argv.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' '), '/dev/null'], { env, stdio: ['pipe', 'pipe', 'pipe'] })
          : spawn(argv[0]!, argv.slice(1), { env, stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
        if (opts.input !== undefined) child.stdin!.end(opts.input);
        let stdout = '';
        let stderr = '';
        child.stdout!.on('data', (d) => { stdout += d; });
        child.stderr!.on('data', (d) => { stderr += d; });
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

    test('-i hands stdin to the container (and only with -i); -t gives it a terminal', async () => {
      const i = await berth(['run', '--rm', '-i', 'localhost/bb:1', 'cat'], { input: 'through stdin\n' });
      assert.equal(i.stdout, 'through stdin\n', i.stderr);
      const noI = await berth(['run', '--rm', 'localhost/bb:1', 'cat'], { input: 'dropped\n' });
      assert.equal(noI.stdout, '');
      const plain = await berth(['run', '--rm', 'localhost/bb:1', 'sh', '-c', 'test -t 1 && echo tty || echo no-tty']);
      assert.equal(plain.stdout, 'no-tty\n');
      const t = await berth(['run', '--rm', '-t', 'localhost/bb:1', 'sh', '-c', 'test -t 0 && test -t 1 && echo tty; echo $TERM'], { underScript: true });
      // (crun on a loaded machine once began a red, timestamped log line of its own on the terminal around the
      // container's output, with no text of its own: its colour codes and stamp are not the container's)
      const shown = t.stdout.replace(/^\x1B\[1;31m\d{4}-\d\d-\d\dT[\d:.]+Z: ([\s\S]*)\x1B\[0m\n$/, '$1');
      assert.match(shown, /^tty\r*\nxterm\r*\n$/, `${JSON.stringify(t.stdout)} ${t.stderr}`);
    });

    test('named volumes keep data across containers and start with the image\'s files; anonymous ones go with --rm', async () => {
      const volumes = join(tmp, 'cli-root', 'volumes');
      const w = await berth(['run', '--rm', '-v', `keep-${kind}:/data`, 'localhost/bb:1', 'sh', '-c', 'echo kept > /data/f']);
      assert.equal(w.code, 0, w.stderr);
      const r = await berth(['run', '--rm', '-v', `keep-${kind}:/data:ro`, 'localhost/bb:1', 'sh', '-c', 'cat /data/f; echo x > /data/g 2>/dev/null || echo read-only']);
      assert.equal(r.stdout, 'kept\nread-only\n', r.stderr);
      // copy-up: the image's /hidden (one file, "new") fills an empty volume mounted there
      const c = await berth(['run', '--rm', '-v', `up-${kind}:/hidden`, 'localhost/bb:1', 'cat', '/hidden/new']);
      assert.equal(c.stdout, 'new\n', c.stderr);
      assert.equal(await readFile(join(volumes, `up-${kind}`, '_data', 'new'), 'utf8'), 'new\n');
      const before = new Set(await readdir(volumes));
      const a = await berth(['run', '--rm', '-v', '/scratch', 'localhost/bb:1', 'sh', '-c', 'echo tmp > /scratch/t && cat /scratch/t']);
      assert.equal(a.stdout, 'tmp\n', a.stderr);
      assert.deepEqual((await readdir(volumes)).filter((n) => !before.has(n)), [], 'the anonymous volume is removed with the container');
      const missing = await berth(['run', '--rm', '-v', '/scratch', 'localhost/absent:1', 'true']);
      assert.notEqual(missing.code, 0);
      assert.deepEqual((await readdir(volumes)).filter((n) => !before.has(n)), [], 'a run that fails leaves no anonymous volume');
      const bad = await berth(['run', '--rm', '-v', 'bad/name:/x', 'localhost/bb:1', 'true']);
      assert.notEqual(bad.code, 0);
      assert.match(bad.stderr, /invalid characters for a local volume name/);
    });

    test('volumes, read-only root, workdir, hostname and user flags', async () => {
      const host = join(tmp, 'vol');
      await mkdir(host);
      await writeFile(join(host, 'f'), 'from host\n');
      const r = await berth(['run', '--rm', '-v', `${host}:/data:ro`, '--read-only', '-w', '/data', '-h', 'box', '-u', 'app', '--memory', '32m', '--pids-limit', '50',
        'localhost/bb:1', 'sh', '-c', 'cat f; hostname; id -u; touch /data/g 2>/dev/null || echo ro-volume; touch /x 2>/dev/null || echo ro-root; pwd']);
      assert.equal(r.stderr, '');
      assert.equal(r.stdout, 'from host\nbox\n1000\nro-volume\nro-root\n/data\n');
      // the container's /etc/hosts, hostname and resolv.conf stay writable, as docker keeps them
      const etc = await berth(['run', '--rm', '--read-only', 'localhost/bb:1', 'sh', '-c', 'echo 10.1.2.3 extra >> /etc/hosts && echo 1 >> /etc/resolv.conf && echo box > /etc/hostname && grep -c extra /etc/hosts']);
      assert.equal(etc.stderr, '');
      assert.equal(etc.stdout, '1\n');
    });

    test('with a bad flag or an unknown image: a clear error, nothing left behind', async () => {
      const badPolicy = await berth(['run', '-d', '-t', '--restart', 'sometimes', 'localhost/bb:1', 'true']);
      assert.equal(badPolicy.code, 2);
      assert.match(badPolicy.stderr, /--restart sometimes: expected no, always/);
      const badNet = await berth(['run', '--rm', '--network', 'overlay', 'localhost/bb:1', 'true']);
      assert.match(badNet.stderr, /network overlay not found/);
      const badPort = await berth(['run', '--rm', '-p', '8080:80/sctp', 'localhost/bb:1', 'true']);
      assert.match(badPort.stderr, /-p 8080:80\/sctp: the protocol must be tcp or udp/);
      const noBridge = await berth(['run', '--rm', '--network', 'none', '-p', '8080:80', 'localhost/bb:1', 'true']);
      assert.match(noBridge.stderr, /-p and -P need the bridge network, not --network none/);
      const absent = await berth(['run', '--rm', '--pull', 'never', 'localhost/nope:1', 'true']);
      assert.equal(absent.code, 3);
      assert.match(absent.stderr, /^berth: image localhost\/nope:1 is not in the local store/m);
      // pulled first (port 9 of localhost: nothing listens), and that failure said as such
      const unpullable = await berth(['run', '--rm', 'localhost:9/nope:1', 'true']);
      assert.notEqual(unpullable.code, 0);
      assert.match(unpullable.stderr, /^Unable to find image 'localhost:9\/nope:1' locally\nberth: image localhost:9\/nope:1 is not in the local store, and pulling it failed: cannot reach localhost:9/);
      assert.deepEqual(await readdir(join(tmp, 'cli-root', 'containers')).catch(() => []), []);
    });
  });
});
}
