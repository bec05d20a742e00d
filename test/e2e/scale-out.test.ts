// Stateless scale-out: two `berth serve` processes on different ports sharing one S3 bucket
// behave as one registry.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { digestOf } from '../../oci/digest.js';
import { MediaType } from '../../oci/media-types.js';
import { BACKENDS } from '../helpers/backends.js';
import { startServe, type ServeProcess } from '../helpers/cli.js';

describe('two registries on one S3 bucket behave as one', () => {
  let a: ServeProcess;
  let b: ServeProcess;
  let cleanup: () => Promise<void>;

  before(async () => {
    const prepared = await BACKENDS.find((x) => x.name === 's3')!.prepare();
    cleanup = prepared.cleanup;
    const env = { ...prepared.env, REGISTRY_STORAGE_DELETE_ENABLED: 'true', REGISTRY_LOG_LEVEL: 'info' };
    [a, b] = await Promise.all([startServe(['--addr', '127.0.0.1:0'], env), startServe(['--addr', '127.0.0.1:0'], env)]);
  });
  after(async () => {
    for (const s of [a, b]) if (s) { s.child.kill('SIGTERM'); await once(s.child, 'exit'); }
    await cleanup?.();
  });

  it('an upload started on A, continued on B and finished on A is one blob both serve', async () => {
    const whole = randomBytes(7 << 20);
    const start = await fetch(`${a.url}/v2/scale/app/blobs/uploads/`, { method: 'POST' });
    const loc = start.headers.get('location')!;
    const cut = 6 << 20; // over S3's 5 MiB part minimum, then a small tail
    const p1 = await fetch(`${a.url}${loc}`, { method: 'PATCH', body: new Uint8Array(whole.subarray(0, 1 << 20)), headers: { 'Content-Range': `0-${(1 << 20) - 1}` } });
    assert.equal(p1.status, 202);
    const p2 = await fetch(`${b.url}${loc}`, { method: 'PATCH', body: new Uint8Array(whole.subarray(1 << 20, cut)), headers: { 'Content-Range': `${1 << 20}-${cut - 1}` } });
    assert.equal(p2.status, 202, await p2.text());
    assert.equal((await fetch(`${a.url}${loc}`)).headers.get('range'), `0-${cut - 1}`);
    const done = await fetch(`${a.url}${loc}?digest=${digestOf(whole)}`, { method: 'PUT', body: new Uint8Array(whole.subarray(cut)), headers: { 'Content-Range': `${cut}-${whole.length - 1}` } });
    assert.equal(done.status, 201, await done.text());
    for (const s of [a, b]) {
      const got = Buffer.from(await (await fetch(`${s.url}/v2/scale/app/blobs/${digestOf(whole)}`)).arrayBuffer());
      assert.equal(digestOf(got), digestOf(whole));
    }
  });

  it('a manifest pushed on A is pulled from B; a tag deleted on B is gone on A', async () => {
    const cfg = '{"arch":"amd64"}';
    assert.equal((await fetch(`${a.url}/v2/scale/app/blobs/uploads/?digest=${digestOf(cfg)}`, { method: 'POST', body: cfg })).status, 201);
    const manifest = JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: digestOf(cfg), size: cfg.length }, layers: [] });
    assert.equal((await fetch(`${a.url}/v2/scale/app/manifests/v1`, { method: 'PUT', body: manifest, headers: { 'Content-Type': MediaType.OciManifest } })).status, 201);
    const fromB = await fetch(`${b.url}/v2/scale/app/manifests/v1`);
    assert.equal(fromB.status, 200);
    assert.equal(await fromB.text(), manifest);
    assert.deepEqual((await (await fetch(`${b.url}/v2/scale/app/tags/list`)).json()).tags, ['v1']);
    assert.equal((await fetch(`${b.url}/v2/scale/app/manifests/v1`, { method: 'DELETE' })).status, 202);
    assert.equal((await fetch(`${a.url}/v2/scale/app/manifests/v1`)).status, 404);
  });

  it('concurrent pushes of the same blob through both instances are safe', async () => {
    const blob = randomBytes(6 << 20);
    const d = digestOf(blob);
    const results = await Promise.all([a, b, a, b].map((s, i) =>
      fetch(`${s.url}/v2/scale/r${i}/blobs/uploads/?digest=${d}`, { method: 'POST', body: new Uint8Array(blob) })));
    assert.deepEqual(results.map((r) => r.status), [201, 201, 201, 201]);
    for (let i = 0; i < 4; i++) {
      for (const s of [a, b]) {
        const got = Buffer.from(await (await fetch(`${s.url}/v2/scale/r${i}/blobs/${d}`)).arrayBuffer());
        assert.equal(digestOf(got), d);
      }
    }
  });
});
