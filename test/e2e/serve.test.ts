import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { describe, it } from 'node:test';
import { once } from 'node:events';
import { runCli, startServe } from '../helpers/cli.js';
import { tempDir } from '../helpers/registry.js';

describe('berth serve (the real CLI)', () => {
  it('berth --help lists serve; berth serve --help explains every flag', async () => {
    const top = await runCli(['--help']);
    assert.equal(top.code, 0);
    assert.match(top.stdout, /serve/);
    const serve = await runCli(['serve', '--help']);
    assert.equal(serve.code, 0);
    for (const flag of ['--config', '--addr', '--root', '--delete-enabled', '--read-only', '--log-level', '--tls-cert', '--tls-key']) assert.match(serve.stdout, new RegExp(flag));
  });

  it('a bad configuration → exit 2 and a clear message, no stack trace', async () => {
    const r = await runCli(['serve', '--addr', 'nonsense'], { env: { REGISTRY_LOG_LEVEL: 'bananas' } });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^berth: invalid configuration/);
    assert.match(r.stderr, /http\.addr/);
    assert.match(r.stderr, /log\.level/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });

  it('an unknown command, an unknown flag or a missing argument → usage error (exit 2) with a hint; --help and --version exit 0', async () => {
    const r = await runCli(['frobnicate']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown command/);
    assert.equal((await runCli(['pull', '--bogus-flag', 'x'])).code, 2);
    assert.equal((await runCli(['push'])).code, 2);
    assert.equal((await runCli(['--version'])).code, 0);
    assert.equal((await runCli(['pull', '--help'])).code, 0);
  });

  it('a port already in use → exit 1 with a one-line error', async () => {
    const root = await tempDir();
    const first = await startServe([], { REGISTRY_HTTP_ADDR: '127.0.0.1:0', REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: root });
    try {
      const port = new URL(first.url).port;
      const r = await runCli(['serve', '--addr', `127.0.0.1:${port}`, '--root', root]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^berth: .*EADDRINUSE/);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    } finally {
      first.child.kill('SIGTERM');
      await once(first.child, 'exit');
    }
  });

  it('--read-only serves reads and refuses writes with 405; a distribution-only setting it cannot honour stops the start (exit 2)', async () => {
    const root = await tempDir();
    const s = await startServe(['--addr', '127.0.0.1:0', '--root', root, '--read-only']);
    try {
      assert.equal((await fetch(`${s.url}/v2/`)).status, 200);
      const post = await fetch(`${s.url}/v2/org/app/blobs/uploads/`, { method: 'POST' });
      assert.equal(post.status, 405);
      assert.equal(((await post.json()) as { errors: { code: string }[] }).errors[0]!.code, 'UNSUPPORTED');
      assert.match(s.logs(), /"readOnly":true/);
    } finally {
      s.child.kill('SIGTERM');
      await once(s.child, 'exit');
    }
    const r = await runCli(['serve', '--root', root], { env: { REGISTRY_PROXY_REMOTEURL: 'x', REGISTRY_HTTP_TLS_MINIMUMTLS: 'tls9' } });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /REGISTRY_PROXY_REMOTEURL: no such configuration key/);
    assert.match(r.stderr, /http\.tls\.minimumtls: "tls9"/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });

  it('warns when open (no auth) on a non-loopback address, not on loopback', async () => {
    const root = await tempDir();
    for (const [addr, warns] of [['0.0.0.0:0', true], ['127.0.0.1:0', false]] as const) {
      const s = await startServe(['--addr', addr, '--root', root]);
      await new Promise((r) => setTimeout(r, 100));
      s.child.kill('SIGTERM');
      await once(s.child, 'exit');
      assert.equal(/the registry is open/.test(s.logs()), warns, addr);
    }
  });

  it('SIGTERM lets an in-flight upload finish, refuses new work, then exits 0', async () => {
    const root = await tempDir();
    const s = await startServe(['--addr', '127.0.0.1:0', '--root', root]);
    const url = new URL(s.url);
    const post = await fetch(`${s.url}/v2/drain/blobs/uploads/`, { method: 'POST' });
    const loc = post.headers.get('location')!;
    const status = new Promise<number>((resolve, reject) => {
      const req = httpRequest({ host: url.hostname, port: url.port, method: 'PATCH', path: loc,
        headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': '8' } }, (res) => { res.resume(); resolve(res.statusCode!); });
      req.on('error', reject);
      req.write('half');
      setTimeout(() => {
        s.child.kill('SIGTERM');
        setTimeout(() => req.end('done'), 300);
      }, 100);
    });
    assert.equal(await status, 202);
    const [code] = await once(s.child, 'exit');
    assert.equal(code, 0);
    assert.match(s.logs(), /berth registry stopped/);
  });
});
