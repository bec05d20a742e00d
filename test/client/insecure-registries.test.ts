// Which registries may be reached over plain HTTP: loopback always, and the ones the user marked
// insecure (--insecure, BERTH_INSECURE_REGISTRIES, docker's daemon.json, podman's registries.conf).
// End to end with a registry on this machine's non-loopback address, where that exists.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isInsecureRegistry, registriesConfFiles, registriesConfInsecure } from '../../client/tls.js';
import { createImageLayout, type ImageLayout } from '../fixtures/oci-layout.js';
import { sameImage } from '../fixtures/same-image.js';
import { runCli } from '../helpers/cli.js';
import { startTestServer, type TestServer } from '../helpers/registry.js';

describe('insecure registries', () => {
  let work: string;
  /** An environment that reads only the files this test writes. */
  let isolated: NodeJS.ProcessEnv;
  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-insecure-'));
    isolated = { HOME: work, BERTH_DOCKER_DAEMON_JSON: join(work, 'no-daemon.json'), CONTAINERS_REGISTRIES_CONF: join(work, 'no-registries.conf') };
  });
  after(async () => { if (work) await rm(work, { recursive: true, force: true }); });

  it('loopback always; other hosts only when marked', () => {
    for (const r of ['localhost:5000', '127.0.0.1:5000', '127.8.9.1', '[::1]:5000', 'a.localhost:80']) assert.ok(isInsecureRegistry(r, { env: isolated }), r);
    for (const r of ['registry.example.com', '10.1.2.3:5000', 'localhost.example.com:5000']) assert.ok(!isInsecureRegistry(r, { env: isolated }), r);
    assert.ok(isInsecureRegistry('registry.example.com', { env: isolated, insecure: true }), '--insecure');
    const env = { ...isolated, BERTH_INSECURE_REGISTRIES: 'registry.example.com:5000, 10.1.0.0/16' };
    assert.ok(isInsecureRegistry('registry.example.com:5000', { env }));
    assert.ok(!isInsecureRegistry('registry.example.com:6000', { env }), 'the port counts when the entry has one');
    assert.ok(isInsecureRegistry('10.1.2.3:5000', { env }), 'CIDR');
    assert.ok(!isInsecureRegistry('10.2.0.1:5000', { env }));
  });

  it('reads docker\'s daemon.json insecure-registries', async () => {
    const daemon = join(work, 'daemon.json');
    await writeFile(daemon, JSON.stringify({ 'insecure-registries': ['docker-only.example:5000'] }));
    assert.ok(isInsecureRegistry('docker-only.example:5000', { env: { ...isolated, BERTH_DOCKER_DAEMON_JSON: daemon } }));
  });

  it('reads registries.conf: v2 [[registry]] insecure = true (location, prefix, *.wildcards) and v1 [registries.insecure]', async () => {
    const conf = join(work, 'registries.conf');
    await writeFile(conf, [
      'unqualified-search-registries = ["docker.io"]',
      '[[registry]]',
      'location = "reg.example.com:5000"',
      'insecure = true',
      '[[registry]]',
      'location = "ns.example.com/team"',
      'insecure = true',
      '[[registry]]',
      'location = "secure.example.com"',
      'insecure = false',
      '[[registry]]',
      'prefix = "*.lab.example"',
      'insecure = true',
      '',
    ].join('\n'));
    const env = { ...isolated, CONTAINERS_REGISTRIES_CONF: conf };
    assert.deepEqual(registriesConfInsecure([conf]), ['reg.example.com:5000', '*.lab.example']);
    assert.ok(!isInsecureRegistry('ns.example.com', { env }), 'a namespace\'s table does not open the whole host');
    assert.ok(isInsecureRegistry('reg.example.com:5000', { env }));
    assert.ok(!isInsecureRegistry('secure.example.com', { env }), 'insecure = false');
    assert.ok(isInsecureRegistry('box.lab.example:443', { env }), 'a wildcard prefix');
    assert.ok(!isInsecureRegistry('lab.example', { env }), 'the wildcard needs a subdomain');

    const v1 = join(work, 'v1.conf');
    await writeFile(v1, "[registries.insecure]\nregistries = ['old.example:5000']\n[registries.search]\nregistries = ['docker.io']\n");
    assert.ok(isInsecureRegistry('old.example:5000', { env: { ...isolated, CONTAINERS_REGISTRIES_CONF: v1 } }));

    // a later drop-in's table for the same prefix replaces the earlier one
    const dropIn = join(work, '50-override.conf');
    await writeFile(dropIn, '[[registry]]\nlocation = "reg.example.com:5000"\ninsecure = false\n');
    assert.deepEqual(registriesConfInsecure([conf, dropIn]), ['*.lab.example']);

    const broken = join(work, 'broken.conf');
    await writeFile(broken, '[[registry]\nlocation = "x"\ninsecure = true\n');
    assert.deepEqual(registriesConfInsecure([broken, join(work, 'missing.conf')]), [], 'a malformed or missing file counts as none');
  });

  it('finds the files podman reads: $CONTAINERS_REGISTRIES_CONF alone, else the user\'s file over the system\'s, then drop-ins', async () => {
    assert.deepEqual(registriesConfFiles({ CONTAINERS_REGISTRIES_CONF: '/x.conf', HOME: work }), ['/x.conf']);
    const files = registriesConfFiles({ HOME: join(work, 'nobody') });
    assert.equal(files[0], '/etc/containers/registries.conf');
    await import('node:fs/promises').then((fs) => fs.mkdir(join(work, 'home', '.config', 'containers', 'registries.conf.d'), { recursive: true }));
    await writeFile(join(work, 'home', '.config', 'containers', 'registries.conf'), '');
    await writeFile(join(work, 'home', '.config', 'containers', 'registries.conf.d', '10-lab.conf'), '');
    const mine = registriesConfFiles({ HOME: join(work, 'home') });
    assert.equal(mine[0], join(work, 'home', '.config', 'containers', 'registries.conf'));
    assert.equal(mine.at(-1), join(work, 'home', '.config', 'containers', 'registries.conf.d', '10-lab.conf'));
  });
});

