import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { FilesystemAdapter } from '../../storage-adapters/filesystem.js';
import { adapterSuite } from './suite.js';

adapterSuite('filesystem', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-fs-'));
  return { adapter: new FilesystemAdapter({ rootdirectory: dir }), cleanup: () => rm(dir, { recursive: true, force: true }) };
});

it('filesystem: a cancelled write leaves no temp file in the directory', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-fs-'));
  try {
    const a = new FilesystemAdapter({ rootdirectory: dir });
    await a.putSmall('/d/keep', Buffer.from('k'));
    const w = await a.write('/d/obj');
    w.write(Buffer.from('partial'));
    await w.cancel();
    assert.deepEqual(await readdir(join(dir, 'd')), ['keep']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

it('filesystem: what an interrupted write leaves is never listed, and purgeTemporary removes it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-fs-'));
  try {
    const a = new FilesystemAdapter({ rootdirectory: dir });
    const w = await a.write('/x/obj');
    await new Promise<void>((r) => w.write(Buffer.from('crash before commit'), () => r()));
    const seen: string[] = [];
    for await (const k of a.list('/')) seen.push(k);
    assert.deepEqual(seen, [], 'the temp area is not content');
    assert.equal(await a.purgeTemporary(new Date(Date.now() - 60_000)), 0, 'fresh temp files are kept');
    assert.equal(await a.purgeTemporary(new Date(Date.now() + 1000)), 1);
    assert.equal(await a.purgeTemporary(new Date(Date.now() + 1000)), 0);
    w.destroy();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
