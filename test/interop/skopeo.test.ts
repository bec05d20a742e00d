// skopeo (containers/image, the client behind podman/buildah/cri-o) against a real berth server:
// push OCI layouts built here, pull them back, and require byte-identical manifests, indexes and blobs.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  collectBlobs,
  createImageLayout,
  createMultiArchLayout,
  MediaTypes,
  readBlob,
  resolveTag,
  seededRandomBytes,
  sha256,
  type ImageLayout,
  type MultiArchLayout,
} from '../fixtures/oci-layout.js';
import { startTestServer, type TestServer } from '../helpers/registry.js';
import { missingTools, run } from './tools.js';

const skip = missingTools({ skopeo: 'skopeo' });
const REPO = 'org/team/app';

/** skopeo with the options every call here needs (no signature policy file required; a private auth file). */
function skopeo(work: string, args: string[]) {
  return run('skopeo', ['--insecure-policy', ...args], {
    timeoutMs: 60_000,
    env: { ...process.env, REGISTRY_AUTH_FILE: join(work, 'auth.json'), TMPDIR: work },
  });
}

/** Every blob reachable from `tag` in layout `a` is in layout `b` under the same tag, with the same bytes, and nothing else. */
async function assertSameGraph(srcDir: string, dstDir: string, tag: string): Promise<void> {
  const srcRoot = await resolveTag(srcDir, tag);
  const dstRoot = await resolveTag(dstDir, tag);
  assert.equal(dstRoot.digest, srcRoot.digest, 'tagged manifest digest changed in the round trip');
  assert.equal(dstRoot.mediaType, srcRoot.mediaType);
  assert.equal(dstRoot.size, srcRoot.size);
  const src = await collectBlobs(srcDir, srcRoot);
  const dst = await collectBlobs(dstDir, dstRoot);
  assert.deepEqual([...dst.keys()].sort(), [...src.keys()].sort(), 'a different set of blobs came back');
  for (const [digest, blob] of src) {
    const other = dst.get(digest)!;
    assert.ok(other.bytes.equals(blob.bytes), `blob ${digest} differs`);
    assert.equal(other.descriptor.mediaType, blob.descriptor.mediaType, `media type of ${digest}`);
  }
}

