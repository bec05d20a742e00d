import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DetachKeys, parseDetachKeys } from '../../runtime/attach.js';
import { encodeFrame, FRAME, FrameReader } from '../../runtime/attach-socket.js';

test('frames come out whole and in order, however the bytes are cut', () => {
  const wire = Buffer.concat([encodeFrame(FRAME.stdout, 'hello'), encodeFrame(FRAME.stdinEnd), encodeFrame(FRAME.resize, '30 100'), encodeFrame(FRAME.stderr, Buffer.alloc(70_000, 7))]);
  for (const cut of [1, 3, 5, 4096, wire.length]) {
    const got: Array<[number, string]> = [];
    const r = new FrameReader((type, payload) => got.push([type, type === FRAME.stderr ? `${payload.length}:${payload[0]}` : payload.toString()]));
    for (let i = 0; i < wire.length; i += cut) r.push(wire.subarray(i, i + cut));
    assert.deepEqual(got, [[FRAME.stdout, 'hello'], [FRAME.stdinEnd, ''], [FRAME.resize, '30 100'], [FRAME.stderr, '70000:7']], `cut every ${cut} bytes`);
  }
});

test('a frame longer than any read is refused: the peer does not speak the protocol', () => {
  const head = Buffer.from([FRAME.stdin, 0x7f, 0xff, 0xff, 0xff]);
  assert.throws(() => new FrameReader(() => undefined).push(head), /a frame of \d+ bytes/);
});

test('ctrl-p ctrl-q detaches, also across two reads; a lone ctrl-p is passed on', () => {
  const keys = new DetachKeys();
  assert.deepEqual(keys.scan(Buffer.from('ls\r')), { pass: Buffer.from('ls\r'), detach: false });
  assert.deepEqual(keys.scan(Buffer.from('ab\x10\x11cd')), { pass: Buffer.from('ab'), detach: true });
  const split = new DetachKeys();
  assert.deepEqual(split.scan(Buffer.from('x\x10')), { pass: Buffer.from('x'), detach: false });
  assert.deepEqual(split.scan(Buffer.from('\x11')), { pass: Buffer.alloc(0), detach: true });
  const lone = new DetachKeys();
  assert.deepEqual(lone.scan(Buffer.from('\x10a')), { pass: Buffer.from('\x10a'), detach: false }, 'ctrl-p then another key: both go');
  assert.deepEqual(lone.scan(Buffer.from('\x10\x10\x11')), { pass: Buffer.from('\x10'), detach: true });
});

test('--detach-keys: docker\'s key names; a sequence of any length, found across reads, its broken starts passed on', () => {
  assert.deepEqual([...parseDetachKeys('ctrl-p,ctrl-q')], [0x10, 0x11]);
  assert.deepEqual([...parseDetachKeys('ctrl-a,d')], [0x01, 0x64]);
  assert.deepEqual([...parseDetachKeys('ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_,X')], [0x00, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x58]);
  for (const bad of ['', 'ctrl-', 'ctrl-1', 'ab', 'ctrl-a,,d', 'ctrl-A']) assert.throws(() => parseDetachKeys(bad), /--detach-keys/, bad);
  const keys = new DetachKeys(parseDetachKeys('ctrl-a,d,x'));
  assert.deepEqual(keys.scan(Buffer.from('\x01dy')), { pass: Buffer.from('\x01dy'), detach: false }, 'a broken start goes on');
  assert.deepEqual(keys.scan(Buffer.from('\x01\x01d')), { pass: Buffer.from('\x01'), detach: false }, 'a repeated first key restarts the sequence');
  assert.deepEqual(keys.scan(Buffer.from('xz')), { pass: Buffer.alloc(0), detach: true });
  const single = new DetachKeys(parseDetachKeys('ctrl-q'));
  assert.deepEqual(single.scan(Buffer.from('ab\x11c')), { pass: Buffer.from('ab'), detach: true });
});
