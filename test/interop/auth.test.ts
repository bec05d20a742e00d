// Real clients through berth's token auth: skopeo (--creds / --dest-creds) and podman (podman login),
// over plain HTTP and over self-signed TLS with the generated CA trusted (--cert-dir).
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createImageLayout } from '../fixtures/oci-layout.js';
import { PASSWORDS, RULES, writeHtpasswd } from '../helpers/auth.js';
import { startTestServer, type TestServer } from '../helpers/registry.js';
import { CommandError, missingTools, run } from './tools.js';

const skip = missingTools({ podman: 'podman', skopeo: 'skopeo' });

describe('skopeo and podman through token auth, over HTTP and self-signed TLS', { skip }, () => {
  let work: string;
  let plain: TestServer;
  let tls: TestServer;
  let caDir: string;
  let env: NodeJS.ProcessEnv;
  let podmanGlobals: string[];
  const alice = `alice:${PASSWORDS.alice}`;

  const skopeo = (args: string[]) => run('skopeo', args, { env });
  const podman = (args: string[]) => run('podman', [...podmanGlobals, ...args], { env });
  const fails = async (p: Promise<unknown>, pattern: RegExp) => {
    await assert.rejects(p, (e: unknown) => e instanceof CommandError && pattern.test(e.stderr + e.stdout));
  };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-auth-interop-'));
    await writeHtpasswd(join(work, 'htpasswd'), PASSWORDS);
    await writeFile(join(work, 'access.yml'), RULES);
    const authEnv = {
      REGISTRY_AUTH: 'token',
      REGISTRY_AUTH_TOKEN_HTPASSWD: join(work, 'htpasswd'),
      REGISTRY_AUTH_TOKEN_STATEDIRECTORY: join(work, 'state'),
      REGISTRY_AUTH_ACCESS_PATH: join(work, 'access.yml'),
    };
    plain = await startTestServer(authEnv);
    tls = await startTestServer({ ...authEnv, REGISTRY_HTTP_TLS_SELFSIGNED: 'true', REGISTRY_HTTP_TLS_DIRECTORY: join(work, 'tls') });
    caDir = join(work, 'tls', 'ca');
    for (const d of ['root', 'runroot', 'tmp', 'net', 'blobtmp']) await mkdir(join(work, d));
    await writeFile(join(work, 'auth.json'), '{}');
    env = { ...process.env, TMPDIR: join(work, 'blobtmp'), REGISTRY_AUTH_FILE: join(work, 'auth.json') };
    podmanGlobals = ['--root', join(work, 'root'), '--runroot', join(work, 'runroot'), '--tmpdir', join(work, 'tmp'),
      '--network-config-dir', join(work, 'net'), '--cgroup-manager', 'cgroupfs', '--events-backend', 'file'];
    await createImageLayout(join(work, 'src'), { tag: 'v1', layers: [{ files: { 'etc/hello': 'auth interop\n' } }] });
  });

  after(async () => {
    await podman(['rmi', '-a', '-f']).catch(() => undefined);
    await plain?.stop();
    await tls?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('the TLS server serves a certificate signed by the CA it wrote', async () => {
    assert.match(tls.url, /^https:/);
    await run('curl', ['-sf', '--cacert', join(caDir, 'ca.crt'), `${tls.url}/v2/`]).catch((e: CommandError) => {
      assert.equal(e.code, 22, 'curl reached the server and got an HTTP error (401), so TLS verified');
    });
  });

  it('skopeo pushes with --dest-creds over plain HTTP, and reads back with --creds', async () => {
    await skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', alice, `oci:${join(work, 'src')}:v1`, `docker://${plain.host}/alice/app:v1`]);
    const out = await skopeo(['inspect', '--tls-verify=false', '--creds', alice, `docker://${plain.host}/alice/app:v1`]);
    assert.equal(JSON.parse(out.stdout).Name, `${plain.host}/alice/app`);
  });

  it('skopeo without credentials, or with someone else\'s, is refused', async () => {
    await fails(skopeo(['inspect', '--tls-verify=false', `docker://${plain.host}/alice/app:v1`]), /unauthorized|authentication required|denied/i);
    await fails(skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', `carol:${PASSWORDS.carol}`, `oci:${join(work, 'src')}:v1`, `docker://${plain.host}/alice/stolen:v1`]),
      /unauthorized|denied|authentication required/i);
    await fails(skopeo(['inspect', '--tls-verify=false', '--creds', 'alice:wrong', `docker://${plain.host}/alice/app:v1`]), /unauthorized|invalid username/i);
  });

  it('skopeo over self-signed TLS verifies the server with --cert-dir, and fails without it', async () => {
    await skopeo(['copy', '--dest-cert-dir', caDir, '--dest-creds', alice, `oci:${join(work, 'src')}:v1`, `docker://${tls.host}/alice/app:v1`]);
    await fails(skopeo(['inspect', '--creds', alice, `docker://${tls.host}/alice/app:v1`]), /certificate|x509/i);
    const out = await skopeo(['inspect', '--cert-dir', caDir, '--creds', alice, `docker://${tls.host}/alice/app:v1`]);
    assert.equal(JSON.parse(out.stdout).Name, `${tls.host}/alice/app`);
  });

  it('podman login over HTTP, then pull; a wrong password fails to log in', async () => {
    await fails(podman(['login', '--tls-verify=false', '-u', 'alice', '-p', 'wrong', plain.host]), /unauthorized|invalid username|authentication required/i);
    await podman(['login', '--tls-verify=false', '-u', 'alice', '-p', PASSWORDS.alice, plain.host]);
    await podman(['pull', '--tls-verify=false', `${plain.host}/alice/app:v1`]);
    await podman(['logout', plain.host]);
  });

  it('podman login over self-signed TLS with --cert-dir, then pull', async () => {
    await podman(['login', '--cert-dir', caDir, '-u', 'alice', '-p', PASSWORDS.alice, tls.host]);
    const out = await podman(['pull', '--cert-dir', caDir, `${tls.host}/alice/app:v1`]);
    assert.match(out.stdout.trim(), /^[0-9a-f]{64}$/);
  });

  it('anonymous pull of a public repository works without logging in', async () => {
    await skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', `root:${PASSWORDS.root}`, `oci:${join(work, 'src')}:v1`, `docker://${plain.host}/library/hello:v1`]);
    await skopeo(['inspect', '--tls-verify=false', `docker://${plain.host}/library/hello:v1`]);
  });
});
