// podman against a real berth server: images pushed with skopeo (from layouts built here) pull with podman,
// and podman's view of them (IDs, digests, layers, platform) is the one that was pushed.
// podman runs on a private store (--root/--runroot/--tmpdir/--network-config-dir in a temp dir) so the host's
// container storage is never touched; flags per ../shared/FACTS.md.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  createBusyboxLayout,
  createImageLayout,
  createMultiArchLayout,
  findBusybox,
  hostPlatform,
  type ImageLayout,
  type MultiArchLayout,
} from '../fixtures/oci-layout.js';
import { startTestServer, type TestServer } from '../helpers/registry.js';
import { missingTools, run, which } from './tools.js';

const skip = missingTools({ podman: 'podman', skopeo: 'skopeo' });
const busybox = findBusybox();
const REPO = 'ns/team/app';
const MULTI_REPO = 'ns/multi';

interface PodmanImage {
  Id: string;
  Digest: string;
  RepoTags: string[];
  RepoDigests: string[];
  Architecture: string;
  Os: string;
  Config: { Cmd?: string[]; Env?: string[] };
  RootFS: { Type: string; Layers: string[] };
  ManifestType: string;
}

describe('podman interop', { skip }, () => {
  let server: TestServer;
  let work: string;
  let image: ImageLayout;
  let multi: MultiArchLayout;
  let podmanEnv: NodeJS.ProcessEnv;
  let globals: string[];

  const podman = (args: string[], timeoutMs = 60_000) => run('podman', [...globals, ...args], { env: podmanEnv, timeoutMs });
  const inspect = async (ref: string): Promise<PodmanImage> => {
    const out = JSON.parse((await podman(['image', 'inspect', ref])).stdout) as PodmanImage[];
    assert.equal(out.length, 1);
    return out[0]!;
  };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-podman-'));
    for (const d of ['root', 'runroot', 'tmp', 'net', 'blobtmp']) await mkdir(join(work, d));
    globals = [
      '--root', join(work, 'root'),
      '--runroot', join(work, 'runroot'),
      '--tmpdir', join(work, 'tmp'),
      '--network-config-dir', join(work, 'net'),
      '--cgroup-manager', 'cgroupfs',
      '--events-backend', 'file',
    ];
    // TMPDIR: where containers/image stages blobs during a pull (default /var/tmp).
    // An empty auth file of our own: podman insists it exists; the host's credentials are never read.
    await writeFile(join(work, 'auth.json'), '{}');
    podmanEnv = { ...process.env, TMPDIR: join(work, 'blobtmp'), REGISTRY_AUTH_FILE: join(work, 'auth.json') };

    server = await startTestServer();
    image = busybox
      ? await createBusyboxLayout(join(work, 'src'), {
          tag: 'v1',
          extraLayers: [{ files: { 'etc/berth-release': 'podman interop\n' } }],
        })
      // No busybox-static: still a valid image to pull, just not a runnable one.
      : await createImageLayout(join(work, 'src'), { tag: 'v1', layers: [{ files: { 'etc/a': 'a\n' } }, { files: { 'etc/b': 'b\n' } }] });
    multi = await createMultiArchLayout(join(work, 'src-multi'), { tag: 'multi' });

    const skopeoEnv = { ...process.env, TMPDIR: work, REGISTRY_AUTH_FILE: join(work, 'auth.json') };
    await run('skopeo', ['--insecure-policy', 'copy', '--preserve-digests', '--dest-tls-verify=false', `oci:${image.dir}:v1`, `docker://${server.host}/${REPO}:v1`], { env: skopeoEnv });
    await run('skopeo', ['--insecure-policy', 'copy', '--all', '--preserve-digests', '--dest-tls-verify=false', `oci:${multi.dir}:multi`, `docker://${server.host}/${MULTI_REPO}:multi`], { env: skopeoEnv });
  });

  after(async () => {
    if (globals) {
      await podman(['rm', '--all', '--force', '--time', '0']).catch(() => undefined);
      await podman(['rmi', '--all', '--force']).catch(() => undefined);
      // Nothing of the private store may stay mounted before it is deleted.
      const mounts = (await readFile('/proc/self/mounts', 'utf8')).split('\n').map((l) => l.split(' ')[1] ?? '').filter((m) => work && m.startsWith(work));
      for (const m of mounts.reverse()) await run('umount', ['-l', m]).catch(() => undefined);
    }
    await server?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('pulls an image pushed to berth; inspect shows its digest, config and layers', async () => {
    const ref = `${server.host}/${REPO}:v1`;
    const pulled = await podman(['pull', '--quiet', '--tls-verify=false', ref]);
    const id = image.config.descriptor.digest.slice('sha256:'.length);
    assert.equal(pulled.stdout.trim(), id, 'podman pull printed another image ID than the config digest');

    const info = await inspect(ref);
    assert.equal(info.Id, id);
    assert.equal(info.Digest, image.manifest.descriptor.digest);
    assert.ok(info.RepoDigests.includes(`${server.host}/${REPO}@${image.manifest.descriptor.digest}`), `RepoDigests: ${info.RepoDigests.join(', ')}`);
    assert.ok(info.RepoTags.includes(ref), `RepoTags: ${info.RepoTags.join(', ')}`);
    assert.equal(info.ManifestType, 'application/vnd.oci.image.manifest.v1+json');
    assert.deepEqual(info.RootFS.Layers, image.layers.map((l) => l.diffId));
    assert.equal(info.Architecture, image.platform.architecture);
    assert.equal(info.Os, 'linux');
    if (busybox) assert.deepEqual(info.Config.Cmd, ['sh']);

    // The same image by digest is already there: same ID, nothing new.
    const byDigest = await podman(['pull', '--quiet', '--tls-verify=false', `${server.host}/${REPO}@${image.manifest.descriptor.digest}`]);
    assert.equal(byDigest.stdout.trim(), id);
  });

  it('pulls a multi-arch index: the host platform by default, another one with --platform', async () => {
    const ref = `${server.host}/${MULTI_REPO}:multi`;
    const host = hostPlatform();
    const native = multi.images.find((i) => i.platform.architecture === host.architecture);
    const indexDigest: string = multi.index.descriptor.digest;

    if (native) {
      await podman(['pull', '--quiet', '--tls-verify=false', ref]);
      const info = await inspect(ref);
      assert.equal(info.Id, native.config.descriptor.digest.slice('sha256:'.length));
      // podman 4.3 reports the digest it pulled by (the index's) as .Digest; the instance's is in RepoDigests.
      assert.ok([indexDigest, native.manifest.descriptor.digest].includes(info.Digest), `Digest: ${info.Digest}`);
      assert.equal(info.Architecture, host.architecture);
      assert.deepEqual(info.RootFS.Layers, native.layers.map((l) => l.diffId));
      // containers/image records both the index digest and the instance digest.
      assert.ok(info.RepoDigests.includes(`${server.host}/${MULTI_REPO}@${indexDigest}`), `RepoDigests: ${info.RepoDigests.join(', ')}`);
      assert.ok(info.RepoDigests.includes(`${server.host}/${MULTI_REPO}@${native.manifest.descriptor.digest}`));
    }

    const arm = multi.images.find((i) => i.platform.architecture === 'arm64')!;
    const id = (await podman(['pull', '--quiet', '--tls-verify=false', '--platform', 'linux/arm64/v8', ref])).stdout.trim();
    assert.equal(id, arm.config.descriptor.digest.slice('sha256:'.length));
    const info = await inspect(id);
    assert.equal(info.Architecture, 'arm64');
    assert.ok([indexDigest, arm.manifest.descriptor.digest].includes(info.Digest), `Digest: ${info.Digest}`);
    assert.ok(info.RepoDigests.includes(`${server.host}/${MULTI_REPO}@${arm.manifest.descriptor.digest}`), `RepoDigests: ${info.RepoDigests.join(', ')}`);
    assert.deepEqual(info.RootFS.Layers, arm.layers.map((l) => l.diffId));
  });

  it('runs `echo hi` in the pulled busybox image', {
    skip: !busybox ? 'busybox not installed (Debian package busybox-static): the test image is not runnable'
      : !which('runc') ? 'runc not installed (Debian package runc); crun does not work on this host\'s hybrid cgroups'
      : false,
  }, async () => {
    const r = await podman([
      'run', '--rm', '--runtime', 'runc', '--network', 'none',
      '--ulimit', 'nofile=16384:16384', '--ulimit', 'nproc=16384:16384',
      `${server.host}/${REPO}:v1`, 'sh', '-c', 'echo hi && cat /etc/berth-release',
    ]);
    assert.equal(r.stdout, 'hi\npodman interop\n');
  });

  it('podman rmi removes the pulled images', async () => {
    await podman(['rmi', `${server.host}/${REPO}:v1`]);
    await assert.rejects(podman(['image', 'exists', `${server.host}/${REPO}:v1`]));
    await podman(['rmi', '--all']);
    const left = (await podman(['images', '--quiet'])).stdout.trim();
    assert.equal(left, '', `images left: ${left}`);
  });
});
