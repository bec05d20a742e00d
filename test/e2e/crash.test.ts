// Crash safety: SIGKILL a registry in the middle of many concurrent uploads, restart it on the
// same storage, and check that what completed is intact, nothing partial is ever served, and
// interrupted uploads either resume or get purged.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { digestOf } from '../../oci/digest.js';
import { runCli, startServe, type ServeProcess } from '../helpers/cli.js';
import { tempDir } from '../helpers/registry.js';
import { BACKENDS } from '../helpers/backends.js';
import { loadConfig } from '../../server/config.js';
import { createAdapter } from '../../storage-adapters/index.js';
import type { StorageAdapter } from '../../storage-adapters/types.js';

async function children(storage: StorageAdapter, key: string): Promise<string[]> {
  const out: string[] = [];
  for await (const k of storage.list(key)) out.push(k);
  return out;
}

/** Every blob the storage holds, read through the adapter: its bytes must hash to its name. */
async function checkAllBlobs(storage: StorageAdapter): Promise<number> {
  let n = 0;
  for (const prefix of await children(storage, '/blobs/sha256')) {
    for (const dir of await children(storage, prefix)) {
      const files = (await children(storage, dir)).map((k) => k.slice(dir.length + 1));
      for (const f of files) assert.ok(f === 'data', `no temp object left next to a blob: ${dir}/${f}`);
      if (!files.includes('data')) continue;
      const hash = createHash('sha256');
      for await (const chunk of await storage.read(`${dir}/data`)) hash.update(chunk as Buffer);
      assert.equal(`sha256:${hash.digest('hex')}`, `sha256:${dir.slice(dir.lastIndexOf('/') + 1)}`, `intact ${dir}`);
      n++;
    }
  }
  return n;
}

for (const backend of BACKENDS) describe(`crash safety (${backend.name})`, () => {
  it('after SIGKILL mid-upload: completed pushes pull intact, no partial blob is visible, interrupted uploads resume or are purged', async () => {
    const root = await tempDir();
    const prepared = await backend.prepare();
    const env = { REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: root, REGISTRY_STORAGE_DELETE_ENABLED: 'true', REGISTRY_LOG_LEVEL: 'info', ...prepared.env };
    const config = loadConfig({ env });
    const storage = await createAdapter(config.storage.driver, config.storage.options);
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
    assert.ok((await checkAllBlobs(storage)) >= completed.size);

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
    const gc = await runCli(['gc', '--uploads', '0s', '--json'], { env });
    assert.equal(gc.code, 0, gc.stderr);
    for (let i = 0; i < 4; i++) assert.deepEqual(await children(storage, `/repositories/crash/m${i}/_uploads`), []);
    await checkAllBlobs(storage);
    await storage.close?.();
    await prepared.cleanup();
  });
});
