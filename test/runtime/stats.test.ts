import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatStats, parseNetDev } from '../../runtime/stats.js';

test('parseNetDev sums the received and sent bytes of every interface but the loopback', () => {
  const text = [
    'Inter-|   Receive                                                |  Transmit',
    ' face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed',
    '    lo:  999999     100    0    0    0     0          0         0   999999     100    0    0    0     0       0          0',
    '  eth0:    1500      10    0    0    0     0          0         0      648       5    0    0    0     0       0          0',
    'veth1a2b:  2000      20    0    0    0     0          0         0     1000       8    0    0    0     0       0          0',
  ].join('\n');
  assert.deepEqual(parseNetDev(text), { rx: 3500, tx: 1648 });
  assert.deepEqual(parseNetDev(text.split('\n').slice(0, 3).join('\n')), { rx: 0, tx: 0 }, 'only a loopback: nothing');
});

test('formatStats prints I/O in decimal units with three significant digits, as docker does', () => {
  const table = formatStats([{
    id: 'a'.repeat(64), name: 'web', cpuPercent: 12.345, memory: 3 * 1024 * 1024, memoryLimit: 64 * 1024 * 1024,
    netRx: 648, netTx: 0, blockRead: 4_194_304, blockWrite: 1_234_567_890, pids: 3,
  }]);
  const [header, row] = table.trimEnd().split('\n');
  assert.match(header!, /^CONTAINER ID\s+NAME\s+CPU %\s+MEM USAGE \/ LIMIT\s+MEM %\s+NET I\/O\s+BLOCK I\/O\s+PIDS$/);
  assert.match(row!, /^a{12}\s+web\s+12\.35%\s+3\.00MiB \/ 64\.00MiB\s+4\.69%\s+648B \/ 0B\s+4\.19MB \/ 1\.23GB\s+3$/);
});
