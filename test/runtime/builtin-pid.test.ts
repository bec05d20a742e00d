// The built-in executor's record of a container's init: a pid, and its start time, so that a pid the
// kernel gave to another process after the container ended is never signalled as the container.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { BuiltinExecutor } from '../../runtime/executors/builtin.js';
import { procStartTime } from '../../runtime/process.js';

test('kill signals the recorded init only while the process with that pid is the one recorded (same start time)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-pid-'));
  const bystander = spawn('sleep', ['30'], { stdio: 'ignore' });
  try {
    await once(bystander, 'spawn');
    const ex = new BuiltinExecutor(dir);
    await mkdir(join(dir, 'c1'));
    // the pid is alive, but it is not the process that was recorded (another start time): a reused pid
    await writeFile(join(dir, 'c1', 'pid'), `${bystander.pid} 1`);
    await assert.rejects(ex.kill('c1', 'TERM'), /is not running/);
    assert.equal(bystander.exitCode, null);
    assert.equal(bystander.signalCode, null);
    // the right start time: it is the container's init
    await writeFile(join(dir, 'c1', 'pid'), `${bystander.pid} ${procStartTime(bystander.pid!)}`);
    await ex.kill('c1', 'TERM');
    const [, signal] = await once(bystander, 'exit');
    assert.equal(signal, 'SIGTERM');
  } finally {
    bystander.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
});
