// docker's --mount long form: bind, volume (named or anonymous) and tmpfs, with clear errors.
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { test } from 'node:test';
import { parseMountFlag } from '../../runtime/mount-flag.js';

test('--mount: bind, volume and tmpfs in docker\'s long form, keys in any order and their aliases', () => {
  const dir = tmpdir();
  assert.deepEqual(parseMountFlag(`type=bind,source=${dir},target=/data,readonly`), { type: 'bind', source: dir, destination: '/data', readonly: true, nocopy: false });
  assert.deepEqual(parseMountFlag(`dst=/data,src=${dir},type=bind,ro=false,bind-propagation=rprivate`), { type: 'bind', source: dir, destination: '/data', readonly: false, nocopy: false });
  assert.deepEqual(parseMountFlag('source=cache,target=/var/cache,volume-nocopy'), { type: 'volume', source: 'cache', destination: '/var/cache', readonly: false, nocopy: true });
  assert.deepEqual(parseMountFlag('type=volume,destination=/scratch,readonly=1'), { type: 'anonymous', destination: '/scratch', readonly: true, nocopy: false });
  assert.deepEqual(parseMountFlag('type=tmpfs,target=/run/x,tmpfs-size=64m,tmpfs-mode=1770'), { type: 'tmpfs', tmpfs: `/run/x:size=${64 * 1024 * 1024},mode=1770` });
  assert.deepEqual(parseMountFlag('type=tmpfs,target=/t'), { type: 'tmpfs', tmpfs: '/t' });
  assert.deepEqual(parseMountFlag(`type=bind,"source=${dir}","target=/with,comma"`), { type: 'bind', source: dir, destination: '/with,comma', readonly: false, nocopy: false });
});

test('--mount errors name the field at fault', () => {
  const cases: Array<[string, RegExp]> = [
    ['type=bind,target=/x', /a bind mount needs a source/],
    ['type=bind,source=relative,target=/x', /bind source "relative" must be an absolute path/],
    ['type=bind,source=/no/such/dir/anywhere,target=/x', /bind source path does not exist: \/no\/such\/dir\/anywhere/],
    ['type=volume,source=cache', /target is required/],
    ['type=volume,source=cache,target=data', /must be an absolute path/],
    ['type=volume,source=cache,target=/', /nothing can be mounted on \//],
    ['type=volume,source=bad/name,target=/x', /volume name/i],
    ['type=tmpfs,source=x,target=/t', /source does not apply to type=tmpfs/],
    ['type=volume,source=v,target=/t,tmpfs-size=1m', /tmpfs-size and tmpfs-mode does not apply to type=volume/],
    ['type=tmpfs,target=/t,tmpfs-mode=rwx', /tmpfs-mode is an octal mode/],
    ['type=npipe,target=/t', /type is bind, volume or tmpfs, not "npipe"/],
    ['type=volume,target=/t,colour=red', /unknown field "colour"/],
    ['type=volume,target=/t,readonly=maybe', /readonly takes true or false/],
    ['type=bind,source=/tmp,target=/t,bind-propagation=shared', /bind-propagation=shared is not supported/],
    ['type=bind,"source=/tmp,target=/t', /unterminated quote/],
  ];
  for (const [flag, re] of cases) assert.throws(() => parseMountFlag(flag), re, flag);
});
