// The berth client against berth's own token auth: login stores a refresh token (docker's
// "identitytoken") instead of the password, push and pull use it (OAuth2 refresh_token grant),
// the access rules hold, and a revoked token is refused with a one-line hint to log in again.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createImageLayout, type ImageLayout } from '../fixtures/oci-layout.js';
import { sameImage } from '../fixtures/same-image.js';
import { PASSWORDS, RULES, writeHtpasswd } from '../helpers/auth.js';
import { runCli } from '../helpers/cli.js';
import { startTestServer, type TestServer } from '../helpers/registry.js';

describe('berth client through berth token auth', () => {
  let work: string;
  let server: TestServer;
  let image: ImageLayout;
  let env: Record<string, string>;
  const cli = (args: string[], input?: string) => runCli(args, { env, input, timeoutMs: 120_000 });
  const config = async () => JSON.parse(await readFile(join(work, 'docker', 'config.json'), 'utf8')) as { auths: Record<string, Record<string, string>> };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-client-token-'));
    await writeHtpasswd(join(work, 'htpasswd'), PASSWORDS);
    await writeFile(join(work, 'access.yml'), RULES);
    server = await startTestServer({
      REGISTRY_AUTH: 'token',
      REGISTRY_AUTH_TOKEN_HTPASSWD: join(work, 'htpasswd'),
      REGISTRY_AUTH_TOKEN_STATEDIRECTORY: join(work, 'state'),
      REGISTRY_AUTH_ACCESS_PATH: join(work, 'access.yml'),
    });
    env = { HOME: work, DOCKER_CONFIG: join(work, 'docker'), XDG_RUNTIME_DIR: join(work, 'run'), BERTH_STORE: join(work, 'store'), BERTH_ROOT: join(work, 'runtime'), BERTH_RETRY_BASE_MS: '20' };
    image = await createImageLayout(join(work, 'src'), { tag: 'v1', layers: [{ files: { 'etc/hello': 'token auth\n' } }] });
  });
  after(async () => {
    await server?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('anonymous push is refused with a hint to log in', async () => {
    const r = await cli(['push', `oci:${image.dir}:v1`, `${server.host}/acme/app:v1`]);
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /^berth: .*berth login/m);
  });

  it('login stores a refresh token, not the password; push and pull work with it alone', async () => {
    const login = await cli(['login', server.host, '-u', 'alice', '--password-stdin'], `${PASSWORDS.alice}\n`);
    assert.equal(login.code, 0, login.stderr);
    const text = await readFile(join(work, 'docker', 'config.json'), 'utf8');
    assert.doesNotMatch(text, new RegExp(PASSWORDS.alice), 'the password is not stored');
    const entry = (await config()).auths[server.host]!;
    assert.equal(Buffer.from(entry.auth!, 'base64').toString(), 'alice:', 'docker\'s shape: the user name, no password');
    assert.equal(entry.identitytoken!.split('.').length, 3, 'a JWT refresh token');

    const push = await cli(['push', `oci:${image.dir}:v1`, `${server.host}/acme/app:v1`]);
    assert.equal(push.code, 0, push.stderr);
    const out = join(work, 'out');
    const pull = await cli(['pull', `${server.host}/acme/app:v1`, `oci:${out}:v1`]);
    assert.equal(pull.code, 0, pull.stderr);
    await sameImage(image.dir, 'v1', out, 'v1');
  });

  it('the rules still apply to a refresh-token login: a push outside what the user may is denied (exit 8), not "log in"', async () => {
    const r = await cli(['push', `oci:${image.dir}:v1`, `${server.host}/bob/app:v1`]);
    assert.equal(r.code, 8, r.stderr);
    assert.match(r.stderr, /^berth: .*access denied: your login is not granted repository:bob\/app:/m);
    assert.doesNotMatch(r.stderr, /berth login/, 'logging in again would not help');
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });

  it('a revoked refresh token is refused with a hint to log in again; logging in again (at once) works', async () => {
    const revoke = await cli(['auth', 'revoke', 'alice', '--state-dir', join(work, 'state')]);
    assert.equal(revoke.code, 0, revoke.stderr);
    const refused = await cli(['tags', `${server.host}/acme/app`]);
    assert.equal(refused.code, 4, refused.stderr);
    assert.match(refused.stderr, /^berth: .*stored login token was refused .*berth login/);
    assert.equal(refused.stderr.trim().split('\n').length, 1);

    const login = await cli(['login', server.host, '-u', 'alice', '--password-stdin'], `${PASSWORDS.alice}\n`);
    assert.equal(login.code, 0, login.stderr);
    const tags = await cli(['tags', `${server.host}/acme/app`]);
    assert.equal(tags.code, 0, tags.stderr);
    assert.equal(tags.stdout.trim(), 'v1');
  });

  it('logout removes the token', async () => {
    assert.equal((await cli(['logout', server.host])).code, 0);
    assert.equal((await config()).auths[server.host], undefined);
    assert.equal((await cli(['tags', `${server.host}/acme/app`])).code, 4);
  });
});
