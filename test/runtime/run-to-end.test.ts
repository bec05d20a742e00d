// runToEnd: the executor process's end is seen even when it comes while `started` is still busy.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { runToEnd, type Executor } from '../../runtime/executors/executor.js';

function fake(argv: string[]): Executor {
  const none = async () => undefined;
  return {
    name: 'fake', ref: { name: 'fake', stateRoot: '/nonexistent' },
    spawnRun: async (_id, _bundle, stdio) => spawn(argv[0]!, argv.slice(1), { stdio }),
    spawnExec: async () => { throw new Error('no exec'); },
    kill: none, delete: none, pause: none, resume: none, update: none,
  };
}

test('a container that ends while `started` is still at work: its exit status is not lost', async () => {
  const r = await runToEnd(fake(['sh', '-c', 'exit 7']), 'x', '/tmp', { capture: true, started: () => new Promise((resolve) => setTimeout(resolve, 200)) });
  assert.equal(r.code, 7);
});

test('an executor that cannot be started is an error, not an unhandled event', async () => {
  await assert.rejects(runToEnd(fake(['/nonexistent/runtime']), 'x', '/tmp', { capture: true, started: () => new Promise((resolve) => setTimeout(resolve, 100)) }),
    /cannot run the fake executor: spawn \/nonexistent\/runtime ENOENT/);
});
