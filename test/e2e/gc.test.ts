import assert from 'node:assert/strict';
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { digestOf } from '../../oci/digest.js';
import { MediaType } from '../../oci/media-types.js';
import { runCli } from '../helpers/cli.js';
import { startTestServer, tempDir } from '../helpers/registry.js';

describe('berth gc (the real CLI) next to a live registry', () => {
  it('dry-run lists, a real run deletes and reports bytes freed; the registry keeps serving what is tagged', async () => {
    const server = await startTestServer();
    try {
      const push = async (name: string, content: string) => {
        const d = digestOf(content);
        const r = await fetch(`${server.url}/v2/${name}/blobs/uploads/?digest=${d}`, { method: 'POST', body: content });
        assert.equal(r.status, 201);
        return d;
      };
      const cfg = await push('app', '{}');
      const layer = await push('app', 'kept layer');
      const orphan = await push('app', 'orphan layer');
      const manifest = JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest,
        config: { mediaType: MediaType.OciConfig, digest: cfg, size: 2 },
        layers: [{ mediaType: MediaType.OciLayerTarGzip, digest: layer, size: 10 }] });
      assert.equal((await fetch(`${server.url}/v2/app/manifests/v1`, { method: 'PUT', body: manifest, headers: { 'Content-Type': MediaType.OciManifest } })).status, 201);

      const young = await runCli(['gc', '--root', server.root]);
      assert.equal(young.code, 0, young.stderr);
      assert.match(young.stdout, /deleted 0 manifest\(s\) and 0 blob\(s\)/, 'the grace period protects fresh content');

      const dry = await runCli(['gc', '--root', server.root, '--grace', '0s', '--dry-run']);
      assert.equal(dry.code, 0, dry.stderr);
      assert.match(dry.stdout, new RegExp(`would delete blob ${orphan} \\(12 bytes\\)`));
      assert.match(dry.stdout, /would delete 0 manifest\(s\) and 1 blob\(s\), 12 bytes/);

      // an abandoned upload: the dry run reports its purge, as the real run does it
      const session = (await fetch(`${server.url}/v2/app/blobs/uploads/`, { method: 'POST' })).headers.get('location')!;
      const dryUploads = await runCli(['gc', '--root', server.root, '--grace', '0s', '--dry-run', '--uploads', '0s']);
      assert.equal(dryUploads.code, 0, dryUploads.stderr);
      assert.match(dryUploads.stdout, new RegExp(`would purge upload app/${session.split('/').pop()}`));
      assert.match(dryUploads.stdout, /would purge 1 upload\(s\)/);
      assert.equal((await fetch(`${server.url}${session}`)).status, 204, 'the dry run purged nothing');

      const run = await runCli(['gc', '--root', server.root, '--grace', '0s', '--json', '--uploads', '0s']);
      assert.equal(run.code, 0, run.stderr);
      const report = JSON.parse(run.stdout);
      assert.deepEqual(report.blobs, [{ digest: orphan, size: 12 }]);
      assert.equal(report.bytesFreed, 12);
      assert.deepEqual(report.uploadsPurged, [`app/${session.split('/').pop()}`]);
      assert.equal((await fetch(`${server.url}/v2/app/blobs/${orphan}`, { method: 'HEAD' })).status, 404);
      assert.equal((await fetch(`${server.url}/v2/app/blobs/${layer}`)).status, 200);
      assert.equal((await fetch(`${server.url}/v2/app/manifests/v1`)).status, 200);

      const bad = await runCli(['gc', '--root', server.root, '--grace', 'soon']);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /^berth: --grace/);
    } finally {
      await server.stop();
    }
  });

  it('a storage root that does not exist is an error, not a new empty registry reported clean', async () => {
    const parent = await tempDir();
    try {
      const missing = join(parent, 'mistyped');
      const run = await runCli(['gc', '--root', missing]);
      assert.equal(run.code, 2, run.stdout);
      assert.equal(run.stderr, `berth: ${missing}: no such storage root directory\n`);
      assert.equal(await stat(missing).then(() => 'created', () => 'absent'), 'absent');
    } finally {
      await rm(parent, { recursive: true, force: true });
    }
  });

  it('an S3 that does not answer is one line on stderr (no SDK notice about future Node versions), exit 1', async () => {
    const env = { REGISTRY_STORAGE: 's3', REGISTRY_STORAGE_S3_BUCKET: 'b', REGISTRY_STORAGE_S3_REGIONENDPOINT: 'http://127.0.0.1:9',
      REGISTRY_STORAGE_S3_ACCESSKEY: 'k', REGISTRY_STORAGE_S3_SECRETKEY: 's', REGISTRY_STORAGE_S3_MAXATTEMPTS: '1' };
    const run = await runCli(['gc'], { env });
    assert.equal(run.code, 1, run.stderr);
    assert.equal(run.stderr.split('\n').filter(Boolean).length, 1, run.stderr);
    assert.match(run.stderr, /^berth: /);
  });
});
