import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig, parseAddr, parseDuration } from '../../server/config.js';
import { problems, yamlFile } from '../helpers/config.js';

describe('config', () => {
  it('defaults: :5000, filesystem under ./data, deletes off', () => {
    const c = loadConfig();
    assert.equal(c.http.port, 5000);
    assert.equal(c.http.host, undefined);
    assert.deepEqual(c.storage, { driver: 'filesystem', options: { rootdirectory: './data' } });
    assert.equal(c.delete.enabled, false);
  });

  it('reads a distribution-style YAML file', async () => {
    const file = await yamlFile(`version: 0.1
log:
  level: debug
http:
  addr: 127.0.0.1:5077
storage:
  filesystem:
    rootdirectory: /var/lib/berth
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      age: 24h
      interval: 1h
`);
    const c = loadConfig({ file });
    assert.equal(c.log.level, 'debug');
    assert.equal(c.http.host, '127.0.0.1');
    assert.equal(c.http.port, 5077);
    assert.equal(c.storage.options.rootdirectory, '/var/lib/berth');
    assert.equal(c.delete.enabled, true);
    assert.equal(c.uploadPurging.ageMs, 24 * 3600_000);
  });

  it('env vars override the file, flags override env', async () => {
    const file = await yamlFile('http:\n  addr: ":6000"\n');
    const env = { REGISTRY_HTTP_ADDR: '127.0.0.1:5077', REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: '/srv/x', REGISTRY_STORAGE_DELETE_ENABLED: 'true' };
    const c = loadConfig({ file, env });
    assert.equal(c.http.port, 5077);
    assert.equal(c.storage.options.rootdirectory, '/srv/x');
    assert.equal(c.delete.enabled, true);
    const f = loadConfig({ file, env, overrides: { http: { addr: '[::1]:7000' } } });
    assert.equal(f.http.host, '::1');
    assert.equal(f.http.port, 7000);
  });

  it('REGISTRY_STORAGE=s3 switches the driver, dropping the file\'s filesystem section', () => {
    const c = loadConfig({ env: { REGISTRY_STORAGE: 's3', REGISTRY_STORAGE_S3_BUCKET: 'b', REGISTRY_STORAGE_S3_CHUNKSIZE: '5242880' } });
    assert.equal(c.storage.driver, 's3');
    assert.deepEqual(c.storage.options, { bucket: 'b', chunksize: 5242880 });
    // whatever order the variables come in, a filesystem key set alongside does not make two drivers
    const mixed = loadConfig({ env: { REGISTRY_STORAGE: 's3', REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: '/x', REGISTRY_STORAGE_S3_BUCKET: 'b' } });
    assert.equal(mixed.storage.driver, 's3');
    // the SDK's attempts and the read timeout (a duration, handed to the adapter in ms)
    const tuned = loadConfig({ env: { REGISTRY_STORAGE: 's3', REGISTRY_STORAGE_S3_BUCKET: 'b', REGISTRY_STORAGE_S3_MAXATTEMPTS: '3', REGISTRY_STORAGE_S3_READTIMEOUT: '1m30s' } });
    assert.deepEqual(tuned.storage.options, { bucket: 'b', maxattempts: 3, readtimeout: 90_000 });
    assert.throws(() => loadConfig({ env: { REGISTRY_STORAGE: 's3', REGISTRY_STORAGE_S3_BUCKET: 'b', REGISTRY_STORAGE_S3_READTIMEOUT: 'soon' } }), /REGISTRY_STORAGE_S3_READTIMEOUT: "soon" is not a duration/);
  });

  it('http.trustedproxies takes addresses, CIDR ranges and proxy-addr\'s names; auth.maxloginfailures a count', () => {
    const c = loadConfig({ env: { REGISTRY_HTTP_TRUSTEDPROXIES: '10.0.0.0/8, ::1, loopback', REGISTRY_AUTH_MAXLOGINFAILURES: '5' } });
    assert.deepEqual(c.http.trustedProxies, ['10.0.0.0/8', '::1', 'loopback']);
    assert.equal(c.auth.maxLoginFailures, 5);
    assert.equal(loadConfig().auth.maxLoginFailures, 20);
    assert.deepEqual(loadConfig().http.trustedProxies, []);
    const p = problems(() => loadConfig({ env: { REGISTRY_HTTP_TRUSTEDPROXIES: '10.0.0.0/33,proxy.example.com,1.2.3.4/8/1' } }));
    assert.equal(p.filter((x) => x.startsWith('http.trustedproxies:')).length, 3, p.join('\n'));
  });

  it('each mistake gets its own clear message', async () => {
    const file = await yamlFile(`http:
  addr: nonsense
  tls:
    certificate: /x.pem
log:
  level: loud
storage:
  filesystem:
    rootdirectory: /a
  s3:
    bucket: b
  delete:
    enabled: maybe
bogus: 1
`);
    const p = problems(() => loadConfig({ file }));
    assert.ok(p.some((x) => x.startsWith('http.addr:')), p.join('\n'));
    assert.ok(p.some((x) => x.includes('certificate and key')));
    assert.ok(p.some((x) => x.startsWith('log.level:')));
    assert.ok(p.some((x) => x.includes('exactly one driver') && x.includes('filesystem, s3')));
    assert.ok(p.some((x) => x.startsWith('storage.delete.enabled: expected true or false')));
    assert.ok(p.some((x) => x === 'bogus: unknown key'));
  });

  it('http.host must be the public URL with its scheme: it becomes the token realm', () => {
    for (const host of ['registry.example.com', 'https://a b', 'ftp://x', 'https://x/"y']) {
      assert.ok(problems(() => loadConfig({ env: { REGISTRY_HTTP_HOST: host } })).some((x) => x.startsWith('http.host:')), host);
    }
    for (const host of ['https://registry.example.com', 'http://10.0.0.1:5000/', 'https://example.com/registry']) {
      assert.equal(loadConfig({ env: { REGISTRY_HTTP_HOST: host } }).http.publicHost, host);
    }
  });

  it('an unknown REGISTRY_ variable and a bad value are reported by name', () => {
    const p = problems(() => loadConfig({ env: { REGISTRY_HTTP_NOPE: '1', REGISTRY_STORAGE_S3_CHUNKSIZE: 'big', REGISTRY_STORAGE: 'floppy' } }));
    assert.ok(p.includes('REGISTRY_HTTP_NOPE: no such configuration key'), p.join('\n'));
    assert.ok(p.some((x) => x.startsWith('REGISTRY_STORAGE: unknown storage driver "floppy"')));
  });

  it('unreadable files and broken YAML are clear errors', async () => {
    assert.match(problems(() => loadConfig({ file: '/nonexistent/config.yml' }))[0]!, /cannot read/);
    assert.match(problems(() => loadConfig({ file: '/etc/hostname' }))[0]!, /expected a mapping|unknown key/);
    const broken = await yamlFile('http: [unclosed');
    assert.match(problems(() => loadConfig({ file: broken }))[0]!, /not valid YAML/);
  });

  it('parses addresses and durations', () => {
    assert.deepEqual(parseAddr(':5000'), { host: undefined, port: 5000 });
    assert.deepEqual(parseAddr('0.0.0.0:1'), { host: '0.0.0.0', port: 1 });
    assert.deepEqual(parseAddr('[::]:5000'), { host: '::', port: 5000 });
    assert.throws(() => parseAddr('5000'));
    assert.throws(() => parseAddr('host:99999'));
    assert.equal(parseDuration('1h30m'), 5_400_000);
    assert.equal(parseDuration('250ms'), 250);
    assert.throws(() => parseDuration('soon'));
    assert.throws(() => parseDuration('5m junk'));
  });
});
