// The berth client against Debian's docker-registry 2.8 (distribution), with and without auth,
// copies between distribution and berth, and OCI layouts exchanged with skopeo and umoci.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { collectBlobs, createImageLayout, createMultiArchLayout, resolveTag, seededRandomBytes, type ImageLayout, type MultiArchLayout } from '../fixtures/oci-layout.js';
import { sameImage } from '../fixtures/same-image.js';
import { runCli } from '../helpers/cli.js';
import { startTestServer, type TestServer } from '../helpers/registry.js';
import { missingTools, run } from '../interop/tools.js';
import { DISTRIBUTION_BIN, startDistribution, type Distribution } from './client-peers.js';

const skip = existsSync(DISTRIBUTION_BIN) ? false : `not installed: ${DISTRIBUTION_BIN} (Debian package docker-registry)`;

describe('berth client against docker-registry 2.8', { skip }, () => {
  let dist: Distribution;
  let berth: TestServer;
  let work: string;
  let single: ImageLayout;
  let multi: MultiArchLayout;
  let env: Record<string, string>;
  const cli = (args: string[], extra: { env?: Record<string, string>; input?: string } = {}) =>
    runCli(args, { env: { ...env, ...extra.env }, input: extra.input, timeoutMs: 120_000 });

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-client-dist-'));
    env = { HOME: work, DOCKER_CONFIG: join(work, 'docker'), XDG_RUNTIME_DIR: join(work, 'run'), BERTH_STORE: join(work, 'store'), BERTH_ROOT: join(work, 'runtime'), BERTH_RETRY_BASE_MS: '20' };
    [dist, berth] = await Promise.all([startDistribution(), startTestServer()]);
    single = await createImageLayout(join(work, 'single'), {
      tag: 'v1',
      config: { Env: ['PATH=/bin'], Cmd: ['/bin/hello'] },
      layers: [
        { files: { 'etc/hello.txt': 'hello from berth\n' } },
        { files: { 'opt/noise.bin': seededRandomBytes(2 * 1024 * 1024, 'dist') } },
      ],
    });
    multi = await createMultiArchLayout(join(work, 'multi'), { tag: 'multi' });
  });
  after(async () => {
    await Promise.all([dist?.stop(), berth?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('push, pull, tags and delete', async () => {
    const push = await cli(['push', `oci:${single.dir}:v1`, `${dist.host}/org/team/app:v1`]);
    assert.equal(push.code, 0, push.stderr);
    const out = join(work, 'pulled');
    const pull = await cli(['pull', `${dist.host}/org/team/app:v1`, `oci:${out}:v1`]);
    assert.equal(pull.code, 0, pull.stderr);
    await sameImage(single.dir, 'v1', out, 'v1');
    assert.equal((await cli(['tag', `${dist.host}/org/team/app:v1`, 'v2'])).code, 0);
    assert.deepEqual((await cli(['tags', `${dist.host}/org/team/app`])).stdout.trim().split('\n'), ['v1', 'v2']);
    const del = await cli(['delete', `${dist.host}/org/team/app:v2`]);
    assert.equal(del.code, 0, del.stderr);
    const after = await cli(['tags', '--json', `${dist.host}/org/team/app`]);
    assert.deepEqual(JSON.parse(after.stdout).tags ?? [], []);
  });

  it('multi-arch: push --all, pull one platform, digest', async () => {
    const push = await cli(['push', '--all', `oci:${multi.dir}:multi`, `${dist.host}/org/multi:m`]);
    assert.equal(push.code, 0, push.stderr);
    assert.equal((await cli(['digest', `${dist.host}/org/multi:m`])).stdout.trim(), multi.index.descriptor.digest);
    const arm = multi.images.find((i) => i.platform.architecture === 'arm64')!;
    const out = join(work, 'arm');
    const pull = await cli(['pull', '--platform', 'linux/arm64/v8', `${dist.host}/org/multi:m`, `oci:${out}:arm`]);
    assert.equal(pull.code, 0, pull.stderr);
    assert.equal((await resolveTag(out, 'arm')).digest, arm.manifest.descriptor.digest);
  });

  it('copies between distribution and berth both ways, the index with --all', async () => {
    const toBerth = await cli(['copy', '--all', `${dist.host}/org/multi:m`, `${berth.host}/mirror/multi:m`]);
    assert.equal(toBerth.code, 0, toBerth.stderr);
    assert.equal((await cli(['digest', `${berth.host}/mirror/multi:m`])).stdout.trim(), multi.index.descriptor.digest);
    const push = await cli(['push', `oci:${single.dir}:v1`, `${berth.host}/org/app:v1`]);
    assert.equal(push.code, 0, push.stderr);
    const toDist = await cli(['copy', '--json', `${berth.host}/org/app:v1`, `${dist.host}/from-berth/app:v1`]);
    assert.equal(toDist.code, 0, toDist.stderr);
    assert.equal(JSON.parse(toDist.stdout).digest, single.manifest.descriptor.digest);
    const out = join(work, 'roundtrip');
    assert.equal((await cli(['pull', `${dist.host}/from-berth/app:v1`, `oci:${out}:v1`])).code, 0);
    await sameImage(single.dir, 'v1', out, 'v1');
  });

  it('what berth pull writes is read by skopeo and unpacked by umoci', { skip: missingTools({ skopeo: 'skopeo', umoci: 'umoci' }) }, async () => {
    const out = join(work, 'for-tools');
    assert.equal((await cli(['pull', `${dist.host}/from-berth/app:v1`, `oci:${out}:v1`])).code, 0);
    const inspect = JSON.parse((await run('skopeo', ['--insecure-policy', 'inspect', `oci:${out}:v1`])).stdout);
    assert.equal(inspect.Digest, single.manifest.descriptor.digest);
    assert.equal(inspect.Layers.length, 2);
    const copy = join(work, 'skopeo-copy');
    await run('skopeo', ['--insecure-policy', 'copy', `oci:${out}:v1`, `oci:${copy}:v1`]);
    await sameImage(out, 'v1', copy, 'v1');
    const bundle = join(work, 'bundle');
    await run('umoci', ['unpack', '--rootless', '--image', `${out}:v1`, bundle]);
    assert.equal(await readFile(join(bundle, 'rootfs', 'etc', 'hello.txt'), 'utf8'), 'hello from berth\n');
    const config = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8'));
    assert.deepEqual(config.process.args, ['/bin/hello']);
  });

  it('what skopeo writes is pushed by berth', { skip: missingTools({ skopeo: 'skopeo' }) }, async () => {
    const skopeoOut = join(work, 'skopeo-written');
    await run('skopeo', ['--insecure-policy', 'copy', `oci:${multi.dir}:multi`, `oci:${skopeoOut}:s1`, '--all']);
    const push = await cli(['push', '--all', `oci:${skopeoOut}:s1`, `${dist.host}/from-skopeo/multi:s1`]);
    assert.equal(push.code, 0, push.stderr);
    assert.equal((await cli(['digest', `${dist.host}/from-skopeo/multi:s1`])).stdout.trim(), (await resolveTag(skopeoOut, 's1')).digest);
  });
});

for (const auth of ['htpasswd', 'token'] as const) {
  describe(`berth client against docker-registry 2.8 with ${auth} auth`, { skip }, () => {
    let dist: Distribution;
    let work: string;
    let single: ImageLayout;
    let env: Record<string, string>;
    const cli = (args: string[], input?: string) => runCli(args, { env, input, timeoutMs: 120_000 });

    before(async () => {
      work = await mkdtemp(join(tmpdir(), `berth-client-${auth}-`));
      env = { HOME: work, DOCKER_CONFIG: join(work, 'docker'), XDG_RUNTIME_DIR: join(work, 'run'), BERTH_STORE: join(work, 'store'), BERTH_ROOT: join(work, 'runtime'), BERTH_RETRY_BASE_MS: '20' };
      dist = await startDistribution({ auth, users: { alice: 'wonder land:1' } });
      single = await createImageLayout(join(work, 'single'), { tag: 'v1', layers: [{ files: { 'a.txt': auth } }] });
    });
    after(async () => {
      await dist?.stop();
      if (work) await rm(work, { recursive: true, force: true });
    });

    it('anonymous push → exit 4 with a hint to log in', async () => {
      const r = await cli(['push', `oci:${single.dir}:v1`, `${dist.host}/team/app:v1`]);
      assert.equal(r.code, 4, r.stderr);
      assert.match(r.stderr, /berth login/);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    });

    it('login with a wrong password → exit 4, nothing stored', async () => {
      const r = await cli(['login', dist.host, '-u', 'alice', '--password-stdin'], 'wrong\n');
      assert.equal(r.code, 4, r.stderr);
      assert.match(r.stderr, /^berth: .*incorrect username or password/);
      assert.equal(existsSync(join(work, 'docker', 'config.json')), false);
    });

    it('login → push, pull, tags, delete work; logout → denied again', async () => {
      const login = await cli(['login', dist.host, '-u', 'alice', '--password-stdin'], 'wonder land:1\n');
      assert.equal(login.code, 0, login.stderr);
      const stored = JSON.parse(await readFile(join(work, 'docker', 'config.json'), 'utf8'));
      assert.equal(Buffer.from(stored.auths[dist.host].auth, 'base64').toString(), 'alice:wonder land:1');
      assert.doesNotMatch(login.stdout + login.stderr, /wonder land/, 'the password is never printed');

      assert.equal((await cli(['push', `oci:${single.dir}:v1`, `${dist.host}/team/app:v1`])).code, 0);
      const out = join(work, 'out');
      const pull = await cli(['pull', `${dist.host}/team/app:v1`, `oci:${out}:v1`]);
      assert.equal(pull.code, 0, pull.stderr);
      await sameImage(single.dir, 'v1', out, 'v1');
      assert.equal((await cli(['tags', `${dist.host}/team/app`])).stdout.trim(), 'v1');
      assert.equal((await cli(['copy', `${dist.host}/team/app:v1`, `${dist.host}/team/copy:v1`])).code, 0);
      assert.equal((await cli(['delete', `${dist.host}/team/copy:v1`])).code, 0);

      assert.equal((await cli(['logout', dist.host])).code, 0);
      assert.equal((await cli(['tags', `${dist.host}/team/app`])).code, 4);
    });
  });
}
