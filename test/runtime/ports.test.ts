// -p parsing and the userland port proxy (runtime/ports.ts), relaying to real local servers.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { connect, createServer, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { test } from 'node:test';
import { formatMapping, parsePublish, portsToPublish, PortProxy } from '../../runtime/ports.js';

test('-p takes docker\'s forms: container port, host port, host address, ranges, protocol', () => {
  assert.deepEqual(parsePublish('80'), [{ hostIp: '', hostPort: 0, containerPort: 80, protocol: 'tcp' }]);
  assert.deepEqual(parsePublish('8080:80'), [{ hostIp: '', hostPort: 8080, containerPort: 80, protocol: 'tcp' }]);
  assert.deepEqual(parsePublish('127.0.0.1::80/udp'), [{ hostIp: '127.0.0.1', hostPort: 0, containerPort: 80, protocol: 'udp' }]);
  assert.deepEqual(parsePublish('[::1]:8080:80'), [{ hostIp: '::1', hostPort: 8080, containerPort: 80, protocol: 'tcp' }]);
  assert.deepEqual(parsePublish('8000-8001:80-81').map((p) => [p.hostPort, p.containerPort]), [[8000, 80], [8001, 81]]);
  for (const [bad, re] of [
    ['80/sctp', /the protocol must be tcp or udp/], ['70000', /invalid container port "70000"/], ['x:80', /invalid host port "x"/],
    ['1.2.3:80:80', /"1.2.3" is not an IP address/], ['8000-8002:80-81', /ranges differ in size/], ['81-80', /invalid container port range/],
    ['1:2:3:4', /expected \[\[HOST_IP:\]\[HOST_PORT\]:\]CONTAINER_PORT/],
  ] as const) assert.throws(() => parsePublish(bad), re, bad);
  assert.equal(formatMapping({ hostIp: '', hostPort: 32768, containerPort: 80, protocol: 'tcp' }), '80/tcp -> 0.0.0.0:32768');
  assert.equal(formatMapping({ hostIp: '::1', hostPort: 1, containerPort: 53, protocol: 'udp' }), '53/udp -> [::1]:1');
});

test('-P publishes what the image EXPOSEs; ports need the bridge network', () => {
  const exposed = { '80/tcp': {}, '53/udp': {}, '9000': {} };
  assert.deepEqual(portsToPublish('bridge', { publishAll: true }, exposed).map(formatMapping).sort(), ['53/udp -> 0.0.0.0:0', '80/tcp -> 0.0.0.0:0', '9000/tcp -> 0.0.0.0:0']);
  assert.deepEqual(portsToPublish('bridge', {}, exposed), []);
  assert.deepEqual(portsToPublish('bridge', { publish: parsePublish('8080:80'), publishAll: true }, exposed).map(formatMapping).sort(),
    ['53/udp -> 0.0.0.0:0', '80/tcp -> 0.0.0.0:8080', '9000/tcp -> 0.0.0.0:0'], '-p 8080:80 is port 80\'s only binding');
  assert.deepEqual(portsToPublish('host', {}, exposed), []);
  assert.throws(() => portsToPublish('host', { publish: parsePublish('80') }, exposed), /need the bridge network, not --network host/);
});

