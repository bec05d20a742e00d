import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { authFilePaths, getCredentials, removeCredentials, storeCredentials } from '../../client/auth-config.js';

describe('auth config (docker config.json, podman auth.json, credential helpers)', () => {
  let home: string;
  let env: NodeJS.ProcessEnv;
  const b64 = (s: string) => Buffer.from(s).toString('base64');

  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'berth-auth-'));
    // a docker-credential-fake helper that keeps its store in a JSON file
    const bin = join(home, 'bin');
    await mkdir(bin);
    await writeFile(join(bin, 'docker-credential-fake'), `#!/bin/sh
store="${home}/helper-store.json"
[ -f "$store" ] || echo '{}' > "$store"
input=$(cat)
case "$1" in
  get) node -e 'const s=require(process.argv[1]);const e=s[process.argv[2]];if(!e){console.log("credentials not found in native keychain");process.exit(1)}console.log(JSON.stringify({ServerURL:process.argv[2],Username:e.u,Secret:e.p}))' "$store" "$input" ;;
  store) node -e 'const fs=require("fs");const s=JSON.parse(fs.readFileSync(process.argv[1]));const i=JSON.parse(process.argv[2]);s[i.ServerURL]={u:i.Username,p:i.Secret};fs.writeFileSync(process.argv[1],JSON.stringify(s))' "$store" "$input" ;;
  erase) node -e 'const fs=require("fs");const s=JSON.parse(fs.readFileSync(process.argv[1]));if(!s[process.argv[2]]){console.log("credentials not found in native keychain");process.exit(1)}delete s[process.argv[2]];fs.writeFileSync(process.argv[1],JSON.stringify(s))' "$store" "$input" ;;
esac
`);
    await chmod(join(bin, 'docker-credential-fake'), 0o755);
    env = { HOME: home, PATH: `${bin}:${process.env.PATH}` };
  });
  after(() => rm(home, { recursive: true, force: true }));

  it('looks in --authfile, $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers, ~/.config/containers, then docker', () => {
    const paths = authFilePaths({ authFile: '/x/auth.json', env: { HOME: '/h', REGISTRY_AUTH_FILE: '/r.json', XDG_RUNTIME_DIR: '/run/user/1', DOCKER_CONFIG: '/d' } });
    assert.deepEqual(paths, ['/x/auth.json', '/r.json', '/run/user/1/containers/auth.json', '/h/.config/containers/auth.json', '/d/config.json']);
  });

  it('reads base64 auths entries, whatever form the key has', async () => {
    const dir = join(home, 'd1');
    await mkdir(dir);
    await writeFile(join(dir, 'config.json'), JSON.stringify({ auths: {
      'https://index.docker.io/v1/': { auth: b64('hub:pw') },
      'http://localhost:5000/v2/': { auth: b64('me:p:with:colons') },
      'quay.io': { identitytoken: 'refresh-me' },
    } }));
    const e = { ...env, DOCKER_CONFIG: dir };
    assert.deepEqual(await getCredentials('docker.io', { env: e }), { username: 'hub', password: 'pw' });
    assert.deepEqual(await getCredentials('localhost:5000', { env: e }), { username: 'me', password: 'p:with:colons' });
    assert.deepEqual(await getCredentials('quay.io', { env: e }), { identityToken: 'refresh-me' });
    assert.equal(await getCredentials('other.io', { env: e }), undefined);
  });

  it('podman auth.json in $XDG_RUNTIME_DIR wins over docker config', async () => {
    const run = join(home, 'run');
    await mkdir(join(run, 'containers'), { recursive: true });
    await writeFile(join(run, 'containers', 'auth.json'), JSON.stringify({ auths: { 'r.io': { auth: b64('podman:1') } } }));
    const dir = join(home, 'd2');
    await mkdir(dir);
    await writeFile(join(dir, 'config.json'), JSON.stringify({ auths: { 'r.io': { auth: b64('docker:2') } } }));
    assert.deepEqual(await getCredentials('r.io', { env: { ...env, XDG_RUNTIME_DIR: run, DOCKER_CONFIG: dir } }), { username: 'podman', password: '1' });
  });

  it('login writes config.json atomically with mode 0600 and keeps other keys; logout removes', async () => {
    const dir = join(home, 'd3');
    await mkdir(dir);
    await writeFile(join(dir, 'config.json'), JSON.stringify({ auths: { 'keep.io': { auth: b64('k:k') } }, psFormat: 'table' }));
    const e = { ...env, DOCKER_CONFIG: dir };
    const where = await storeCredentials('localhost:5000', { username: 'u', password: 'p' }, { env: e });
    assert.equal(where, join(dir, 'config.json'));
    const doc = JSON.parse(await readFile(where, 'utf8'));
    assert.equal(doc.psFormat, 'table');
    assert.equal(doc.auths['keep.io'].auth, b64('k:k'));
    assert.equal(doc.auths['localhost:5000'].auth, b64('u:p'));
    assert.equal((await stat(where)).mode & 0o777, 0o600);
    assert.deepEqual(await getCredentials('localhost:5000', { env: e }), { username: 'u', password: 'p' });
    await storeCredentials('docker.io', { username: 'h', password: 'x' }, { env: e });
    assert.ok(JSON.parse(await readFile(where, 'utf8')).auths['https://index.docker.io/v1/']);
    assert.equal(await removeCredentials('localhost:5000', { env: e }), true);
    assert.equal(await getCredentials('localhost:5000', { env: e }), undefined);
    assert.equal(await removeCredentials('localhost:5000', { env: e }), false);
  });

  it('credsStore and credHelpers go through docker-credential-* programs', async () => {
    const dir = join(home, 'd4');
    await mkdir(dir);
    await writeFile(join(dir, 'config.json'), JSON.stringify({ credsStore: 'fake', credHelpers: { 'special.io': 'fake' } }));
    const e = { ...env, DOCKER_CONFIG: dir };
    const where = await storeCredentials('helper.io', { username: 'hu', password: 'hp' }, { env: e });
    assert.equal(where, 'docker-credential-fake');
    const doc = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
    assert.deepEqual(doc.auths['helper.io'], {}, 'docker keeps an empty entry for credsStore logins');
    assert.deepEqual(await getCredentials('helper.io', { env: e }), { username: 'hu', password: 'hp' });
    assert.equal(await getCredentials('special.io', { env: e }), undefined);
    await storeCredentials('special.io', { username: 's', password: 't' }, { env: e });
    assert.deepEqual(await getCredentials('special.io', { env: e }), { username: 's', password: 't' });
    assert.equal(await removeCredentials('helper.io', { env: e }), true);
    assert.equal(await getCredentials('helper.io', { env: e }), undefined);
  });

  it('a configured helper that is not installed, or a broken file, is a clear error', async () => {
    const dir = join(home, 'd5');
    await mkdir(dir);
    await writeFile(join(dir, 'config.json'), JSON.stringify({ credsStore: 'missing-helper' }));
    await assert.rejects(getCredentials('x.io', { env: { ...env, DOCKER_CONFIG: dir } }), /docker-credential-missing-helper is configured but not installed/);
    await writeFile(join(dir, 'config.json'), '{not json');
    await assert.rejects(getCredentials('x.io', { env: { ...env, DOCKER_CONFIG: dir } }), /not valid JSON/);
    await writeFile(join(dir, 'config.json'), '{"auths":"str"}');
    await assert.rejects(getCredentials('x.io', { env: { ...env, DOCKER_CONFIG: dir } }), /"auths" is not an object/);
  });
});
