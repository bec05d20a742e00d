// Lock files naming their holder: one holder at a time, and a dead holder's lock taken over once.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { acquireLock, breakStale, lockHolder, takeLock } from '../../client/pid-lock.js';
import { removeDir, tempDir } from './helpers.js';

test('one holder at a time; a dead holder\'s lock is taken over, by one of several at once', async () => {
  const dir = await tempDir();
  try {
    const path = join(dir, 'x.lock');
    const release = await takeLock(path);
    assert.ok(release);
    assert.equal(lockHolder(path), process.pid);
    assert.equal(await takeLock(path), undefined);
    await release!();
    assert.equal(lockHolder(path), undefined);
    // a holder that died (a pid that no longer runs)
    const dead = Number(execFileSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' }).trim());
    for (let round = 0; round < 20; round++) {
      await writeFile(path, JSON.stringify({ pid: dead, start: '1' }));
      const got = await Promise.all([takeLock(path), takeLock(path), takeLock(path)]);
      assert.equal(got.filter(Boolean).length, 1, `round ${round}`);
      assert.equal(lockHolder(path), process.pid);
      await got.find(Boolean)!();
    }
    // one that saw the old lock dead, but breaks it only after another took it over, leaves the new one
    // untouched: not even moved aside for a moment (its ctime would change), when a third could take it
    const deadLock = JSON.stringify({ pid: dead, start: '1' });
    const fresh = await takeLock(path);
    const before = await stat(path);
    await breakStale(path, deadLock);
    assert.equal(lockHolder(path), process.pid);
    assert.equal((await stat(path)).ctimeMs, before.ctimeMs, 'the live lock was not moved');
    await fresh!();
    // a breaker that died in the middle leaves its marker: it does not keep the dead lock forever
    await writeFile(path, deadLock);
    await writeFile(`${path}.breaking-${createHash('sha256').update(deadLock).digest('hex').slice(0, 16)}`, deadLock);
    const late = await acquireLock(path, 5);
    assert.equal(lockHolder(path), process.pid);
    await late();
    assert.deepEqual((await readdir(dir)).filter((n) => n !== 'x.lock'), [], 'no files left aside');
  } finally { await removeDir(dir); }
});
