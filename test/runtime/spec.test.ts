// Image config + run flags → OCI runtime-spec config.json, with Docker's semantics.
import assert from 'node:assert/strict';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ImageConfig } from '../../runtime/image-store.js';
import {
  availableCapabilities, buildSpec, CAPABILITIES, checkHostname, DEFAULT_CAPABILITIES, DEFAULT_PATH, mergeEnv, parseBytes, parseEnvFile, parseTmpfs, processArgs, resolveEnvFlags,
  checkResources, hostDevices, parseDevice, parseUlimit, resolveInRoot, resolveUser, rlimitNumber, SpecError, specJson, tweakCapabilities, UNLIMITED,
} from '../../runtime/spec.js';
import { cpuWeight } from '../../runtime/executors/builtin.js';
import { parseSecurityOpts, SecurityOptError } from '../../runtime/security-opts.js';
import { removeDir, tempDir } from './helpers.js';

const image = (config: ImageConfig['config']): ImageConfig => ({ os: 'linux', architecture: 'amd64', config, rootfs: { type: 'layers', diff_ids: [] } });

describe('spec: ENTRYPOINT and CMD like Docker', () => {
  test('ENTRYPOINT + CMD, arguments replace CMD, --entrypoint drops CMD, "" clears ENTRYPOINT', () => {
    const cfg = { Entrypoint: ['/bin/entry', '-x'], Cmd: ['default'] };
    assert.deepEqual(processArgs(cfg), ['/bin/entry', '-x', 'default']);
    assert.deepEqual(processArgs(cfg, { args: ['a', 'b'] }), ['/bin/entry', '-x', 'a', 'b']);
    assert.deepEqual(processArgs(cfg, { entrypoint: '/bin/sh' }), ['/bin/sh']);
    assert.deepEqual(processArgs(cfg, { entrypoint: '/bin/sh', args: ['-c', 'echo'] }), ['/bin/sh', '-c', 'echo']);
    assert.deepEqual(processArgs(cfg, { entrypoint: '', args: ['ls'] }), ['ls']);
    assert.deepEqual(processArgs({ Cmd: ['/bin/sh', '-c', 'echo hi'] }), ['/bin/sh', '-c', 'echo hi']);
    assert.deepEqual(processArgs({ Entrypoint: null, Cmd: null }, { args: ['true'] }), ['true']);
    assert.throws(() => processArgs({}), (e: Error) => e instanceof SpecError && /no command specified/.test(e.message));
  });
});

describe('spec: environment', () => {
  test('merged by key, later wins, first position kept; -e K takes the host value or is dropped', () => {
    assert.deepEqual(mergeEnv(['A=1', 'B=2'], ['B=3', 'C=4']), ['A=1', 'B=3', 'C=4']);
    assert.deepEqual(resolveEnvFlags(['X=1', 'HOSTVAR', 'MISSING', 'EMPTY='], { HOSTVAR: 'h' }), ['X=1', 'HOSTVAR=h', 'EMPTY=']);
    assert.throws(() => resolveEnvFlags(['=v']), SpecError);
  });
  test('env files: comments and blank lines skipped, leading space trimmed, bad keys refused', () => {
    assert.deepEqual(parseEnvFile('# c\n\nA=1\n  B=two words\nC\r\n'), ['A=1', 'B=two words', 'C']);
    assert.throws(() => parseEnvFile('BAD KEY=1'), /invalid line/);
  });
  test('sizes', () => {
    assert.equal(parseBytes('512m'), 512 * 1024 * 1024);
    assert.equal(parseBytes('1g'), 1024 ** 3);
    assert.equal(parseBytes('1.5k'), 1536);
    assert.equal(parseBytes('100'), 100);
    assert.throws(() => parseBytes('lots'), SpecError);
  });
});

