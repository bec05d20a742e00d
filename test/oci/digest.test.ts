import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { HashingStream, InvalidDigestError, digestOf, parseDigest } from '../../oci/digest.js';

describe('digest', () => {
  it('parses sha256 and sha512 strictly', () => {
    const d = digestOf('x');
    assert.equal(parseDigest(d).encoded, d.slice(7));
    assert.equal(parseDigest(digestOf('x', 'sha512')).algorithm, 'sha512');
  });

  for (const bad of ['', 'sha256', 'sha256:', `sha256:${'A'.repeat(64)}`, `sha256:${'a'.repeat(65)}`, `sha512:${'a'.repeat(64)}`,
    `md5:${'a'.repeat(32)}`, `sha256:${'a'.repeat(63)}/`, `sha256:../../${'a'.repeat(58)}`, ` sha256:${'a'.repeat(64)}`]) {
    it(`refuses ${JSON.stringify(bad.slice(0, 24))}`, () => assert.throws(() => parseDigest(bad), InvalidDigestError));
  }

  it('HashingStream digests what flows through, unchanged', async () => {
    const h = new HashingStream();
    const out: Buffer[] = [];
    await pipeline(Readable.from([Buffer.from('hello '), Buffer.from('world')]), h,
      new Writable({ write(c, _e, cb) { out.push(c); cb(); } }));
    assert.equal(h.digest(), digestOf('hello world'));
    assert.equal(h.bytes, 11);
    assert.equal(Buffer.concat(out).toString(), 'hello world');
  });
});
