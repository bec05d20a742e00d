// Detached containers (`berth run -d`, ps, logs, exec, stop, kill, rm, inspect) with the built-in
// executor and with runc, each command in its own short-lived CLI process, so the state that `ps`
// shows comes from disk and the container must outlive the CLI that started it. Root; an executor
// whose program is missing is skipped.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chown, mkdir, readdir, readFile, readlink, rmdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ImageLayout } from '../../client/image-layout.js';
import { JsonFileLog, listContainers, parseRestartPolicy, pidAlive, removeContainer, runtimeOf, streamLogs, type Container } from '../../runtime/containers.js';
import { formatPs } from '../../runtime/cli.js';
import { availableCapabilities, CAPABILITIES, hostDevices } from '../../runtime/spec.js';
import { unmount } from '../../runtime/mount.js';
import { OverlaySnapshotter } from '../../runtime/snapshotter.js';
import { addImage, isRoot, layer, removeDir, run, tempDir } from './helpers.js';

const BUSYBOX = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));
const installed = (name: string) => name === 'builtin' ? existsSync('/usr/bin/perl') : ['/usr/sbin', '/usr/bin'].some((d) => existsSync(join(d, name)));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('restart policies parse like Docker\'s', () => {
  assert.deepEqual(parseRestartPolicy('no'), { name: 'no' });
  assert.deepEqual(parseRestartPolicy('on-failure:3'), { name: 'on-failure', maximumRetryCount: 3 });
  assert.deepEqual(parseRestartPolicy('on-failure'), { name: 'on-failure', maximumRetryCount: 0 });
  assert.deepEqual(parseRestartPolicy('unless-stopped'), { name: 'unless-stopped' });
  assert.throws(() => parseRestartPolicy('sometimes'), /expected no, always/);
  assert.equal(formatPs([]).trim().replace(/\s+/g, ' '), 'CONTAINER ID IMAGE COMMAND CREATED STATUS PORTS NAMES');
});