test('the TCP proxy relays both ways, half-closes included, on the port asked or a free one', async () => {
  // an upstream that answers only once the client has finished sending (so the half-close must get through)
  const upstream = createServer({ allowHalfOpen: true }, (s) => {
    let got = '';
    s.on('data', (d) => { got += d; }).on('end', () => s.end(`got ${got.length} bytes ending ${got.slice(-3)}`));
  });
  upstream.listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  const target = (upstream.address() as AddressInfo).port;
  const proxy = await PortProxy.open([{ hostIp: '127.0.0.1', hostPort: 0, containerPort: target, protocol: 'tcp' }], '127.0.0.1');
  try {
    const [bound] = proxy.bound;
    assert.ok(bound!.hostPort > 0 && bound!.hostPort !== target);
    const ask = async (payload: string) => {
      const c = connect(bound!.hostPort, '127.0.0.1');
      let answer = '';
      c.on('data', (d) => { answer += d; });
      c.end(payload);
      await once(c, 'close');
      return answer;
    };
    const big = 'x'.repeat(3_000_000) + 'end';
    const answers = await Promise.all([ask(big), ask('small')]);
    assert.deepEqual(answers, [`got ${big.length} bytes ending end`, 'got 5 bytes ending all']);
    // the same host port again: taken
    await assert.rejects(PortProxy.open([{ hostIp: '127.0.0.1', hostPort: bound!.hostPort, containerPort: target, protocol: 'tcp' }], '127.0.0.1'),
      new RegExp(`Bind for 127\\.0\\.0\\.1:${bound!.hostPort}/tcp failed: port is already allocated`));
    proxy.close();
    const refused = connect(bound!.hostPort, '127.0.0.1');
    const [err] = await once(refused, 'error') as [NodeJS.ErrnoException];
    assert.equal(err.code, 'ECONNREFUSED', 'closed: the host port is free again');
  } finally {
    proxy.close();
    upstream.close();
  }
});

test('the UDP proxy relays datagrams and replies to each client; a failed bind releases what was bound', async () => {
  const echo = createSocket('udp4');
  echo.on('message', (m, from) => echo.send(Buffer.concat([Buffer.from('echo:'), m]), from.port, from.address));
  echo.bind(0, '127.0.0.1');
  await once(echo, 'listening');
  const target = echo.address().port;
  const proxy = await PortProxy.open([{ hostIp: '127.0.0.1', hostPort: 0, containerPort: target, protocol: 'udp' }], '127.0.0.1');
  try {
    const hostPort = proxy.bound[0]!.hostPort;
    const client = async (text: string) => {
      const s = createSocket('udp4');
      s.send(text, hostPort, '127.0.0.1');
      const [reply] = await once(s, 'message') as [Buffer];
      s.close();
      return String(reply);
    };
    assert.deepEqual(await Promise.all([client('one'), client('two')]), ['echo:one', 'echo:two']);
    // a datagram from anyone but the container's port does not reach the client as a reply
    const c = createSocket('udp4');
    const replies: string[] = [];
    c.on('message', (m) => replies.push(String(m)));
    c.send('first', hostPort, '127.0.0.1');
    await once(c, 'message');
    // the proxy's upstream sockets, from ss (iproute2): "ESTAB 0 0 127.0.0.1:PORT 127.0.0.1:TARGET users:((…pid=…))"
    const stranger = createSocket('udp4');
    const upstreamPorts = execFileSync('ss', ['-Hunap'], { encoding: 'utf8' }).split('\n')
      .map((l) => /^ESTAB\s+\d+\s+\d+\s+127\.0\.0\.1:(\d+)\s+127\.0\.0\.1:(\d+)\s.*pid=(\d+),/.exec(l))
      .filter((m) => m && Number(m[2]) === target && Number(m[3]) === process.pid).map((m) => Number(m![1]));
    for (const port of upstreamPorts) stranger.send('spoofed', port, '127.0.0.1');
    c.send('second', hostPort, '127.0.0.1');
    await once(c, 'message');
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(upstreamPorts.length >= 1, 'the proxy\'s upstream sockets are connected to the container\'s port');
    assert.deepEqual(replies, ['echo:first', 'echo:second']);
    c.close();
    stranger.close();
    // all or none: the second mapping's port is taken by the first proxy, so the first one of this set is closed again
    const free = createServer().listen(0, '127.0.0.1');
    await once(free, 'listening');
    const freePort = (free.address() as AddressInfo).port;
    free.close();
    await assert.rejects(PortProxy.open([
      { hostIp: '127.0.0.1', hostPort: freePort, containerPort: 1, protocol: 'tcp' },
      { hostIp: '127.0.0.1', hostPort, containerPort: 1, protocol: 'udp' },
    ], '127.0.0.1'), /port is already allocated/);
    const again = createServer().listen(freePort, '127.0.0.1');
    await once(again, 'listening');
    again.close();
  } finally {
    proxy.close();
    echo.close();
  }
});
