import assert from 'node:assert/strict';
import { readdir, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { digestOf, type Digest } from '../../oci/digest.js';
import { MediaType } from '../../oci/media-types.js';
import { collectGarbage, GcBusyError } from '../../server/registry/gc.js';
import { paths } from '../../server/registry/paths.js';
import { errorCode, imageManifest, pushBlob, pushImage } from '../helpers/push.js';
import { testApp, type TestApp } from '../helpers/registry.js';
import { BACKENDS, type Backend } from '../helpers/backends.js';
import { withHooks } from '../helpers/hooks.js';
import { createApp } from '../../server/app.js';
import { loadConfig } from '../../server/config.js';
import { createAdapter } from '../../storage-adapters/index.js';
import type { StorageAdapter } from '../../storage-adapters/types.js';

/** An in-process app on a backend (filesystem or S3), for tests that need both. */
async function appOn(backend: Backend): Promise<{ app: ReturnType<typeof createApp>; storage: StorageAdapter; cleanup(): Promise<void> }> {
  if (backend.name === 'filesystem') return testApp();
  const prepared = await backend.prepare();
  const config = loadConfig({ env: prepared.env });
  const storage = await createAdapter(config.storage.driver, config.storage.options);
  return { app: createApp({ deleteEnabled: true }, { storage }), storage, cleanup: async () => { await storage.close?.(); await prepared.cleanup(); } };
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...await walk(p)); else out.push(p);
  }
  return out;
}

/** Makes everything stored look an hour old, so a grace period does not protect it. */
/** A promise a test step waits on (a gate, or news that the collector got somewhere), and what settles it. */
function signal<T>(): [Promise<T>, (value: T) => void] {
  let settle!: (value: T) => void;
  return [new Promise<T>((r) => { settle = r; }), (value: T) => settle(value)];
}

async function age(root: string): Promise<void> {
  const past = new Date(Date.now() - 3_600_000);
  for (const f of await walk(root)) await utimes(f, past, past);
}

const blobExists = async (t: TestApp, d: string) => (await t.storage.stat(paths.blobData(d as Digest)).then(() => true, () => false));