const address = Object.values(networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal)?.address;

describe('plain HTTP to a non-loopback registry', { skip: address ? false : 'this machine has no non-loopback IPv4 address' }, () => {
  let work: string;
  let server: TestServer;
  let image: ImageLayout;
  let host: string;
  let env: Record<string, string>;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-insecure-e2e-'));
    server = await startTestServer({ REGISTRY_HTTP_ADDR: `${address}:0` });
    host = server.host;
    env = { HOME: work, DOCKER_CONFIG: join(work, 'docker'), XDG_RUNTIME_DIR: join(work, 'run'), BERTH_RETRY_BASE_MS: '10',
      BERTH_DOCKER_DAEMON_JSON: join(work, 'no-daemon.json'), CONTAINERS_REGISTRIES_CONF: join(work, 'no-registries.conf') };
    image = await createImageLayout(join(work, 'src'), { tag: 'v1', layers: [{ files: { 'a.txt': 'insecure' } }] });
  });
  after(async () => {
    await server?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('is refused unless the registry is marked insecure; registries.conf or --insecure allow it', async () => {
    const refused = await runCli(['push', '--retries', '0', `oci:${image.dir}:v1`, `${host}/plain/app:v1`], { env });
    assert.notEqual(refused.code, 0);
    assert.equal(refused.code, 5, refused.stderr);
    assert.match(refused.stderr, /^berth: .*speaks plain HTTP, not HTTPS: mark it insecure/m);
    assert.doesNotMatch(refused.stderr, /\n\s+at /);

    const conf = join(work, 'registries.conf');
    await writeFile(conf, `[[registry]]\nlocation = "${host}"\ninsecure = true\n`);
    const pushed = await runCli(['push', `oci:${image.dir}:v1`, `${host}/plain/app:v1`], { env: { ...env, CONTAINERS_REGISTRIES_CONF: conf } });
    assert.equal(pushed.code, 0, pushed.stderr);
    const pulled = await runCli(['pull', '--insecure', `${host}/plain/app:v1`, `oci:${join(work, 'out')}:v1`], { env });
    assert.equal(pulled.code, 0, pulled.stderr);
    await sameImage(image.dir, 'v1', join(work, 'out'), 'v1');
  });
});