test('the json-file log rotates by size and is read back across the rotated file', async () => {
  const dir = await tempDir();
  try {
    const path = join(dir, 'c-json.log');
    const log = new JsonFileLog(path, 300);
    for (let i = 0; i < 10; i++) log.write(i % 2 ? 'stderr' : 'stdout', `line ${i}\n`);
    log.write('stdout', 'no newline yet');
    log.close();
    const cur = (await readFile(path, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    const old = (await readFile(`${path}.1`, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    assert.ok((await readFile(path)).length <= 300 && (await readFile(`${path}.1`)).length <= 300);
    assert.deepEqual(Object.keys(cur[0]), ['log', 'stream', 'time']);
    assert.equal(cur.at(-1).log, 'no newline yet');
    assert.equal(cur[0].stream, /[13579]$/.test(cur[0].log.trim()) ? 'stderr' : 'stdout');
    const all = [...old, ...cur].map((l) => l.log);
    assert.deepEqual(all, [...Array.from({ length: 10 }, (_, i) => `line ${i}\n`), 'no newline yet'].slice(-all.length));
    const c = { config: { id: 'c', created: '' }, state: { status: 'exited', restartCount: 0 }, dir } as unknown as Container;
    let text = '';
    await streamLogs(dir, c, { tail: 2, write: (s) => { text += s; } });
    assert.equal(text, 'line 9\nno newline yet');
  } finally { await removeDir(dir); }
});

test('--log-opt max-file: that many files in all, read back oldest first; max-file=1 starts the file again', async () => {
  const dir = await tempDir();
  try {
    const path = join(dir, 'c-json.log');
    const log = new JsonFileLog(path, 150, 4); // about two lines per file
    for (let i = 0; i < 20; i++) log.write('stdout', `line ${String(i).padStart(2, '0')}\n`);
    log.close();
    assert.deepEqual((await readdir(dir)).sort(), ['c-json.log', 'c-json.log.1', 'c-json.log.2', 'c-json.log.3']);
    const c = { config: { id: 'c', created: '', log: { maxSize: 150, maxFiles: 4 } }, state: { status: 'exited', restartCount: 0 }, dir } as unknown as Container;
    let text = '';
    await streamLogs(dir, c, { write: (s) => { text += s; } });
    const lines = text.trim().split('\n');
    assert.ok(lines.length >= 6 && lines.length < 20, `${lines.length} lines kept`);
    assert.deepEqual(lines, Array.from({ length: lines.length }, (_, i) => `line ${String(20 - lines.length + i).padStart(2, '0')}`), 'the newest lines, in order');

    const one = new JsonFileLog(join(dir, 'one-json.log'), 150, 1);
    for (let i = 0; i < 20; i++) one.write('stdout', `line ${i}\n`);
    one.close();
    assert.ok(!existsSync(join(dir, 'one-json.log.1')));
    assert.match(await readFile(join(dir, 'one-json.log'), 'utf8'), /"line 19\\n"/);
  } finally { await removeDir(dir); }
});

test('logs --since/--until select lines by their time, before --tail counts them', async () => {
  const dir = await tempDir();
  try {
    const at = (h: number) => `2026-12-07T${String(h).padStart(2, '0')}:00:00.000000000Z`;
    await writeFile(join(dir, 'c-json.log'), [10, 11, 12, 13].map((h) => `${JSON.stringify({ log: `at ${h}\n`, stream: 'stdout', time: at(h) })}\n`).join(''));
    const c = { config: { id: 'c', created: '' }, state: { status: 'exited', restartCount: 0 }, dir } as unknown as Container;
    const read = async (o: { since?: number; until?: number; tail?: number }) => {
      let text = '';
      await streamLogs(dir, c, { ...o, write: (s) => { text += s; } });
      return text;
    };
    assert.equal(await read({ since: Date.parse(at(11)), until: Date.parse(at(12)) }), 'at 11\nat 12\n');
    assert.equal(await read({ since: Date.parse(at(11)), tail: 1 }), 'at 13\n');
    assert.equal(await read({ until: Date.parse(at(11)), tail: 5 }), 'at 10\nat 11\n');
  } finally { await removeDir(dir); }
});

test('logs -f across rotations: every line once, in order, including what the old file got after the last read', async () => {
  const root = await tempDir();
  try {
    const id = 'f'.repeat(64);
    const dir = join(root, 'containers', id);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'container.json'), JSON.stringify({ id, name: 'follow', config: {} }));
    await writeFile(join(dir, 'state.json'), JSON.stringify({ status: 'running', restartCount: 0, supervisorPid: process.pid }));
    const log = new JsonFileLog(join(dir, `${id}-json.log`), 400);
    log.write('stdout', 'line 0\n');
    let text = '';
    const c = { config: { id }, state: { status: 'running', restartCount: 0 }, dir } as unknown as Container;
    const following = streamLogs(root, c, { follow: true, pollMs: 30, write: (s) => { text += s; } });
    // bursts bigger than the file between polls: each rotates, leaving unread lines in the old file
    for (let burst = 0; burst < 6; burst++) {
      for (let i = 1; i <= 4; i++) log.write('stdout', `line ${burst * 4 + i}\n`);
      await sleep(80);
    }
    log.close();
    await writeFile(join(dir, 'state.json'), JSON.stringify({ status: 'exited', restartCount: 0, exitCode: 0 }));
    await following;
    assert.equal(text, Array.from({ length: 25 }, (_, i) => `line ${i}\n`).join(''));
  } finally { await removeDir(root); }
});

for (const kind of ['builtin', 'runc']) {
const skip = !isRoot ? 'needs root' : !BUSYBOX ? 'needs busybox-static' : !installed(kind) ? `needs ${kind}` : false;

describe(`detached containers under a supervisor (root, ${kind})`, { skip }, () => {
  let tmp: string;
  let root: string;

  // the real CLI (dist/cli/index.js): the container commands must live next to the registry client's
  const cli = fileURLToPath(new URL('../../cli/index.js', import.meta.url));

  function berth(args: string[], onStdout?: (s: string) => void, input?: string): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
    const t0 = Date.now();
    if (args[0] === 'run') args = ['run', '--runtime', kind, ...args.slice(1)];
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [cli, ...args], {
        env: { ...process.env, BERTH_ROOT: root, BERTH_STORE: join(tmp, 'store') },
        stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      });
      if (input !== undefined) child.stdin!.end(input);
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (d) => { stdout += d; onStdout?.(String(d)); });
      child.stderr!.on('data', (d) => { stderr += d; });
      child.on('error', reject);
      // 'exit', not 'close': a supervisor holding an inherited pipe must not keep us waiting
      child.on('exit', (code) => setImmediate(() => resolve({ code, stdout, stderr, ms: Date.now() - t0 })));
    });
  }

  async function inspect(ref: string): Promise<{ Id: string; RestartCount: number; State: { Status: string; Running: boolean; Pid: number; ExitCode: number; SupervisorPid: number }; GraphDriver: { Data: { MergedDir: string; SnapshotKey: string } } }> {
    const r = await berth(['container', 'inspect', ref]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout)[0];
  }

  async function waitExited(ref: string, timeoutMs = 15_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = await inspect(ref);
      if (i.State.Status === 'exited' && !pidAlive(i.State.SupervisorPid)) return i;
      if (Date.now() > deadline) assert.fail(`${ref} did not exit: ${JSON.stringify(i.State)}`);
      await sleep(100);
    }
  }

  async function runD(args: string[]): Promise<string> {
    const r = await berth(['run', '-d', ...args]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^[0-9a-f]{64}\n$/);
    return r.stdout.trim();
  }

  before(async () => {
    tmp = await tempDir();
    root = join(tmp, 'root');
    const layout = await ImageLayout.open(join(tmp, 'store'), { create: true });
    const applets = ['sh', 'echo', 'sleep', 'true', 'cat', 'id', 'tr', 'hostname', 'pwd', 'dd', 'tty', 'stty', 'wget', 'httpd', 'mkdir', 'ip', 'grep', 'ln', 'stat', 'mknod', 'chmod'];
    const bin = layer([
      { name: 'bin/', type: 'dir' },
      { name: 'bin/busybox', type: 'file', mode: 0o755, data: await readFile(BUSYBOX!) },
      ...applets.map((a) => ({ name: `bin/${a}`, type: 'symlink' as const, linkname: 'busybox' })),
    ]);
    await addImage(layout, 'localhost/bb:1', [bin], { config: { Cmd: ['/bin/sh'] } });
    await addImage(layout, 'localhost/bb:healthy', [bin], { config: { Cmd: ['/bin/sh'], Healthcheck: { Test: ['CMD-SHELL', 'true'], Interval: 200e6, Retries: 1 } } });
    await addImage(layout, 'localhost/bb:quit', [bin], { config: { Cmd: ['/bin/sh'], StopSignal: 'SIGQUIT', Labels: { from: 'image', tier: 'base' } } });
    // hostile: mount points (/etc/hosts …, /dev/init) behind symlinks that lead, through /proc, to the host
    const escape = join(tmp, 'host-side');
    await addImage(layout, 'localhost/bb:escape', [bin, layer([
      { name: 'etc', type: 'symlink', linkname: `/proc/self/root${escape}/etc` },
      { name: 'dev/', type: 'dir' },
      { name: 'dev/init', type: 'symlink', linkname: `/proc/self/root${escape}/init` },
    ])], { config: { Cmd: ['/bin/sh'] } });
    // /etc a regular file: no room for /etc/hosts
    await addImage(layout, 'localhost/bb:etcfile', [bin, layer([{ name: 'etc', type: 'file', data: Buffer.from('not a directory\n') }])], { config: { Cmd: ['/bin/sh'] } });
    // /proc a symlink to a directory: procfs would land there, and the masks and volumes below /proc elsewhere
    await addImage(layout, 'localhost/bb:procsym', [bin, layer([
      { name: 'p2/', type: 'dir' },
      { name: 'proc', type: 'symlink', linkname: 'p2' },
    ])], { config: { Cmd: ['/bin/sh'], Volumes: { '/p2/sys': {} } } });
  });

  after(async () => {
    // everything the tests started: supervisors, containers, mounts, snapshots, cgroups
    const snapshots = await OverlaySnapshotter.open(root).catch(() => undefined);
    for (const c of await listContainers(root)) {
      if (snapshots) await removeContainer(root, snapshots, c, true).catch(() => undefined);
      if (c.state.supervisorPid && pidAlive(c.state.supervisorPid)) { try { process.kill(c.state.supervisorPid, 'SIGKILL'); } catch { /* gone */ } }
    }
    const mounts = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').map((l) => l.split(' ')[4]).filter((m): m is string => !!m && m.startsWith(tmp));
    for (const m of mounts.reverse()) await unmount(m, { lazy: true }).catch(() => undefined);
    await removeDir(tmp);
    for (const c of await readdir('/sys/fs/cgroup').catch(() => [] as string[])) await rmdir(join('/sys/fs/cgroup', c, 'berth')).catch(() => undefined);
  });

  test('run -d returns the id at once; the container outlives the CLI; ps, inspect and logs read the state on disk', async () => {
    const t0 = Date.now();
    const id = await runD(['--name', 'web', 'localhost/bb:1', 'sh', '-c', 'echo hello; echo oops >&2; trap "echo bye; exit 3" TERM; while true; do sleep 0.1; done']);
    assert.ok(Date.now() - t0 < 10_000);
    await sleep(300); // the CLI is gone; the container still runs
    const i = await inspect('web');
    assert.equal(i.Id, id);
    assert.equal(i.State.Status, 'running');
    assert.ok(pidAlive(i.State.Pid) && pidAlive(i.State.SupervisorPid));
    const ps = (await berth(['ps'])).stdout.trimEnd().split('\n');
    assert.match(ps[0]!, /^CONTAINER ID\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS\s+NAMES$/);
    assert.match(ps.find((l) => l.startsWith(id.slice(0, 12)))!, /^[0-9a-f]{12}\s+localhost\/bb:1\s+"sh -c echo hello; e…"\s+.* ago\s+Up .*\s+web$/);
    assert.ok((await berth(['ps', '-q'])).stdout.split('\n').includes(id.slice(0, 12)));
    assert.equal((await inspect(id.slice(0, 8))).Id, id); // an id prefix works too
    const logs = await berth(['logs', 'web']);
    assert.equal(logs.stdout, 'hello\n'); // each stream to its own: stderr lines to stderr, as docker logs does
    assert.equal(logs.stderr, 'oops\n');
    const ts = await berth(['logs', '-t', '--tail', '1', 'web']);
    assert.match(ts.stdout + ts.stderr, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z (hello|oops)\n$/);
    const raw = (await readFile(join(root, 'containers', id, `${id}-json.log`), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(raw.map((l: { log: string; stream: string }) => [l.log, l.stream]).sort(), [['hello\n', 'stdout'], ['oops\n', 'stderr']]);
    // --since / --until: a time ago, Unix seconds or a timestamp
    assert.equal((await berth(['logs', '--since', '10m', 'web'])).stdout, 'hello\n');
    assert.equal((await berth(['logs', '--since', String(Math.floor(t0 / 1000) - 1), '--until', new Date(Date.now() + 60_000).toISOString(), 'web'])).stdout, 'hello\n');
    assert.equal((await berth(['logs', '--until', '2000-01-01', 'web'])).stdout, '');
    assert.equal((await berth(['logs', '--since', new Date(Date.now() + 60_000).toISOString(), 'web'])).stdout, '');
    const badSince = await berth(['logs', '--since', 'yesterday', 'web']);
    assert.equal(badSince.code, 2);
    assert.match(badSince.stderr, /--since yesterday: expected a timestamp/);
    const dup = await berth(['run', '-d', '--name', 'web', 'localhost/bb:1', 'true']);
    assert.notEqual(dup.code, 0);
    assert.match(dup.stderr, /already in use/);
  });

  test('stop sends SIGTERM and records the exit code; a container ignoring it is killed after -t', async () => {
    const s = await berth(['stop', '-t', '5', 'web']);
    assert.equal(s.code, 0, s.stderr);
    assert.ok(s.ms < 5000, `stop took ${s.ms} ms`);
    const i = await inspect('web');
    assert.equal(i.State.Status, 'exited');
    assert.equal(i.State.ExitCode, 3);
    assert.equal(i.RestartCount, 0);
    assert.match((await berth(['logs', 'web'])).stdout, /bye\n$/);
    assert.ok(!(await berth(['ps'])).stdout.includes(' web\n'));
    assert.match((await berth(['ps', '-a'])).stdout, /Exited \(3\) .* ago\s+web\n/);

    // start runs it again (same rootfs, the log goes on); restart = stop + start
    const st = await berth(['start', 'web']);
    assert.equal(st.code, 0, st.stderr);
    assert.equal((await inspect('web')).State.Status, 'running');
    const rs = await berth(['restart', '-t', '5', 'web']);
    assert.equal(rs.code, 0, rs.stderr);
    assert.equal((await inspect('web')).State.Status, 'running');
    await sleep(200);
    assert.match((await berth(['logs', 'web'])).stdout, /^hello\nbye\nhello\nbye\nhello\n$/);
    const s2 = await berth(['stop', 'web']);
    assert.equal(s2.code, 0, s2.stderr);
    assert.equal((await inspect('web')).State.ExitCode, 3);
    // as after a reboot: the rootfs is no longer mounted; start mounts it again
    await unmount(join(root, 'containers', (await inspect('web')).Id, 'rootfs'));
    assert.equal((await berth(['start', 'web'])).code, 0);
    assert.equal((await inspect('web')).State.Status, 'running');
    assert.equal((await berth(['stop', 'web'])).code, 0);

    await runD(['--name', 'stubborn', '--restart', 'always', 'localhost/bb:1', 'sh', '-c', 'while true; do sleep 0.1; done']);
    const k = await berth(['stop', '-t', '1', 'stubborn']);
    assert.equal(k.code, 0, k.stderr);
    assert.ok(k.ms >= 900 && k.ms < 8000, `stop took ${k.ms} ms`);
    const j = await inspect('stubborn');
    assert.equal(j.State.ExitCode, 137); // PID 1 has no SIGTERM handler: SIGKILL; "always" does not restart a stopped container
    assert.equal(j.State.Status, 'exited');
    assert.equal(j.RestartCount, 0);
  });

  test('logs -f follows the output until the container ends', async () => {
    const id = await runD(['localhost/bb:1', 'sh', '-c', 'for i in 1 2 3 4; do echo line$i; sleep 0.3; done']);
    let firstAt = 0;
    const f = await berth(['logs', '-f', id], () => { firstAt ||= Date.now(); });
    const end = Date.now();
    assert.equal(f.code, 0, f.stderr);
    assert.equal(f.stdout, 'line1\nline2\nline3\nline4\n');
    assert.ok(end - firstAt >= 400, 'lines arrived while the container ran');
    assert.equal((await waitExited(id)).State.ExitCode, 0);
    assert.equal((await berth(['logs', '--tail', '2', id])).stdout, 'line3\nline4\n');
  });

  test('--restart on-failure:2 restarts exactly twice', async () => {
    const id = await runD(['--restart', 'on-failure:2', 'localhost/bb:1', 'sh', '-c', 'echo try; exit 5']);
    const i = await waitExited(id);
    assert.equal(i.RestartCount, 2);
    assert.equal(i.State.ExitCode, 5);
    assert.equal((await berth(['logs', id])).stdout, 'try\ntry\ntry\n');
    const ok = await runD(['--restart', 'on-failure:2', '--log-opt', 'max-size=1k', 'localhost/bb:1', 'sh', '-c', 'i=0; while [ $i -lt 100 ]; do echo "row $i"; i=$((i+1)); done']);
    const j = await waitExited(ok);
    assert.equal(j.RestartCount, 0);
    assert.equal(j.State.ExitCode, 0);
    // 100 lines of ~60 bytes in 1 KiB files: rotated, and logs shows the lines the two files still hold, in order
    const rows = (await berth(['logs', ok])).stdout.trimEnd().split('\n');
    assert.ok(rows.length > 10 && rows.length < 40, `${rows.length} rows`);
    assert.deepEqual(rows, Array.from({ length: rows.length }, (_, k) => `row ${100 - rows.length + k}`));
    assert.ok(existsSync(join(root, 'containers', ok, `${ok}-json.log.1`)));
  });

  test('a supervisor that died (as at a reboot) is seen from disk: ps -a shows the container exited, rm cleans up', async () => {
    const id = await runD(['--name', 'orphan', 'localhost/bb:1', 'sh', '-c', 'while true; do sleep 0.1; done']);
    const i = await inspect(id);
    process.kill(i.State.SupervisorPid, 'SIGKILL');
    await sleep(200);
    assert.ok(!(await berth(['ps', '-q'])).stdout.includes(id.slice(0, 12)));
    assert.match((await berth(['container', 'ls', '-a'])).stdout, /Exited \(255\) .*\s+orphan\n/);
    const j = await inspect('orphan');
    assert.equal(j.State.Status, 'exited');
    assert.equal(j.State.Running, false);
    // start ends what the dead supervisor left (the orphaned container) and runs it again
    const st = await berth(['start', 'orphan']);
    assert.equal(st.code, 0, st.stderr);
    const k = await inspect('orphan');
    assert.equal(k.State.Status, 'running');
    assert.notEqual(k.State.SupervisorPid, i.State.SupervisorPid);
    await sleep(200);
    assert.ok(!pidAlive(i.State.Pid), 'the orphaned runtime process ended with its container');
    assert.equal((await berth(['kill', 'orphan'])).code, 0);
    await waitExited('orphan');
    // a dead supervisor and a still-running container: plain rm (no -f) cleans it up too
    const again = await runD(['--name', 'orphan2', 'localhost/bb:1', 'sh', '-c', 'while true; do sleep 0.1; done']);
    const a = await inspect(again);
    process.kill(a.State.SupervisorPid, 'SIGKILL');
    await sleep(200);
    assert.equal((await berth(['container', 'rm', 'orphan2'])).code, 0);
    await sleep(200);
    assert.ok(!pidAlive(a.State.Pid));
    // stop, too, ends what a dead supervisor left running (and the container stays, stopped)
    const third = await runD(['--name', 'orphan3', 'localhost/bb:1', 'sh', '-c', 'while true; do sleep 0.1; done']);
    const t = await inspect(third);
    process.kill(t.State.SupervisorPid, 'SIGKILL');
    await sleep(200);
    assert.ok(pidAlive(t.State.Pid), 'the container outlived its supervisor');
    assert.equal((await berth(['stop', 'orphan3'])).code, 0);
    for (let w = 0; w < 50 && pidAlive(t.State.Pid); w++) await sleep(100);
    assert.ok(!pidAlive(t.State.Pid), 'stop ended it');
    assert.equal((await inspect('orphan3')).State.Status, 'exited');
    const r = await berth(['container', 'rm', 'orphan', 'orphan3']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!existsSync(join(root, 'containers', id)) && !existsSync(join(root, 'containers', again)));
  });

  test('kill, then rm: a running container needs -f; rm unmounts and removes the snapshot, bundle and runtime state', async () => {
    const id = await runD(['--name', 'victim', 'localhost/bb:1', 'sh', '-c', 'while true; do sleep 0.1; done']);
    const i = await inspect(id);
    const merged = i.GraphDriver.Data.MergedDir;
    assert.ok((await readFile('/proc/self/mountinfo', 'utf8')).includes(` ${merged} `));
    const no = await berth(['container', 'rm', 'victim']);
    assert.notEqual(no.code, 0);
    assert.match(no.stderr, /stop it first or use rm -f/);
    const k = await berth(['kill', 'victim']);
    assert.equal(k.code, 0, k.stderr);
    assert.equal((await waitExited(id)).State.ExitCode, 137);

    const id2 = await runD(['localhost/bb:1', 'sh', '-c', 'while true; do sleep 0.1; done']);
    const sup = (await inspect(id2)).State.SupervisorPid;
    for (const ref of ['victim', id2.slice(0, 12)]) {
      const r = await berth(['container', 'rm', '-f', ref]);
      assert.equal(r.code, 0, r.stderr);
    }
    assert.ok(!pidAlive(sup));
    const mountinfo = await readFile('/proc/self/mountinfo', 'utf8');
    assert.ok(!mountinfo.includes(id) && !mountinfo.includes(id2));
    assert.ok(!existsSync(join(root, 'containers', id)) && !existsSync(join(root, 'containers', id2)));
    const snaps = await OverlaySnapshotter.open(root);
    for await (const s of snaps.walk()) assert.ok(s.key !== `container-${id}` && s.key !== `container-${id2}`, `left: ${s.key}`);
    assert.deepEqual((await readdir(join(root, 'runtime', kind)).catch(() => [] as string[])).filter((d) => d === id || d === id2), []);
    const gone = await berth(['container', 'inspect', 'victim']);
    assert.match(gone.stderr, /No such container/);
  });

  test('exec runs beside PID 1: the container\'s env, hostname and namespaces; -u, -w, -e, -i, -t; its exit code', async () => {
    const id = await runD(['--name', 'ex', '-e', 'FOO=bar', '-h', 'exbox', 'localhost/bb:1', 'sleep', '60']);
    const r = await berth(['exec', 'ex', 'sh', '-c', 'echo $FOO; hostname; cat /proc/1/cmdline | tr "\\0" " "; echo; id -u; exit 5']);
    assert.equal(r.code, 5, r.stderr);
    assert.equal(r.stdout, 'bar\nexbox\nsleep 60 \n0\n');
    const u = await berth(['exec', '-u', '1000:1000', '-w', '/bin', '-e', 'FOO=over', 'ex', 'sh', '-c', 'id -u; pwd; echo $FOO']);
    assert.equal(u.stdout, '1000\n/bin\nover\n', u.stderr);
    const noStdin = await berth(['exec', 'ex', 'cat'], undefined, 'not passed\n');
    assert.equal(noStdin.stdout, '');
    const withStdin = await berth(['exec', '-i', 'ex', 'cat'], undefined, 'passed\n');
    assert.equal(withStdin.stdout, 'passed\n', withStdin.stderr);
    // -t as from a terminal: berth itself runs under script(1)'s pty (runc insists on one)
    const inner = [process.execPath, cli, 'exec', '-t', 'ex', 'sh', '-c', 'test -t 0 && test -t 1 && echo on-a-tty'].map((a) => `'${a}'`).join(' ');
    const tty = await new Promise<string>((resolve, reject) => {
      const child = spawn('script', ['-qec', inner, '/dev/null'], { env: { ...process.env, BERTH_ROOT: root, BERTH_STORE: join(tmp, 'store') }, stdio: ['pipe', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (d) => { out += d; });
      child.on('error', reject);
      child.on('exit', () => setImmediate(() => resolve(out)));
    });
    assert.match(tty, /^on-a-tty\r*\n$/);
    // --env-file, and -d: in the background, nothing printed; a command the container lacks is reported at once
    const envFile = join(tmp, `exec-${kind}.env`);
    await writeFile(envFile, '# comment\nFROM_FILE=yes\nFOO=file\n');
    assert.equal((await berth(['exec', '--env-file', envFile, '-e', 'FOO=flag', 'ex', 'sh', '-c', 'echo $FROM_FILE $FOO'])).stdout, 'yes flag\n');
    // (the background command waits for /go, which only comes after exec -d has returned)
    const bg = await berth(['exec', '-d', 'ex', 'sh', '-c', 'while [ ! -e /go ]; do sleep 0.05; done; echo done > /bg-marker']);
    assert.deepEqual([bg.code, bg.stdout, bg.stderr], [0, '', '']);
    assert.equal((await berth(['exec', 'ex', 'sh', '-c', 'echo > /go'])).code, 0);
    let marker = '';
    for (let i = 0; i < 50 && marker !== 'done\n'; i++) { await sleep(100); marker = (await berth(['exec', 'ex', 'cat', '/bg-marker'])).stdout; }
    assert.equal(marker, 'done\n');
    const missing = await berth(['exec', '-d', 'ex', 'no-such-command']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /exec: "no-such-command": executable file not found in \$PATH/);
    assert.match((await berth(['exec', '-d', '-i', 'ex', 'true'])).stderr, /-d runs the command in the background: it takes no -i or -t/);
    assert.equal(await berth(['kill', 'ex']).then((k) => k.code), 0);
    await waitExited(id);
    const stopped = await berth(['exec', 'ex', 'true']);
    assert.notEqual(stopped.code, 0);
    assert.match(stopped.stderr, /is not running/);
    assert.equal((await berth(['container', 'rm', 'ex'])).code, 0);
  });

  test('run -d --rm: the container removes itself when it ends', async () => {
    const id = await runD(['--rm', 'localhost/bb:1', 'sh', '-c', 'sleep 0.3; exit 4']);
    assert.ok(existsSync(join(root, 'containers', id)));
    const deadline = Date.now() + 15_000;
    while (existsSync(join(root, 'containers', id)) && Date.now() < deadline) await sleep(100);
    assert.ok(!existsSync(join(root, 'containers', id)), 'the container directory is gone');
    assert.ok(!(await readFile('/proc/self/mountinfo', 'utf8')).includes(id), 'its rootfs is unmounted');
    assert.doesNotMatch((await berth(['ps', '-a', '-q', '--no-trunc'])).stdout, new RegExp(id));
    // wait sees the exit code of a --rm container, though it is gone by the time wait looks again
    const waited = await runD(['--rm', 'localhost/bb:1', 'sh', '-c', 'sleep 0.5; exit 6']);
    const w = await berth(['wait', waited]);
    assert.deepEqual([w.code, w.stdout], [0, '6\n'], w.stderr);
    // restart keeps it, as docker's does: it runs again, and its next stop removes it
    const kept = await runD(['--rm', 'localhost/bb:1', 'sleep', '100']);
    const before = (await inspect(kept)).State.Pid;
    const rs = await berth(['restart', '-t', '0', kept]);
    assert.deepEqual([rs.code, rs.stdout], [0, `${kept}\n`], rs.stderr);
    const after = await inspect(kept);
    assert.equal(after.State.Status, 'running');
    assert.ok(after.State.Pid > 0 && after.State.Pid !== before, `a new process: ${before} → ${after.State.Pid}`);
    assert.ok(!existsSync(join(root, 'containers', kept, 'restart-requested')), 'the restart is over');
    assert.equal((await berth(['stop', '-t', '0', kept])).code, 0);
    for (let n = 0; n < 100 && existsSync(join(root, 'containers', kept)); n++) await sleep(100);
    assert.ok(!existsSync(join(root, 'containers', kept)), 'a stop after the restart removes it');
  });

  test('a foreground run --rm is a container while it runs (ps, inspect, exec, health, prune leaves it, stop), kept by its CLI and gone after', async () => {
    const name = `fgrm-${kind}`;
    const cli = spawn(process.execPath, [fileURLToPath(new URL('../../cli/index.js', import.meta.url)), 'run', '--runtime', kind, '--rm', '--name', name, '--network', 'none',
      '--health-cmd', 'test -e /proc/1', '--health-interval', '200ms', 'localhost/bb:1', 'sh', '-c', 'trap "echo got-term; exit 3" TERM; echo started; while :; do sleep 0.1; done'],
    { env: { ...process.env, BERTH_ROOT: root, BERTH_STORE: join(tmp, 'store') }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    cli.stdout!.on('data', (d) => { out += d; });
    const exited = new Promise<number | null>((resolve) => cli.on('exit', (code) => resolve(code)));
    for (let i = 0; i < 100 && !out.includes('started'); i++) await sleep(100);
    assert.equal(out, 'started\n');

    const i = JSON.parse((await berth(['container', 'inspect', name])).stdout)[0];
    assert.equal(i.State.Status, 'running');
    assert.equal(i.State.SupervisorPid, cli.pid, 'the CLI keeps it');
    assert.ok(i.State.Pid > 0);
    assert.equal(i.HostConfig.AutoRemove, true);
    assert.match((await berth(['ps', '--filter', `name=^${name}$`])).stdout, new RegExp(`Up .*${name}`));
    assert.equal((await berth(['exec', name, 'cat', '/proc/1/cmdline'])).stdout.split('\0')[0], 'sh');
    for (let n = 0; n < 50 && !(await berth(['ps', '--filter', `name=^${name}$`])).stdout.includes('(healthy)'); n++) await sleep(200);
    assert.match((await berth(['ps', '--filter', `name=^${name}$`])).stdout, /\(healthy\)/);
    const logs = await berth(['logs', name]);
    assert.equal(logs.code, 2);
    assert.match(logs.stderr, /runs in the foreground of a berth run --rm: its output goes to that terminal/);
    const restart = await berth(['restart', name]);
    assert.equal(restart.code, 2);
    assert.match(restart.stderr, /runs in the foreground of a berth run --rm, which removes it at its end: it cannot be restarted/);
    const taken = await berth(['run', '--rm', '--name', name, 'localhost/bb:1', 'true']);
    assert.match(taken.stderr, /the container name .* is already in use/);
    assert.equal((await berth(['container', 'prune', '-f'])).code, 0);
    assert.equal((await inspect(name)).State.Status, 'running');

    const stop = await berth(['stop', name]);
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal(await exited, 3);
    assert.equal(out, 'started\ngot-term\n');
    assert.ok(!existsSync(join(root, 'containers', i.Id)), 'its CLI removed it');
    assert.ok(!(await readFile('/proc/self/mountinfo', 'utf8')).includes(i.Id), 'its rootfs is unmounted');
    assert.doesNotMatch((await berth(['ps', '-a'])).stdout, new RegExp(name));

    // a CLI killed outright leaves it behind: seen as exited, start refuses it, rm ends what is left of it
    const orphanCli = spawn(process.execPath, [fileURLToPath(new URL('../../cli/index.js', import.meta.url)), 'run', '--runtime', kind, '--rm', '--name', `orphan-${kind}`, '--network', 'none', 'localhost/bb:1', 'sh', '-c', 'echo started; exec sleep 100'],
      { env: { ...process.env, BERTH_ROOT: root, BERTH_STORE: join(tmp, 'store') }, stdio: ['ignore', 'pipe', 'ignore'] });
    await new Promise<void>((resolve) => orphanCli.stdout!.once('data', () => resolve()));
    const orphan = await inspect(`orphan-${kind}`);
    orphanCli.kill('SIGKILL');
    for (let n = 0; n < 50 && (await inspect(`orphan-${kind}`)).State.Status !== 'exited'; n++) await sleep(100);
    assert.equal((await inspect(`orphan-${kind}`)).State.Status, 'exited');
    const start = await berth(['start', `orphan-${kind}`]);
    assert.equal(start.code, 2);
    assert.match(start.stderr, /was a foreground run --rm whose berth run ended before it could remove it: berth rm it/);
    assert.equal((await berth(['container', 'rm', `orphan-${kind}`])).code, 0);
    assert.ok(!pidAlive(orphan.State.Pid) || !existsSync(`/proc/${orphan.State.Pid}`), 'its container is ended');
    assert.ok(!existsSync(join(root, 'containers', orphan.Id)));

    // stop of a detached --rm container: its supervisor removes it meanwhile, and stop is content
    const detached = await runD(['--rm', 'localhost/bb:1', 'sleep', '100']);
    const stopped = await berth(['stop', '-t', '1', detached]);
    assert.equal(stopped.code, 0, stopped.stderr);
    for (let n = 0; n < 50 && existsSync(join(root, 'containers', detached)); n++) await sleep(100);
    assert.ok(!existsSync(join(root, 'containers', detached)));
  });
  test('--format: Go templates, table TEMPLATE and json for ps, images, network ls and volume ls; -f for the inspects', async () => {
    const name = `fmt-${kind}`;
    const id = await runD(['--name', name, '-l', 'tier=back', '-v', `fmtvol-${kind}:/data`, '--network', 'none', 'localhost/bb:quit', 'sleep', '100']);
    const only = ['--filter', `name=^${name}$`];
    assert.equal((await berth(['ps', ...only, '--format', '{{.Names}} {{.State}} {{.Networks}} {{.Labels}}'])).stdout, `${name} running none from=image,tier=back\n`);
    const table = (await berth(['ps', ...only, '--format', 'table {{.ID}}\\t{{.Names}}\\t{{.Image}}'])).stdout.split('\n');
    assert.match(table[0]!, /^CONTAINER ID {3}NAMES {3,}IMAGE$/);
    assert.match(table[1]!, new RegExp(`^${id.slice(0, 12)} {3}${name} +localhost/bb:quit$`));
    const json = (await berth(['ps', ...only, '--format', 'json'])).stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(json.map((j) => [j.ID, j.Names, j.State, j.Command]), [[id.slice(0, 12), name, 'running', '"sleep 100"']]);
    const pid = (await inspect(name)).State.Pid;
    assert.equal((await berth(['container', 'inspect', '-f', '{{.State.Pid}} {{index .Config.Labels "tier"}} {{range .Mounts}}{{.Type}}:{{.Name}}:{{.Destination}}:{{.RW}}{{end}}', name])).stdout,
      `${pid} back volume:fmtvol-${kind}:/data:true\n`);
    assert.equal((await berth(['container', 'inspect', '--format', '{{json .State.Running}}', name, id])).stdout, 'true\ntrue\n');
    assert.match((await berth(['images', '--format', '{{.Repository}}:{{.Tag}}'])).stdout, /^localhost\/bb:quit$/m);
    assert.equal((await berth(['images', '--filter', 'reference=localhost/bb:q*', '--format', '{{.Tag}}'])).stdout, 'quit\n');
    assert.equal((await berth(['images', '-f', 'label=from=image', '-f', 'dangling=false', '--format', '{{.Tag}}'])).stdout, 'quit\n');
    assert.match((await berth(['network', 'ls', '--format', '{{.Name}}/{{.Driver}}'])).stdout, /^bridge\/bridge\nhost\/host\nnone\/null\n/);
    assert.match((await berth(['volume', 'ls', '--format', '{{.Name}} {{.Driver}}'])).stdout, new RegExp(`^fmtvol-${kind} local$`, 'm'));
    assert.equal((await berth(['volume', 'inspect', '-f', '{{.Mountpoint}}', `fmtvol-${kind}`])).stdout, `${join(root, 'volumes', `fmtvol-${kind}`, '_data')}\n`);
    // a broken template is a one-line usage error, nothing half printed
    const bad = await berth(['ps', '--format', '{{.Names']);
    assert.deepEqual([bad.code, bad.stdout], [2, '']);
    assert.match(bad.stderr, /template parsing error: unclosed action/);
    const unknown = await berth(['container', 'inspect', '-f', '{{shout .Name}}', name]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /function "shout" not defined/);
    assert.equal((await berth(['container', 'rm', '-f', name])).code, 0);
  });

  test('run in the foreground without --rm (Docker\'s default): attached output, its exit code, and the container is kept', async () => {
    const name = `fg-${kind}`;
    const r = await berth(['run', '--name', name, 'localhost/bb:1', 'sh', '-c', 'echo out1; echo err1 >&2; sleep 0.3; echo out2; echo changed > /f; exit 3']);
    assert.equal(r.code, 3, r.stderr);
    assert.equal(r.stdout, 'out1\nout2\n', 'stdout as the container wrote it');
    assert.equal(r.stderr, 'err1\n', 'stderr apart');
    const i = await inspect(name);
    assert.equal(i.State.Status, 'exited');
    assert.equal(i.State.ExitCode, 3);
    assert.match((await berth(['ps', '-a'])).stdout, new RegExp(`Exited \\(3\\).*${name}`));
    assert.equal((await berth(['logs', name])).stdout, 'out1\nout2\n');
    assert.match((await berth(["diff", name])).stdout, /^A \/f$/m, 'its filesystem is kept too');
    // it can be started again, detached, as with docker start
    assert.equal((await berth(['start', name])).code, 0);
    assert.equal((await waitExited(name)).State.ExitCode, 3);
    assert.equal((await berth(['logs', name])).stdout, 'out1\nout2\nout1\nout2\n');
    assert.equal((await berth(['container', 'rm', name])).code, 0);
    assert.equal((await berth(['ps', '-a', '-q'])).stdout.includes(i.Id.slice(0, 12)), false);
  });

  test('--log-driver none keeps no log (logs refuses) yet attached runs get the output; local keeps json-file lines with its limits', async () => {
    const name = `nolog-${kind}`;
    const r = await berth(['run', '--log-driver', 'none', '--name', name, 'localhost/bb:1', 'sh', '-c', 'echo out1; echo err1 >&2; exit 3']);
    assert.deepEqual([r.code, r.stdout, r.stderr], [3, 'out1\n', 'err1\n']);
    const i = JSON.parse((await berth(['container', 'inspect', name])).stdout)[0];
    assert.deepEqual(i.HostConfig.LogConfig, { Type: 'none', Config: {} });
    assert.ok(!existsSync(join(root, 'containers', i.Id, `${i.Id}-json.log`)), 'no log file');
    const logs = await berth(['logs', name]);
    assert.equal(logs.code, 2);
    assert.match(logs.stderr, /was run with --log-driver none: configured logging driver does not support reading/);
    // start -a of it, and attach to a detached one, go through the supervisor's socket
    const again = await berth(['start', '-a', name]);
    assert.deepEqual([again.code, again.stdout, again.stderr], [3, 'out1\n', 'err1\n']);
    const d = await runD(['--log-driver', 'none', 'localhost/bb:1', 'sh', '-c', 'while [ ! -e /go ]; do echo tick; sleep 0.1; done; echo late; exit 5']);
    let seen = '';
    const attached = berth(['attach', d], (s) => { seen += s; });
    for (let n = 0; n < 100 && !seen.includes('tick'); n++) await sleep(100);
    assert.equal((await berth(['exec', d, 'sh', '-c', 'echo > /go'])).code, 0);
    const a = await attached;
    assert.equal(a.code, 5, a.stderr);
    assert.match(seen, /^(tick\n)+late\n$/);
    // local: json-file lines, docker's local limits unless given
    const local = await runD(['--log-driver', 'local', 'localhost/bb:1', 'echo', 'kept']);
    await waitExited(local);
    assert.equal((await berth(['logs', local])).stdout, 'kept\n');
    assert.deepEqual(JSON.parse((await berth(['container', 'inspect', local])).stdout)[0].HostConfig.LogConfig, { Type: 'local', Config: { 'max-size': '20000000', 'max-file': '5' } });
    for (const [args, re] of [
      [['--log-driver', 'syslog'], /--log-driver syslog: berth has the json-file, local and none log drivers/],
      [['--log-driver', 'none', '--log-opt', 'max-size=1m'], /the none log driver takes no options/],
    ] as Array<[string[], RegExp]>) {
      const bad = await berth(['run', '-d', ...args, 'localhost/bb:1', 'true']);
      assert.equal(bad.code, 2, bad.stderr);
      assert.match(bad.stderr, re);
    }
    assert.equal((await berth(['container', 'rm', '-f', name, d, local])).code, 0);
  });

  test('an attached run forwards SIGINT to the container (docker\'s sig-proxy) and ends with its exit code', async () => {
    const name = `sig-${kind}`;
    const child = spawn(process.execPath, [cli, 'run', '--runtime', kind, '--name', name, 'localhost/bb:1', 'sh', '-c', 'trap "echo got INT; exit 7" INT; echo ready; while true; do sleep 0.1; done'], {
      env: { ...process.env, BERTH_ROOT: root, BERTH_STORE: join(tmp, 'store') }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout!.on('data', (d) => { stdout += d; });
    // 'close': all of its output read (the supervisor holds none of the CLI's pipes)
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
    try {
      const deadline = Date.now() + 15_000;
      while (!stdout.includes('ready') && Date.now() < deadline) await sleep(50);
      assert.ok(stdout.includes('ready'), 'the container started');
      child.kill('SIGINT');
      assert.equal(await closed, 7);
      assert.equal(stdout, 'ready\ngot INT\n');
      assert.equal((await waitExited(name)).State.ExitCode, 7);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await berth(['container', 'rm', '-f', name]);
    }
  });

  test('attach follows a running container from now on and ends with its exit code; start -a runs a stopped one attached', async () => {
    const name = `att-${kind}`;
    // "late" waits for a file the test makes once attach is following (a bind mount from here)
    const trig = join(tmp, `trig-${kind}`);
    await mkdir(trig, { recursive: true });
    const id = await runD(['--name', name, '-v', `${trig}:/trig`, 'localhost/bb:1', 'sh', '-c', 'echo early; while ! cat /trig/go 2>/dev/null; do sleep 0.05; done; echo late; exit 6']);
    const deadline = Date.now() + 15_000;
    while (!(await berth(['logs', name])).stdout.includes('early') && Date.now() < deadline) await sleep(50);
    const attaching = berth(['attach', name]);
    await sleep(2000); // the attach CLI is up and has taken its log position
    await writeFile(join(trig, 'go'), '');
    const att = await attaching;
    assert.equal(att.code, 6, att.stderr);
    assert.equal(att.stdout, 'late\n', 'only what came after attaching');
    const again = await berth(['start', '-a', name]);
    assert.equal(again.code, 6, again.stderr);
    assert.equal(again.stdout, 'early\nlate\n', 'the new run\'s output');
    const stopped = await berth(['attach', name]);
    assert.equal(stopped.code, 2);
    assert.match(stopped.stderr, /is not running: berth start -a/);
    assert.equal((await berth(['container', 'rm', id])).code, 0);
  });

  test('pause freezes every process (ps says Paused, no output, no exec), unpause resumes; a paused container still stops', async () => {
    const name = `pause-${kind}`;
    // a parent and a child both printing: the freezer must hold the whole container, not just PID 1
    const id = await runD(['--name', name, 'localhost/bb:1', 'sh', '-c', '(while true; do echo child; sleep 0.05; done) & while true; do echo parent; sleep 0.05; done']);
    const lines = async () => (await berth(['logs', name])).stdout.split('\n').filter(Boolean);
    const deadline = Date.now() + 15_000;
    while ((await lines()).length < 4 && Date.now() < deadline) await sleep(50);
    const p = await berth(['pause', name]);
    assert.equal(p.code, 0, p.stderr);
    assert.match((await berth(['ps'])).stdout, new RegExp(`Up .*\\(Paused\\).*${name}`));
    assert.equal((await inspect(name)).State.Status, 'paused');
    // what was written before the freeze may still be on its way through the supervisor: let it settle
    let frozen = (await lines()).length;
    for (let settled = 0; settled < 2 && Date.now() < deadline; ) {
      await sleep(300);
      const n = (await lines()).length;
      settled = n === frozen ? settled + 1 : 0;
      frozen = n;
    }
    await sleep(500);
    assert.equal((await lines()).length, frozen, 'nothing runs while paused');
    const ex = await berth(['exec', name, 'true']);
    assert.equal(ex.code, 2);
    assert.match(ex.stderr, /is paused: berth unpause/);
    assert.match((await berth(['pause', name])).stderr, /already paused/);

    assert.equal((await berth(['unpause', name])).code, 0);
    let after = await lines();
    const until = Date.now() + 15_000;
    while (!(after.slice(frozen).includes('child') && after.slice(frozen).includes('parent')) && Date.now() < until) {
      await sleep(100);
      after = await lines();
    }
    assert.ok(after.slice(frozen).includes('child') && after.slice(frozen).includes('parent'), 'parent and child both run again');
    assert.match((await berth(['unpause', name])).stderr, /is not paused/);

    assert.equal((await berth(['pause', name])).code, 0);
    const stop = await berth(['stop', '-t', '1', name]);
    assert.equal(stop.code, 0, stop.stderr);
    const i = await waitExited(name);
    assert.equal(i.State.Status, 'exited');
    assert.equal(existsSync(join(root, 'containers', id, 'paused')), false, 'the pause ended with the run');
    assert.equal((await berth(['container', 'rm', name])).code, 0);
  });

  test('run -i / -t without --rm: attached to stdin and a terminal, and the container is kept (ps -a, logs, diff; start gives it a terminal again)', async () => {
    const name = `it-${kind}`;
    const r = await berth(['run', '-i', '--name', name, 'localhost/bb:1', 'sh', '-c', 'read x; echo "got $x"; echo new > /f; exit 4'], undefined, 'hello\n');
    assert.equal(r.code, 4, r.stderr);
    assert.equal(r.stdout, 'got hello\n', 'stdin reached it, its output reached us');
    assert.match((await berth(['ps', '-a'])).stdout, new RegExp(`Exited \\(4\\).*${name}`));
    assert.equal((await berth(['logs', name])).stdout, 'got hello\n', 'without -t the output is logged too');
    assert.match((await berth(['diff', name])).stdout, /^A \/f$/m);
    assert.equal((await berth(['container', 'rm', name])).code, 0);

    if (!existsSync('/usr/bin/script')) return; // util-linux's script gives the CLI a terminal
    const tname = `tty-${kind}`;
    const quoted = [process.execPath, cli, 'run', '-t', '--runtime', kind, '--name', tname, 'localhost/bb:1', 'sh', '-c', 'tty; exit 3'].map((a) => `'${a}'`).join(' ');
    const t = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn('/usr/bin/script', ['-qefc', quoted, '/dev/null'], { env: { ...process.env, BERTH_ROOT: root, BERTH_STORE: join(tmp, 'store') }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout!.on('data', (d) => { out += d; });
      child.on('close', (code) => resolve({ code, out }));
    });
    assert.equal(t.code, 3, t.out);
    assert.match(t.out, /\/dev\/pts\/\d+/, 'the process had a terminal');
    assert.match((await berth(['ps', '-a'])).stdout, new RegExp(`Exited \\(3\\).*${tname}`));
    assert.equal((await berth(['start', tname])).code, 0);
    await waitExited(tname);
    assert.match((await berth(['logs', tname])).stdout, /^\/dev\/pts\/\d+\r?\n\/dev\/pts\/\d+\r?\n$/, 'started again under its supervisor, with a terminal again');
    assert.equal((await berth(['container', 'rm', tname])).code, 0);
  });

  test('wait blocks until the end and prints the exit code; rename keeps the container under its new name only', async () => {
    const name = `waiter-${kind}`;
    await runD(['--name', name, 'localhost/bb:1', 'sh', '-c', 'sleep 0.5; exit 9']);
    const w = await berth(['wait', name]);
    assert.equal(w.code, 0, w.stderr);
    assert.equal(w.stdout, '9\n');
    assert.equal((await inspect(name)).State.Status, 'exited', 'wait returned once it had ended');
    const renamed = `${name}-2`;
    assert.equal((await berth(['rename', name, renamed])).code, 0);
    assert.match((await berth(['ps', '-a'])).stdout, new RegExp(`Exited \\(9\\).*\\b${renamed}$`, 'm'));
    assert.match((await berth(['container', 'inspect', name])).stderr, /No such container/);
    await runD(['--name', name, 'localhost/bb:1', 'true']);
    const clash = await berth(['rename', renamed, name]);
    assert.equal(clash.code, 2);
    assert.match(clash.stderr, /already in use/);
    const bad = await berth(['rename', renamed, '../x']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /only \[a-zA-Z0-9\]/);
    assert.equal((await berth(['container', 'rm', '-f', renamed, name])).code, 0);
  });

  test('run -di: stdin stays open for berth attach, which feeds it and ends with the exit code', async () => {
    const name = `di-${kind}`;
    await runD(['-i', '--name', name, 'localhost/bb:1', 'sh']);
    await sleep(300);
    assert.equal((await inspect(name)).State.Status, 'running', 'a shell on an open, empty stdin waits');
    const r = await berth(['attach', name], undefined, 'echo "hello-$((1+2))"; echo oops >&2\nexit 7\n');
    assert.equal(r.code, 7, r.stderr);
    assert.equal(r.stdout, 'hello-3\n');
    assert.equal(r.stderr, 'oops\n', 'stderr apart');
    assert.equal((await waitExited(name)).State.ExitCode, 7);
    assert.equal((await berth(['container', 'rm', name])).code, 0);

    // a foreground run -i passes bytes through untouched (not text), and ends the container's stdin with its own
    const bytes = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7) % 256));
    const binary = await new Promise<{ code: number | null; out: Buffer; err: string }>((resolve, reject) => {
      const child = spawn(process.execPath, [cli, 'run', '--runtime', kind, '-i', '--name', `${name}-bin`, 'localhost/bb:1', 'cat'], { env: { ...process.env, BERTH_ROOT: root, BERTH_STORE: join(tmp, 'store') } });
      const out: Buffer[] = [];
      let err = '';
      child.stdout.on('data', (d: Buffer) => out.push(d));
      child.stderr.on('data', (d) => { err += d; });
      child.on('error', reject);
      child.on('exit', (code) => setImmediate(() => resolve({ code, out: Buffer.concat(out), err })));
      child.stdin.end(bytes);
    });
    assert.equal(binary.code, 0, binary.err);
    assert.ok(binary.out.equals(bytes), `cat gave back ${binary.out.length} bytes, the same ones`);
    // with -t too, the end of a piped stdin reaches the container's terminal as ^D (cat ends at it)
    const piped = await berth(['run', '-it', '--name', `${name}-tty`, 'localhost/bb:1', 'cat'], undefined, 'piped line\n');
    assert.equal(piped.code, 0, piped.stderr);
    assert.match(piped.stdout, /piped line\r?\n/);
    assert.equal((await berth(['container', 'rm', `${name}-bin`, `${name}-tty`])).code, 0);
  });

  test('run -dit: attach from a terminal gets the live prompt, its window size, and ctrl-p ctrl-q (or --detach-keys) detaches; start -ai feeds it again', async () => {
    if (!existsSync('/usr/bin/script')) return; // util-linux's script gives the CLI a terminal
    const name = `dit-${kind}`;
    await runD(['-it', '--name', name, 'localhost/bb:1', 'sh']);
    // the CLI attached from a terminal (util-linux script), its screen so far, and its exit
    const onTerminal = (args: string[]) => {
      const attachCmd = [process.execPath, cli, ...args].map((a) => `'${a}'`).join(' ');
      const child = spawn('/usr/bin/script', ['-qfec', `stty rows 30 cols 100; ${attachCmd}`, '/dev/null'], { env: { ...process.env, BERTH_ROOT: root, BERTH_STORE: join(tmp, 'store') }, stdio: ['pipe', 'pipe', 'pipe'] });
      const t = { out: '', child, exited: new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code))) };
      child.stdout!.on('data', (d) => { t.out += d; });
      return t;
    };
    const waitOut = async (t: { out: string }, re: RegExp, what: string) => {
      const deadline = Date.now() + 15_000;
      while (!re.test(t.out)) {
        if (Date.now() > deadline) assert.fail(`no ${what} in ${JSON.stringify(t.out)}`);
        await sleep(100);
      }
    };
    const t = onTerminal(['attach', name]);
    // the prompt comes live, without a newline: press enter until the attach is there to see it
    const deadline = Date.now() + 15_000;
    while (!t.out.includes('/ # ') && Date.now() < deadline) { t.child.stdin!.write('\r'); await sleep(300); }
    t.child.stdin!.write('stty size; tty\r');
    await waitOut(t, /\b30 100\r*\n\/dev\/pts\/\d+/, 'window size and terminal');
    t.child.stdin!.write('\x10\x11'); // ctrl-p ctrl-q
    assert.equal(await t.exited, 0, t.out);
    assert.equal((await inspect(name)).State.Status, 'running', 'detaching leaves it running');
    // other detach keys: ctrl-p ctrl-q is then just input, ctrl-a d detaches
    const k = onTerminal(['attach', '--detach-keys', 'ctrl-a,d', name]);
    await sleep(500);
    let kEnded = false;
    void k.exited.then(() => { kEnded = true; });
    k.child.stdin!.write('\x10\x11'); // (to ash: "previous history line"; ctrl-c drops that line)
    await sleep(300);
    assert.equal(kEnded, false, 'ctrl-p ctrl-q did not detach');
    k.child.stdin!.write('\x03echo "still-$((4*5))"\r');
    await waitOut(k, /still-20/, 'the shell answering after ctrl-p ctrl-q');
    k.child.stdin!.write('\x01d');
    assert.equal(await k.exited, 0, k.out);
    assert.equal((await inspect(name)).State.Status, 'running');
    const bad = await berth(['attach', '--detach-keys', 'ctrl-1', name]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--detach-keys ctrl-1: "ctrl-1" is not a key/);

    const again = await berth(['attach', name], undefined, 'echo "again-$((2*3))"\nexit 5\n');
    assert.equal(again.code, 5, again.stderr);
    assert.match(again.stdout, /again-6/);
    await waitExited(name);
    const started = await berth(['start', '-ai', name], undefined, 'echo "restarted-$((3*3))"\nexit 6\n');
    assert.equal(started.code, 6, started.stderr);
    assert.match(started.stdout, /restarted-9/, 'start -ai attaches before the start: the input reached the new run');
    assert.equal((await berth(['container', 'rm', name])).code, 0);
  });

  test('stats and top: each container\'s own processes, CPU use, memory and its limit, block and network I/O', async () => {
    const busy = `busy-${kind}`;
    const idle = `idle-${kind}`;
    const writer = `writer-${kind}`;
    await runD(['--name', busy, '--network', 'none', 'localhost/bb:1', 'sh', '-c', 'while :; do :; done']);
    await runD(['--name', idle, '-m', '64m', 'localhost/bb:1', 'sh', '-c', 'sleep 100 & sleep 100 & wait']);
    // dd writes 4 MiB into the container's upper dir and exits: the shell that reaped it carries its I/O
    await runD(['--name', writer, '--network', 'none', 'localhost/bb:1', 'sh', '-c', 'dd if=/dev/zero of=/blob bs=1048576 count=4 2>/dev/null; echo written; exec sleep 100']);
    try {
      const deadline = Date.now() + 15_000;
      type Row = { name: string; cpuPercent: number; memory: number; memoryLimit: number; pids: number; netRx: number; netTx: number; blockRead: number; blockWrite: number };
      let rows: Row[] = [];
      // the idle one's two sleeps may take a moment to appear, and the writer a moment to write
      while (Date.now() < deadline) {
        const r = await berth(['stats', '--no-stream', '--json', busy, idle, writer]);
        assert.equal(r.code, 0, r.stderr);
        rows = JSON.parse(r.stdout);
        if (rows.find((x) => x.name === idle)?.pids === 3 && (await berth(['logs', writer])).stdout.includes('written')) break;
        await sleep(100);
      }
      const top = await berth(['top', idle]);
      assert.equal(top.code, 0, top.stderr);
      const lines = top.stdout.trimEnd().split('\n');
      assert.match(lines[0]!, /^UID\s+PID\s+PPID\s+TIME\s+CMD$/);
      assert.deepEqual(lines.slice(1).map((l) => l.replace(/^0\s+\d+\s+\d+\s+\d\d:\d\d:\d\d\s+/, '')).sort(), ['sh -c sleep 100 & sleep 100 & wait', 'sleep 100', 'sleep 100'], top.stdout);
      const w = (JSON.parse((await berth(['stats', '--no-stream', '--json', writer])).stdout) as Row[])[0]!;
      assert.ok(w.blockWrite >= 4 * 1024 * 1024, `dd's 4 MiB are counted after it exited (${w.blockWrite})`);
      assert.ok(rows.find((x) => x.name === busy)!.blockWrite < 1024 * 1024, 'a busy loop writes nothing');
      assert.deepEqual([w.netRx, w.netTx], [0, 0], 'no interface but its loopback (--network none)');
      const b = rows.find((x) => x.name === busy)!;
      const i = rows.find((x) => x.name === idle)!;
      assert.equal(b.pids, 1, 'only its own processes: the shell');
      assert.equal(i.pids, 3, 'the shell and its two sleeps');
      assert.ok(b.cpuPercent > i.cpuPercent, `a busy loop uses more CPU than sleeps (${b.cpuPercent} vs ${i.cpuPercent})`);
      assert.equal(i.memoryLimit, 64 * 1024 * 1024, 'the --memory limit');
      assert.ok(b.memory > 0 && i.memory > 0);
      const table = (await berth(['stats', '--no-stream', busy])).stdout;
      assert.match(table, /^CONTAINER ID\s+NAME\s+CPU %\s+MEM USAGE \/ LIMIT\s+MEM %\s+NET I\/O\s+BLOCK I\/O\s+PIDS$/m);
      assert.match(table, new RegExp(`${busy}\\s+[\\d.]+%\\s+[\\d.]+[KMG]?i?B / [\\d.]+[KMG]iB\\s+[\\d.]+%\\s+0B / 0B\\s+[\\d.]+[kMG]?B / [\\d.]+[kMG]?B\\s+1$`, 'm'));
      assert.match((await berth(['stats', '--no-stream', '--format', '{{.Name}}: {{.MemUsage}}', idle])).stdout, new RegExp(`^${idle}: [\\d.]+[KMG]?i?B / 64.00MiB\\n$`));
      assert.match((await berth(['stats', '--no-stream', '--format', 'table {{.Name}}\\t{{.PIDs}}', busy])).stdout, new RegExp(`^NAME {3,}PIDS\\n${busy} +1\\n$`));
    } finally {
      await berth(['container', 'rm', '-f', busy, idle, writer]);
    }
  });

  test('the bridge network (the default): an address on berth0, the host, other containers and the outside reachable through NAT, published ports', async () => {
    const web = `web-net-${kind}`;
    // a host server answering with the address it sees
    const host = createServer((q, r) => r.end(`host sees ${q.socket.remoteAddress?.replace(/^::ffff:/, '')}\n`));
    await new Promise<void>((resolve) => host.listen(0, resolve));
    const hostPort = (host.address() as AddressInfo).port;
    // "the outside": another network namespace, routed through the host (TEST-NET-2), with its own server
    const outside = `berth-test-out-${process.pid}`;
    const veth = `bto${process.pid % 100000}`;
    await run('ip', ['netns', 'add', outside]);
    await run('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', outside]);
    await run('ip', ['addr', 'add', '198.51.100.1/30', 'dev', veth]);
    await run('ip', ['link', 'set', veth, 'up']);
    await run('ip', ['-n', outside, 'addr', 'add', '198.51.100.2/30', 'dev', 'eth0']);
    await run('ip', ['-n', outside, 'link', 'set', 'eth0', 'up']);
    const far = spawn('ip', ['netns', 'exec', outside, process.execPath, '-e', `require('http').createServer((q, r) => r.end('outside sees ' + q.socket.remoteAddress.replace(/^::ffff:/, '') + '\\n')).listen(8099, () => console.log('ready'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => { far.stdout!.once('data', () => resolve()); far.once('exit', (c) => reject(new Error(`outside server exited ${c}`))); });
    try {
      const id = await runD(['--name', web, '-p', '127.0.0.1::8080', '--add-host', 'extra:10.9.8.7', 'localhost/bb:1', 'sh', '-c', 'mkdir /www; echo "page of $(hostname)" > /www/index.html; exec httpd -f -p 8080 -h /www']);
      const i = JSON.parse((await berth(['container', 'inspect', web])).stdout)[0] as { NetworkSettings: { IPAddress: string; Gateway: string; IPPrefixLen: number; MacAddress: string; SandboxKey: string; Ports: Record<string, Array<{ HostIp: string; HostPort: string }>> } };
      const n = i.NetworkSettings;
      assert.match(n.IPAddress, /^10\.66\.\d+\.\d+$/);
      assert.deepEqual([n.Gateway, n.IPPrefixLen], ['10.66.0.1', 16]);
      assert.equal(n.MacAddress, `02:42:${n.IPAddress.split('.').map((o) => Number(o).toString(16).padStart(2, '0')).join(':')}`);
      assert.ok(existsSync(n.SandboxKey), 'its network namespace is bind-mounted while it runs');
      const hosts = await berth(['exec', web, 'cat', '/etc/hosts']);
      assert.equal(hosts.stdout.split('\n').slice(2).join('\n'), `${n.IPAddress}\t${id.slice(0, 12)}\n10.9.8.7\textra\n`, 'its address and the --add-host names');
      const published = Number(n.Ports['8080/tcp']![0]!.HostPort);
      assert.ok(published > 0);
      const port = await berth(['port', web, '8080']);
      assert.equal(port.stdout, `127.0.0.1:${published}\n`);
      assert.match((await berth(['ps'])).stdout, new RegExp(`127\\.0\\.0\\.1:${published}->8080/tcp\\s+${web}\\n`));
      // the published port, from the host (the server may take a moment to listen)
      let page = '';
      for (let t = 0; t < 50 && !page; t++) {
        page = await fetch(`http://127.0.0.1:${published}/`).then((r) => r.text(), () => '');
        if (!page) await sleep(100);
      }
      assert.equal(page, `page of ${id.slice(0, 12)}\n`);
      // a second container: the host at the gateway, the first container by its address, the outside through NAT
      // (by name: --add-host, host-gateway the host as seen from the bridge)
      const other = await berth(['run', '--rm', '--add-host', `web:${n.IPAddress}`, '--add-host', 'dockerhost:host-gateway', '--dns', '192.0.2.53', 'localhost/bb:1', 'sh', '-c', [
        `wget -qO- http://dockerhost:${hostPort}/`, 'wget -qO- http://web:8080/', 'wget -qO- http://198.51.100.2:8099/',
        'ip -4 -o addr show eth0 | grep -o "10\\.66\\.[0-9.]*"', 'grep -c "$(hostname)" /etc/hosts', 'grep nameserver /etc/resolv.conf'].join('; ')]);
      assert.equal(other.stderr, '');
      const [seenByHost, fromWeb, seenOutside, own, named, dns] = other.stdout.trimEnd().split('\n');
      assert.equal(dns, 'nameserver 192.0.2.53');
      assert.equal(seenByHost, `host sees ${own}`, 'the host sees the container\'s own address');
      assert.equal(fromWeb, `page of ${id.slice(0, 12)}`);
      assert.equal(seenOutside, 'outside sees 198.51.100.1', 'leaving the host, the container is masqueraded behind it');
      assert.notEqual(own, n.IPAddress, 'each container has its own address');
      assert.equal(named, '1', '/etc/hosts names the container by its address');
      // stats counts what went through its eth0
      const st = (JSON.parse((await berth(['stats', '--no-stream', '--json', web])).stdout) as Array<{ netRx: number; netTx: number }>)[0]!;
      assert.ok(st.netRx > 0 && st.netTx > page.length, `net I/O ${st.netRx} / ${st.netTx}`);
      // a host port that is taken fails the start clearly and leaves no container
      const clash = await berth(['run', '-d', '--name', `${web}-clash`, '-p', `127.0.0.1:${published}:8080`, 'localhost/bb:1', 'true']);
      assert.notEqual(clash.code, 0);
      assert.match(clash.stderr, new RegExp(`Bind for 127\\.0\\.0\\.1:${published}/tcp failed: port is already allocated`));
      assert.match((await berth(['container', 'inspect', `${web}-clash`])).stderr, /No such container/);
      // rm gives everything back: the namespace, the address, the host port
      assert.equal((await berth(['container', 'rm', '-f', web])).code, 0);
      assert.ok(!existsSync(n.SandboxKey));
      assert.ok(!existsSync(`/run/berth/ipam/berth0/${n.IPAddress}`));
      await assert.rejects(fetch(`http://127.0.0.1:${published}/`));
    } finally {
      await berth(['container', 'rm', '-f', web]);
      far.kill();
      host.close();
      await run('ip', ['netns', 'delete', outside]).catch(() => undefined);
    }
  });

  test('user-defined networks: containers find each other by name and alias, live; other networks cannot reach them; ls, inspect, rm', async () => {
    const net = `net-${kind}`;
    const db = `db-${kind}`;
    const late = `late-${kind}`;
    const created = await berth(['network', 'create', net]);
    assert.equal(created.code, 0, created.stderr);
    const netId = created.stdout.trim();
    assert.match(netId, /^[0-9a-f]{64}$/);
    assert.match((await berth(['network', 'ls'])).stdout, new RegExp(`${netId.slice(0, 12)}\\s+${net}\\s+bridge\\s+10\\.67\\.\\d+\\.0/24`));
    const bridge = `/sys/class/net/berth-${netId.slice(0, 8)}`;
    try {
      await runD(['--name', db, '--network', net, '--network-alias', 'database', 'localhost/bb:1', 'sh', '-c', 'mkdir /www; echo "db here" > /www/index.html; exec httpd -f -p 8080 -h /www']);
      const i = JSON.parse((await berth(['container', 'inspect', db])).stdout)[0] as { NetworkSettings: { Networks: Record<string, { IPAddress: string; Aliases: string[] }> }; HostConfig: { NetworkMode: string } };
      const dbIp = i.NetworkSettings.Networks[net]!.IPAddress;
      assert.match(dbIp, /^10\.67\.\d+\.\d+$/);
      assert.equal(i.HostConfig.NetworkMode, net);
      assert.ok(existsSync(bridge), 'its own bridge');
      // by name and by alias, from a container on the same network
      const client = await berth(['run', '--rm', '--network', net, 'localhost/bb:1', 'sh', '-c', `for t in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://${db}:8080/ && break; sleep 0.2; done; wget -qO- http://database:8080/`]);
      assert.equal(client.stdout, 'db here\ndb here\n', client.stderr);
      // not from the default bridge (nor by name there); (timeout, not wget -T: Debian's static busybox wget crashes with -T)
      const other = await berth(['run', '--rm', 'localhost/bb:1', 'sh', '-c', `timeout 2 wget -qO- http://${dbIp}:8080/ 2>/dev/null || echo isolated; grep -c ${db} /etc/hosts`]);
      assert.equal(other.stdout, 'isolated\n0\n');
      // a container that comes later is known to the running one at once, and forgotten when it goes
      await runD(['--name', late, '--network', net, 'localhost/bb:1', 'sleep', '100']);
      assert.match((await berth(['exec', db, 'cat', '/etc/hosts'])).stdout, new RegExp(`^10\\.67\\.\\d+\\.\\d+\\t${late} [0-9a-f]{12}$`, 'm'));
      const inspected = JSON.parse((await berth(['network', 'inspect', net])).stdout)[0] as { Containers: Record<string, { Name: string; IPv4Address: string; Aliases: string[] }> };
      assert.deepEqual(Object.values(inspected.Containers).map((c) => c.Name).sort(), [db, late].sort());
      assert.deepEqual(Object.values(inspected.Containers).find((c) => c.Name === db)!.Aliases, ['database']);
      assert.equal((await berth(['container', 'rm', '-f', late])).code, 0);
      assert.doesNotMatch((await berth(['exec', db, 'cat', '/etc/hosts'])).stdout, new RegExp(late));
      const busy = await berth(['network', 'rm', net]);
      assert.notEqual(busy.code, 0);
      assert.match(busy.stderr, new RegExp(`network ${net} has active endpoints \\(${db}\\)`));
      const aliasOnBridge = await berth(['run', '--rm', '--network-alias', 'x', 'localhost/bb:1', 'true']);
      assert.match(aliasOnBridge.stderr, /--network-alias needs a user-defined network/);
    } finally {
      await berth(['container', 'rm', '-f', db, late]);
    }
    assert.equal((await berth(['network', 'rm', net])).code, 0);
    assert.ok(!existsSync(bridge), 'its bridge is gone');
    assert.match((await berth(['network', 'inspect', net])).stderr, new RegExp(`network ${net} not found`));
  });

  test('network connect / disconnect: a running container gets an interface and its names on one more network, kept across restarts, taken away again', async () => {
    const [a, b, c, web, cli] = [`cn-a-${kind}`, `cn-b-${kind}`, `cn-c-${kind}`, `cn-web-${kind}`, `cn-cli-${kind}`];
    for (const n of [a, b, c]) assert.equal((await berth(['network', 'create', n])).code, 0);
    const fetchWeb = async () => (await berth(['exec', cli, 'sh', '-c', `timeout 2 wget -qO- http://${web}:8080/ 2>/dev/null || echo unreachable`])).stdout;
    const hostsOfWeb = async () => (await berth(['exec', web, 'cat', '/etc/hosts'])).stdout;
    type Networks = Record<string, { IPAddress: string; Aliases: string[] }>;
    const networksOf = async (ref: string) => (JSON.parse((await berth(['container', 'inspect', ref])).stdout)[0] as { NetworkSettings: { Networks: Networks } }).NetworkSettings.Networks;
    try {
      await runD(['--name', web, '--network', a, 'localhost/bb:1', 'sh', '-c', 'mkdir /www; echo "web here" > /www/index.html; exec httpd -f -p 8080 -h /www']);
      await runD(['--name', cli, '--network', b, 'localhost/bb:1', 'sleep', '100']);
      assert.equal(await fetchWeb(), 'unreachable\n', 'another network: neither its name nor its address');
      const con = await berth(['network', 'connect', '--alias', 'front', a, cli]);
      assert.deepEqual([con.code, con.stdout], [0, ''], con.stderr);
      let ok = '';
      for (let t = 0; t < 10 && ok !== 'web here\n'; t++) ok = await fetchWeb(); // (httpd may still be starting)
      assert.equal(ok, 'web here\n');
      assert.match(await hostsOfWeb(), new RegExp(`^10\\.67\\.\\d+\\.\\d+\\t${cli} [0-9a-f]{12} front$`, 'm'));
      const nets = await networksOf(cli);
      assert.deepEqual(Object.keys(nets).sort(), [a, b].sort());
      assert.equal(nets[a]!.IPAddress.split('.').slice(0, 3).join('.'), (await networksOf(web))[a]!.IPAddress.split('.').slice(0, 3).join('.'));
      assert.deepEqual(nets[a]!.Aliases, ['front']);
      assert.match((await berth(['exec', cli, 'cat', '/sys/class/net/eth1/operstate'])).stdout, /up/);
      const members = JSON.parse((await berth(['network', 'inspect', a])).stdout)[0].Containers as Record<string, { Name: string }>;
      assert.deepEqual(Object.values(members).map((m) => m.Name).sort(), [cli, web].sort());
      // kept in its config: a restart joins both networks again
      assert.equal((await berth(['restart', '-t', '0', cli])).code, 0);
      assert.equal(await fetchWeb(), 'web here\n');
      // clear refusals
      for (const [args, re] of [
        [['network', 'connect', a, cli], new RegExp(`is already connected to network ${a}`)],
        [['network', 'connect', 'host', cli], /cannot be connected to or disconnected from the host network/],
        [['network', 'connect', '--alias', 'bad name', b, web], /--alias "bad name": expected a host name/],
        [['network', 'disconnect', b, cli], new RegExp(`was run on network ${b}: only networks added with berth network connect can be disconnected`)],
        [['network', 'disconnect', b, web], new RegExp(`is not connected to network ${b}`)],
        [['run', '--rm', '--network', a, '--network-alias', 'x\n1.2.3.4 evil', 'localhost/bb:1', 'true'], /--network-alias .*expected a host name/],
      ] as Array<[string[], RegExp]>) {
        const r = await berth(args);
        assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, re);
      }
      const dis = await berth(['network', 'disconnect', a, cli]);
      assert.equal(dis.code, 0, dis.stderr);
      assert.equal(await fetchWeb(), 'unreachable\n');
      assert.doesNotMatch(await hostsOfWeb(), new RegExp(cli));
      assert.deepEqual(Object.keys(await networksOf(cli)), [b]);
      assert.ok(!(await berth(['exec', cli, 'cat', '/sys/class/net/eth1/operstate'])).stdout, 'its interface is gone');
      // a stopped container is connected for its next start; a network it was connected to is in use (prune keeps it, ps filters by it)
      assert.equal((await berth(['stop', '-t', '0', cli])).code, 0);
      assert.equal((await berth(['network', 'connect', a, cli])).code, 0);
      assert.equal((await berth(['network', 'connect', c, cli])).code, 0);
      assert.equal((await berth(['network', 'prune', '-f'])).code, 0);
      assert.match((await berth(['network', 'ls', '-q'])).stdout, new RegExp(`^${c}$`, 'm'));
      assert.equal((await berth(['ps', '-a', '--filter', `network=${c}`, '--format', '{{.Names}}'])).stdout, `${cli}\n`);
      assert.equal((await berth(['start', cli])).code, 0);
      assert.equal(await fetchWeb(), 'web here\n');
    } finally {
      await berth(['container', 'rm', '-f', web, cli]);
    }
    for (const n of [a, b, c]) assert.equal((await berth(['network', 'rm', n])).code, 0, `rm ${n}: no address left behind`);
  });

  test('container cp: out and in with docker\'s rules, running (frozen meanwhile, volumes seen) or stopped; symlinks resolve inside the container', async () => {
    const name = `cp-${kind}`;
    const vol = join(tmp, `cp-vol-${kind}`);
    const local = join(tmp, `cp-local-${kind}`);
    await mkdir(vol);
    await mkdir(join(local, 'tree', 'in'), { recursive: true });
    await writeFile(join(local, 'tree', 'in', 'a'), 'a\n');
    await writeFile(join(local, 'hf'), 'from host\n');
    const escape = `berth-cp-escape-${process.pid}-${kind}`;
    const roVol = join(tmp, `cp-ro-${kind}`);
    await mkdir(roVol);
    await runD(['--name', name, '-v', `${vol}:/vol`, '-v', `${roVol}:/ro:ro`, 'localhost/bb:1', 'sh', '-c',
      'mkdir -p /d/sub; echo f > /d/f; chmod 4755 /d/f; echo g > /d/sub/g; ln -s /etc /d/evil; mknod /d/disk b 7 0; chmod 666 /d/disk; echo ready; exec sleep 100']);
    for (let t = 0; t < 100 && !(await berth(['logs', name])).stdout.includes('ready'); t++) await sleep(50);
    const cp = async (...args: string[]) => {
      const r = await berth(['container', 'cp', ...args]);
      assert.equal(r.code, 0, `cp ${args.join(' ')}: ${r.stderr}`);
      return r;
    };
    // out: a file into a directory and as a new name, a directory, a directory's contents, a tar stream
    const out = join(tmp, `cp-out-${kind}`);
    await mkdir(out);
    await cp(`${name}:/d/f`, `${out}/`);
    await cp(`${name}:/d/f`, join(out, 'renamed'));
    await cp(`${name}:/d`, join(out, 'dir'));
    await cp(`${name}:/d/.`, join(out, 'contents'));
    assert.equal(await readFile(join(out, 'f'), 'utf8'), 'f\n');
    assert.equal(await readFile(join(out, 'renamed'), 'utf8'), 'f\n');
    assert.equal(await readFile(join(out, 'dir', 'sub', 'g'), 'utf8'), 'g\n');
    assert.equal(await readFile(join(out, 'contents', 'sub', 'g'), 'utf8'), 'g\n');
    assert.equal(await readlink(join(out, 'dir', 'evil')), '/etc', 'a symlink is copied as a link');
    assert.deepEqual((await readdir(out)).sort(), ['contents', 'dir', 'f', 'renamed'], 'no staging directory left');
    assert.ok(!existsSync(join(out, 'dir', 'disk')), 'no device node lands on the host');
    assert.equal((await stat(join(out, 'f'))).mode & 0o7000, 0, 'nor a setuid bit');
    const stream = await cp(`${name}:/d/sub`, '-');
    // (a tar of ASCII names and text: the CLI's output decoded as UTF-8 is still its bytes)
    assert.deepEqual(execFileSync('tar', ['-t'], { input: Buffer.from(stream.stdout), encoding: 'utf8' }).split('\n').filter(Boolean).sort(), ['sub/', 'sub/g'], 'named as docker names them');
    const missing = await berth(['container', 'cp', `${name}:/nope`, out]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, new RegExp(`^berth: Could not find the file /nope in container ${name}\\n$`));
    // in: a file into a directory and as a name, a directory, through a symlink (resolved in the container), into a volume, a tar on stdin
    await cp(join(local, 'hf'), `${name}:/d/`);
    await cp(join(local, 'hf'), `${name}:/d/sub/named`);
    await cp(join(local, 'tree'), `${name}:/newtree`);
    await cp(join(local, 'hf'), `${name}:/d/evil/${escape}`);
    await cp(join(local, 'hf'), `${name}:/vol/`);
    const check = await berth(['exec', name, 'sh', '-c', `cat /d/hf /d/sub/named /newtree/in/a /etc/${escape}; stat -c %u /newtree/in/a`]);
    assert.equal(check.stdout, 'from host\nfrom host\na\nfrom host\n0\n', check.stderr);
    assert.ok(!existsSync(`/etc/${escape}`), 'the container\'s /etc, not the host\'s');
    assert.equal(await readFile(join(vol, 'hf'), 'utf8'), 'from host\n', 'a volume is written where the container sees it');
    await writeFile(join(local, 'owned'), 'x');
    await chown(join(local, 'owned'), 1234, 1234);
    await cp('-a', join(local, 'owned'), `${name}:/d/`);
    assert.equal((await berth(['exec', name, 'stat', '-c', '%u:%g', '/d/owned'])).stdout, '1234:1234\n', '-a keeps the owner');
    assert.equal((await inspect(name)).State.Status, 'running', 'frozen only while copying');
    const dirOnFile = await berth(['container', 'cp', join(local, 'tree'), `${name}:/d/f`]);
    assert.match(dirOnFile.stderr, /cannot copy a directory to a file/);
    await cp(join(local, 'tree'), `${name}:/made/`);
    assert.equal((await berth(['exec', name, 'cat', '/made/in/a'])).stdout, 'a\n', 'a directory to a missing DEST/ makes it');
    const ro = await berth(['container', 'cp', join(local, 'hf'), `${name}:/ro/`]);
    assert.equal(ro.code, 2);
    assert.match(ro.stderr, /^berth: cannot write \/ro\/ in container cp-\w+: read-only file system\n$/);
    // stopped: its rootfs and its volumes
    assert.equal((await berth(['stop', '-t', '1', name])).code, 0);
    await cp(`${name}:/d/sub/named`, join(out, 'from-stopped'));
    await cp(join(local, 'tree', 'in', 'a'), `${name}:/vol/a`);
    const roStopped = await berth(['container', 'cp', join(local, 'hf'), `${name}:/ro/`]);
    assert.match(roStopped.stderr, /\/ro\/ is on a read-only mount/);
    assert.equal(await readFile(join(out, 'from-stopped'), 'utf8'), 'from host\n');
    assert.equal(await readFile(join(vol, 'a'), 'utf8'), 'a\n');
    assert.equal((await berth(['container', 'rm', name])).code, 0);
  });

  test('stop signals (the image\'s STOPSIGNAL, --stop-signal) and --stop-timeout; --cap-add and --cap-drop; labels and ps --filter', async () => {
    const traps = 'trap "echo got-quit; exit 7" QUIT; trap "echo got-usr1; exit 8" USR1; trap "echo got-term; exit 9" TERM; echo up; while :; do sleep 0.1; done';
    const quitter = await runD(['--name', 'quitter', '-l', 'tier=front', '-l', 'solo', 'localhost/bb:quit', 'sh', '-c', traps]);
    const usr1 = await runD(['--name', 'usr1', '--stop-signal', 'usr1', 'localhost/bb:quit', 'sh', '-c', traps]);
    const slow = await runD(['--name', 'slowstop', '--stop-timeout', '1', 'localhost/bb:1', 'sh', '-c', 'trap "echo ignored" TERM; echo up; while :; do sleep 0.1; done']);
    for (const name of ['quitter', 'usr1', 'slowstop']) {
      for (let i = 0; i < 100 && (await berth(['logs', name])).stdout !== 'up\n'; i++) await sleep(100);
    }
    const full = async (ref: string) => JSON.parse((await berth(['container', 'inspect', ref])).stdout)[0] as { Config: { StopSignal: string; StopTimeout?: number; Labels: Record<string, string> } };
    assert.deepEqual((await full('quitter')).Config.Labels, { from: 'image', tier: 'front', solo: '' });
    assert.equal((await full('quitter')).Config.StopSignal, 'SIGQUIT');
    assert.equal((await full('usr1')).Config.StopSignal, 'SIGUSR1');
    assert.equal((await full('slowstop')).Config.StopTimeout, 1);

    // ps --filter: values of one key are alternatives, keys all apply; a status filter shows stopped ones too
    const ps = async (...f: string[]) => (await berth(['ps', '-q', '--no-trunc', ...f])).stdout.trim().split('\n').filter(Boolean).sort();
    assert.deepEqual(await ps('--filter', 'label=tier=front'), [quitter]);
    assert.deepEqual(await ps('--filter', 'label=from'), [quitter, usr1].sort());
    assert.deepEqual(await ps('-f', 'ancestor=localhost/bb:1', '-f', 'name=^slow'), [slow]);
    assert.deepEqual(await ps('-f', 'name=^usr1$', '-f', 'name=quit'), [quitter, usr1].sort());

    assert.equal((await berth(['stop', 'quitter'])).code, 0);
    assert.equal((await inspect('quitter')).State.ExitCode, 7);
    assert.equal((await berth(['logs', 'quitter'])).stdout, 'up\ngot-quit\n');
    assert.equal((await berth(['stop', 'usr1'])).code, 0);
    assert.equal((await inspect('usr1')).State.ExitCode, 8);
    // the default would wait 10 s before the SIGKILL
    const s = await berth(['stop', 'slowstop']);
    assert.equal((await inspect('slowstop')).State.ExitCode, 137);
    assert.ok(s.ms < 9000, `stop took ${s.ms} ms`);
    assert.deepEqual(await ps('--filter', 'status=exited', '--filter', 'exited=8'), [usr1]);
    assert.deepEqual(await ps('--filter', 'status=exited', '--filter', 'label=tier=base'), [usr1]); // the image's label
    const bad = await berth(['ps', '--filter', 'colour=red']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /the filters are id, name, label/);
    assert.equal((await berth(['container', 'rm', 'quitter', 'usr1', 'slowstop'])).code, 0);

    // capabilities: docker's default set (a80425fb) with NET_ADMIN added and CHOWN dropped; ALL dropped is none
    const capEff = async (...flags: string[]) => {
      const r = await berth(['run', '--rm', '--network', 'none', ...flags, 'localhost/bb:1', 'sh', '-c', 'grep CapEff /proc/self/status; ip link set lo mtu 1400 2>/dev/null && echo mtu-set || echo mtu-refused']);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout;
    };
    const plain = await capEff();
    assert.match(plain, /CapEff:\s+00000000a80425fb\nmtu-refused\n$/);
    const tweaked = await capEff('--cap-add', 'net_admin', '--cap-drop', 'CAP_CHOWN');
    assert.equal(BigInt(`0x${/CapEff:\s+(\w+)/.exec(tweaked)![1]}`), (0xa80425fbn | (1n << 12n)) & ~1n);
    assert.match(tweaked, /mtu-set\n$/);
    assert.match(await capEff('--cap-drop', 'ALL'), /CapEff:\s+0000000000000000\nmtu-refused\n$/);
    // ALL: everything this host can give (berth's own bounding set), with a warning about what reaches the host
    const all = await berth(['run', '--rm', '--network', 'none', '--cap-add', 'ALL', 'localhost/bb:1', 'grep', 'CapEff', '/proc/self/status']);
    assert.equal(all.code, 0, all.stderr);
    const mask = availableCapabilities().reduce((m, c) => m | (1n << BigInt(CAPABILITIES.indexOf(c))), 0n);
    const got = BigInt(`0x${/CapEff:\s+(\w+)/.exec(all.stdout)![1]}`);
    assert.ok(got === mask || got === (mask & ~(1n << 27n)), `CapEff ${got.toString(16)} vs ${mask.toString(16)} (without MKNOD where devices cannot be limited)`);
    assert.match(all.stderr, /warning: .*CAP_SYS_ADMIN.* can let the container's root reach the host/);
    assert.doesNotMatch(tweaked, /warning/);
    // a user other than root starts with none in effect, as with docker; the bounding set has the added one
    const user = await berth(['run', '--rm', '--network', 'none', '-u', '1000', '--cap-add', 'NET_ADMIN', 'localhost/bb:1', 'grep', '-E', 'Cap(Eff|Bnd)', '/proc/self/status']);
    assert.match(user.stdout, /CapEff:\s+0000000000000000/);
    assert.equal(BigInt(`0x${/CapBnd:\s+(\w+)/.exec(user.stdout)![1]}`) & (1n << 12n), 1n << 12n);
    const unknown = await berth(['run', '--rm', '--cap-add', 'FLY', 'localhost/bb:1', 'true']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown capability: "FLY"/);
  });

  test('--privileged: every capability, the host\'s devices, /sys writable, nothing masked, no no_new_privs; --security-opt', async () => {
    // one that is harmless to open (not, say, a watchdog)
    const device = hostDevices().find((d) => ['/dev/fuse', '/dev/loop-control', '/dev/btrfs-control'].includes(d.path));
    assert.ok(device, 'the host has /dev/fuse, /dev/loop-control or /dev/btrfs-control');
    const hex = (n: number) => n.toString(16);
    const probe = async (...flags: string[]) => {
      const r = await berth(['run', '--rm', '--network', 'none', ...flags, 'localhost/bb:1', 'sh', '-c',
        `grep -E "CapEff|NoNewPrivs" /proc/self/status; echo timer-list $(grep -c "Timer List" /proc/timer_list); grep " /sys " /proc/mounts; stat -c "dev %t:%T" ${device.path} 2>&1; mknod /dev/made c ${device.major} ${device.minor} 2>/dev/null; test -c /dev/made && (exec 3<>/dev/made) 2>/dev/null && echo opened; true`]);
      assert.equal(r.code, 0, r.stderr);
      const out = r.stdout;
      return {
        capEff: BigInt(`0x${/CapEff:\s+(\w+)/.exec(out)![1]}`), nnp: /NoNewPrivs:\s+(\d)/.exec(out)![1], timerList: /timer-list (\d+)/.exec(out)![1],
        sys: / \/sys \S+ (r[ow]),/.exec(out)![1], device: /^dev (\w+:\w+)$/m.exec(out)?.[1], opened: /^opened$/m.test(out), stderr: r.stderr,
      };
    };
    const plain = await probe();
    assert.deepEqual({ ...plain, stderr: undefined }, { capEff: 0xa80425fbn, nnp: '1', timerList: '0', sys: 'ro', device: undefined, opened: false, stderr: undefined });
    const all = availableCapabilities().reduce((m, c) => m | (1n << BigInt(CAPABILITIES.indexOf(c))), 0n);
    // --cap-drop is ignored with --privileged, as docker does
    const priv = await probe('--privileged', '--cap-drop', 'ALL');
    assert.deepEqual({ ...priv, stderr: undefined }, { capEff: all, nnp: '0', timerList: '1', sys: 'rw', device: `${hex(device.major)}:${hex(device.minor)}`, opened: true, stderr: undefined });
    assert.doesNotMatch(priv.stderr, /warning/);
    assert.equal((await probe('--privileged', '--security-opt', 'no-new-privileges')).nnp, '1');
    assert.equal((await probe('--security-opt', 'no-new-privileges=false')).nnp, '0');
    const unmasked = await probe('--security-opt', 'systempaths=unconfined', '--security-opt', 'seccomp=unconfined');
    assert.deepEqual([unmasked.timerList, unmasked.sys, unmasked.capEff, unmasked.device], ['1', 'ro', 0xa80425fbn, undefined]);

    const id = await runD(['--privileged', '--security-opt', 'label=disable', 'localhost/bb:1', 'true']);
    const hostConfig = JSON.parse((await berth(['container', 'inspect', id])).stdout)[0].HostConfig;
    assert.deepEqual([hostConfig.Privileged, hostConfig.SecurityOpt], [true, ['label=disable']]);
    await waitExited(id);
    assert.equal((await berth(['container', 'rm', id])).code, 0);
    // a profile berth would not apply is refused, not ignored
    const profile = await berth(['run', '--rm', '--security-opt', 'seccomp=/etc/profile.json', 'localhost/bb:1', 'true']);
    assert.equal(profile.code, 2);
    assert.match(profile.stderr, /loads no profile file; only seccomp=unconfined \(no filter\) is accepted/);
    const unknown = await berth(['run', '--rm', '--security-opt', 'turbo', 'localhost/bb:1', 'true']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /--security-opt turbo: expected no-new-privileges/);
  });

  test('seccomp: the default filter denies a new user namespace, for run and exec; --cap-add SYS_ADMIN, seccomp=unconfined and --privileged let it through', async () => {
    // a user namespace needs no capability: only the filter stands in the way
    const script = 'grep Seccomp: /proc/self/status; unshare -U true 2>&1 && echo userns-made; true';
    const probe = async (...flags: string[]) => {
      const r = await berth(['run', '--rm', '--network', 'none', ...flags, 'localhost/bb:1', 'sh', '-c', script]);
      assert.equal(r.code, 0, r.stderr);
      return { filter: /Seccomp:\s+(\d)/.exec(r.stdout)?.[1], userns: /^userns-made$/m.test(r.stdout), out: r.stdout };
    };
    const plain = await probe();
    assert.deepEqual([plain.filter, plain.userns], ['2', false], plain.out);
    assert.match(plain.out, /Operation not permitted/);
    // a user other than root gets the same filter
    assert.deepEqual(await probe('-u', '1000').then((p) => [p.filter, p.userns]), ['2', false]);
    assert.deepEqual(await probe('--cap-add', 'SYS_ADMIN').then((p) => [p.filter, p.userns]), ['2', true]);
    assert.deepEqual(await probe('--security-opt', 'seccomp=unconfined').then((p) => [p.filter, p.userns]), ['0', true]);
    assert.deepEqual(await probe('--privileged').then((p) => [p.filter, p.userns]), ['0', true]);

    const id = await runD(['localhost/bb:1', 'sleep', '60']);
    const exec = await berth(['exec', id, 'sh', '-c', script]);
    assert.equal(exec.code, 0, exec.stderr);
    assert.match(exec.stdout, /Seccomp:\s+2/);
    assert.doesNotMatch(exec.stdout, /userns-made/);
    assert.equal((await berth(['container', 'rm', '-f', id])).code, 0);
  });

  test('mount points are found inside the rootfs as they are mounted: symlinks in the image or in a shared volume never lead to the host', async () => {
    const escape = join(tmp, 'host-side');
    await mkdir(escape, { recursive: true });
    // the image's /etc and /dev/init point through /proc/self/root at the host
    const r = await berth(['run', '--rm', '--network', 'none', '--init', 'localhost/bb:escape', 'true']);
    assert.deepEqual(await readdir(escape), [], `made on the host (exit ${r.code}: ${r.stderr})`);
    if (kind === 'builtin') assert.match(r.stderr, /leads below \/proc/);
    // an image with a file where a mount point's directory must be: a clear refusal
    const etcfile = await berth(['run', '--rm', '--network', 'none', 'localhost/bb:etcfile', 'true']);
    assert.notEqual(etcfile.code, 0);
    assert.equal(etcfile.stderr, 'berth: the image has no room for the mount point /etc/hosts: a file of the image is where a directory must be\n');
    // a /proc that is a symlink is refused (runc and crun refuse it too)
    const procsym = await berth(['run', '--rm', '--network', 'none', 'localhost/bb:procsym', 'true']);
    assert.notEqual(procsym.code, 0);
    if (kind === 'builtin') assert.match(procsym.stderr, /\/proc is reached through a symlink: no proc mount there/);
    // a container puts a symlink to the host in a volume; another one mounts below it
    const target = join(tmp, 'host-target');
    await mkdir(target);
    const made = await berth(['run', '--rm', '--network', 'none', '-v', 'shared-escape:/data', 'localhost/bb:1', 'ln', '-s', target, '/data/sub']);
    assert.equal(made.code, 0, made.stderr);
    const file = join(tmp, 'bind-me');
    await writeFile(file, 'bound\n');
    const b = await berth(['run', '--rm', '--network', 'none', '-v', 'shared-escape:/data', '-v', `${file}:/data/sub/deep/file`, 'localhost/bb:1', 'cat', '/data/sub/deep/file']);
    assert.deepEqual(await readdir(target), [], `made on the host (exit ${b.code}: ${b.stderr})`);
    // builtin and runc follow the link inside the rootfs (and make what is missing there); crun refuses the target
    if (kind === 'crun') assert.notEqual(b.code, 0);
    else assert.deepEqual([b.code, b.stdout], [0, 'bound\n'], b.stderr);
    assert.equal((await berth(['volume', 'rm', 'shared-escape'])).code, 0);
  });

  test('create, then two starts at once: the container runs once; prune leaves it while it runs, takes it after', async () => {
    const r = await berth(['create', '--runtime', kind, '--name', 'once', 'localhost/bb:1', 'sh', '-c', 'echo ran; sleep 1']);
    assert.equal(r.code, 0, r.stderr);
    const [a, b] = await Promise.all([berth(['start', 'once']), berth(['start', 'once'])]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    const pruned = await berth(['container', 'prune', '-f']);
    assert.equal(pruned.code, 0, pruned.stderr);
    assert.doesNotMatch(pruned.stdout, new RegExp(r.stdout.trim()));
    assert.equal((await waitExited('once')).State.ExitCode, 0);
    assert.equal((await berth(['logs', 'once'])).stdout, 'ran\n');
    // now it is stopped: prune takes it
    const again = await berth(['container', 'prune', '-f']);
    assert.match(again.stdout, new RegExp(`^Deleted Containers:\n(.*\n)*${r.stdout.trim()}\n`));
    assert.match(again.stdout, /Total reclaimed space: /);
    assert.equal((await berth(['container', 'inspect', 'once'])).code, 3);
  });

  test('--init (tini as PID 1 passes the stop signal on), --ulimit, --shm-size, --group-add, --device', async () => {
    const r = await berth(['run', '--rm', '--network', 'none', '--init', '--ulimit', 'nofile=100:200', '--ulimit', 'core=-1', '--shm-size', '1m', '--group-add', '1234',
      'localhost/bb:1', 'sh', '-c', 'tr "\\0" " " < /proc/1/cmdline; echo; ulimit -n; ulimit -Hn; ulimit -c; grep -o "/dev/shm tmpfs [^ ]*" /proc/mounts; id -G']);
    assert.equal(r.code, 0, r.stderr);
    const [cmdline, soft, hard, core, shm, groups] = r.stdout.trimEnd().split('\n');
    assert.match(cmdline!, /^\/dev\/init -- sh -c /);
    assert.deepEqual([soft, hard, core], ['100', '200', 'unlimited']);
    assert.match(shm!, /size=1024k/);
    assert.deepEqual(groups!.split(' ').sort(), ['0', '1234']);
    // sleep is not PID 1 under --init: the SIGTERM of stop reaches it (as PID 1 it would ignore it and be killed after -t)
    await runD(['--name', 'inited', '--init', 'localhost/bb:1', 'sleep', '100']);
    await sleep(300);
    assert.equal((await berth(['stop', '-t', '30', 'inited'])).code, 0);
    assert.equal((await inspect('inited')).State.ExitCode, 143);
    assert.equal((await berth(['container', 'rm', 'inited'])).code, 0);
    // --device: the node, and the devices cgroup letting it be opened (a node made by hand is refused)
    if (existsSync('/dev/fuse')) {
      const dev = await berth(['run', '--rm', '--network', 'none', '--device', '/dev/fuse:/dev/sub/myfuse', 'localhost/bb:1', 'sh', '-c', 'test -c /dev/sub/myfuse && echo node; (exec 3<>/dev/sub/myfuse) 2>/dev/null && echo opened']);
      assert.equal(dev.stdout, 'node\nopened\n', dev.stderr);
      const own = await berth(['run', '--rm', '--network', 'none', 'localhost/bb:1', 'sh', '-c', 'mknod /dev/f c 10 229 2>/dev/null; test -c /dev/f && (exec 3<>/dev/f) 2>/dev/null && echo opened || echo refused']);
      assert.equal(own.stdout, 'refused\n', own.stderr);
    }
    const cases: Array<[string[], RegExp]> = [
      [['--device', '/etc/passwd'], /\/etc\/passwd is not a device/],
      [['--ulimit', 'nofile=200:100'], /the soft limit must not be above the hard one/],
      [['--ulimit', 'files=1'], /unknown type files/],
      [['--group-add', 'wheel'], /--group-add wheel: no such group/],
      [['--shm-size', 'lots'], /invalid size "lots"/],
    ];
    for (const [flags, re] of cases) {
      const bad = await berth(['run', '--rm', ...flags, 'localhost/bb:1', 'true']);
      assert.notEqual(bad.code, 0, flags.join(' '));
      assert.match(bad.stderr, re);
    }
  });

  test('export writes the container\'s files (the image\'s and its own changes, with owners) as one tar archive', async () => {
    const run = await berth(['run', '--name', 'exported', 'localhost/bb:1', 'sh', '-c', 'echo made > /made; mkdir /owned; chown 123:456 /owned']);
    assert.equal(run.code, 0, run.stderr);
    const file = join(tmp, 'exported.tar');
    const r = await berth(['export', '-o', file, 'exported']);
    assert.equal(r.code, 0, r.stderr);
    const list = execFileSync('tar', ['-tvf', file, '--numeric-owner'], { encoding: 'utf8' });
    assert.match(list, / 123\/456 .* \.\/owned\/\n/);
    assert.match(list, / \.\/bin\/busybox\n/);
    assert.equal(execFileSync('tar', ['-xOf', file, './made'], { encoding: 'utf8' }), 'made\n');
    const piped = await berth(['container', 'export', 'exported']); // to stdout (a pipe here)
    assert.equal(piped.code, 0, piped.stderr);
    assert.ok(piped.stdout.length > 1000);
    const missing = await berth(['export', '-o', join(tmp, 'none.tar'), 'no-such-container']);
    assert.equal(missing.code, 3);
    assert.ok(!existsSync(join(tmp, 'none.tar')));
    assert.equal((await berth(['container', 'rm', 'exported'])).code, 0);
    // a running container that keeps writing a file: frozen while tar reads, so tar sees no file change
    const busy = await runD(['--network', 'none', 'localhost/bb:1', 'sh', '-c', 'while :; do echo xxxxxxxx >> /grow; done']);
    for (let i = 0; i < 3; i++) {
      const out = await berth(['export', '-o', join(tmp, `busy-${i}.tar`), busy]);
      assert.equal(out.code, 0, out.stderr);
    }
    assert.equal(JSON.parse((await berth(['container', 'inspect', busy])).stdout)[0].State.Status, 'running', 'thawed after');
    assert.equal((await berth(['container', 'rm', '-f', busy])).code, 0);
  });

  test('health checks: the image\'s HEALTHCHECK or --health-cmd run in the container; ps and inspect show starting, healthy, unhealthy', async () => {
    const state = async (ref: string) => JSON.parse((await berth(['container', 'inspect', ref])).stdout)[0].State as { Health?: { Status: string; FailingStreak: number; Log: Array<{ ExitCode: number; Output: string }> } };
    const until = async (ref: string, status: string) => {
      for (let i = 0; i < 150; i++) {
        const h = (await state(ref)).Health;
        if (h?.Status === status) return h;
        await sleep(100);
      }
      assert.fail(`${ref} never became ${status}: ${JSON.stringify((await state(ref)).Health)}`);
    };
    await runD(['--name', 'checked', '--health-cmd', 'cat /ok', '--health-interval', '200ms', '--health-retries', '2', 'localhost/bb:1', 'sleep', '100']);
    const sick = await until('checked', 'unhealthy');
    assert.ok(sick.FailingStreak >= 2);
    assert.match(sick.Log.at(-1)!.Output, /No such file/);
    assert.match((await berth(['ps'])).stdout, /Up .* \(unhealthy\)\s+checked\n/);
    assert.equal((await berth(['exec', 'checked', 'sh', '-c', 'echo fine > /ok'])).code, 0);
    const well = await until('checked', 'healthy');
    assert.equal(well.Log.at(-1)!.Output, 'fine\n');
    assert.equal(well.Log.at(-1)!.ExitCode, 0);
    assert.deepEqual((await berth(['ps', '-q', '--filter', 'health=healthy'])).stdout.trim().split('\n'), [(await inspect('checked')).Id.slice(0, 12)]);
    // the image's own HEALTHCHECK, and --no-healthcheck
    await runD(['--name', 'imagecheck', 'localhost/bb:healthy', 'sleep', '100']);
    await until('imagecheck', 'healthy');
    await runD(['--name', 'nocheck', '--no-healthcheck', 'localhost/bb:healthy', 'sleep', '100']);
    await sleep(600);
    assert.equal((await state('nocheck')).Health, undefined);
    const bad = await berth(['run', '-d', '--health-cmd', 'true', '--health-timeout', 'soon', 'localhost/bb:1', 'true']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--health-timeout soon: expected a duration/);
    // a check that hangs is ended at its timeout (with what it started inside), and the checks go on
    await runD(['--name', 'hung', '--health-cmd', 'sleep 1000', '--health-timeout', '300ms', '--health-interval', '100ms', '--health-retries', '2', 'localhost/bb:1', 'sleep', '100']);
    const timedOut = await until('hung', 'unhealthy');
    assert.match(timedOut.Log.at(-1)!.Output, /Health check exceeded timeout/);
    await sleep(500);
    const sleepers = (await berth(['top', 'hung'])).stdout.split('\n').filter((l) => /sleep 1000/.test(l));
    assert.ok(sleepers.length <= 1, `checks left behind: ${sleepers.join(' | ')}`); // at most the one running now
    // paused: no checks (none could run: runc refuses to exec), so it does not turn unhealthy meanwhile
    assert.equal((await berth(['pause', 'checked'])).code, 0);
    await sleep(800);
    assert.equal((await state('checked')).Health!.Status, 'healthy');
    assert.equal((await berth(['unpause', 'checked'])).code, 0);
    assert.equal((await berth(['container', 'rm', '-f', 'checked', 'imagecheck', 'nocheck', 'hung'])).code, 0);
  });

  test('run flags that need a kept container, or a terminal, are refused clearly', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['run', '--rm', '--log-opt', 'max-size=1m', 'localhost/bb:1', 'true'], /--log-opt needs a kept container/],
      [['run', '-d', '--log-opt', 'max-file=0', 'localhost/bb:1', 'true'], /max-file is a whole number of files, at least 1/],
      [['run', '-d', '--log-opt', 'compress=true', 'localhost/bb:1', 'true'], /the json-file options are max-size=SIZE and max-file=N/],
      [['run', '--rm', '--restart', 'always', 'localhost/bb:1', 'true'], /--restart and --rm exclude each other/],
      [['run', '-d', '--rm', '--restart', 'always', 'localhost/bb:1', 'true'], /--restart and --rm exclude each other/],
    ];
    for (const [args, re] of cases) {
      const r = await berth(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
    }
  });

  test('resource flags: --cpuset-cpus, --cpu-shares, --memory-swap and --memory-reservation reach the container\'s cgroups', async () => {
    const id = await runD(['--network', 'none', '--cpuset-cpus', '0', '--cpu-shares', '512', '-m', '32m', '--memory-swap', '64m', '--memory-reservation', '16m',
      // its own limit is at /sys/fs/cgroup, read-only, as a JVM looks for it
      'localhost/bb:1', 'sh', '-c', 'grep Cpus_allowed_list /proc/self/status; for f in /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max; do [ -e $f ] && { cat $f; (echo 1 > $f) 2>/dev/null || echo read-only; }; done; exec sleep 100']);
    try {
      for (let i = 0; i < 50 && !(await berth(['logs', id])).stdout.includes('read-only'); i++) await sleep(100);
      assert.equal((await berth(['logs', id])).stdout.replace(/\s+/g, ' '), `Cpus_allowed_list: 0 ${32 * 1024 * 1024} read-only `);
      const mib = 1024 * 1024;
      const read = (path: string) => readFile(path, 'utf8').then((t) => t.trim());
      if (existsSync('/sys/fs/cgroup/cgroup.controllers')) {
        const dir = (await readFile(`/proc/${(await inspect(id)).State.Pid}/cgroup`, 'utf8')).match(/^0::(\S+)$/m)![1]!;
        const cg = (f: string) => read(join('/sys/fs/cgroup', dir, f));
        assert.deepEqual([await cg('cpu.weight'), await cg('memory.max'), await cg('memory.swap.max'), await cg('memory.low')], ['20', String(32 * mib), String(32 * mib), String(16 * mib)]);
      } else {
        const cg = (ctl: string, f: string) => read(join('/sys/fs/cgroup', ctl, 'berth', id, f));
        assert.deepEqual([await cg('cpuset', 'cpuset.cpus'), await cg('cpu', 'cpu.shares'), await cg('memory', 'memory.limit_in_bytes'), await cg('memory', 'memory.soft_limit_in_bytes')],
          ['0', '512', String(32 * mib), String(16 * mib)]);
        if (existsSync(join('/sys/fs/cgroup/memory/berth', id, 'memory.memsw.limit_in_bytes'))) assert.equal(await cg('memory', 'memory.memsw.limit_in_bytes'), String(64 * mib));
      }
    } finally { await berth(['container', 'rm', '-f', id]); }
    const bad = await berth(['run', '--rm', '--memory-swap', '64m', 'localhost/bb:1', 'true']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--memory-swap needs --memory/);
  });

  test('update: a running container\'s limits change at once and stay for later starts; a new restart policy is what its supervisor follows', async () => {
    const id = await runD(['--network', 'none', '-m', '32m', '--pids-limit', '20', 'localhost/bb:1', 'sh', '-c', 'echo up; while [ ! -e /fail ]; do sleep 0.1; done; exit 3']);
    for (let i = 0; i < 50 && !(await berth(['logs', id])).stdout; i++) await sleep(100);
    const mib = 1024 * 1024;
    const up = await berth(['update', '-m', '48m', '--memory-swap', '96m', '--cpus', '0.5', '--cpu-shares', '256', '--restart', 'on-failure:1', id]);
    assert.deepEqual([up.code, up.stdout], [0, `${id}\n`], up.stderr);
    const hc = JSON.parse((await berth(['container', 'inspect', id])).stdout)[0].HostConfig;
    assert.deepEqual([hc.Memory, hc.MemorySwap, hc.NanoCpus, hc.CpuShares, hc.RestartPolicy], [48 * mib, 96 * mib, 5e8, 256, { Name: 'on-failure', MaximumRetryCount: 1 }]);
    // the kernel has them now (the cpu cgroup is new for the built-in executor: the processes were moved in)
    const pid = (await inspect(id)).State.Pid;
    const read = (path: string) => readFile(path, 'utf8').then((t) => t.trim());
    if (existsSync('/sys/fs/cgroup/cgroup.controllers')) {
      const dir = join('/sys/fs/cgroup', (await readFile(`/proc/${pid}/cgroup`, 'utf8')).match(/^0::(\S+)$/m)![1]!);
      assert.deepEqual([await read(join(dir, 'memory.max')), await read(join(dir, 'cpu.max')), await read(join(dir, 'cpu.weight'))], [String(48 * mib), '50000 100000', '10']);
    } else {
      const cg = (ctl: string, f: string) => read(join('/sys/fs/cgroup', ctl, 'berth', id, f));
      assert.deepEqual([await cg('memory', 'memory.limit_in_bytes'), await cg('cpu', 'cpu.cfs_quota_us'), await cg('cpu', 'cpu.shares')], [String(48 * mib), '50000', '256']);
      const procs = (await cg('cpu', 'cgroup.procs')).split('\n');
      assert.ok(procs.length >= 2, `the container's processes are in its cpu cgroup: ${procs.join(' ')}`);
    }
    // --pids-limit -1 lifts the limit (docker's "unlimited"), in the kernel and for later starts
    const pidsMax = async () => (existsSync('/sys/fs/cgroup/cgroup.controllers')
      ? read(join('/sys/fs/cgroup', (await readFile(`/proc/${pid}/cgroup`, 'utf8')).match(/^0::(\S+)$/m)![1]!, 'pids.max'))
      : read(join('/sys/fs/cgroup/pids/berth', id, 'pids.max')));
    assert.equal(await pidsMax(), '20');
    const lift = await berth(['update', '--pids-limit', '-1', id]);
    assert.equal(lift.code, 0, lift.stderr);
    assert.ok(['max', String(4 * 1024 * 1024)].includes(await pidsMax()), 'no process limit (crun: PID_MAX_LIMIT)');
    assert.equal(JSON.parse((await berth(['container', 'inspect', id])).stdout)[0].HostConfig.PidsLimit, 0);
    assert.match((await berth(['update', '--pids-limit', 'lots', id])).stderr, /--pids-limit lots: expected a whole number/);
    // on-failure:1 (set above, not at run): one restart after the first failure, then it stays exited
    assert.equal((await berth(['exec', id, 'sh', '-c', 'echo > /fail'])).code, 0);
    const end = await waitExited(id, 20_000);
    assert.deepEqual([end.State.ExitCode, end.RestartCount], [3, 1]);
    const swapBelow = await berth(['update', '--memory-swap', '16m', id]);
    assert.equal(swapBelow.code, 2);
    assert.match(swapBelow.stderr, /--memory-swap must be at least --memory/);
    assert.match((await berth(['update', id])).stderr, /needs at least one flag/);
    assert.equal((await berth(['container', 'rm', id])).code, 0);
    const rm = await runD(['--rm', 'localhost/bb:1', 'sleep', '100']);
    const refused = await berth(['update', '--restart', 'always', rm]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /was run with --rm: its restart policy cannot be changed/);
    await berth(['container', 'rm', '-f', rm]);
  });

  test('--cgroupns private: the container (and what exec starts in it) sees its own cgroups as the root; host: the host\'s paths', async () => {
    const own = await berth(['run', '--rm', '--network', 'none', '--cgroupns', 'private', 'localhost/bb:1', 'cat', '/proc/self/cgroup']);
    assert.equal(own.code, 0, own.stderr);
    const lines = own.stdout.trim().split('\n');
    assert.ok(lines.length > 0 && lines.every((l) => /:\/$/.test(l)), own.stdout);
    const host = await berth(['run', '--rm', '--network', 'none', '--cgroupns', 'host', 'localhost/bb:1', 'cat', '/proc/self/cgroup']);
    assert.match(host.stdout, /:\/berth\/[0-9a-f]{64}$/m);
    const id = await runD(['--network', 'none', '--cgroupns', 'private', 'localhost/bb:1', 'sleep', '100']);
    try {
      const ex = await berth(['exec', id, 'cat', '/proc/self/cgroup']);
      assert.ok(ex.stdout.trim().split('\n').every((l) => /:\/$/.test(l)), ex.stdout);
      assert.equal(JSON.parse((await berth(['container', 'inspect', id])).stdout)[0].HostConfig.CgroupnsMode, 'private');
    } finally { await berth(['container', 'rm', '-f', id]); }
    const bad = await berth(['run', '--rm', '--cgroupns', 'shared', 'localhost/bb:1', 'true']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--cgroupns shared: expected private or host/);
  });

  test('--mount: binds, named volumes and tmpfs in docker\'s long form, as -v and --tmpfs give them', async () => {
    const host = join(tmp, `mnt-${kind}`);
    await mkdir(host);
    await writeFile(join(host, 'f'), 'from host\n');
    const r = await berth(['run', '--rm', '--network', 'none', '--mount', `type=bind,source=${host},target=/b,readonly`, '--mount', `source=mvol-${kind},target=/v`,
      '--mount', 'type=tmpfs,target=/t,tmpfs-size=1m', 'localhost/bb:1', 'sh', '-c',
      'cat /b/f; (echo x > /b/g) 2>/dev/null || echo b-is-ro; echo in-volume > /v/file; grep -E "^[^ ]+ /[bvt] " /proc/mounts | while read dev at fs opts rest; do echo "$at $fs ${opts%%,*}"; done']);
    assert.equal(r.code, 0, r.stderr);
    const [cat, ro, ...mounts] = r.stdout.trim().split('\n');
    assert.deepEqual([cat, ro], ['from host', 'b-is-ro']);
    assert.deepEqual(mounts.map((l) => l.replace(/ (ext4|xfs|btrfs|overlay) /, ' disk ')).sort(), ['/b disk ro', '/t tmpfs rw', '/v disk rw']);
    const vol = (await berth(['volume', 'inspect', '-f', '{{.Mountpoint}}', `mvol-${kind}`])).stdout.trim();
    assert.equal(await readFile(join(vol, 'file'), 'utf8'), 'in-volume\n');
    assert.match((await berth(['volume', 'ls', '-q', '--filter', 'dangling=true', '--filter', `name=mvol-${kind}`])).stdout, new RegExp(`^mvol-${kind}$`, 'm'));
    const missing = await berth(['run', '--rm', '--mount', 'type=bind,source=/no/such/place,target=/x', 'localhost/bb:1', 'true']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--mount type=bind,source=\/no\/such\/place,target=\/x: bind source path does not exist/);
    assert.equal((await berth(['volume', 'rm', `mvol-${kind}`])).code, 0);
  });

  test('rm -v removes the container\'s anonymous volumes; named volumes and plain rm keep theirs', async () => {
    const volumes = join(root, 'volumes');
    const id = await runD(['-v', '/scratch', '-v', `named-${kind}:/named`, 'localhost/bb:1', 'sh', '-c', 'echo a > /scratch/a; echo n > /named/n']);
    await waitExited(id);
    const anon = (await readdir(volumes)).filter((n) => /^[0-9a-f]{64}$/.test(n));
    assert.equal(anon.length, 1);
    assert.equal(await readFile(join(volumes, anon[0]!, '_data', 'a'), 'utf8'), 'a\n');
    const inUse = await berth(['volume', 'rm', anon[0]!]);
    assert.notEqual(inUse.code, 0, 'a volume of an existing container is in use');
    assert.equal((await berth(['container', 'rm', '-v', id])).code, 0);
    assert.ok(!existsSync(join(volumes, anon[0]!)), 'the anonymous volume is gone');
    assert.equal(await readFile(join(volumes, `named-${kind}`, '_data', 'n'), 'utf8'), 'n\n', 'the named volume stays');

    const id2 = await runD(['-v', '/scratch', 'localhost/bb:1', 'true']);
    await waitExited(id2);
    const anon2 = (await readdir(volumes)).filter((n) => /^[0-9a-f]{64}$/.test(n));
    assert.equal((await berth(['container', 'rm', id2])).code, 0);
    assert.deepEqual((await readdir(volumes)).filter((n) => /^[0-9a-f]{64}$/.test(n)), anon2, 'without -v it stays');
    assert.equal((await berth(['volume', 'rm', anon2[0]!])).code, 0);
  });
  test('start --all --filter restart-policy=…: after a reboot, always and unless-stopped come back, a hand-stopped unless-stopped does not', async () => {
    const loop = ['localhost/bb:1', 'sh', '-c', 'while true; do sleep 0.1; done'];
    const always = await runD(['--name', 'b-always', '--restart', 'always', ...loop]);
    const unless = await runD(['--name', 'b-unless', '--restart', 'unless-stopped', ...loop]);
    const unlessStopped = await runD(['--name', 'b-unless-stopped', '--restart', 'unless-stopped', ...loop]);
    const no = await runD(['--name', 'b-no', ...loop]);
    assert.equal((await berth(['stop', '-t', '1', 'b-always', 'b-unless-stopped'])).code, 0);
    // the "reboot": supervisors and containers die without a word, mounts vanish
    for (const id of [unless, no]) {
      const c = (await listContainers(root)).find((x) => x.config.id === id)!;
      process.kill(c.state.supervisorPid!, 'SIGKILL');
      await runtimeOf(c).delete(id);
      await unmount(join(c.dir, 'rootfs'), { lazy: true });
    }
    await sleep(200);
    const up = (await berth(['ps', '-q', '--no-trunc'])).stdout.trim().split('\n');
    assert.ok(![always, unless, unlessStopped, no].some((id) => up.includes(id)), 'none of them runs after the "reboot"');
    const st = await berth(['start', '--all', '--filter', 'restart-policy=always', '--filter', 'restart-policy=unless-stopped']);
    assert.equal(st.code, 0, st.stderr);
    // (earlier tests' containers count too: an `always` one stopped by hand comes back as well)
    assert.deepEqual(st.stdout.trim().split('\n').filter((n) => n.startsWith('b-')).sort(), ['b-always', 'b-unless']);
    const ours = new Set([always, unless, unlessStopped, no]);
    const running = (await berth(['ps', '-q', '--no-trunc'])).stdout.trim().split('\n').filter((id) => ours.has(id)).sort();
    assert.deepEqual(running, [always, unless].sort());
    assert.equal((await inspect(unlessStopped)).State.Status, 'exited');
    assert.equal((await inspect(no)).State.Status, 'exited');
    const bad = await berth(['start', '--all', '--filter', 'status=exited']);
    assert.notEqual(bad.code, 0);
    for (const id of [always, unless, unlessStopped, no]) assert.equal((await berth(['container', 'rm', '-f', id])).code, 0);
  });

  test('system df counts images, containers and volumes; system prune takes stopped containers, unused networks and (--volumes) volumes, nothing in use', async () => {
    assert.equal((await berth(['network', 'create', 'prunable'])).code, 0);
    assert.equal((await berth(['volume', 'create', 'dfunused'])).code, 0);
    const stopped = (await berth(['run', '--name', 'dfstop', 'localhost/bb:1', 'true'])).code === 0 ? (await inspect('dfstop')).Id : assert.fail('run');
    const live = await runD(['--name', 'dfrun', '-v', 'dfvol:/data', 'localhost/bb:1', 'sh', '-c', 'dd if=/dev/zero of=/data/f bs=1k count=300 2>/dev/null; sleep 100']);
    await writeFile(join(root, 'volumes', 'dfunused', '_data', 'f'), Buffer.alloc(200_000));
    for (let i = 0; i < 50 && !existsSync(join(root, 'volumes', 'dfvol', '_data', 'f')); i++) await sleep(100);

    const df = await berth(['system', 'df']);
    assert.equal(df.code, 0, df.stderr);
    const rows = Object.fromEntries(df.stdout.trimEnd().split('\n').slice(1).map((l) => {
      const f = l.split(/\s{2,}/);
      return [f[0], { total: Number(f[1]), active: Number(f[2]), size: f[3], reclaimable: f[4] }];
    }));
    assert.match(df.stdout, /^TYPE\s+TOTAL\s+ACTIVE\s+SIZE\s+RECLAIMABLE\n/);
    assert.ok(rows.Images!.total >= 2 && rows.Images!.active >= 1, df.stdout);
    assert.ok(rows.Containers!.total >= 2 && rows.Containers!.active >= 1, df.stdout);
    assert.ok(rows['Local Volumes']!.total >= 2 && rows['Local Volumes']!.active >= 1, df.stdout);
    assert.match(rows['Local Volumes']!.reclaimable, /^(2\d\d|[1-9][\d.]*M)/, df.stdout); // at least dfunused's 200 kB

    const asked = await berth(['system', 'prune']); // no terminal to confirm on
    assert.equal(asked.code, 2);
    assert.match(asked.stderr, /add -f/);
    const pruned = await berth(['system', 'prune', '-f', '--volumes']);
    assert.equal(pruned.code, 0, pruned.stderr);
    assert.match(pruned.stdout, new RegExp(`Deleted Containers:\n(.*\n)*${stopped}\n`));
    assert.match(pruned.stdout, /Deleted Networks:\n(.*\n)*prunable\n/);
    assert.match(pruned.stdout, /Deleted Volumes:\n(.*\n)*dfunused\n/);
    assert.doesNotMatch(pruned.stdout, new RegExp(`${live}|dfvol`));
    assert.match(pruned.stdout, /Total reclaimed space: \d/);
    assert.equal((await inspect('dfrun')).State.Status, 'running');
    assert.deepEqual((await berth(['volume', 'ls', '-q'])).stdout.split('\n').filter((v) => v.startsWith('df')), ['dfvol']);
    assert.doesNotMatch((await berth(['network', 'ls', '-q'])).stdout, /prunable/);
    assert.equal((await berth(['container', 'rm', '-f', 'dfrun'])).code, 0);
    assert.equal((await berth(['volume', 'rm', 'dfvol'])).code, 0);
  });
});
}
