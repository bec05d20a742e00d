// Health check settings (the image's HEALTHCHECK and the --health-* flags) and the state machine.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { healthArgs, healthConfig, nextHealth, parseDuration, type HealthConfig, type HealthState } from '../../runtime/health.js';

test('durations as docker writes them', () => {
  assert.equal(parseDuration('30s', '--x'), 30_000);
  assert.equal(parseDuration('1m30s', '--x'), 90_000);
  assert.equal(parseDuration('500ms', '--x'), 500);
  assert.equal(parseDuration('1.5h', '--x'), 5_400_000);
  assert.throws(() => parseDuration('30', '--health-interval'), /--health-interval 30: expected a duration/);
  assert.throws(() => parseDuration('5s junk', '--x'), /expected a duration/);
});

test('the image\'s HEALTHCHECK, with the flags on top; NONE and --no-healthcheck mean none', () => {
  const image = { Test: ['CMD', '/bin/check', '--fast'], Interval: 5e9, Timeout: 2e9, Retries: 5, StartPeriod: 1e9 };
  assert.deepEqual(healthConfig(image, {}), { test: ['CMD', '/bin/check', '--fast'], intervalMs: 5000, timeoutMs: 2000, retries: 5, startPeriodMs: 1000 });
  assert.deepEqual(healthConfig(image, { healthCmd: 'curl -f localhost', healthRetries: '2' }), { test: ['CMD-SHELL', 'curl -f localhost'], intervalMs: 5000, timeoutMs: 2000, retries: 2, startPeriodMs: 1000 });
  assert.deepEqual(healthConfig(undefined, { healthCmd: 'true' }), { test: ['CMD-SHELL', 'true'], intervalMs: 30_000, timeoutMs: 30_000, retries: 3, startPeriodMs: 0 });
  assert.equal(healthConfig(image, { healthcheck: false }), undefined);
  assert.equal(healthConfig({ Test: ['NONE'] }, {}), undefined);
  assert.equal(healthConfig(undefined, {}), undefined);
  assert.equal(healthConfig(undefined, { healthInterval: '1s' }), undefined); // nothing to time: ignored, as docker does
  assert.throws(() => healthConfig(image, { healthcheck: false, healthCmd: 'x' }), /conflicts/);
  assert.throws(() => healthConfig(undefined, { healthCmd: 'x', healthRetries: 'x' }), /--health-retries x/);
  // 0 means the image's value, else the default; timers are kept within what setTimeout can wait
  assert.deepEqual(healthConfig(image, { healthRetries: '0', healthInterval: '0s' }), healthConfig(image, {}));
  assert.equal(healthConfig(undefined, { healthCmd: 'x', healthInterval: '1000h' })!.intervalMs, 2 ** 31 - 1);
  assert.equal(healthConfig({ Test: ['CMD', 'x'], Interval: 10 }, {})!.intervalMs, 1);
  assert.throws(() => healthConfig({ Test: ['RUN', 'x'] }, {}), /neither CMD nor CMD-SHELL/);
  assert.deepEqual(healthArgs(healthConfig(undefined, { healthCmd: 'test -e /ok' })!), ['/bin/sh', '-c', 'test -e /ok']);
  assert.deepEqual(healthArgs(healthConfig(image, {})!), ['/bin/check', '--fast']);
});

test('starting → healthy on a success; unhealthy after `retries` failures in a row; the start period forgives', () => {
  const h: HealthConfig = { test: ['CMD', 'x'], intervalMs: 1000, timeoutMs: 1000, retries: 2, startPeriodMs: 10_000 };
  const t0 = Date.parse('2026-01-01T00:00:00Z');
  const at = (s: number, exitCode: number) => ({ start: new Date(t0 + s * 1000).toISOString(), end: new Date(t0 + s * 1000 + 5).toISOString(), exitCode, output: `${exitCode}` });
  let s: HealthState = { status: 'starting', failingStreak: 0, log: [] };
  for (const sec of [1, 2, 3]) s = nextHealth(s, at(sec, 1), h, t0); // within the start period
  assert.deepEqual([s.status, s.failingStreak, s.log.length], ['starting', 0, 3]);
  s = nextHealth(s, at(11, 1), h, t0);
  assert.deepEqual([s.status, s.failingStreak], ['starting', 1]);
  s = nextHealth(s, at(12, 1), h, t0);
  assert.deepEqual([s.status, s.failingStreak], ['unhealthy', 2]);
  s = nextHealth(s, at(13, 0), h, t0);
  assert.deepEqual([s.status, s.failingStreak], ['healthy', 0]);
  s = nextHealth(s, at(14, 1), h, t0);
  assert.deepEqual([s.status, s.failingStreak], ['healthy', 1]);
  for (const sec of [15, 16, 17]) s = nextHealth(s, at(sec, 1), h, t0);
  assert.equal(s.status, 'unhealthy');
  assert.equal(s.log.length, 5); // the last five
  assert.equal(s.log[0]!.start, at(13, 0).start);
});
