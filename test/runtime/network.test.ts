// The bridge network's pieces (runtime/network.ts): its subnet setting, docker's MAC scheme, and
// with root, addresses handed out to many containers at once and given back.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { bridgeNetwork, connect, disconnect, macFor, netnsName, netnsPath } from '../../runtime/network.js';
import { isRoot, run } from './helpers.js';

test('BERTH_BRIDGE_SUBNET moves the bridge; a bad one is a clear error', () => {
  assert.equal(macFor('10.66.1.255'), '02:42:0a:42:01:ff');
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

test('a network kept by another live process is not touched; once that keeper is killed, a new start takes it over', { skip: !isRoot ? 'needs root' : !hasIp ? 'needs iproute2' : false }, async () => {
  const id = `0f${'d'.repeat(62)}`;
  const keeper = spawn(process.execPath, ['--input-type=module', '-e', `
    const { connect } = await import(${JSON.stringify(new URL('../../runtime/network.js', import.meta.url).href)});
    const a = await connect(${JSON.stringify(id)});
    console.log(a.ip);
    setInterval(() => {}, 1000);`], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const [line] = await once(keeper.stdout!, 'data') as [Buffer];
    const ip = String(line).trim();
    await assert.rejects(connect(id), new RegExp(`already connected by process ${keeper.pid}`));
    await disconnect(id);
    assert.ok(existsSync(netnsPath(id)), 'disconnect leaves a network that a live keeper holds');
    assert.match(await readFile(`/run/berth/ipam/berth0/${ip}`, 'utf8'), new RegExp(`"pid":${keeper.pid}`));
    keeper.kill('SIGKILL');
    await once(keeper, 'exit');
    const again = await connect(id);
    assert.ok(existsSync(netnsPath(id)));
    assert.match(await readFile(`/run/berth/ipam/berth0/${again.ip}`, 'utf8'), new RegExp(`"pid":${process.pid}`));
  } finally {
    keeper.kill('SIGKILL');
    await disconnect(id);
  }
  assert.ok(!existsSync(netnsPath(id)));
});
