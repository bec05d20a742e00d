// A config written for distribution starts berth: the keys berth honours (read-only mode, extra
// headers, log fields, the access log, the storage health check, the debug listener, client
// certificates, the minimum TLS version) do what they do there, and the ones it cannot honour stop
// the start with one line each instead of being dropped silently.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import request from 'supertest';
import { MediaType } from '../../oci/media-types.js';
import { createApp } from '../../server/app.js';
import { loadConfig } from '../../server/config.js';
import { startRegistry } from '../../server/main.js';
import { StorageHealth } from '../../server/storage-health.js';
import { ensureSelfSigned } from '../../server/tls/self-signed.js';
import { FilesystemAdapter } from '../../storage-adapters/filesystem.js';
import type { StorageAdapter } from '../../storage-adapters/types.js';
import { errorCode, pushBlob, pushImage } from '../helpers/push.js';
import { tempDir } from '../helpers/registry.js';
import { withHooks } from '../helpers/hooks.js';
import { problems, yamlFile } from '../helpers/config.js';

// The config.yml of Debian's docker-registry package and of the registry image (storage root aside).
const STOCK = (root: string) => `version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: ${root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:0
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
`;

/** A pino logger whose lines land in `lines`. */
function capturedLogger(lines: Record<string, unknown>[]) {
  return pino({ level: 'info' }, new Writable({ write(chunk, _e, cb) { lines.push(JSON.parse(String(chunk))); cb(); } }));
}

function get(url: string, opts: { ca?: Buffer; cert?: Buffer; key?: Buffer; minVersion?: 'TLSv1.2'; maxVersion?: 'TLSv1.2' } = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(`${url}/v2/`, { ...opts, agent: false }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode ?? 0)); });
    req.on('error', reject);
    req.end();
  });
}

/** A filesystem storage in a fresh directory, removed after `fn`. */
async function onFreshStorage(fn: (storage: FilesystemAdapter) => Promise<void>): Promise<void> {
  const root = await tempDir();
  try { await fn(new FilesystemAdapter({ rootdirectory: root })); } finally { await rm(root, { recursive: true, force: true }); }
}