describe('garbage collection', () => {
  let t: TestApp;
  before(async () => { t = await testApp(); });
  after(() => t.cleanup());

  it('deletes blobs no manifest references, keeps shared layers, and reports bytes freed', async () => {
    const keep = await pushImage(t.app, 'gc/a', 'v1', { layers: ['shared', 'only-a'] });
    const drop = await pushImage(t.app, 'gc/b', 'v1', { layers: ['shared', 'only-b-layer'] });
    assert.equal((await request(t.app).delete(`/v2/gc/b/manifests/${drop.digest}`)).status, 202);
    await age(t.root);
    const dry = await collectGarbage(t.storage, { dryRun: true, graceMs: 60_000 });
    assert.ok(dry.blobs.some((b) => b.digest === digestOf('only-b-layer')));
    assert.ok(await blobExists(t, digestOf('only-b-layer')), 'a dry run deletes nothing');

    const lines: string[] = [];
    const report = await collectGarbage(t.storage, { graceMs: 60_000, log: (l) => lines.push(l) });
    const deleted = report.blobs.map((b) => b.digest).sort();
    assert.equal(drop.config, keep.config, 'both images share one config blob');
    assert.deepEqual(deleted, [drop.digest, digestOf('only-b-layer')].sort());
    assert.equal(report.bytesFreed, report.blobs.reduce((n, b) => n + b.size, 0));
    assert.ok(lines.some((l) => l.startsWith(`deleted blob ${digestOf('only-b-layer')}`)));
    for (const d of [keep.digest, keep.config, ...keep.layers]) assert.ok(await blobExists(t, d), `kept ${d}`);
    assert.equal((await request(t.app).get(`/v2/gc/a/manifests/v1`)).status, 200);
    assert.equal((await request(t.app).get(`/v2/gc/a/blobs/${digestOf('shared')}`)).status, 200);
    assert.equal(errorCode(await request(t.app).head(`/v2/gc/b/blobs/${digestOf('only-b-layer')}`)), undefined);
    assert.equal((await request(t.app).head(`/v2/gc/b/blobs/${digestOf('only-b-layer')}`)).status, 404);
  });

  it('content younger than the grace period is never collected (a push in progress)', async () => {
    const d = await pushBlob(t.app, 'gc/inprogress', 'uploaded, manifest not pushed yet');
    const report = await collectGarbage(t.storage, { graceMs: 60_000 });
    assert.ok(!report.blobs.some((b) => b.digest === d));
    assert.ok(await blobExists(t, d));
  });

  it('--delete-untagged removes unreachable manifests but keeps index children and referrers of kept manifests', async () => {
    const amd = await pushImage(t.app, 'gc/multi', undefined, { layers: ['amd-layer'] });
    const lone = await pushImage(t.app, 'gc/multi', undefined, { layers: ['lonely-layer'] });
    const index = JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex,
      manifests: [{ mediaType: MediaType.OciManifest, digest: amd.digest, size: amd.manifest.length, platform: { os: 'linux', architecture: 'amd64' } }] });
    assert.equal((await request(t.app).put('/v2/gc/multi/manifests/latest').set('Content-Type', MediaType.OciIndex).send(index)).status, 201);
    const empty = await pushBlob(t.app, 'gc/multi', '{}');
    const sbom = JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, artifactType: 'application/vnd.example.sbom',
      config: { mediaType: MediaType.OciEmpty, digest: empty, size: 2 }, layers: [],
      subject: { mediaType: MediaType.OciIndex, digest: digestOf(index), size: index.length } });
    assert.equal((await request(t.app).put(`/v2/gc/multi/manifests/${digestOf(sbom)}`).set('Content-Type', MediaType.OciManifest).send(sbom)).status, 201);
    await age(t.root);

    const keepAll = await collectGarbage(t.storage, { graceMs: 60_000 });
    assert.deepEqual(keepAll.manifests, [], 'without --delete-untagged every manifest stays');
    assert.ok(await blobExists(t, digestOf('lonely-layer')));

    const report = await collectGarbage(t.storage, { graceMs: 60_000, deleteUntagged: true });
    assert.deepEqual(report.manifests, [{ repo: 'gc/multi', digest: lone.digest }]);
    assert.ok(!(await blobExists(t, digestOf('lonely-layer'))));
    assert.equal((await request(t.app).head(`/v2/gc/multi/manifests/${lone.digest}`)).status, 404);
    for (const ref of ['latest', amd.digest, digestOf(sbom)]) assert.equal((await request(t.app).head(`/v2/gc/multi/manifests/${ref}`)).status, 200, ref);
    assert.ok(await blobExists(t, digestOf('amd-layer')));
    const referrers = await request(t.app).get(`/v2/gc/multi/referrers/${digestOf(index)}`);
    assert.equal(referrers.body.manifests.length, 1);
  });

  it('keeps the blobs an index lists as children (a BuildKit registry cache), with their repository links', async () => {
    const layer = await pushBlob(t.app, 'gc/cache', 'cache-only layer');
    const index = JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex,
      manifests: [{ mediaType: MediaType.OciLayerTarGzip, digest: layer, size: 16 }] });
    const res = await request(t.app).put('/v2/gc/cache/manifests/cache').set('Content-Type', MediaType.OciIndex).send(index);
    assert.equal(res.status, 201, res.text);
    await age(t.root);
    const report = await collectGarbage(t.storage, { graceMs: 60_000 });
    assert.ok(!report.blobs.some((b) => b.digest === layer), 'the cache layer is referenced by the index');
    assert.equal((await request(t.app).head(`/v2/gc/cache/blobs/${layer}`)).status, 200);
  });

  it('keeps a non-distributable layer a client pushed anyway while a tag reaches its image', async () => {
    // docker --allow-nondistributable-artifacts pushes a Windows image's foreign layers, and pulls them from here
    const cfg = await pushBlob(t.app, 'gc/windows', '{"os":"windows"}');
    const foreign = await pushBlob(t.app, 'gc/windows', 'foreign layer bytes');
    const manifest = JSON.stringify({ schemaVersion: 2, mediaType: MediaType.DockerManifest,
      config: { mediaType: MediaType.DockerConfig, digest: cfg, size: 16 },
      layers: [{ mediaType: MediaType.DockerForeignLayer, digest: foreign, size: 19, urls: ['https://example.invalid/layer'] }] });
    assert.equal((await request(t.app).put('/v2/gc/windows/manifests/v1').set('Content-Type', MediaType.DockerManifest).send(manifest)).status, 201);
    await age(t.root);
    const report = await collectGarbage(t.storage, { graceMs: 60_000, deleteUntagged: true });
    assert.ok(!report.blobs.some((b) => b.digest === foreign), 'the foreign layer is not collected');
    assert.equal((await request(t.app).get(`/v2/gc/windows/blobs/${foreign}`)).status, 200);
  });

  it('a referrer whose push the collector undid (503) is not listed by the referrers API', async () => {
    const subject = await pushImage(t.app, 'gc/signed', 'v1', { layers: ['signed-layer'] });
    const cfg = await pushBlob(t.app, 'gc/signed', '{"sig":1}');
    const payload = await pushBlob(t.app, 'gc/signed', 'signature payload'); // unreferenced yet: a candidate
    await age(t.root);
    // the collector, held just before its first deletion: its tombstones are written, its second mark is done
    const [gate, release] = signal<void>();
    const [atDelete, reached] = signal<void>();
    const held = withHooks(t.storage, {
      delete: (original) => async (key) => { if (key.startsWith('/blobs/')) { reached(); await gate; } return original(key); },
    });
    const gc = collectGarbage(held, { graceMs: 60_000 });
    await atDelete;
    const sig = imageManifest({ digest: cfg, size: 9 }, [{ digest: payload, size: 17 }], { artifactType: 'application/vnd.example.sig',
      subject: { mediaType: MediaType.OciManifest, digest: subject.digest, size: subject.manifest.length } });
    const put = request(t.app).put(`/v2/gc/signed/manifests/${digestOf(sig)}`).set('Content-Type', MediaType.OciManifest).send(sig.toString()).then((r) => r);
    const link = paths.referrerLink('gc/signed', subject.digest, digestOf(sig));
    for (let i = 0; i < 500 && !(await t.storage.stat(link).then(() => true, () => false)); i++) await new Promise((r) => setTimeout(r, 10));
    release();
    assert.ok((await gc).blobs.some((b) => b.digest === payload));
    assert.equal((await put).status, 503, 'the push referenced what the collector took');
    assert.equal((await request(t.app).head(`/v2/gc/signed/manifests/${digestOf(sig)}`)).status, 404);
    const referrers = await request(t.app).get(`/v2/gc/signed/referrers/${subject.digest}`);
    assert.deepEqual(referrers.body.manifests, []);
  });

  it('a push that rescues a candidate goes on at once: its tombstone is gone before the sweep begins', async () => {
    const kept = await pushBlob(t.app, 'gc/rescue-src', 'a layer a push will reuse');
    const doomed = await pushBlob(t.app, 'gc/rescue-src', 'a layer nobody reuses');
    await age(t.root);
    // the collector, held right after it wrote the reused layer's tombstone, and again at its first deletion
    const [tombstonesGate, releaseTombstones] = signal<void>();
    const [atTombstone, tombstoned] = signal<string>();
    const [sweepGate, releaseSweep] = signal<void>();
    const [atSweep, sweeping] = signal<void>();
    const held = withHooks(t.storage, {
      putSmall: (original) => async (key, data, opts) => {
        await original(key, data, opts);
        if (data.toString() === `blob:${kept}`) { tombstoned(key); await tombstonesGate; }
      },
      delete: (original) => async (key) => { if (key.startsWith('/blobs/')) { sweeping(); await sweepGate; } return original(key); },
    });
    const gc = collectGarbage(held, { graceMs: 60_000 });
    try {
      const tombstone = await atTombstone;
      // a mount of the candidate: it links the blob, then waits on its tombstone
      const mount = request(t.app).post(`/v2/gc/rescue-dst/blobs/uploads/?mount=${kept}&from=gc/rescue-src`).then((r) => r);
      const link = paths.layerLink('gc/rescue-dst', kept);
      for (let i = 0; i < 500 && !(await t.storage.stat(link).then(() => true, () => false)); i++) await new Promise((r) => setTimeout(r, 10));
      releaseTombstones();
      await atSweep;
      assert.equal(await t.storage.stat(tombstone).then(() => 'still there', () => 'gone'), 'gone', 'the rescued layer\'s tombstone');
      assert.equal((await mount).status, 201, 'the mount finished while the sweep is held');
    } finally {
      releaseTombstones();
      releaseSweep();
    }
    const report = await gc;
    assert.ok(report.blobs.some((b) => b.digest === doomed));
    assert.ok(!report.blobs.some((b) => b.digest === kept));
    assert.ok(report.rescued >= 1);
    assert.equal((await request(t.app).head(`/v2/gc/rescue-dst/blobs/${kept}`)).status, 200);
  });

  it('writes its tombstones a few at a time, not one open file per candidate at once (EMFILE past ~20k candidates)', async () => {
    const orphans = Array.from({ length: 300 }, (_, i) => `many-orphans-${i}`);
    for (const o of orphans) await t.storage.putSmall(paths.blobData(digestOf(o)), Buffer.from(o));
    await age(t.root);
    let inFlight = 0;
    let most = 0;
    const counted = withHooks(t.storage, {
      putSmall: (original) => async (key, data, opts) => {
        if (!key.startsWith(paths.gcTombstones())) return original(key, data, opts);
        most = Math.max(most, ++inFlight);
        try { return await original(key, data, opts); } finally { inFlight--; }
      },
    });
    const report = await collectGarbage(counted, { graceMs: 60_000 });
    for (const o of orphans) assert.ok(report.blobs.some((b) => b.digest === digestOf(o)));
    assert.ok(most <= 64, `${most} tombstone writes at once`);
  });

  for (const how of ['its lease is taken over', 'it stalls past the lease\'s stale age'] as const) {
    it(`a collection whose ${how === 'its lease is taken over' ? 'lease is taken over mid-sweep' : 'sweep stalls past the lease\'s stale age'} stops deleting: a mount that got 201 meanwhile stays pullable`, async () => {
      // two old, unreferenced blobs: both candidates
      const [one, two] = [`mid-sweep-1 ${how}`, `mid-sweep-2 ${how}`];
      await pushBlob(t.app, 'gc/sweep-src', one);
      await pushBlob(t.app, 'gc/sweep-src', two);
      await age(t.root);
      // the collector, held inside its first deletion (of either blob)
      const [gate, release] = signal<void>();
      const [atDelete, first] = signal<string>();
      let held = false;
      const holding = withHooks(t.storage, {
        delete: (original) => async (key) => { if (key.startsWith('/blobs/') && !held) { held = true; first(key); await gate; } return original(key); },
      });
      const gc = collectGarbage(holding, { graceMs: 60_000 }).then(() => 'ran', (e: unknown) => e);
      const deleting = await atDelete;
      const other = [one, two].find((c) => !deleting.includes(digestOf(c).slice('sha256:'.length)))!;
      const realNow = Date.now;
      try {
        if (how === 'its lease is taken over') {
          // another collector took the lease over (this one looked stale to it): writers now follow its tombstones
          await t.storage.putSmall(paths.gcLease(), Buffer.from(JSON.stringify({ id: 'other-run', heartbeat: Date.now() })));
        } else {
          Date.now = () => realNow() + 61_000; // suspended (Ctrl-Z) for a minute: writers see the lease stale
        }
        const mount = await request(t.app).post(`/v2/gc/sweep-dst/blobs/uploads/?mount=${digestOf(other)}&from=gc/sweep-src`);
        assert.equal(mount.status, 201);
        release();
        await gc;
      } finally {
        Date.now = realNow;
        release();
        await gc;
        await t.storage.delete(paths.gcRoot());
      }
      const pulled = await request(t.app).get(`/v2/gc/sweep-dst/blobs/${digestOf(other)}`).buffer(true);
      assert.equal(pulled.status, 200, 'the mounted blob is still there');
      const outcome = await gc;
      assert.ok(outcome instanceof GcBusyError, `the collection stopped (${String(outcome)})`);
    });
  }

  it('a corrupt revision link does not stop the collection; that manifest and what it references stay', async () => {
    const img = await pushImage(t.app, 'gc/corrupt', 'v1', { layers: ['corrupt-link-layer'] });
    await t.storage.putSmall(paths.revisionLink('gc/corrupt', img.digest), Buffer.from('{"mediaType":"appli'));
    const orphan = await pushBlob(t.app, 'gc/corrupt', 'next to a corrupt link');
    await age(t.root);
    const report = await collectGarbage(t.storage, { graceMs: 60_000, deleteUntagged: true });
    assert.ok(report.blobs.some((b) => b.digest === orphan), 'the rest is collected');
    assert.deepEqual(report.manifests.filter((r) => r.repo === 'gc/corrupt'), []);
    for (const d of [img.digest, img.config, ...img.layers]) assert.ok(await blobExists(t, d), `kept ${d}`);
    await t.storage.stat(paths.revisionLink('gc/corrupt', img.digest));
  });

  it('only one collection runs at a time', async () => {
    await t.storage.putSmall(paths.gcLease(), Buffer.from(JSON.stringify({ id: 'other', heartbeat: Date.now() })));
    await assert.rejects(collectGarbage(t.storage, { graceMs: 0 }), GcBusyError);
    // a crashed collector's lease goes stale and no longer blocks
    await t.storage.putSmall(paths.gcLease(), Buffer.from(JSON.stringify({ id: 'crashed', heartbeat: Date.now() - 120_000 })));
    await collectGarbage(t.storage, { graceMs: 60_000 });
  });

  it('purges abandoned uploads older than the given age', async () => {
    const res = await request(t.app).post('/v2/gc/uploads/blobs/uploads/');
    const id = res.headers.location!.split('/').pop()!;
    await t.storage.putSmall(paths.uploadStartedAt('gc/uploads', id), Buffer.from(new Date(Date.now() - 10 * 86_400_000).toISOString()));
    const fresh = (await request(t.app).post('/v2/gc/uploads/blobs/uploads/')).headers.location!;
    const report = await collectGarbage(t.storage, { graceMs: 60_000, uploadMaxAgeMs: 86_400_000 });
    assert.deepEqual(report.uploadsPurged, [`gc/uploads/${id}`]);
    assert.equal((await request(t.app).get(res.headers.location!)).status, 404);
    assert.equal((await request(t.app).get(fresh)).status, 204);
  });
});

