// The client against a registry with a private CA (--ca-cert and certs.d), and copy --referrers.
import assert from 'node:assert/strict';
import { lookup } from 'node:dns/promises';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { digestOf } from '../../oci/digest.js';
import { MediaType } from '../../oci/media-types.js';
import { createImageLayout, type ImageLayout } from '../fixtures/oci-layout.js';
import { runCli } from '../helpers/cli.js';
import { startTestServer, type TestServer } from '../helpers/registry.js';

// The machine's own name resolves to loopback here, but is not "localhost" or an IP, so the client
// treats it as a real remote registry: TLS must verify.
const name = hostname();
const resolvable = await lookup(name).then((a) => a.address.startsWith('127.'), () => false);

describe('berth client: private CA and referrers', () => {
  let work: string;
  let tls: TestServer;
  let plain: TestServer;
  let image: ImageLayout;
  let env: Record<string, string>;
  const cli = (args: string[], extra: Record<string, string> = {}) => runCli(args, { env: { ...env, ...extra }, timeoutMs: 120_000 });

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-client-tls-'));
    env = { HOME: work, DOCKER_CONFIG: join(work, 'docker'), XDG_RUNTIME_DIR: join(work, 'run'), BERTH_STORE: join(work, 'store'), BERTH_ROOT: join(work, 'runtime'),
      BERTH_CERTS_D: join(work, 'certs.d'), BERTH_RETRY_BASE_MS: '20' };
    tls = await startTestServer({ REGISTRY_HTTP_TLS_SELFSIGNED: 'true', REGISTRY_HTTP_TLS_DIRECTORY: join(work, 'tls') });
    plain = await startTestServer();
    image = await createImageLayout(join(work, 'src'), { tag: 'v1', layers: [{ files: { 'etc/hello': 'tls\n' } }] });
  });
  after(async () => {
    await tls?.stop();
    await plain?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('a registry with an untrusted certificate is refused (exit 5); --ca-cert and certs.d make it trusted', { skip: resolvable ? false : `${name} does not resolve to loopback here` }, async () => {
    const host = `${name}:${new URL(tls.url).port}`;
    const refused = await cli(['push', `oci:${image.dir}:v1`, `${host}/tls/app:v1`]);
    assert.equal(refused.code, 5, refused.stderr);
    assert.match(refused.stderr, /TLS error.*--ca-cert/);
    const ca = join(work, 'tls', 'ca', 'ca.crt');
    const withCa = await cli(['push', '--ca-cert', ca, `oci:${image.dir}:v1`, `${host}/tls/app:v1`]);
    assert.equal(withCa.code, 0, withCa.stderr);
    await mkdir(join(work, 'certs.d', host), { recursive: true });
    await copyFile(ca, join(work, 'certs.d', host, 'ca.crt'));
    const viaCertsD = await cli(['digest', `${host}/tls/app:v1`]);
    assert.equal(viaCertsD.code, 0, viaCertsD.stderr);
    assert.equal(viaCertsD.stdout.trim(), image.manifest.descriptor.digest);
  });

  it('copy --referrers brings the signatures and SBOMs that refer to the image', async () => {
    assert.equal((await cli(['push', `oci:${image.dir}:v1`, `${plain.host}/ref/src:v1`])).code, 0);
    const subject = image.manifest.descriptor;
    const empty = '{}';
    assert.equal((await fetch(`${plain.url}/v2/ref/src/blobs/uploads/?digest=${digestOf(empty)}`, { method: 'POST', body: empty })).status, 201);
    const sbom = JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, artifactType: 'application/vnd.example.sbom',
      config: { mediaType: MediaType.OciEmpty, digest: digestOf(empty), size: 2 },
      layers: [{ mediaType: MediaType.OciEmpty, digest: digestOf(empty), size: 2 }],
      subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size } });
    const put = await fetch(`${plain.url}/v2/ref/src/manifests/${digestOf(sbom)}`, { method: 'PUT', body: sbom, headers: { 'Content-Type': MediaType.OciManifest } });
    assert.equal(put.status, 201);

    const without = await cli(['copy', `${plain.host}/ref/src:v1`, `${plain.host}/ref/plain:v1`]);
    assert.equal(without.code, 0, without.stderr);
    const none = await (await fetch(`${plain.url}/v2/ref/plain/referrers/${subject.digest}`)).json() as { manifests: unknown[] };
    assert.deepEqual(none.manifests, [], 'referrers are copied only when asked');

    const r = await cli(['copy', '--referrers', '--json', `${plain.host}/ref/src:v1`, `${plain.host}/ref/dst:v1`]);
    assert.equal(r.code, 0, r.stderr);
    const got = await (await fetch(`${plain.url}/v2/ref/dst/referrers/${subject.digest}`)).json() as { manifests: { digest: string; artifactType: string }[] };
    assert.deepEqual(got.manifests.map((m) => [m.digest, m.artifactType]), [[digestOf(sbom), 'application/vnd.example.sbom']]);
  });
});