describe('spec: users and files in the rootfs', () => {
  let rootfs: string;
  let outside: string;
  before(async () => {
    const tmp = await tempDir();
    rootfs = join(tmp, 'rootfs');
    outside = join(tmp, 'outside');
    await mkdir(join(rootfs, 'etc'), { recursive: true });
    await mkdir(outside);
    await writeFile(join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534::/nonexistent:/bin/false\n');
    await writeFile(join(rootfs, 'etc/group'), 'root:x:0:\napp:x:1000:\nwheel:x:10:app,other\naudio:x:29:app\nstaff:x:50:\n');
    await writeFile(join(outside, 'passwd'), 'evil:x:0:0::/:/bin/sh\n');
  });
  after(async () => { await removeDir(join(rootfs, '..')); });

  test('names and ids, with supplementary groups from /etc/group', async () => {
    assert.deepEqual(await resolveUser(rootfs, undefined), { uid: 0, gid: 0, username: 'root', home: '/root' });
    assert.deepEqual(await resolveUser(rootfs, 'app'), { uid: 1000, gid: 1000, additionalGids: [10, 29], username: 'app', home: '/home/app' });
    assert.deepEqual(await resolveUser(rootfs, 'app:staff'), { uid: 1000, gid: 50, username: 'app', home: '/home/app' });
    assert.deepEqual(await resolveUser(rootfs, '1000:10'), { uid: 1000, gid: 10, username: 'app', home: '/home/app' });
    assert.deepEqual(await resolveUser(rootfs, '4242'), { uid: 4242, gid: 0, home: '/' });
    await assert.rejects(resolveUser(rootfs, 'ghost'), /unable to find user ghost/);
    await assert.rejects(resolveUser(rootfs, 'app:ghosts'), /unable to find group ghosts/);
  });

  test('symlinks are resolved inside the rootfs, never out of it', async () => {
    const r2 = join(rootfs, '..', 'rootfs2');
    await mkdir(join(r2, 'etc'), { recursive: true });
    await symlink(join(outside, 'passwd'), join(r2, 'etc/passwd')); // absolute: means <rootfs2>/<outside>/passwd
    await symlink('../../../../outside/passwd', join(r2, 'etc/group'));
    assert.equal(await resolveInRoot(r2, '/etc/passwd'), join(r2, outside, 'passwd'));
    assert.equal(await resolveInRoot(r2, '/etc/group'), join(r2, 'outside/passwd'));
    await assert.rejects(resolveUser(r2, 'evil'), /unable to find user evil/);
  });
});

describe('spec: config.json', () => {
  let rootfs: string;
  before(async () => {
    rootfs = await tempDir();
    await mkdir(join(rootfs, 'etc'));
    await writeFile(join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n');
  });
  after(async () => { await removeDir(rootfs); });

  test('defaults: namespaces, Docker capabilities, no_new_privs, masked paths, devices, env with PATH/HOSTNAME/HOME', async () => {
    const s = await buildSpec(image({ Cmd: ['/bin/sh'], Env: ['FOO=bar'], WorkingDir: 'srv' }), rootfs, { hostname: 'box' });
    assert.equal(s.ociVersion, '1.0.2');
    assert.deepEqual(s.process.args, ['/bin/sh']);
    assert.deepEqual(s.process.env, [`PATH=${DEFAULT_PATH}`, 'HOSTNAME=box', 'FOO=bar', 'HOME=/root']);
    assert.equal(s.process.cwd, '/srv');
    assert.deepEqual(s.process.user, { uid: 0, gid: 0, umask: 0o022 });
    assert.ok(!s.process.capabilities.bounding.includes('CAP_SYS_ADMIN'));
    assert.deepEqual(s.process.capabilities.bounding, [...DEFAULT_CAPABILITIES]);
    assert.deepEqual(s.process.capabilities.effective, [...DEFAULT_CAPABILITIES]);
    assert.equal(s.process.noNewPrivileges, true);
    assert.deepEqual(s.linux.namespaces.map((n) => n.type), ['pid', 'ipc', 'uts', 'mount', 'network']);
    assert.ok(s.linux.maskedPaths.includes('/proc/kcore'));
    assert.ok(s.linux.readonlyPaths.includes('/proc/sys'));
    assert.deepEqual(s.linux.resources.devices[0], { allow: false, access: 'rwm' });
    assert.deepEqual(s.mounts.map((m) => m.destination), ['/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys', '/sys/fs/cgroup']);
    assert.equal(s.root.readonly, false);
    assert.equal(s.hostname, 'box');
    JSON.parse(JSON.stringify(s));
  });

  test('the bridge network: the container joins the namespace made for it, and mounts its own sysfs', async () => {
    const s = await buildSpec(image({ Cmd: ['/bin/sh'] }), rootfs, { network: 'bridge', netnsPath: '/run/netns/berth-0123' });
    assert.deepEqual(s.linux.namespaces.at(-1), { type: 'network', path: '/run/netns/berth-0123' });
    assert.equal(s.mounts.find((m) => m.destination === '/sys')?.type, 'sysfs');
    await assert.rejects(buildSpec(image({ Cmd: ['/bin/sh'] }), rootfs, { network: 'bridge' }), /needs the namespace path/);
  });

  test('resources: --memory-swap, --memory-reservation, --cpu-shares, --cpuset-cpus/-mems with docker\'s checks', async () => {
    const mib = 1024 * 1024;
    const s = await buildSpec(image({ Cmd: ['/bin/sh'] }), rootfs, { memory: 32 * mib, memorySwap: 64 * mib, memoryReservation: 16 * mib, cpus: 0.5, cpuShares: 512, cpusetCpus: '0', cpusetMems: '0' });
    assert.deepEqual(s.linux.resources.memory, { limit: 32 * mib, swap: 64 * mib, reservation: 16 * mib });
    assert.deepEqual(s.linux.resources.cpu, { quota: 50_000, period: 100_000, shares: 512, cpus: '0', mems: '0' });
    assert.deepEqual((await buildSpec(image({ Cmd: ['x'] }), rootfs, { memory: 32 * mib, memorySwap: -1 })).linux.resources.memory, { limit: 32 * mib, swap: -1 });
    assert.deepEqual((await buildSpec(image({ Cmd: ['x'] }), rootfs, { memoryReservation: 16 * mib })).linux.resources.memory, { reservation: 16 * mib });
    assert.equal((await buildSpec(image({ Cmd: ['x'] }), rootfs, { cpuShares: 0 })).linux.resources.cpu, undefined, '0 is the default weight');
    assert.throws(() => checkResources({ memorySwap: 64 * mib }), /--memory-swap needs --memory/);
    assert.throws(() => checkResources({ memory: 64 * mib, memorySwap: 32 * mib }), /--memory-swap must be at least --memory/);
    assert.throws(() => checkResources({ memory: 16 * mib, memoryReservation: 32 * mib }), /--memory-reservation must be below --memory/);
    assert.throws(() => checkResources({ cpuShares: 1 }), /--cpu-shares 1: expected 2 to 262144/);
    assert.throws(() => checkResources({ cpusetCpus: 'all' }), /--cpuset-cpus all: expected a list such as 0-2,4/);
    assert.throws(() => checkResources({ cpusetCpus: '3-1' }), /3-1 is not a range/);
    assert.throws(() => checkResources({ cpusetCpus: '0-4095' }), /requested 0-4095, but this host has CPUs 0-/);
    assert.deepEqual([cpuWeight(2), cpuWeight(1024), cpuWeight(262_144)], [1, 39, 10_000]);
  });

  test('--privileged: every available capability, the host\'s devices, every device allowed, /sys writable, nothing masked', async () => {
    const fuse = { path: '/dev/sub/fuse', type: 'c' as const, major: 10, minor: 229, fileMode: 0o666, uid: 0, gid: 0 };
    const s = await buildSpec(image({ Cmd: ['/bin/sh'] }), rootfs, { privileged: true, capDrop: ['ALL'], devices: [fuse], noNewPrivileges: false });
    assert.deepEqual(s.process.capabilities.bounding, availableCapabilities());
    assert.equal(s.process.noNewPrivileges, false);
    assert.deepEqual([s.linux.maskedPaths, s.linux.readonlyPaths], [[], []]);
    assert.deepEqual(s.linux.resources.devices, [{ allow: true, access: 'rwm' }]);
    for (const d of ['/sys', '/sys/fs/cgroup']) assert.ok(!s.mounts.find((m) => m.destination === d)!.options!.includes('ro'), d);
    const host = hostDevices();
    assert.deepEqual(s.linux.devices, [...host, fuse]);
    // the host's nodes, without symlinks, the container's own pts/shm/mqueue or what every container has
    assert.ok(host.every((d) => d.path.startsWith('/dev/') && !/^\/dev\/(pts|shm|mqueue)\//.test(d.path) && d.path !== '/dev/null' && d.path !== '/dev/console'));
    if (host.length) assert.ok(host.some((d) => d.path === '/dev/loop-control' || d.path === '/dev/fuse' || d.type === 'b'));

    const unmasked = await buildSpec(image({ Cmd: ['/bin/sh'] }), rootfs, { unmaskPaths: true });
    assert.deepEqual([unmasked.linux.maskedPaths, unmasked.linux.readonlyPaths], [[], []]);
    assert.deepEqual(unmasked.process.capabilities.bounding, [...DEFAULT_CAPABILITIES]);
    assert.ok(unmasked.mounts.find((m) => m.destination === '/sys')!.options!.includes('ro'));
    assert.equal(unmasked.linux.devices, undefined);
  });

  test('--security-opt: no-new-privileges, systempaths=unconfined; unconfined profiles accepted, real ones refused', () => {
    assert.deepEqual(parseSecurityOpts(['no-new-privileges']), { noNewPrivileges: true });
    assert.deepEqual(parseSecurityOpts(['no-new-privileges:false']), { noNewPrivileges: false });
    assert.deepEqual(parseSecurityOpts(['no-new-privileges=true', 'systempaths=unconfined']), { noNewPrivileges: true, unmaskPaths: true });
    assert.deepEqual(parseSecurityOpts(['apparmor:unconfined', 'label=disable']), {});
    assert.deepEqual(parseSecurityOpts(['seccomp=unconfined']), { seccompUnconfined: true });
    assert.throws(() => parseSecurityOpts(['no-new-privileges=maybe']), /takes true or false/);
    assert.throws(() => parseSecurityOpts(['seccomp=/etc/docker/seccomp.json']), /loads no profile file/);
    assert.throws(() => parseSecurityOpts(['apparmor=docker-default']), /berth applies no apparmor profile/);
    assert.throws(() => parseSecurityOpts(['label=user:USER']), /berth applies no SELinux label/);
    assert.throws(() => parseSecurityOpts(['systempaths=strict']), /systempaths takes only unconfined/);
    assert.throws(() => parseSecurityOpts(['mask=/proc/x']), SecurityOptError);
  });

  test('flags: user, workdir, env, tty, read-only, tmpfs, volumes, host network, limits', async () => {
    const s = await buildSpec(image({ Cmd: ['run'], Env: ['PATH=/custom', 'A=image'], User: 'app' }), rootfs, {
      args: ['serve'], env: ['A=flag', 'HOME=/data'], workdir: '/work', tty: true, readOnly: true,
      tmpfs: ['/run:size=64m,exec', '/dev/shm:size=1g'], volumes: [{ source: '/srv/data', destination: '/data/', readonly: true }],
      network: 'host', memory: parseBytes('64m'), cpus: 1.5, pidsLimit: 100, cgroupsPath: '/berth/c1',
      etcFiles: { hosts: '/x/hosts', resolvConf: '/x/resolv.conf' },
    });
    assert.deepEqual(s.process.args, ['serve']);
    assert.deepEqual(s.process.env, ['PATH=/custom', 'HOSTNAME=berth', 'TERM=xterm', 'A=flag', 'HOME=/data']);
    assert.equal(s.process.cwd, '/work');
    assert.equal(s.process.user.uid, 1000);
    assert.deepEqual(s.process.capabilities.effective, [], 'a non-root user gets no effective capabilities');
    assert.equal(s.process.terminal, true);
    assert.equal(s.root.readonly, true);
    assert.deepEqual(s.linux.namespaces.map((n) => n.type), ['pid', 'ipc', 'uts', 'mount']);
    const byDest = new Map(s.mounts.map((m) => [m.destination, m]));
    assert.deepEqual(byDest.get('/run'), { destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'size=64m', 'exec'] });
    assert.deepEqual(byDest.get('/dev/shm')!.options, ['noexec', 'nosuid', 'nodev', 'size=1g'], '--tmpfs replaces the default /dev/shm');
    assert.deepEqual(parseTmpfs('/t:mode=1777,uid=1000,size=50%,noatime').options, ['noexec', 'nosuid', 'nodev', 'mode=1777', 'uid=1000', 'size=50%', 'noatime']);
    for (const bad of ['/x:bogusopt', '/x:size=abc', '/x:mode=9999', '/x:uid=-1']) assert.throws(() => parseTmpfs(bad), /is not a tmpfs option/, bad);
    assert.throws(() => parseBytes('99999999999999999999g'), /too large/);
    assert.equal(s.mounts.filter((m) => m.destination === '/dev/shm').length, 1);
    assert.deepEqual(byDest.get('/data'), { destination: '/data', type: 'bind', source: '/srv/data', options: ['rbind', 'rprivate', 'ro'] });
    assert.equal(byDest.get('/sys')!.type, 'bind');
    assert.equal(byDest.get('/etc/hosts')!.source, '/x/hosts');
    for (const f of ['/etc/hosts', '/etc/resolv.conf']) assert.deepEqual(byDest.get(f)!.options, ['rbind', 'rprivate'], `${f}: writable under --read-only, as with docker`);
    assert.deepEqual(s.linux.resources.memory, { limit: 64 * 1024 * 1024 });
    assert.deepEqual(s.linux.resources.cpu, { quota: 150_000, period: 100_000 });
    assert.deepEqual(s.linux.resources.pids, { limit: 100 });
    assert.equal(s.linux.cgroupsPath, '/berth/c1');
  });

  test('bad input is refused with clear messages', async () => {
    const img = image({ Cmd: ['x'] });
    await assert.rejects(buildSpec(img, rootfs, { workdir: 'rel' }), /not absolute/);
    await assert.rejects(buildSpec(img, rootfs, { hostname: 'bad host' }), /invalid hostname/);
    for (const bad of ['a..b', '-a', 'a-', 'a\nb', 'x'.repeat(65), '']) assert.throws(() => checkHostname(bad), /invalid hostname/, JSON.stringify(bad));
    for (const good of ['web-1.example', 'a', 'x'.repeat(64)]) checkHostname(good);
    for (const bad of ['1000:1000:5', ':0']) await assert.rejects(buildSpec(img, rootfs, { user: bad }), /invalid user .*expected USER\[:GROUP\]/, bad);
    await assert.rejects(buildSpec(img, rootfs, { memory: 1000 }), /minimum memory/);
    await assert.rejects(buildSpec(img, rootfs, { volumes: [{ source: '/a', destination: '/' }] }), /cannot be mounted on \//);
    await assert.rejects(buildSpec(img, rootfs, { volumes: [{ source: '/a', destination: '/d' }, { source: '/b', destination: '/d' }] }), /duplicate mount point/);
    assert.throws(() => parseTmpfs('run'), /absolute/);
  });
});

test('--cap-add and --cap-drop change the default set as docker does (ALL on either side; an add wins over a drop)', () => {
  assert.deepEqual(tweakCapabilities(DEFAULT_CAPABILITIES), [...DEFAULT_CAPABILITIES]);
  const t = tweakCapabilities(DEFAULT_CAPABILITIES, ['net_admin', 'CAP_SYS_PTRACE'], ['chown', 'KILL']);
  assert.ok(t.includes('CAP_NET_ADMIN') && t.includes('CAP_SYS_PTRACE'));
  assert.ok(!t.includes('CAP_CHOWN') && !t.includes('CAP_KILL'));
  assert.equal(t.length, DEFAULT_CAPABILITIES.length);
  assert.deepEqual(tweakCapabilities(DEFAULT_CAPABILITIES, ['NET_RAW'], ['ALL']), ['CAP_NET_RAW']);
  assert.deepEqual(tweakCapabilities(DEFAULT_CAPABILITIES, ['all'], ['SYS_ADMIN']), CAPABILITIES.filter((c) => c !== 'CAP_SYS_ADMIN'));
  assert.ok(tweakCapabilities(DEFAULT_CAPABILITIES, ['CHOWN'], ['CHOWN']).includes('CAP_CHOWN'));
  assert.throws(() => tweakCapabilities(DEFAULT_CAPABILITIES, ['CAP_FLY']), /unknown capability: "CAP_FLY"/);
  // only what this host can give: ALL is what is available, an explicit add of anything else is refused
  const here = ['CAP_CHOWN', 'CAP_KILL', 'CAP_NET_ADMIN'];
  assert.deepEqual(tweakCapabilities(DEFAULT_CAPABILITIES, ['ALL'], ['KILL'], here), ['CAP_CHOWN', 'CAP_NET_ADMIN']);
  assert.throws(() => tweakCapabilities(DEFAULT_CAPABILITIES, ['SYS_RESOURCE'], [], here), /capability CAP_SYS_RESOURCE cannot be given here/);
  assert.ok(availableCapabilities().includes('CAP_CHOWN'));
  assert.equal(CAPABILITIES.indexOf('CAP_NET_ADMIN'), 12);
  assert.equal(CAPABILITIES.indexOf('CAP_CHECKPOINT_RESTORE'), 40);
});

test('--ulimit parses as docker\'s, and config.json carries unlimited as 2^64-1', () => {
  assert.deepEqual(parseUlimit('nofile=1024:2048'), { type: 'RLIMIT_NOFILE', soft: 1024, hard: 2048 });
  assert.deepEqual(parseUlimit('core=0'), { type: 'RLIMIT_CORE', soft: 0, hard: 0 });
  assert.deepEqual(parseUlimit('memlock=-1:-1'), { type: 'RLIMIT_MEMLOCK', soft: UNLIMITED, hard: UNLIMITED });
  assert.deepEqual(parseUlimit('stack=8192:-1'), { type: 'RLIMIT_STACK', soft: 8192, hard: UNLIMITED });
  assert.throws(() => parseUlimit('stack=-1:8192'), /soft limit must not be above the hard one/);
  assert.throws(() => parseUlimit('nofile'), /expected TYPE=SOFT\[:HARD\]/);
  assert.throws(() => parseUlimit('nofile=-2'), /-2 is not a limit/);
  assert.equal(rlimitNumber('RLIMIT_NOFILE'), 7);
  assert.equal(rlimitNumber('RLIMIT_RTTIME'), 15);
  const text = specJson({ process: { rlimits: [parseUlimit('memlock=-1'), parseUlimit('nofile=5:6')] } } as unknown as Parameters<typeof specJson>[0]);
  assert.match(text, /"soft": 18446744073709551615,\n\s*"hard": 18446744073709551615\n/);
  assert.match(text, /"soft": 5,\n\s*"hard": 6\n/);
});

test('--device reads the host device\'s type and numbers; the rule allows what the permissions say', () => {
  const d = parseDevice('/dev/null:/dev/other:rw');
  assert.deepEqual({ ...d.device, fileMode: 0, uid: 0, gid: 0 }, { path: '/dev/other', type: 'c', major: 1, minor: 3, fileMode: 0, uid: 0, gid: 0 });
  assert.deepEqual(d.rule, { allow: true, type: 'c', major: 1, minor: 3, access: 'rw' });
  assert.equal(parseDevice('/dev/zero').device.path, '/dev/zero');
  assert.equal(parseDevice('/dev/zero:r').rule.access, 'r');
  assert.throws(() => parseDevice('/etc/hostname'), /is not a device/);
  assert.throws(() => parseDevice('/dev/nothing-here'), /ENOENT/);
  assert.throws(() => parseDevice('dev/null'), /must be absolute/);
});