for (const backend of BACKENDS) describe(`garbage collection racing pushes (online safety, ${backend.name})`, () => {
  it('every push that succeeded pulls back intact, after GC runs raced against pushes reusing old, unreferenced blobs', async () => {
    const t = await appOn(backend);
    try {
      // Old, unreferenced content that new pushes will reuse by mounting: exactly what a collection deletes.
      const base = await pushImage(t.app, 'race/base', 'v1', { layers: ['common-1', 'common-2', 'common-3'] });
      await request(t.app).delete(`/v2/race/base/manifests/${base.digest}`);
      // With no grace period, everything written before a collection starts is fair game.

      const pushed: { name: string; digest: string; manifest: string; index: string; blobs: Map<string, string> }[] = [];
      let retries = 0;
      let gcRuns = 0;
      let stop = false;

      async function pushOnce(i: number, attempt: number): Promise<boolean> {
        const name = `race/app${i}`;
        const blobs = new Map<string, string>();
        const layers: { digest: Digest; size: number }[] = [];
        for (const content of [`common-${(i % 3) + 1}`, `unique-${i}`]) {
          const d = digestOf(content);
          blobs.set(d, content);
          const mount = await request(t.app).post(`/v2/${name}/blobs/uploads/?mount=${d}&from=race/base`);
          if (mount.status !== 201) {
            const up = await request(t.app).put(`${mount.headers.location}?digest=${d}`).set('Content-Type', 'application/octet-stream').send(Buffer.from(content));
            if (up.status !== 201) return false;
          }
          layers.push({ digest: d, size: content.length });
        }
        const cfgBody = JSON.stringify({ i, attempt });
        const cfg = digestOf(cfgBody);
        blobs.set(cfg, cfgBody);
        const up = await request(t.app).post(`/v2/${name}/blobs/uploads/?digest=${cfg}`).set('Content-Type', 'application/octet-stream').send(Buffer.from(cfgBody));
        if (up.status !== 201) return false;
        const manifest = imageManifest({ digest: cfg, size: cfgBody.length }, layers).toString();
        const put = await request(t.app).put(`/v2/${name}/manifests/v1`).set('Content-Type', MediaType.OciManifest).send(manifest);
        if (put.status !== 201) {
          assert.ok([503, 404, 400].includes(put.status), `unexpected ${put.status} ${put.text}`);
          return false;
        }
        // A multi-arch index over it, so indexes and their children race the collector too.
        const index = JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [
          { mediaType: MediaType.OciManifest, digest: digestOf(manifest), size: manifest.length, platform: { os: 'linux', architecture: 'amd64' } }] });
        const putIndex = await request(t.app).put(`/v2/${name}/manifests/multi`).set('Content-Type', MediaType.OciIndex).send(index);
        if (putIndex.status !== 201) return false;
        pushed.push({ name, digest: digestOf(manifest), manifest, index, blobs });
        return true;
      }

      const gcLoop = (async () => {
        while (!stop) {
          await collectGarbage(t.storage, { graceMs: 0 }).catch((e) => { if (!(e instanceof GcBusyError)) throw e; });
          gcRuns++;
        }
      })();
      // Six pushers keep pushing new images until several collections have raced them.
      let next = 0;
      const deadline = Date.now() + 150_000;
      await Promise.all(Array.from({ length: 6 }, async () => {
        while (next < 24 || (gcRuns < 3 && Date.now() < deadline)) {
          const i = next++;
          for (let attempt = 0; !(await pushOnce(i, attempt)); attempt++) {
            retries++;
            assert.ok(attempt < 50, 'a push keeps failing');
          }
        }
      }));
      stop = true;
      await gcLoop;
      await collectGarbage(t.storage, { graceMs: 0 });

      assert.ok(gcRuns >= 3, `collections ran during the pushes (${gcRuns})`);
      assert.equal(pushed.length, next);
      for (const p of pushed) {
        const m = await request(t.app).get(`/v2/${p.name}/manifests/v1`);
        assert.equal(m.status, 200, `${p.name} manifest`);
        assert.equal(m.text, p.manifest);
        const idx = await request(t.app).get(`/v2/${p.name}/manifests/multi`);
        assert.equal(idx.status, 200, `${p.name} index`);
        assert.equal(idx.text, p.index);
        assert.equal((await request(t.app).head(`/v2/${p.name}/manifests/${p.digest}`)).status, 200, 'the index child survives');
        for (const [d, content] of p.blobs) {
          const b = await request(t.app).get(`/v2/${p.name}/blobs/${d}`).buffer(true);
          assert.equal(b.status, 200, `${p.name} blob ${d} (${content})`);
          assert.equal(digestOf(Buffer.from(b.body as Buffer)), d);
        }
      }
      console.log(`# race: ${gcRuns} collections, ${retries} push retries`);
    } finally {
      await t.cleanup();
    }
  });
});

