import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isValidName, isValidTag } from '../../oci/reference.js';

describe('repository names and tags (distribution-spec grammar)', () => {
  for (const good of ['a', 'library/busybox', 'org/team/app', 'a.b_c__d-e--f/g', '0', 'x'.repeat(255)]) {
    it(`accepts the name ${good.slice(0, 30)}`, () => assert.ok(isValidName(good)));
  }
  for (const bad of ['', 'A', '/a', 'a/', 'a//b', '../a', 'a/../b', '.a', 'a.', 'a___b', 'a/.b', '%2e%2e', 'a b', 'x'.repeat(256), 'a\nb']) {
    it(`refuses the name ${JSON.stringify(bad.slice(0, 30))}`, () => assert.ok(!isValidName(bad)));
  }
  for (const good of ['latest', 'v1.0', '_x', 'A-b.c_d', 'x'.repeat(128)]) {
    it(`accepts the tag ${good.slice(0, 30)}`, () => assert.ok(isValidTag(good)));
  }
  for (const bad of ['', '.x', '-x', 'x'.repeat(129), 'a/b', 'a:b', '..']) {
    it(`refuses the tag ${JSON.stringify(bad.slice(0, 30))}`, () => assert.ok(!isValidTag(bad)));
  }
});
