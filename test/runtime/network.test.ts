// The bridge network's pieces (runtime/network.ts): the /etc files it writes, its subnet setting, and
// with root, addresses handed out to many containers at once and given back.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { bridgeNetwork, connect, containerResolvConf, disconnect, hostsFile, macFor, netnsName, netnsPath } from '../../runtime/network.js';
import { isRoot, run } from './helpers.js';

test('resolv.conf: the host\'s, minus loopback name servers; docker\'s public fallback when none is left; as is with the host network', () => {
  const host = 'search example.org\nnameserver 127.0.0.53\nnameserver 10.0.0.2\noptions edns0\n';
  assert.equal(containerResolvConf(host, 'bridge'), 'search example.org\nnameserver 10.0.0.2\noptions edns0\n');
  assert.equal(containerResolvConf('nameserver 127.0.0.53\n', 'bridge'), 'nameserver 8.8.8.8\nnameserver 8.8.4.4\n');
  assert.equal(containerResolvConf('nameserver 127.0.0.53\n', 'host'), 'nameserver 127.0.0.53\n');
  assert.match(hostsFile('box', '10.66.0.7'), /\n10\.66\.0\.7\tbox\n$/);
  assert.match(hostsFile('box'), /\n127\.0\.1\.1\tbox\n$/);
  assert.equal(macFor('10.66.1.255'), '02:42:0a:42:01:ff');
});

test('BERTH_BRIDGE_SUBNET moves the bridge; a bad one is a clear error', () => {
  assert.deepEqual(bridgeNetwork({}), { name: 'berth0', gateway: '10.66.0.1', prefixLen: 16 });
  assert.deepEqual(bridgeNetwork({ BERTH_BRIDGE_SUBNET: '172.31.7.9/24' }), { name: 'berth0', gateway: '172.31.7.1', prefixLen: 24 });
  for (const bad of ['10.66.0.0', '10.66.0.0/30', '300.1.1.0/16', 'x']) assert.throws(() => bridgeNetwork({ BERTH_BRIDGE_SUBNET: bad }), /BERTH_BRIDGE_SUBNET/);
});

const hasIp = existsSync('/usr/sbin/ip') || existsSync('/sbin/ip') || existsSync('/usr/bin/ip');
test('connect gives concurrent containers distinct addresses, namespaces and routes; disconnect gives them back', { skip: !isRoot ? 'needs root' : !hasIp ? 'needs iproute2' : false }, async () => {
  const ids = Array.from({ length: 8 }, (_, i) => `${String(i).padStart(2, '0')}${'e'.repeat(62)}`);
  try {
    const got = await Promise.all(ids.map((id) => connect(id)));
    assert.equal(new Set(got.map((a) => a.ip)).size, ids.length, got.map((a) => a.ip).join(' '));
    for (const [i, a] of got.entries()) {
      assert.equal(a.netns, netnsPath(ids[i]!));
      const { stdout } = await run('ip', ['-n', netnsName(ids[i]!), '-4', '-o', 'addr', 'show', 'eth0']);
      assert.match(stdout, new RegExp(`inet ${a.ip.replace(/\./g, '\\.')}/16 `));
      const route = await run('ip', ['-n', netnsName(ids[i]!), 'route', 'show', 'default']);
      assert.match(route.stdout, /^default via 10\.66\.0\.1 dev eth0/);
    }
    const first = got[0]!.ip;
    await disconnect(ids[0]!);
    assert.ok(!existsSync(netnsPath(ids[0]!)));
    assert.ok(!existsSync(`/run/berth/ipam/berth0/${first}`));
    const again = await connect(ids[0]!);
    assert.ok(!got.slice(1).some((a) => a.ip === again.ip), 'an address given back is free, the others are still taken');
  } finally {
    for (const id of ids) await disconnect(id);
  }
  for (const id of ids) assert.ok(!existsSync(netnsPath(id)));
});