for (const backend of BACKENDS) describe(`garbage collection: one at a time, and a dry run that tells all (${backend.name})`, () => {
  let t: Awaited<ReturnType<typeof appOn>>;
  before(async () => { t = await appOn(backend); });
  after(async () => { await t?.cleanup(); });

  it('two collections started at once on one storage: one runs, the other is GcBusyError', async () => {
    // (a run on a near-empty store can end before the other starts: then both run, one after the other)
    for (let i = 0; i < 5; i++) {
      const results = await Promise.allSettled([collectGarbage(t.storage, { graceMs: 60_000 }), collectGarbage(t.storage, { graceMs: 60_000 })]);
      const busy = results.filter((r) => r.status === 'rejected' && r.reason instanceof GcBusyError).length;
      const ran = results.filter((r) => r.status === 'fulfilled').length;
      assert.ok(ran >= 1 && ran + busy === 2, `run ${i}: ${ran} ran, ${busy} busy (${results.map((r) => r.status === 'rejected' ? String(r.reason) : 'ok').join('; ')})`);
    }
    // held in its mark, with its lease taken, a run keeps every other out until it ends
    const [gate, release] = signal<void>();
    const held = withHooks(t.storage, {
      list: (original) => async function* (prefix) { await gate; yield* original(prefix); },
    });
    const first = collectGarbage(held, { graceMs: 60_000 });
    for (let i = 0; i < 200 && !(await t.storage.stat(paths.gcLease()).then(() => true, () => false)); i++) await new Promise((r) => setTimeout(r, 10));
    await assert.rejects(collectGarbage(t.storage, { graceMs: 60_000 }), GcBusyError);
    release();
    await first;
    await assert.rejects(t.storage.stat(paths.gcLease()), 'the lease is gone after the run');
  });

  it('a run removes only its own tombstones: a live collection\'s stay', async () => {
    const other = { id: 'other-run', heartbeat: Date.now() };
    await t.storage.putSmall(paths.gcTombstone(other.id, 'blob:x'), Buffer.from('blob:x'));
    // a crashed run's tombstones go (its lease is stale), and so does its lease
    await t.storage.putSmall(paths.gcLease(), Buffer.from(JSON.stringify({ ...other, heartbeat: Date.now() - 120_000 })));
    await collectGarbage(t.storage, { graceMs: 60_000 });
    await assert.rejects(t.storage.stat(paths.gcTombstone(other.id, 'blob:x')));
    // while a live one holds the lease, a second run is refused and touches nothing of it
    await t.storage.putSmall(paths.gcLease(), Buffer.from(JSON.stringify(other)));
    await t.storage.putSmall(paths.gcTombstone(other.id, 'blob:y'), Buffer.from('blob:y'));
    await assert.rejects(collectGarbage(t.storage, { graceMs: 0 }), GcBusyError);
    await t.storage.stat(paths.gcTombstone(other.id, 'blob:y'));
    await t.storage.delete(paths.gcRoot());
  });

  it('--dry-run --uploads 0s reports the upload sessions and unfinished writes a real run purges, and purges nothing', async () => {
    const loc = (await request(t.app).post('/v2/gc/dry/blobs/uploads/')).headers.location!;
    const id = loc.split('/').pop()!;
    // an interrupted write: a temp file, or (S3) a multipart upload with a part in it
    const w = await t.storage.write('/gc-dry/interrupted');
    await new Promise<void>((r) => w.write(Buffer.alloc(11 << 20, 1), () => r())); // over a part (10 MiB)
    await new Promise((r) => setTimeout(r, 20));
    const dry = await collectGarbage(t.storage, { dryRun: true, graceMs: 60_000, uploadMaxAgeMs: 0 });
    assert.ok(dry.uploadsPurged.includes(`gc/dry/${id}`), JSON.stringify(dry.uploadsPurged));
    assert.ok(dry.temporaryPurged >= 1, 'the unfinished write is reported');
    assert.equal((await request(t.app).get(loc)).status, 204, 'the dry run purged nothing');
    const real = await collectGarbage(t.storage, { graceMs: 60_000, uploadMaxAgeMs: 0 });
    assert.ok(real.uploadsPurged.includes(`gc/dry/${id}`));
    assert.equal(real.temporaryPurged, dry.temporaryPurged);
    assert.equal((await request(t.app).get(loc)).status, 404);
    w.destroy();
  });
});
