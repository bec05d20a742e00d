import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { digestOf } from '../../oci/digest.js';
import { MediaType } from '../../oci/media-types.js';
import { errorCode, imageManifest, pushBlob, pushImage } from '../helpers/push.js';
import { testApp, type TestApp } from '../helpers/registry.js';

// superagent would JSON-encode a Buffer sent with a +json type; a string goes out byte-for-byte.
const put = (t: TestApp, name: string, ref: string, body: Buffer | string, type: string = MediaType.OciManifest) =>
  request(t.app).put(`/v2/${name}/manifests/${ref}`).set('Content-Type', type).send(body.toString());

describe('manifests', () => {
  let t: TestApp;
  before(async () => { t = await testApp(); });
  after(() => t.cleanup());

  it('PUT by tag → 201 with Location and Docker-Content-Digest; GET by tag and by digest return the exact bytes', async () => {
    const img = await pushImage(t.app, 'org/team/app', 'v1');
    for (const ref of ['v1', img.digest]) {
      const res = await request(t.app).get(`/v2/org/team/app/manifests/${ref}`).buffer(true).parse((r, cb) => {
        const c: Buffer[] = []; r.on('data', (x: Buffer) => c.push(x)); r.on('end', () => cb(null, Buffer.concat(c)));
      });
      assert.equal(res.status, 200);
      assert.ok((res.body as Buffer).equals(img.manifest), 'byte-exact');
      assert.equal(res.headers['content-type'], MediaType.OciManifest);
      assert.equal(res.headers['docker-content-digest'], img.digest);
      assert.equal(res.headers['content-length'], String(img.manifest.length));
    }
    const head = await request(t.app).head(`/v2/org/team/app/manifests/v1`);
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], String(img.manifest.length));
  });

  it('bytes are stored exactly as pushed, whitespace and key order included', async () => {
    const cfg = await pushBlob(t.app, 'exact', '{}');
    const body = `{\n  "schemaVersion": 2,   "config": {"size": 2, "digest": "${cfg}", "mediaType": "${MediaType.OciConfig}"},\n "layers": [] , "mediaType": "${MediaType.OciManifest}"}\n`;
    const res = await put(t, 'exact', 'pretty', body);
    assert.equal(res.status, 201);
    assert.equal(res.headers['docker-content-digest'], digestOf(body));
    assert.equal((await request(t.app).get('/v2/exact/manifests/pretty')).text, body);
  });

  it('the Content-Type is returned as pushed, e.g. a Docker schema 2 manifest', async () => {
    const cfgBody = '{"architecture":"amd64"}';
    const cfg = await pushBlob(t.app, 'docker', cfgBody);
    const body = JSON.stringify({
      schemaVersion: 2, mediaType: MediaType.DockerManifest,
      config: { mediaType: MediaType.DockerConfig, size: cfgBody.length, digest: cfg }, layers: [],
    });
    assert.equal((await put(t, 'docker', 'latest', body, MediaType.DockerManifest)).status, 201);
    assert.equal((await request(t.app).head('/v2/docker/manifests/latest')).headers['content-type'], MediaType.DockerManifest);
  });

  it('an OCI manifest without mediaType takes the Content-Type', async () => {
    const cfg = await pushBlob(t.app, 'nomt', '{}');
    const body = JSON.stringify({ schemaVersion: 2, config: { mediaType: MediaType.OciEmpty, size: 2, digest: cfg }, layers: [] });
    assert.equal((await put(t, 'nomt', 'x', body)).status, 201);
    assert.equal((await request(t.app).head('/v2/nomt/manifests/x')).headers['content-type'], MediaType.OciManifest);
  });

  it('PUT by digest checks the digest: a mismatch → 400 DIGEST_INVALID and nothing stored', async () => {
    const img = await pushImage(t.app, 'bydigest', 'a');
    const other = digestOf('something else');
    const res = await put(t, 'bydigest', other, img.manifest);
    assert.equal(res.status, 400);
    assert.equal(errorCode(res), 'DIGEST_INVALID');
    assert.equal((await request(t.app).head(`/v2/bydigest/manifests/${other}`)).status, 404);
    const ok = await put(t, 'bydigest', img.digest, img.manifest);
    assert.equal(ok.status, 201);
  });

  it('PUT by digest with ?tag=a&tag=b tags it and answers one OCI-Tag header per tag', async () => {
    const img = await pushImage(t.app, 'tagparam', undefined);
    const res = await request(t.app).put(`/v2/tagparam/manifests/${img.digest}?tag=a&tag=b`).set('Content-Type', MediaType.OciManifest).send(img.manifest.toString());
    assert.equal(res.status, 201);
    const raw: string[] = (res as unknown as { res: { rawHeaders: string[] } }).res.rawHeaders;
    const ociTags = raw.filter((h, i) => i % 2 === 0 && h.toLowerCase() === 'oci-tag').length;
    assert.equal(ociTags, 2, 'one OCI-Tag header line per tag');
    assert.deepEqual((await request(t.app).get('/v2/tagparam/tags/list')).body.tags, ['a', 'b']);
  });

  it('a manifest referencing a missing blob → 400 MANIFEST_BLOB_UNKNOWN listing it', async () => {
    const cfg = await pushBlob(t.app, 'missing', '{}');
    const absent = digestOf('never pushed');
    const body = imageManifest({ digest: cfg, size: 2 }, [{ digest: absent, size: 12 }]);
    const res = await put(t, 'missing', 'x', body);
    assert.equal(errorCode(res), 'MANIFEST_BLOB_UNKNOWN');
    assert.deepEqual(res.body.errors[0].detail, { digests: [absent] });
    assert.equal((await request(t.app).head('/v2/missing/manifests/x')).status, 404);
  });

  it('a blob present only in another repository does not satisfy a manifest', async () => {
    const cfg = await pushBlob(t.app, 'elsewhere', '{"a":1}');
    const body = imageManifest({ digest: cfg, size: 7 }, []);
    assert.equal(errorCode(await put(t, 'nothere', 'x', body)), 'MANIFEST_BLOB_UNKNOWN');
  });

  it('an index referencing a missing child manifest → MANIFEST_BLOB_UNKNOWN; with children present → 201', async () => {
    const amd = await pushImage(t.app, 'multi', undefined, { layers: ['amd64'] });
    const arm = await pushImage(t.app, 'multi', undefined, { layers: ['arm64'] });
    const index = (digests: string[]) => JSON.stringify({
      schemaVersion: 2, mediaType: MediaType.OciIndex,
      manifests: digests.map((d, i) => ({ mediaType: MediaType.OciManifest, digest: d, size: [amd, arm][i]?.manifest.length ?? 10,
        platform: { os: 'linux', architecture: i ? 'arm64' : 'amd64' } })),
    });
    const bad = await put(t, 'multi', 'latest', index([amd.digest, digestOf('ghost')]), MediaType.OciIndex);
    assert.equal(errorCode(bad), 'MANIFEST_BLOB_UNKNOWN');
    const good = await put(t, 'multi', 'latest', index([amd.digest, arm.digest]), MediaType.OciIndex);
    assert.equal(good.status, 201);
    assert.equal((await request(t.app).head('/v2/multi/manifests/latest')).headers['content-type'], MediaType.OciIndex);
  });

  it('an index whose children are blobs of the repository (a BuildKit registry cache) is accepted; one nowhere → MANIFEST_BLOB_UNKNOWN', async () => {
    const layer = await pushBlob(t.app, 'buildcache', 'cached layer');
    const cacheConfig = await pushBlob(t.app, 'buildcache', '{"layers":[]}');
    const index = (config: string) => JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [
      { mediaType: MediaType.OciLayerTarGzip, digest: layer, size: 12 },
      { mediaType: 'application/vnd.buildkit.cacheconfig.v0', digest: config, size: 13 },
    ] });
    const res = await put(t, 'buildcache', 'cache', index(cacheConfig), MediaType.OciIndex);
    assert.equal(res.status, 201, res.text);
    assert.equal((await request(t.app).get('/v2/buildcache/manifests/cache')).text, index(cacheConfig));
    const absent = digestOf('never pushed');
    const bad = await put(t, 'buildcache', 'cache2', index(absent), MediaType.OciIndex);
    assert.equal(errorCode(bad), 'MANIFEST_BLOB_UNKNOWN');
    assert.deepEqual(bad.body.errors[0].detail, { digests: [absent] });
  });

  it('a Docker manifest list is accepted', async () => {
    const amd = await pushImage(t.app, 'dlist', undefined);
    const body = JSON.stringify({ schemaVersion: 2, mediaType: MediaType.DockerManifestList,
      manifests: [{ mediaType: MediaType.OciManifest, digest: amd.digest, size: amd.manifest.length, platform: { os: 'linux', architecture: 'amd64' } }] });
    assert.equal((await put(t, 'dlist', 'l', body, MediaType.DockerManifestList)).status, 201);
  });

  it('an artifact manifest with artifactType and a missing subject is accepted, answering OCI-Subject', async () => {
    const empty = await pushBlob(t.app, 'art', '{}');
    const subject = digestOf('subject not pushed');
    const body = JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, artifactType: 'application/vnd.example.sbom',
      config: { mediaType: MediaType.OciEmpty, digest: empty, size: 2 }, layers: [{ mediaType: MediaType.OciEmpty, digest: empty, size: 2 }],
      subject: { mediaType: MediaType.OciManifest, digest: subject, size: 123 } });
    const res = await put(t, 'art', digestOf(body), body);
    assert.equal(res.status, 201);
    assert.equal(res.headers['oci-subject'], subject);
  });

  for (const [label, body, type] of [
    ['not JSON', 'this is not json', MediaType.OciManifest],
    ['a JSON array', '[1,2]', MediaType.OciManifest],
    ['schemaVersion 3', JSON.stringify({ schemaVersion: 3, config: {}, layers: [] }), MediaType.OciManifest],
    ['a config without digest', JSON.stringify({ schemaVersion: 2, config: { mediaType: 'x', size: 1 }, layers: [] }), MediaType.OciManifest],
    ['a negative size', JSON.stringify({ schemaVersion: 2, config: { mediaType: 'x', size: -1, digest: digestOf('x') }, layers: [] }), MediaType.OciManifest],
    ['a mediaType that contradicts the Content-Type', JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] }), MediaType.OciManifest],
    ['an unknown media type', JSON.stringify({ schemaVersion: 2, config: {}, layers: [] }), 'application/vnd.example.nope+json'],
  ] as const) {
    it(`${label} → 400 MANIFEST_INVALID`, async () => {
      const res = await put(t, 'invalid', 'x', body, type);
      assert.equal(res.status, 400);
      assert.equal(errorCode(res), 'MANIFEST_INVALID');
    });
  }

  it('Docker schema 1 is refused with a clear message', async () => {
    const body = JSON.stringify({ schemaVersion: 1, name: 'x', tag: 'y', fsLayers: [], history: [] });
    const res = await put(t, 'schema1', 'x', body, MediaType.DockerSchema1Signed);
    assert.equal(errorCode(res), 'MANIFEST_INVALID');
    assert.match(res.body.errors[0].detail.reason, /schema 1/);
  });

  it('a manifest over 4 MiB → 413 SIZE_INVALID; one just under the limit is accepted', async () => {
    const cfg = await pushBlob(t.app, 'big', '{}');
    const base = JSON.parse(imageManifest({ digest: cfg, size: 2 }, []).toString());
    const pad = (n: number) => Buffer.from(JSON.stringify({ ...base, annotations: { pad: 'x'.repeat(n) } }));
    const over = pad(4 << 20);
    const res = await put(t, 'big', 'huge', over);
    assert.equal(res.status, 413);
    assert.equal(errorCode(res), 'SIZE_INVALID');
    const under = pad((4 << 20) - 1000);
    assert.ok(under.length <= 4 << 20);
    assert.equal((await put(t, 'big', 'large', under)).status, 201);
  });

  it('an invalid tag → 400 TAG_INVALID on PUT, 404 MANIFEST_UNKNOWN on GET/HEAD', async () => {
    const img = await pushImage(t.app, 'badtag', undefined);
    assert.equal(errorCode(await put(t, 'badtag', '.INVALID', img.manifest)), 'TAG_INVALID');
    assert.equal(errorCode(await request(t.app).get('/v2/badtag/manifests/.INVALID_MANIFEST_NAME')), 'MANIFEST_UNKNOWN');
    assert.equal((await request(t.app).head('/v2/badtag/manifests/.INVALID_MANIFEST_NAME')).status, 404);
  });

  it('a malformed digest reference → 400 DIGEST_INVALID, never a tag lookup or a 500', async () => {
    const res = await request(t.app).get('/v2/whatever/manifests/sha256:totallywrong');
    assert.equal(res.status, 400);
    assert.equal(errorCode(res), 'DIGEST_INVALID');
  });

  it('an unknown tag or digest → 404 MANIFEST_UNKNOWN', async () => {
    assert.equal(errorCode(await request(t.app).get('/v2/org/team/app/manifests/nope')), 'MANIFEST_UNKNOWN');
    assert.equal(errorCode(await request(t.app).get(`/v2/org/team/app/manifests/${digestOf('nope')}`)), 'MANIFEST_UNKNOWN');
  });

  it('DELETE by tag removes only the tag (202); the manifest stays reachable by digest', async () => {
    const img = await pushImage(t.app, 'deltag', 'gone');
    assert.equal((await request(t.app).delete('/v2/deltag/manifests/gone')).status, 202);
    assert.equal((await request(t.app).head('/v2/deltag/manifests/gone')).status, 404);
    assert.equal((await request(t.app).head(`/v2/deltag/manifests/${img.digest}`)).status, 200);
    assert.equal(errorCode(await request(t.app).delete('/v2/deltag/manifests/gone')), 'MANIFEST_UNKNOWN');
  });

  it('DELETE by digest removes the manifest and every tag pointing at it; tags/list is then 200 []', async () => {
    const img = await pushImage(t.app, 'deldigest', 'one');
    await put(t, 'deldigest', 'two', img.manifest);
    assert.equal((await request(t.app).delete(`/v2/deldigest/manifests/${img.digest}`)).status, 202);
    assert.equal((await request(t.app).head(`/v2/deldigest/manifests/${img.digest}`)).status, 404);
    assert.equal((await request(t.app).head('/v2/deldigest/manifests/one')).status, 404);
    const tags = await request(t.app).get('/v2/deldigest/tags/list');
    assert.equal(tags.status, 200);
    assert.deepEqual(tags.body.tags, []);
    assert.equal((await request(t.app).delete(`/v2/deldigest/manifests/${img.digest}`)).status, 404);
  });

  it('DELETE with deletes disabled → 405 UNSUPPORTED', async () => {
    const off = await testApp({ deleteEnabled: false });
    try {
      await pushImage(off.app, 'keep', 'v1');
      const res = await request(off.app).delete('/v2/keep/manifests/v1');
      assert.equal(res.status, 405);
      assert.equal(errorCode(res), 'UNSUPPORTED');
    } finally {
      await off.cleanup();
    }
  });

  it('manifest storage never leaves temp files behind', async () => {
    const dir = join(t.root, 'repositories', 'org', 'team', 'app', '_manifests', 'tags', 'v1');
    assert.deepEqual(await readdir(dir), ['link']);
  });
});
