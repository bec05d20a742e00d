// The container's /etc files (runtime/etc-files.ts): resolv.conf from the host's and the --dns flags,
// hosts with the container's address and --add-host names.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkDnsFlags, containerResolvConf, hostsFile, parseAddHost } from '../../runtime/etc-files.js';

test('resolv.conf: the host\'s, minus loopback name servers; docker\'s public fallback when none is left; as is with the host network', () => {
  const host = 'search example.org\nnameserver 127.0.0.53\nnameserver 10.0.0.2\noptions edns0\n';
  assert.equal(containerResolvConf(host, 'bridge'), 'search example.org\nnameserver 10.0.0.2\noptions edns0\n');
  assert.equal(containerResolvConf('nameserver 127.0.0.53\n', 'bridge'), 'nameserver 8.8.8.8\nnameserver 8.8.4.4\n');
  assert.equal(containerResolvConf('nameserver 127.0.0.53\n', 'host'), 'nameserver 127.0.0.53\n');
  assert.match(hostsFile('box', '10.66.0.7'), /\n10\.66\.0\.7\tbox\n$/);
  assert.match(hostsFile('box', undefined), /\n127\.0\.1\.1\tbox\n$/);
});

test('--dns, --dns-search and --dns-option replace the host\'s lines; --add-host adds names, host-gateway is the bridge\'s gateway', () => {
  const host = 'search example.org\nnameserver 10.0.0.2\noptions edns0\n';
  assert.equal(containerResolvConf(host, 'bridge', { dns: ['1.1.1.1', '9.9.9.9'] }), 'search example.org\noptions edns0\nnameserver 1.1.1.1\nnameserver 9.9.9.9\n');
  assert.equal(containerResolvConf(host, 'bridge', { dnsSearch: ['a.test', 'b.test'], dnsOptions: ['ndots:2'] }), 'nameserver 10.0.0.2\nsearch a.test b.test\noptions ndots:2\n');
  assert.deepEqual(parseAddHost('db:10.1.2.3'), { name: 'db', ip: '10.1.2.3' });
  assert.deepEqual(parseAddHost('v6:::1'), { name: 'v6', ip: '::1' });
  assert.deepEqual(parseAddHost('host.docker.internal:host-gateway'), { name: 'host.docker.internal', ip: 'host-gateway' });
  for (const [bad, re] of [['db', /expected NAME:IP/], ['db:nope', /"nope" is not an IP address/], ['bad name:1.2.3.4', /expected NAME:IP/]] as const) assert.throws(() => parseAddHost(bad), re);
  assert.equal(hostsFile('box', '10.66.0.9', [parseAddHost('db:10.1.2.3'), parseAddHost('gw:host-gateway')]).split('\n').slice(2).join('\n'), '10.66.0.9\tbox\n10.1.2.3\tdb\n10.66.0.1\tgw\n');
  assert.match(hostsFile('box', undefined, [parseAddHost('gw:host-gateway')], '127.0.0.1'), /\n127\.0\.0\.1\tgw\n$/);
  assert.throws(() => checkDnsFlags({ dns: ['dns.example'] }), /--dns dns.example: not an IP address/);
  assert.throws(() => checkDnsFlags({ dnsSearch: ['a b'] }), /--dns-search a b: expected one word/);
});