describe('distribution config files', () => {
  it('the stock distribution config.yml loads: fields, headers and the storage check are honoured, the cache accepted', async () => {
    const c = loadConfig({ file: await yamlFile(STOCK('/srv/registry')) });
    assert.deepEqual(c.log.fields, { service: 'registry' });
    assert.deepEqual(c.http.headers, { 'X-Content-Type-Options': ['nosniff'] });
    assert.deepEqual(c.health, { storage: { intervalMs: 10_000, threshold: 3 } });
    // an interval of 0 is distribution's default, 10 s, not a check without pause
    const zero = loadConfig({ env: { REGISTRY_HEALTH_STORAGEDRIVER_ENABLED: 'true', REGISTRY_HEALTH_STORAGEDRIVER_INTERVAL: '0s' } });
    assert.deepEqual(zero.health, { storage: { intervalMs: 10_000, threshold: 1 } });
    assert.equal(c.storage.driver, 'filesystem');
    assert.deepEqual(c.storage.options, { rootdirectory: '/srv/registry' });
    assert.equal(c.readOnly, false);
    assert.deepEqual(c.notes, []);
  });

  it('settings berth cannot honour stop the start, one line each; harmless ones are noted', async () => {
    const found = problems(() => loadConfig({ env: {}, overrides: {
      proxy: { remoteurl: 'https://registry-1.docker.io' },
      middleware: { storage: [{ name: 'cloudfront' }] },
      validation: { manifests: { urls: { allow: ['^https://'] } } },
      compatibility: { schema1: { enabled: true } },
      http: { prefix: '/registry', net: 'unix', tls: { certificate: '/c', key: '/k', letsencrypt: { email: 'a@b' }, ciphersuites: ['TLS_AES_128_GCM_SHA256'] } },
      health: { file: [{ file: '/tmp/down' }] },
    } }));
    for (const key of ['proxy.remoteurl', 'middleware.storage', 'validation.manifests.urls', 'compatibility.schema1.enabled',
      'http.prefix', 'http.net', 'http.tls.letsencrypt', 'http.tls.ciphersuites', 'health.file']) {
      assert.ok(found.some((p) => p.startsWith(`${key}:`)), `${key} in ${found.join(' | ')}`);
    }
    const c = loadConfig({ overrides: {
      redis: { addr: 'localhost:6379' }, reporting: { bugsnag: { apikey: 'k' } }, log: { formatter: 'text', hooks: [{ type: 'mail' }] },
      notifications: { endpoints: [{ name: 'off', url: 'http://x', disabled: true }] }, compatibility: { schema1: { enabled: false } },
      http: { secret: 's3cr3t', relativeurls: true, http2: { disabled: true } }, storage: { tag: { concurrencylimit: 8 } },
    } });
    assert.deepEqual(c.notes.map((n) => n.split(':')[0]), ['redis', 'reporting', 'log.hooks', 'log.formatter']);
  });

  it('bad values of the new keys are clear; maps cannot come from env vars', () => {
    const found = problems(() => loadConfig({ overrides: {
      http: { headers: { 'Bad Header': 'x', 'X-Split': 'a\r\nSet-Cookie: y' }, debug: { addr: 'nowhere', prometheus: { enabled: true } }, tls: { minimumtls: 'ssl3', clientcas: ['/ca.pem'] } },
      log: { fields: { nested: { no: 1 } } },
    } }));
    assert.ok(found.some((p) => p.includes('"Bad Header" is not a header name')), found.join('\n'));
    assert.ok(found.some((p) => p.startsWith('http.headers.X-Split: values must be strings on one line')), found.join('\n'));
    assert.ok(found.some((p) => p.startsWith('http.debug: "nowhere" is not host:port')), found.join('\n'));
    assert.ok(found.some((p) => p.startsWith('http.tls.minimumtls: "ssl3"')), found.join('\n'));
    assert.ok(found.some((p) => p.startsWith('http.tls.clientcas: needs TLS')), found.join('\n'));
    assert.ok(found.some((p) => p.startsWith('log.fields: expected a mapping of names to values')), found.join('\n'));
    assert.deepEqual(problems(() => loadConfig({ env: { REGISTRY_HTTP_HEADERS: 'x' } })), ['REGISTRY_HTTP_HEADERS: no such configuration key']);
    assert.equal(loadConfig({ env: { REGISTRY_STORAGE_MAINTENANCE_READONLY_ENABLED: 'true' } }).readOnly, true);
  });

  it('header values Node cannot send (an en dash, a control character) are a config problem, not a 500 on every request', async () => {
    const found = problems(() => loadConfig({ overrides: {
      http: { headers: { 'X-Served-By': ['registry \u2013 berth'], 'X-Bell': 'a\u0007b', 'X-Ok': ['caf\u00e9', 'tab\there'] } },
      notifications: { endpoints: [{ name: 'hook', url: 'http://127.0.0.1:9/', headers: { 'X-Team': ['\u00e9quipe \u20ac'] } }] },
    } }));
    assert.deepEqual(found, [
      'http.headers.X-Served-By: values must be strings on one line, of printable ASCII or Latin-1 characters',
      'http.headers.X-Bell: values must be strings on one line, of printable ASCII or Latin-1 characters',
      'notifications.endpoints[0].headers.X-Team: values must be strings on one line, of printable ASCII or Latin-1 characters',
    ]);
    // what is accepted is sent
    const c = loadConfig({ overrides: { http: { headers: { 'X-Ok': ['caf\u00e9', 'tab\there'] } } } });
    await onFreshStorage(async (fresh) => {
      const res = await request(createApp({ headers: c.http.headers }, { storage: fresh })).get('/v2/');
      assert.equal(res.status, 200);
      assert.equal(res.headers['x-ok']?.split(', ')[1], 'tab\there');
    });
  });

  it('distribution 3\'s token keys: signingalgorithms (asymmetric ones only) and autoredirect', () => {
    const token = { htpasswd: '/h', signingalgorithms: ['ES256', 'RS256'], autoredirect: true };
    const c = loadConfig({ overrides: { auth: { token } } });
    assert.deepEqual(c.auth.token?.signingAlgorithms, ['ES256', 'RS256']);
    assert.equal(c.auth.token?.autoRedirectPath, '/auth/token/');
    assert.deepEqual(problems(() => loadConfig({ overrides: { auth: { token: { htpasswd: '/h', signingalgorithms: ['HS256', 'RS256'] } } } })), [
      'auth.token.signingalgorithms: "HS256" is not one of ES256, ES384, ES512, RS256, RS384, RS512, PS256, PS384, PS512, EdDSA (asymmetric only)',
      'auth.token.signingalgorithms: leaves out ES256, the built-in issuer\'s algorithm',
    ]);
  });

  it('read-only mode: reads work, every write and delete gets 405 UNSUPPORTED with Allow, and uploads are not purged', async () => {
    await onFreshStorage(async (storage) => {
      const writable = createApp({ deleteEnabled: true }, { storage });
      const image = await pushImage(writable, 'org/app', 'v1');
      const start = await request(writable).post('/v2/org/app/blobs/uploads/');
      assert.equal(start.status, 202);

      const app = createApp({ deleteEnabled: true, readOnly: true }, { storage });
      assert.equal((await request(app).get('/v2/org/app/manifests/v1')).status, 200);
      assert.equal((await request(app).head(`/v2/org/app/blobs/${image.config}`)).status, 200);
      assert.equal((await request(app).get('/v2/org/app/tags/list')).status, 200);
      const writes = [
        request(app).post('/v2/org/app/blobs/uploads/'),
        request(app).patch(start.headers.location!).set('Content-Type', 'application/octet-stream').send(Buffer.from('x')),
        request(app).put('/v2/org/app/manifests/v2').set('Content-Type', MediaType.OciManifest).send(image.manifest.toString()),
        request(app).delete(`/v2/org/app/manifests/${image.digest}`),
        request(app).delete(`/v2/org/app/blobs/${image.config}`),
      ];
      for (const [i, res] of (await Promise.all(writes)).entries()) {
        assert.equal(res.status, 405, `write ${i}`);
        assert.equal(errorCode(res), 'UNSUPPORTED');
        assert.match(res.body.errors[0].message, /read-only/);
        assert.ok(['GET, HEAD', 'GET', ''].includes(res.headers.allow!), res.headers.allow); // (POST …/uploads/ alone: none)
      }
      assert.equal((await request(app).get('/v2/org/app/manifests/v1')).status, 200, 'nothing was deleted');
      assert.equal((await request(app).get('/v2/org/app/tags/list')).body.tags.length, 1, 'no tag was added');
      assert.equal(loadConfig({ overrides: { storage: { maintenance: { readonly: { enabled: true } } } } }).uploadPurging.enabled, false);
    });
  });

  it('http.headers are sent with every response, errors included; log.accesslog.disabled drops the per-request lines', async () => {
    await onFreshStorage(async (storage) => {
      const lines: Record<string, unknown>[] = [];
      const headers = { 'X-Content-Type-Options': ['nosniff'], 'X-Frame-Options': ['DENY'] };
      const app = createApp({ headers }, { storage, logger: capturedLogger(lines) });
      for (const path of ['/v2/', '/v2/no/such/manifests/x', '/nowhere']) {
        const res = await request(app).get(path);
        assert.equal(res.headers['x-content-type-options'], 'nosniff', path);
        assert.equal(res.headers['x-frame-options'], 'DENY', path);
      }
      assert.ok(lines.filter((l) => l.req && l.res).length >= 3);
      const quiet: Record<string, unknown>[] = [];
      const silent = createApp({ accessLog: false }, { storage, logger: capturedLogger(quiet) });
      await pushBlob(silent, 'org/app', 'data');
      assert.deepEqual(quiet.filter((l) => l.req), []);
    });
  });

  it('health.storagedriver: after `threshold` failed checks in a row every request but /metrics (/healthz too) gets 503, until one passes', async () => {
    await onFreshStorage(async (fresh) => {
      let broken = false;
      const storage: StorageAdapter = withHooks(fresh, {
        list: (original) => (prefix) => { if (broken) throw new Error('disk gone'); return original(prefix); },
      });
      const health = new StorageHealth(storage, 60_000, 2);
      const app = createApp({}, { storage, health });
      broken = true;
      await health.check();
      assert.equal((await request(app).get('/v2/')).status, 200, 'one failure is under the threshold');
      await health.check();
      const down = await request(app).get('/v2/');
      assert.equal(down.status, 503);
      assert.equal(errorCode(down), 'UNAVAILABLE');
      assert.match(down.body.errors[0].message, /storage health check failed: disk gone/);
      const healthz = await request(app).get('/healthz');
      assert.equal(healthz.status, 503);
      assert.equal(errorCode(healthz), 'UNAVAILABLE');
      assert.equal((await request(app).get('/metrics')).status, 200);
      broken = false;
      await health.check();
      assert.equal((await request(app).get('/v2/')).status, 200);
      assert.equal((await request(app).get('/healthz')).status, 200);
    });
  });

  it('berth serve with the stock config: log.fields on every line; http.debug.addr serves /debug/health and the Prometheus metrics', async () => {
    const root = await tempDir();
    const lines: Record<string, unknown>[] = [];
    const config = loadConfig({ file: await yamlFile(STOCK(root)), overrides: { http: { debug: { addr: '127.0.0.1:0', prometheus: { enabled: true, path: '/metrics' } } } } });
    const running = await startRegistry(config, capturedLogger(lines));
    try {
      const v2 = await fetch(`${running.url}/v2/`);
      assert.equal(v2.headers.get('x-content-type-options'), 'nosniff');
      assert.ok(running.debugUrl);
      const health = await fetch(`${running.debugUrl}/debug/health`);
      assert.equal(health.status, 200);
      assert.deepEqual(await health.json(), {});
      assert.match(await (await fetch(`${running.debugUrl}/metrics`)).text(), /berth_http_requests_total\{method="GET",route="base",status="200"\} 1/);
      assert.equal((await fetch(`${running.debugUrl}/v2/`)).status, 404, 'the debug listener serves no registry');
    } finally {
      await running.close();
      await rm(root, { recursive: true, force: true });
    }
    assert.ok(lines.length >= 3);
    for (const line of lines) assert.equal(line.service, 'registry', JSON.stringify(line));
  });

  it('http.tls.clientcas: only clients with a certificate from those CAs get through; http.tls.minimumtls is enforced', async () => {
    const dir = await tempDir();
    try {
      const server = ensureSelfSigned(join(dir, 'server'));
      const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
      const clientCert = (ca: string) => {
        openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${ca}.key`, '-out', `${ca}.pem`, '-days', '2', '-subj', `/CN=${ca}`);
        openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${ca}-client.key`, '-out', `${ca}-client.csr`, '-subj', '/CN=ci-bot');
        writeFileSync(join(dir, 'ext'), 'extendedKeyUsage=clientAuth\n');
        openssl('x509', '-req', '-in', `${ca}-client.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${ca}-client.pem`, '-days', '2', '-extfile', 'ext');
        return { cert: readFileSync(join(dir, `${ca}-client.pem`)), key: readFileSync(join(dir, `${ca}-client.key`)) };
      };
      const trusted = clientCert('clients-ca');
      const stranger = clientCert('other-ca');
      const config = loadConfig({ overrides: {
        http: { addr: '127.0.0.1:0', tls: { certificate: server.certificate, key: server.key, clientcas: [join(dir, 'clients-ca.pem')], minimumtls: 'tls1.3' } },
        storage: { filesystem: { rootdirectory: join(dir, 'data') } }, log: { level: 'silent' },
      } });
      const running = await startRegistry(config, pino({ level: 'silent' }));
      try {
        const url = running.url.replace('127.0.0.1', 'localhost');
        const ca = readFileSync(server.caCert);
        assert.equal(await get(url, { ca, ...trusted }), 200);
        await assert.rejects(get(url, { ca }), 'no client certificate');
        await assert.rejects(get(url, { ca, ...stranger }), 'a certificate from another CA');
        await assert.rejects(get(url, { ca, ...trusted, maxVersion: 'TLSv1.2' }), 'TLS 1.2 under minimumtls tls1.3');
      } finally {
        await running.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

