// Crash safety: SIGKILL a registry in the middle of many concurrent uploads, restart it on the
// same storage, and check that what completed is intact, nothing partial is ever served, and
// interrupted uploads either resume or get purged.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { once } from 'node:events';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { digestOf } from '../../oci/digest.js';
import { runCli, startServe, type ServeProcess } from '../helpers/cli.js';
import { tempDir } from '../helpers/registry.js';

async function allBlobFiles(root: string): Promise<{ digest: string; path: string }[]> {
  const out: { digest: string; path: string }[] = [];
  const base = join(root, 'blobs', 'sha256');
  for (const prefix of await readdir(base).catch((): string[] => [])) {
    for (const hex of await readdir(join(base, prefix))) {
      const files = await readdir(join(base, prefix, hex));
      for (const f of files) assert.ok(f === 'data', `no temp file left next to a blob: ${prefix}/${hex}/${f}`);
      if (files.includes('data')) out.push({ digest: `sha256:${hex}`, path: join(base, prefix, hex, 'data') });
    }
  }
  return out;
}

describe('crash safety (filesystem)', () => {
  it('after SIGKILL mid-upload: completed pushes pull intact, no partial blob is visible, interrupted uploads resume or are purged', async () => {
    const root = await tempDir();
    const env = { REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: root, REGISTRY_STORAGE_DELETE_ENABLED: 'true', REGISTRY_LOG_LEVEL: 'info' };
    let serve: ServeProcess = await startServe(['--addr', '127.0.0.1:0'], env);
    const port = new URL(serve.url).port;
    const completed = new Map<string, Buffer>();
    const sessions: { location: string; sent: Buffer; whole: Buffer }[] = [];

    // Monolithic uploads of 2–6 MiB and chunked sessions, all at once; the kill lands in their midst.
    // Small ones finish early, big ones are still streaming when the kill lands.
    const blobs = Array.from({ length: 16 }, (_, i) => randomBytes(i % 2 ? 64 << 10 : (4 + (i % 5)) << 20));
    const launchMonolithic = () => blobs.map(async (b, i) => {
      const d = digestOf(b);
      try {
        const r = await fetch(`${serve.url}/v2/crash/m${i % 4}/blobs/uploads/?digest=${d}`, { method: 'POST', body: b });
        if (r.status === 201) completed.set(d, b);
      } catch { /* killed mid-request */ }
    });
    // Chunked sessions got their first chunk before the load; their second chunk is in flight at the kill.
    for (let i = 0; i < 6; i++) {
      const whole = randomBytes(3 << 20);
      const start = await fetch(`${serve.url}/v2/crash/c${i}/blobs/uploads/`, { method: 'POST' });
      const location = start.headers.get('location')!;
      const first = whole.subarray(0, 1 << 20);
      const r = await fetch(`${serve.url}${location}`, { method: 'PATCH', body: new Uint8Array(first), headers: { 'Content-Range': `0-${first.length - 1}` } });
      assert.equal(r.status, 202);
      sessions.push({ location, sent: first, whole });
    }
    const chunked = sessions.map(async ({ location, whole }) => {
      try {
        await fetch(`${serve.url}${location}`, { method: 'PATCH', body: new Uint8Array(whole.subarray(1 << 20)), headers: { 'Content-Range': `${1 << 20}-${whole.length - 1}` } });
      } catch { /* killed mid-request */ }
    });
    const monolithic = launchMonolithic();
    for (let waited = 0; completed.size < 4 && waited < 3000; waited += 5) await new Promise((r) => setTimeout(r, 5));
    serve.child.kill('SIGKILL');
    await once(serve.child, 'exit');
    await Promise.allSettled([...monolithic, ...chunked]);

    console.log(`# crash: ${completed.size} of ${blobs.length} monolithic uploads completed before the kill`);
    // Every blob file on disk is whole: its bytes hash to its name.
    for (const { digest, path } of await allBlobFiles(root)) {
      assert.equal(`sha256:${createHash('sha256').update(await readFile(path)).digest('hex')}`, digest, `intact ${digest}`);
    }

    serve = await startServe(['--addr', `127.0.0.1:${port}`], env);
    try {
      for (const [d, b] of completed) {
        const repo = [0, 1, 2, 3].map((n) => `crash/m${n}`);
        let found = false;
        for (const r of repo) {
          const res = await fetch(`${serve.url}/v2/${r}/blobs/${d}`);
          if (res.status !== 200) continue;
          assert.ok(Buffer.from(await res.arrayBuffer()).equals(b), `completed blob ${d} pulls back intact`);
          found = true;
        }
        assert.ok(found, `completed blob ${d} is served after the restart`);
      }
      for (const b of blobs) {
        if (completed.has(digestOf(b))) continue;
        for (const n of [0, 1, 2, 3]) {
          const res = await fetch(`${serve.url}/v2/crash/m${n}/blobs/${digestOf(b)}`, { method: 'HEAD' });
          if (res.status === 200) assert.equal(res.headers.get('content-length'), String(b.length), 'a visible blob is always whole');
        }
      }
      // Interrupted chunked uploads resume from what the server kept.
      assert.ok(sessions.length > 0, 'some chunked sessions had started');
      for (const s of sessions) {
        const status = await fetch(`${serve.url}${s.location}`);
        assert.equal(status.status, 204);
        const have = Number(status.headers.get('range')!.split('-')[1]) + 1;
        assert.ok(have >= s.sent.length && have <= s.whole.length, `kept ${have} bytes`);
        assert.ok(s.whole.subarray(0, have).length === have);
        if (have < s.whole.length) {
          const rest = s.whole.subarray(have);
          const r = await fetch(`${serve.url}${s.location}`, { method: 'PATCH', body: new Uint8Array(rest), headers: { 'Content-Range': `${have}-${s.whole.length - 1}` } });
          assert.equal(r.status, 202);
        }
        const done = await fetch(`${serve.url}${s.location}?digest=${digestOf(s.whole)}`, { method: 'PUT' });
        assert.equal(done.status, 201, 'the resumed upload completes with the right digest');
      }
    } finally {
      serve.child.kill('SIGTERM');
      await once(serve.child, 'exit');
    }
    // What is left of other interrupted uploads is purged by gc.
    const gc = await runCli(['gc', '--root', root, '--uploads', '0s', '--json']);
    assert.equal(gc.code, 0, gc.stderr);
    for (let i = 0; i < 4; i++) assert.deepEqual(await readdir(join(root, 'repositories', 'crash', `m${i}`, '_uploads')).catch((): string[] => []), []);
  });
});
