// Paths inside a container root (runtime/in-root.ts): symlinks and ".." stay inside, and a held walk
// is not redirected by a directory swapped for a symlink after it was walked.
import assert from 'node:assert/strict';
import { constants, existsSync, openSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, rename, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { HeldDir, resolveInView, walkHeld, type HeldView } from '../../runtime/in-root.js';
import { removeDir, tempDir } from './helpers.js';

async function fixture(): Promise<{ tmp: string; root: string; outside: string; view: HeldView }> {
  const tmp = await tempDir();
  const root = join(tmp, 'root');
  const outside = join(tmp, 'outside');
  await mkdir(join(root, 'a', 'b'), { recursive: true });
  await mkdir(join(root, 'etc'));
  await mkdir(outside);
  await symlink('/etc', join(root, 'abs'));
  await symlink('../../../../..', join(root, 'a', 'up'));
  return { tmp, root, outside, view: { root: new HeldDir(openSync(root, constants.O_RDONLY | constants.O_DIRECTORY), '/', false), mounts: [] } };
}

test('symlinks resolve inside the root, absolute ones from its /, and .. stops at it', async () => {
  const f = await fixture();
  try {
    assert.equal((await resolveInView({ root: f.root, mounts: [] }, '/abs/passwd')).host, join(f.root, 'etc', 'passwd'));
    assert.equal((await resolveInView({ root: f.root, mounts: [] }, '/a/up/etc')).path, '/etc');
    assert.equal((await resolveInView({ root: f.root, mounts: [{ destination: '/a/b', source: f.outside }] }, '/a/b/x')).host, join(f.outside, 'x'), 'a mount maps its path');
    const held = walkHeld(f.view, '/a/up/../abs/shadow');
    assert.deepEqual([held.dir.path, held.name], ['/etc', 'shadow']);
    writeFileSync(held.dir.at(held.name!), 'inside');
    held.dir.close();
    assert.equal(await readFile(join(f.root, 'etc', 'shadow'), 'utf8'), 'inside');
    const link = walkHeld(f.view, '/abs', false);
    assert.deepEqual([link.dir.path, link.name], ['/', 'abs'], 'the last link itself, unfollowed');
    link.dir.close();
  } finally { f.view.root.close(); await removeDir(f.tmp); }
});

test('a held directory swapped for a symlink afterwards is not followed: writes land where the walk was', async () => {
  const f = await fixture();
  try {
    const held = walkHeld(f.view, '/a/b/file');
    assert.deepEqual([held.dir.path, held.name], ['/a/b', 'file']);
    // the container swaps /a for a symlink to the host's directory, between the check and the write
    await rename(join(f.root, 'a'), join(f.root, 'a-moved'));
    await symlink(f.outside, join(f.root, 'a'));
    writeFileSync(held.dir.at(held.name!), 'kept inside');
    held.dir.close();
    assert.equal(await readFile(join(f.root, 'a-moved', 'b', 'file'), 'utf8'), 'kept inside');
    assert.ok(!existsSync(join(f.outside, 'b')) && !existsSync(join(f.outside, 'file')), 'nothing reached the outside');
    // and a fresh walk of /a now follows that link inside the root (where it leads nowhere)
    assert.throws(() => walkHeld(f.view, '/a/b/file'), /no such directory/);
  } finally { f.view.root.close(); await removeDir(f.tmp); }
});