describe('skopeo interop', { skip }, () => {
  let server: TestServer;
  let work: string;
  let single: ImageLayout;
  let multi: MultiArchLayout;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-skopeo-'));
    server = await startTestServer();
    single = await createImageLayout(join(work, 'src-single'), {
      tag: 'v1',
      config: { Env: ['PATH=/bin'], Cmd: ['/bin/app'], Labels: { 'org.example.test': 'skopeo' } },
      annotations: { 'org.opencontainers.image.title': 'berth skopeo fixture' },
      layers: [
        { files: { 'etc/os-release': 'ID=berth\n', 'etc/motd': 'hello\n' } },
        { files: { 'opt/random.bin': seededRandomBytes(6 * 1024 * 1024, 'skopeo-big') }, createdBy: '6 MiB of noise' },
        { files: { 'bin/app': '#!/bin/sh\necho app\n' }, entries: [{ type: 'symlink', path: 'bin/app-link', target: 'app' }], compression: 'none' },
      ],
    });
    multi = await createMultiArchLayout(join(work, 'src-multi'), { tag: 'multi' });
  });

  after(async () => {
    await server?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('copies a single-manifest OCI layout to berth and back, byte for byte', async () => {
    await skopeo(work, ['copy', '--preserve-digests', '--dest-tls-verify=false', `oci:${single.dir}:v1`, `docker://${server.host}/${REPO}:v1`]);

    // What berth serves is exactly what was pushed.
    const res = await fetch(`${server.url}/v2/${REPO}/manifests/v1`, { headers: { Accept: MediaTypes.ImageManifest } });
    assert.equal(res.status, 200);
    const body = Buffer.from(await res.arrayBuffer());
    assert.ok(body.equals(single.manifest.bytes), 'manifest bytes served by berth differ from the pushed ones');
    assert.equal(res.headers.get('docker-content-digest'), single.manifest.descriptor.digest);
    assert.equal(res.headers.get('content-type'), MediaTypes.ImageManifest);

    const out = join(work, 'dst-single');
    await skopeo(work, ['copy', '--preserve-digests', '--all', '--src-tls-verify=false', `docker://${server.host}/${REPO}:v1`, `oci:${out}:v1`]);
    await assertSameGraph(single.dir, out, 'v1');
    // The uncompressed layer stays uncompressed (skopeo would otherwise be free to compress it on the way out).
    assert.equal((await collectBlobs(out, await resolveTag(out, 'v1'))).get(single.layers[2]!.descriptor.digest)?.descriptor.mediaType, MediaTypes.LayerTar);
  });

  it('copies between two repositories of berth by cross-repository blob mount', async () => {
    const dest = 'org/other';
    const r = await skopeo(work, ['--debug', 'copy', '--preserve-digests', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${server.host}/${REPO}:v1`, `docker://${server.host}/${dest}:v1`]);
    // containers/image tries POST …/blobs/uploads/?mount=<digest>&from=<repo> for layers it knows live in REPO
    // (its blob-info cache learnt that during the pull above) and logs "... mount OK" on a 201.
    const mountsTried = r.stderr.match(/Trying to mount/g)?.length ?? 0;
    const mountsOk = r.stderr.match(/\.\.\. mount OK/g)?.length ?? 0;
    assert.ok(mountsTried > 0, 'skopeo did not try to mount any blob');
    assert.equal(mountsOk, mountsTried, `some mounts fell back to uploads:\n${r.stderr.split('\n').filter((l) => /mount/i.test(l)).join('\n')}`);

    const res = await fetch(`${server.url}/v2/${dest}/manifests/v1`, { headers: { Accept: MediaTypes.ImageManifest } });
    assert.equal(res.status, 200);
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(single.manifest.bytes));
    for (const d of [single.config.descriptor, ...single.layers.map((l) => l.descriptor)]) {
      const head = await fetch(`${server.url}/v2/${dest}/blobs/${d.digest}`, { method: 'HEAD' });
      assert.equal(head.status, 200, `HEAD ${d.digest} in ${dest}`);
      assert.equal(head.headers.get('content-length'), String(d.size));
    }
  });

  it('copies a multi-arch image index with --all and back, byte for byte', async () => {
    await skopeo(work, ['copy', '--all', '--preserve-digests', '--dest-tls-verify=false', `oci:${multi.dir}:multi`, `docker://${server.host}/${REPO}:multi`]);

    const res = await fetch(`${server.url}/v2/${REPO}/manifests/multi`, { headers: { Accept: MediaTypes.ImageIndex } });
    assert.equal(res.status, 200);
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(multi.index.bytes), 'index bytes served by berth differ from the pushed ones');
    assert.equal(res.headers.get('docker-content-digest'), multi.index.descriptor.digest);
    assert.equal(res.headers.get('content-type'), MediaTypes.ImageIndex);

    const out = join(work, 'dst-multi');
    await skopeo(work, ['copy', '--all', '--preserve-digests', '--src-tls-verify=false', `docker://${server.host}/${REPO}:multi`, `oci:${out}:multi`]);
    await assertSameGraph(multi.dir, out, 'multi');
    // Both platform manifests came back (collectBlobs walked them); and the index still names both platforms.
    const index = JSON.parse((await readBlob(out, multi.index.descriptor.digest)).toString('utf8')) as { manifests: { platform?: { architecture: string } }[] };
    assert.deepEqual(index.manifests.map((m) => m.platform?.architecture), ['amd64', 'arm64']);

    // A single platform can be copied by digest, too.
    const arm = multi.images[1]!;
    const outArm = join(work, 'dst-arm');
    await skopeo(work, ['copy', '--preserve-digests', '--src-tls-verify=false', `docker://${server.host}/${REPO}@${arm.manifest.descriptor.digest}`, `oci:${outArm}:arm`]);
    const armRoot = await resolveTag(outArm, 'arm');
    assert.equal(armRoot.digest, arm.manifest.descriptor.digest);
    assert.equal((await collectBlobs(outArm, armRoot)).size, 2 + arm.layers.length);
  });

  it('stores a manifest converted to Docker schema 2 as such (--format v2s2)', async () => {
    const dest = 'org/team/docker';
    await skopeo(work, ['copy', '--format', 'v2s2', '--dest-tls-verify=false', `oci:${single.dir}:v1`, `docker://${server.host}/${dest}:v2s2`]);
    const res = await fetch(`${server.url}/v2/${dest}/manifests/v2s2`, {
      headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json' },
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/vnd.docker.distribution.manifest.v2+json');
    const body = Buffer.from(await res.arrayBuffer());
    assert.equal(res.headers.get('docker-content-digest'), sha256(body));
    const m = JSON.parse(body.toString('utf8')) as { mediaType: string; config: { digest: string; mediaType: string }; layers: { digest: string }[] };
    assert.equal(m.config.mediaType, 'application/vnd.docker.container.image.v1+json');
    assert.equal(m.config.digest, single.config.descriptor.digest, 'the config blob is reused as is');
    // The two gzip layers are reused; the uncompressed one is compressed on the way (Docker schema 2 has no plain-tar type).
    assert.deepEqual(m.layers.slice(0, 2).map((l) => l.digest), single.layers.slice(0, 2).map((l) => l.descriptor.digest));

    const out = join(work, 'dst-docker');
    await skopeo(work, ['copy', '--preserve-digests', '--src-tls-verify=false', `docker://${server.host}/${dest}:v2s2`, `oci:${out}:v2s2`]);
    const root = await resolveTag(out, 'v2s2');
    assert.equal(root.digest, sha256(body), 'the Docker manifest came back unchanged');
    const blobs = await collectBlobs(out, root);
    for (const l of m.layers) assert.ok(blobs.has(l.digest), `layer ${l.digest} came back`);
  });

  it('skopeo inspect reads manifests, configs and indexes', async () => {
    const raw = await skopeo(work, ['inspect', '--tls-verify=false', '--raw', `docker://${server.host}/${REPO}:v1`]);
    assert.equal(sha256(raw.stdout), single.manifest.descriptor.digest);

    const config = await skopeo(work, ['inspect', '--tls-verify=false', '--config', '--raw', `docker://${server.host}/${REPO}:v1`]);
    assert.equal(sha256(config.stdout), single.config.descriptor.digest);

    const info = JSON.parse((await skopeo(work, ['inspect', '--tls-verify=false', `docker://${server.host}/${REPO}:v1`])).stdout) as {
      Name: string; Digest: string; RepoTags: string[]; Architecture: string; Os: string; Layers: string[]; Labels: Record<string, string>;
    };
    assert.equal(info.Name, `${server.host}/${REPO}`);
    assert.equal(info.Digest, single.manifest.descriptor.digest);
    assert.deepEqual(info.Layers, single.layers.map((l) => l.descriptor.digest));
    assert.equal(info.Architecture, single.platform.architecture);
    assert.equal(info.Os, 'linux');
    assert.equal(info.Labels['org.example.test'], 'skopeo');
    assert.deepEqual([...info.RepoTags].sort(), ['multi', 'v1']);

    const rawIndex = await skopeo(work, ['inspect', '--tls-verify=false', '--raw', `docker://${server.host}/${REPO}:multi`]);
    assert.equal(sha256(rawIndex.stdout), multi.index.descriptor.digest);
    // Without --raw, skopeo resolves the index to one platform: ask for arm64 explicitly.
    const arm = JSON.parse((await skopeo(work, ['--override-arch', 'arm64', '--override-variant', 'v8', 'inspect', '--tls-verify=false', `docker://${server.host}/${REPO}:multi`])).stdout) as { Architecture: string; Layers: string[] };
    assert.equal(arm.Architecture, 'arm64');
    assert.deepEqual(arm.Layers, multi.images[1]!.layers.map((l) => l.descriptor.digest));
  });

  it('skopeo list-tags lists the nested repository\'s tags', async () => {
    const out = JSON.parse((await skopeo(work, ['list-tags', '--tls-verify=false', `docker://${server.host}/${REPO}`])).stdout) as { Repository: string; Tags: string[] };
    assert.equal(out.Repository, `${server.host}/${REPO}`);
    assert.deepEqual([...out.Tags].sort(), ['multi', 'v1']);
  });
});
