import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { digestOf, type Digest } from '../../oci/digest.js';
import { MediaType } from '../../oci/media-types.js';
import { errorCode, pushBlob, pushImage } from '../helpers/push.js';
import { testApp, type TestApp } from '../helpers/registry.js';

describe('referrers: GET /v2/<name>/referrers/<digest>', () => {
  let t: TestApp;
  let subject: Digest;
  let empty: Digest;
  const pushed: Record<string, Digest> = {};

  async function pushReferrer(label: string, fields: Record<string, unknown>, type: string = MediaType.OciManifest): Promise<Digest> {
    const body = JSON.stringify({ schemaVersion: 2, mediaType: type, ...fields,
      subject: { mediaType: MediaType.OciManifest, digest: subject, size: 100 }, annotations: { 'test.label': label } });
    const d = digestOf(body);
    const res = await request(t.app).put(`/v2/app/manifests/${d}`).set('Content-Type', type).send(body);
    assert.equal(res.status, 201, res.text);
    assert.equal(res.headers['oci-subject'], subject);
    pushed[label] = d;
    return d;
  }

  before(async () => {
    t = await testApp();
    subject = (await pushImage(t.app, 'app', 'v1')).digest;
    empty = await pushBlob(t.app, 'app', '{}');
    const cfg = await pushBlob(t.app, 'app', '{"sig":true}');
    await pushReferrer('sbom', { artifactType: 'application/vnd.example.sbom', config: { mediaType: MediaType.OciEmpty, digest: empty, size: 2 }, layers: [] });
    await pushReferrer('sig', { config: { mediaType: 'application/vnd.example.signature.config', digest: cfg, size: 12 }, layers: [] });
    await pushReferrer('idx', { artifactType: 'application/vnd.example.sbom', manifests: [] }, MediaType.OciIndex);
  });
  after(() => t.cleanup());

  it('lists image manifests and indexes referring to the subject, with artifactType and annotations', async () => {
    const res = await request(t.app).get(`/v2/app/referrers/${subject}`);
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], MediaType.OciIndex);
    assert.equal(res.body.schemaVersion, 2);
    assert.equal(res.body.mediaType, MediaType.OciIndex);
    const byLabel = Object.fromEntries(res.body.manifests.map((m: { annotations: Record<string, string> }) => [m.annotations['test.label'], m]));
    assert.deepEqual(Object.keys(byLabel).sort(), ['idx', 'sbom', 'sig']);
    assert.equal(byLabel.sbom.artifactType, 'application/vnd.example.sbom');
    assert.equal(byLabel.sig.artifactType, 'application/vnd.example.signature.config', 'falls back to config.mediaType');
    assert.equal(byLabel.idx.mediaType, MediaType.OciIndex);
    assert.equal(byLabel.sbom.digest, pushed.sbom);
    for (const m of res.body.manifests) assert.deepEqual(Object.keys(m.annotations), ['test.label']);
  });

  it('filters by artifactType and says so in OCI-Filters-Applied', async () => {
    const res = await request(t.app).get(`/v2/app/referrers/${subject}?artifactType=application/vnd.example.sbom`);
    assert.equal(res.headers['oci-filters-applied'], 'artifactType');
    assert.deepEqual(res.body.manifests.map((m: { digest: string }) => m.digest).sort(), [pushed.idx, pushed.sbom].sort());
  });

  it('an empty artifactType counts as missing: an image manifest shows config.mediaType, an index none', async () => {
    const other = digestOf('another subject');
    const put = async (body: string, type: string) => {
      const res = await request(t.app).put(`/v2/app/manifests/${digestOf(body)}`).set('Content-Type', type).send(body);
      assert.equal(res.status, 201, res.text);
    };
    const subjectField = { mediaType: MediaType.OciManifest, digest: other, size: 100 };
    await put(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, artifactType: '',
      config: { mediaType: 'application/vnd.example.empty-type.config', digest: empty, size: 2 }, layers: [], subject: subjectField }), MediaType.OciManifest);
    await put(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, artifactType: '', manifests: [], subject: subjectField }), MediaType.OciIndex);
    const res = await request(t.app).get(`/v2/app/referrers/${other}`);
    const byType = Object.fromEntries(res.body.manifests.map((m: { mediaType: string }) => [m.mediaType, m]));
    assert.equal(byType[MediaType.OciManifest].artifactType, 'application/vnd.example.empty-type.config');
    assert.ok(!('artifactType' in byType[MediaType.OciIndex]));
  });

  it('an unknown subject → 200 with an empty index', async () => {
    const res = await request(t.app).get(`/v2/app/referrers/${digestOf('unknown')}`);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.manifests, []);
  });

  it('deleting a referrer removes it from the list', async () => {
    assert.equal((await request(t.app).delete(`/v2/app/manifests/${pushed.sig}`)).status, 202);
    const res = await request(t.app).get(`/v2/app/referrers/${subject}`);
    assert.equal(res.body.manifests.length, 2);
    assert.ok(!res.body.manifests.some((m: { digest: string }) => m.digest === pushed.sig));
  });

  it('a referrer with megabytes of annotations is listed without them; the others keep theirs', async () => {
    const big = JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, artifactType: 'application/vnd.example.big',
      config: { mediaType: MediaType.OciEmpty, digest: empty, size: 2 }, layers: [],
      subject: { mediaType: MediaType.OciManifest, digest: subject, size: 100 }, annotations: { big: 'x'.repeat(1_500_000) } });
    const d = digestOf(big);
    assert.equal((await request(t.app).put(`/v2/app/manifests/${d}`).set('Content-Type', MediaType.OciManifest).send(big)).status, 201);
    const res = await request(t.app).get(`/v2/app/referrers/${subject}`);
    assert.equal(res.status, 200, res.text);
    const listed = (res.body as { manifests: Array<{ digest: string; artifactType?: string; annotations?: Record<string, string> }> }).manifests;
    const hit = listed.find((m) => m.digest === d);
    assert.deepEqual([hit?.artifactType, hit?.annotations], ['application/vnd.example.big', undefined]);
    assert.equal(listed.find((m) => m.digest === pushed.sbom)?.annotations?.['test.label'], 'sbom');
    assert.equal((await request(t.app).delete(`/v2/app/manifests/${d}`)).status, 202);
  });

  it('a malformed digest → 400 DIGEST_INVALID', async () => {
    assert.equal(errorCode(await request(t.app).get('/v2/app/referrers/sha256:nope')), 'DIGEST_INVALID');
  });
});
