// The berth client CLI against a berth registry: push, pull, copy, tags, catalog, inspect, digest,
// tag, delete, multi-arch, docker-archive both ways, chunked uploads, cross-repo mounts, errors.
import assert from 'node:assert/strict';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { collectBlobs, createImageLayout, createMultiArchLayout, readIndexJson, resolveTag, seededRandomBytes, type ImageLayout, type MultiArchLayout } from '../fixtures/oci-layout.js';
import { sameImage } from '../fixtures/same-image.js';
import { runCli } from '../helpers/cli.js';
import { startTestServer, type TestServer } from '../helpers/registry.js';

describe('berth client CLI against berth', () => {
  let server: TestServer;
  let work: string;
  let single: ImageLayout;
  let multi: MultiArchLayout;
  let env: Record<string, string>;
  const cli = (args: string[], extra: Record<string, string> = {}) => runCli(args, { env: { ...env, ...extra }, timeoutMs: 120_000 });

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-client-e2e-'));
    server = await startTestServer();
    env = { HOME: work, DOCKER_CONFIG: join(work, 'docker'), XDG_RUNTIME_DIR: join(work, 'run'), BERTH_STORE: join(work, 'store'), BERTH_ROOT: join(work, 'runtime'), BERTH_RETRY_BASE_MS: '20' };
    single = await createImageLayout(join(work, 'single'), {
      tag: 'v1',
      config: { Env: ['PATH=/bin'], Cmd: ['/bin/app'], Labels: { 'org.example': 'berth' } },
      layers: [
        { files: { 'etc/os-release': 'ID=berth\n' } },
        { files: { 'opt/big.bin': seededRandomBytes(3 * 1024 * 1024, 'client-e2e') } },
        { files: { 'bin/app': '#!/bin/sh\necho app\n' }, compression: 'none' },
      ],
    });
    multi = await createMultiArchLayout(join(work, 'multi'), { tag: 'multi' });
  });
  after(async () => {
    await server?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('push from an OCI layout, then again: the second push finds every blob there', async () => {
    const r = await cli(['push', `oci:${single.dir}:v1`, `${server.host}/org/team/app:v1`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`Digest: ${single.manifest.descriptor.digest}`));
    assert.match(r.stdout, /4 copied, 0 already there/);
    const again = await cli(['push', '--json', `oci:${single.dir}:v1`, `${server.host}/org/team/app:v1`]);
    assert.equal(again.code, 0, again.stderr);
    const j = JSON.parse(again.stdout);
    assert.equal(j.digest, single.manifest.descriptor.digest);
    assert.deepEqual(j.blobs, { total: 4, copied: 0, existed: 4, mounted: 0, resumed: 0 });
  });

  it('pull into an OCI layout gives back the same manifest and blobs, and no partial files', async () => {
    const out = join(work, 'pulled');
    const r = await cli(['pull', `${server.host}/org/team/app:v1`, `oci:${out}:copy`]);
    assert.equal(r.code, 0, r.stderr);
    await sameImage(single.dir, 'v1', out, 'copy');
    assert.equal(existsSync(join(out, '.berth-ingest')), false);
    // non-TTY progress: plain lines on stderr
    assert.match(r.stderr, /: done \(/);
  });

  it('--quiet prints the digest only; --json is parseable', async () => {
    const q = await cli(['pull', '-q', `${server.host}/org/team/app:v1`, `oci:${join(work, 'q')}`]);
    assert.equal(q.code, 0, q.stderr);
    assert.equal(q.stdout, `${single.manifest.descriptor.digest}\n`);
    assert.equal(q.stderr, '');
  });

  it('pull without a destination goes to the local store; push with one argument sends it back', async () => {
    const r = await cli(['pull', `${server.host}/org/team/app:v1`]);
    assert.equal(r.code, 0, r.stderr);
    const idx = await readIndexJson(join(work, 'store'));
    assert.ok(idx.manifests.some((m) => m.annotations?.['org.opencontainers.image.ref.name'] === `${server.host}/org/team/app:v1`));
    const t = await cli(['tag', `local:${server.host}/org/team/app:v1`, `${server.host}/org/team/app:local2`]);
    assert.equal(t.code, 0, t.stderr);
    const p = await cli(['push', `${server.host}/org/team/app:local2`]);
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stdout, /already there/);
  });

  it('copy to another repository of the same registry mounts every blob', async () => {
    const r = await cli(['copy', '--json', `${server.host}/org/team/app:v1`, `${server.host}/other/app:v1`]);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.blobs.mounted, 4);
    assert.equal(j.bytes, 0);
  });

  it('chunked upload for blobs over the monolithic limit', async () => {
    const r = await cli(['push', '--json', `oci:${single.dir}:v1`, `${server.host}/chunked/app:v1`], { BERTH_MONOLITHIC_MAX: '1000', BERTH_CHUNK_SIZE: String(256 * 1024) });
    assert.equal(r.code, 0, r.stderr);
    const out = join(work, 'chunked-out');
    const p = await cli(['pull', `${server.host}/chunked/app:v1`, `oci:${out}:v1`]);
    assert.equal(p.code, 0, p.stderr);
    await sameImage(single.dir, 'v1', out, 'v1');
  });

  it('multi-arch: --all copies the index; a pull picks --platform; inspect and digest', async () => {
    const push = await cli(['push', '--all', `oci:${multi.dir}:multi`, `${server.host}/org/multi:m`]);
    assert.equal(push.code, 0, push.stderr);
    assert.match(push.stdout, new RegExp(multi.index.descriptor.digest));
    const all = join(work, 'multi-all');
    const pullAll = await cli(['pull', '--all', `${server.host}/org/multi:m`, `oci:${all}:m`]);
    assert.equal(pullAll.code, 0, pullAll.stderr);
    await sameImage(multi.dir, 'multi', all, 'm');

    const arm = multi.images.find((i) => i.platform.architecture === 'arm64')!;
    const one = join(work, 'multi-arm');
    const pullArm = await cli(['pull', '--platform', 'linux/arm64', `${server.host}/org/multi:m`, `oci:${one}:arm`]);
    assert.equal(pullArm.code, 0, pullArm.stderr);
    assert.equal((await resolveTag(one, 'arm')).digest, arm.manifest.descriptor.digest);

    const none = await cli(['pull', '--platform', 'linux/s390x', `${server.host}/org/multi:m`, `oci:${join(work, 'none')}`]);
    assert.equal(none.code, 3);
    assert.match(none.stderr, /^berth: .*no manifest for platform linux\/s390x \(available: linux\/amd64, linux\/arm64\/v8/);

    const d = await cli(['digest', `${server.host}/org/multi:m`]);
    assert.equal(d.stdout.trim(), multi.index.descriptor.digest);
    const dArm = await cli(['digest', '--platform', 'linux/arm64', `${server.host}/org/multi:m`]);
    assert.equal(dArm.stdout.trim(), arm.manifest.descriptor.digest);
    const raw = await cli(['inspect', '--raw', `${server.host}/org/multi:m`]);
    assert.ok(Buffer.from(raw.stdout).equals(multi.index.bytes), 'inspect --raw is byte-exact');
    const ins = JSON.parse((await cli(['inspect', `${server.host}/org/multi:m`])).stdout);
    assert.equal(ins.Manifests.length, 2);
    const cfg = JSON.parse((await cli(['inspect', '--config', '--platform', 'linux/arm64', `${server.host}/org/multi:m`])).stdout);
    assert.equal(cfg.architecture, 'arm64');
  });

  it('tags, catalog (paginated), tag, delete', async () => {
    for (const t of ['a', 'b', 'c']) assert.equal((await cli(['tag', `${server.host}/org/team/app:v1`, t])).code, 0);
    const tags = await cli(['tags', '-n', '2', `${server.host}/org/team/app`]);
    assert.equal(tags.code, 0, tags.stderr);
    assert.deepEqual(tags.stdout.trim().split('\n'), ['a', 'b', 'c', 'local2', 'v1']);
    const cat = JSON.parse((await cli(['catalog', '--json', '-n', '1', server.host])).stdout);
    assert.ok(cat.repositories.includes('org/team/app') && cat.repositories.includes('other/app') && cat.repositories.includes('org/multi'));
    const ins = JSON.parse((await cli(['inspect', `${server.host}/org/team/app:a`])).stdout);
    assert.equal(ins.Digest, single.manifest.descriptor.digest);
    assert.equal(ins.Labels['org.example'], 'berth');
    assert.deepEqual(ins.Cmd, ['/bin/app']);
    const formatted = await cli(['inspect', '--format', '{{.Digest}} {{index .Labels "org.example"}} {{len .Layers}}', `${server.host}/org/team/app:a`]);
    assert.equal(formatted.stdout, `${single.manifest.descriptor.digest} berth ${ins.Layers.length}\n`);
    const broken = await cli(['inspect', '--format', '{{.Digest', `${server.host}/org/team/app:a`]);
    assert.deepEqual([broken.code, broken.stdout], [2, '']);
    assert.match(broken.stderr, /^berth: template parsing error: unclosed action\n$/);

    const del = await cli(['delete', `${server.host}/other/app:v1`]);
    assert.equal(del.code, 0, del.stderr);
    const gone = await cli(['inspect', `${server.host}/other/app:v1`]);
    assert.equal(gone.code, 3);
    assert.match(gone.stderr, /^berth: .*404 MANIFEST_UNKNOWN/);
  });

  it('docker-archive: registry → archive → registry keeps the image (uncompressed layers, same config)', async () => {
    const tar = join(work, 'image.tar');
    const save = await cli(['copy', `${server.host}/org/team/app:v1`, `docker-archive:${tar}`]);
    assert.equal(save.code, 0, save.stderr);
    const back = await cli(['copy', '--json', `docker-archive:${tar}`, `${server.host}/from-archive/app:v1`]);
    assert.equal(back.code, 0, back.stderr);
    const a = JSON.parse((await cli(['inspect', '--config', `${server.host}/org/team/app:v1`])).stdout);
    const b = JSON.parse((await cli(['inspect', '--config', `${server.host}/from-archive/app:v1`])).stdout);
    assert.deepEqual(b, a, 'same image config, so the same diff_ids');
    const ins = JSON.parse((await cli(['inspect', `docker-archive:${tar}`])).stdout);
    assert.equal(ins.Layers.length, 3);
    // named image in a docker-archive: RepoTags
    const named = await cli(['inspect', `docker-archive:${tar}:${server.host}/org/team/app:v1`]);
    assert.equal(named.code, 0, named.stderr);
  });

  it('docker-archive: a gzipped archive (docker save | gzip) is read like the plain one, leaving no temporary file', async () => {
    const tar = join(work, 'gz-src.tar');
    const save = await cli(['copy', `${server.host}/org/team/app:v1`, `docker-archive:${tar}`]);
    assert.equal(save.code, 0, save.stderr);
    const gz = join(work, 'image.tar.gz');
    await pipeline(createReadStream(tar), createGzip(), createWriteStream(gz));
    const tmp = await mkdtemp(join(work, 'tmp-'));
    const plain = JSON.parse((await cli(['inspect', `docker-archive:${tar}`])).stdout);
    const zipped = await cli(['inspect', `docker-archive:${gz}`], { TMPDIR: tmp });
    assert.equal(zipped.code, 0, zipped.stderr);
    assert.deepEqual(JSON.parse(zipped.stdout).Layers, plain.Layers, 'the same layers, found through the gunzipped copy');
    const back = await cli(['copy', `docker-archive:${gz}:${server.host}/org/team/app:v1`, `${server.host}/from-gz/app:v1`], { TMPDIR: tmp });
    assert.equal(back.code, 0, back.stderr);
    const a = JSON.parse((await cli(['inspect', '--config', `${server.host}/org/team/app:v1`])).stdout);
    const b = JSON.parse((await cli(['inspect', '--config', `${server.host}/from-gz/app:v1`])).stdout);
    assert.deepEqual(b, a);
    assert.deepEqual(await readdir(tmp), [], 'the gunzipped copy is gone');
    // a truncated gzip is a one-line error
    await writeFile(join(work, 'cut.tar.gz'), (await readFile(gz)).subarray(0, 2000));
    const cut = await cli(['inspect', `docker-archive:${join(work, 'cut.tar.gz')}`], { TMPDIR: tmp });
    assert.notEqual(cut.code, 0);
    assert.match(cut.stderr, /^berth: .*cut\.tar\.gz: cannot gunzip it: /);
    assert.deepEqual(await readdir(tmp), []);
  });

  it('errors: one line, distinct exit codes, no stack trace', async () => {
    const cases: [string[], number, RegExp][] = [
      [['pull', 'Invalid//Ref'], 2, /invalid reference/],
      [['pull', `${server.host}/org/nope:v1`, `oci:${join(work, 'x')}`], 3, /MANIFEST_UNKNOWN/],
      [['pull', '127.0.0.1:1/a:b', `oci:${join(work, 'y')}`, '--retries', '1'], 5, /cannot reach 127\.0\.0\.1:1/],
      [['pull', '--all', '--platform', 'linux/amd64', `${server.host}/org/multi:m`], 2, /exclude each other/],
      [['copy', '--all', `${server.host}/org/multi:m`, `docker-archive:${join(work, 'm.tar')}`], 7, /single image/],
      [['push', `oci:${join(work, 'missing-layout')}`, `${server.host}/a:b`], 3, /not an OCI image layout/],
      [['copy', 'dir:/tmp/x', `${server.host}/a:b`], 2, /unsupported location/],
    ];
    for (const [args, code, re] of cases) {
      const r = await cli(args);
      assert.equal(r.code, code, `${args.join(' ')} → ${r.code}: ${r.stderr}`);
      assert.match(r.stderr, /^berth: /);
      assert.match(r.stderr, re);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
      assert.equal(r.stderr.trim().split('\n').filter((l) => l.startsWith('berth:')).length, 1);
    }
    assert.equal(existsSync(join(work, 'm.tar')), false, 'a failed archive write leaves no file');
  });

  it('login checks credentials; logout removes them (registry without auth accepts any)', async () => {
    const r = await cli(['login', server.host, '-u', 'u', '--password-stdin']);
    assert.equal(r.code, 2, 'an empty password is a usage error');
    assert.match(r.stderr, /^berth: a password is required/);
    const ok = await runCli(['login', server.host, '-u', 'u', '--password-stdin'], { env, input: 'pw\n' });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /Login Succeeded/);
    const out = await cli(['logout', server.host]);
    assert.match(out.stdout, /Removed login credentials/);
  });

  it('writes a destination file only when complete (no docker-archive on a failed copy)', async () => {
    await writeFile(join(work, 'not-a-tar'), 'hello');
    const r = await cli(['copy', `docker-archive:${join(work, 'not-a-tar')}`, `${server.host}/x/y:z`]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /^berth: /);
  });
});
