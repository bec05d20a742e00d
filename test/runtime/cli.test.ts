// `berth images` (runtime/cli.ts), run in-process through commander against a local store.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Command } from '../../cli/commander.js';
import { ImageLayout } from '../../client/image-layout.js';
import { formatImages, humanAge, registerRuntime } from '../../runtime/cli.js';
import { addImage, layer, removeDir, tempDir } from './helpers.js';

async function berth(args: string[]): Promise<string> {
  const program = new Command();
  program.exitOverride();
  let out = '';
  registerRuntime(program, { write: (s: string) => { out += s; } });
  await program.parseAsync(['node', 'berth', ...args]);
  return out;
}

describe('berth images', () => {
  let tmp: string;
  let configDigest: string;
  before(async () => {
    tmp = await tempDir();
    process.env.BERTH_STORE = join(tmp, 'store');
    const layout = await ImageLayout.open(process.env.BERTH_STORE, { create: true });
    const img = await addImage(layout, 'docker.io/library/busybox:1.36', [layer([{ name: 'f', type: 'file', data: randomBytes(3000) }])], { created: '2020-01-01T00:00:00Z' });
    await addImage(layout, 'localhost:5000/team/app:v1', [layer([{ name: 'g', type: 'file' }])], {}, { os: 'linux', architecture: 's390x' });
    configDigest = JSON.parse((await layout.readSmall(img.manifest)).toString()).config.digest;
  });
  after(async () => { await removeDir(tmp); delete process.env.BERTH_STORE; });

  test('lists the local store with Docker short names, image IDs (config digests) and sizes', async () => {
    const out = await berth(['images']);
    const lines = out.trimEnd().split('\n');
    assert.match(lines[0]!, /^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE$/);
    const bb = lines.find((l) => l.startsWith('busybox '))!;
    assert.match(bb, new RegExp(`^busybox\\s+1\\.36\\s+${configDigest.slice(7, 19)}\\s+\\d+ years ago\\s+\\d+(\\.\\d+)?kB$`));
    assert.ok(lines.some((l) => /^localhost:5000\/team\/app\s+v1\s/.test(l)));
  });

  test('-q, a repository filter and --json', async () => {
    const q = await berth(['images', '-q', 'busybox']);
    assert.equal(q, `${configDigest.slice(7, 19)}\n`);
    const json = JSON.parse(await berth(['images', '--json'])) as { images: Array<{ repository: string; id: string; error?: string }> };
    assert.equal(json.images.length, 2);
    assert.equal(json.images.find((i) => i.repository === 'busybox')!.id, configDigest);
  });

  test('no store yet: just the header', async () => {
    process.env.BERTH_STORE = join(tmp, 'absent');
    try {
      assert.equal((await berth(['images'])).trim(), 'REPOSITORY   TAG   IMAGE ID   CREATED   SIZE');
    } finally { process.env.BERTH_STORE = join(tmp, 'store'); }
  });

  test('ages and sizes read like Docker', () => {
    const now = Date.parse('2024-01-10T00:00:00Z');
    assert.equal(humanAge('2024-01-09T23:59:30Z', now), '30 seconds ago');
    assert.equal(humanAge('2024-01-09T22:00:00Z', now), '2 hours ago');
    assert.equal(humanAge('2024-01-01T00:00:00Z', now), '1 week ago');
    assert.equal(humanAge(undefined, now), 'N/A');
    const t = formatImages([{ repository: 'a', tag: 't', name: 'x', digest: 'sha256:00' as never, id: `sha256:${'ab'.repeat(32)}` as never, size: 1_234_567 }], { now });
    assert.match(t.split('\n')[1]!, /^a\s+t\s+abababababab\s+N\/A\s+1\.23MB$/);
  });
});
