// ps --filter (docker's keys and their matching) and docker's ways of naming a signal.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Container } from '../../runtime/containers.js';
import { signalName } from '../../runtime/process.js';
import { filterContainers, filtersIncludeStopped, parsePsFilters } from '../../runtime/ps-filter.js';

const c = (id: string, name: string, status: string, extra: Record<string, unknown> = {}, exitCode?: number) => ({
  config: { id: id.repeat(64).slice(0, 64), name, image: 'docker.io/library/busybox:latest', imageDigest: `sha256:${'ab'.repeat(32)}`, imageId: `sha256:${'cd'.repeat(32)}`, network: 'bridge', ...extra },
  state: { status, restartCount: 0, ...(exitCode !== undefined ? { exitCode } : {}) },
  dir: '',
}) as unknown as Container;

const cs = [
  { ...c('a', 'web', 'running', { labels: { tier: 'front', solo: '' } }), state: { status: 'running', restartCount: 0, health: { status: 'healthy', failingStreak: 0, log: [] } } } as unknown as Container,
  c('b', 'worker', 'exited', { labels: { tier: 'back' }, image: 'localhost:5000/app:v1', networkName: 'mynet' }, 1),
  c('c', 'web-2', 'created'),
];
const names = (filters: string[], paused: string[] = []) => filterContainers(cs, parsePsFilters(filters), (x) => paused.includes(x.config.name)).map((x) => x.config.name);

test('ps --filter: one key\'s values are alternatives, different keys all apply', () => {
  assert.deepEqual(names(['name=web']), ['web', 'web-2']);
  assert.deepEqual(names(['name=^web$']), ['web']);
  assert.deepEqual(names(['name=^web$', 'name=worker']), ['web', 'worker']);
  assert.deepEqual(names(['name=^/web$']), ['web']);
  assert.deepEqual(names(['label=tier']), ['web', 'worker']);
  assert.deepEqual(names(['label=tier=back']), ['worker']);
  assert.deepEqual(names(['label=solo=']), ['web']);
  assert.deepEqual(names(['label=tier', 'status=exited']), ['worker']);
  assert.deepEqual(names(['status=created']), ['web-2']);
  assert.deepEqual(names(['status=paused'], ['web']), ['web']);
  assert.deepEqual(names(['status=running'], ['web']), []);
  assert.deepEqual(names(['exited=1']), ['worker']);
  assert.deepEqual(names(['exited=0']), []);
  assert.deepEqual(names(['id=bbbb']), ['worker']);
  assert.deepEqual(names(['ancestor=busybox']), ['web', 'web-2']);
  assert.deepEqual(names(['ancestor=busybox:latest', 'ancestor=localhost:5000/app:v1']), ['web', 'worker', 'web-2']);
  assert.deepEqual(names(['ancestor=sha256:abab']), ['web', 'worker', 'web-2']);
  assert.deepEqual(names(['ancestor=cdcdcd']), ['web', 'worker', 'web-2']);
  assert.deepEqual(names(['ancestor=cdce']), []);
  assert.deepEqual(names(['status=dead']), []);
  assert.deepEqual(names(['network=mynet']), ['worker']);
  assert.deepEqual(names(['network=bridge']), ['web', 'web-2']);
  assert.deepEqual(names(['health=healthy']), ['web']);
  assert.deepEqual(names(['health=none']), ['worker', 'web-2']);
  assert.equal(filtersIncludeStopped(parsePsFilters(['status=running'])), true);
  assert.equal(filtersIncludeStopped(parsePsFilters(['name=x'])), false);
  assert.equal(filtersIncludeStopped(parsePsFilters(['exited=0'])), false);
});

test('ps --filter refuses what it does not know, clearly', () => {
  assert.throws(() => parsePsFilters(['colour=red']), /the filters are id, name, label, status/);
  assert.throws(() => parsePsFilters(['name']), /expected name=VALUE/);
  assert.throws(() => parsePsFilters(['status=sleeping']), /a status is one of/);
  assert.throws(() => parsePsFilters(['exited=x']), /expected an exit code/);
  assert.throws(() => parsePsFilters(['health=ok']), /health is one of/);
  assert.throws(() => parsePsFilters(['name=(']), /not a valid regular expression/);
});

test('signals are named as docker takes them: SIGQUIT, quit or a number', () => {
  assert.equal(signalName('SIGQUIT'), 'QUIT');
  assert.equal(signalName('usr1'), 'USR1');
  assert.equal(signalName('9'), 'KILL');
  assert.equal(signalName('40'), '40'); // a real-time signal has no name here
  assert.equal(signalName('SIGRTMIN+3'), '37');
  assert.equal(signalName('RTMIN'), '34');
  assert.equal(signalName('SIGRTMAX-2'), '62');
  assert.throws(() => signalName('SIGRTMIN-1'), /invalid signal/);
  assert.throws(() => signalName('SIGRTMIN+31'), /invalid signal/);
  assert.throws(() => signalName('SIGFLY'), /invalid signal: SIGFLY/);
  assert.throws(() => signalName('0'), /invalid signal/);
  assert.throws(() => signalName('65'), /invalid signal/);
});
