import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatPlatform, parsePlatform, selectPlatform } from '../../client/platform.js';
import type { Descriptor } from '../../oci/manifest.js';

const d = (n: number, platform: Record<string, string>): Descriptor => ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${String(n).repeat(64).slice(0, 64)}` as Descriptor['digest'], size: 1, platform });

describe('platforms', () => {
  const index = [
    d(1, { os: 'linux', architecture: 'amd64' }),
    d(2, { os: 'linux', architecture: 'arm64', variant: 'v8' }),
    d(3, { os: 'linux', architecture: 'arm', variant: 'v6' }),
    d(4, { os: 'linux', architecture: 'arm', variant: 'v7' }),
    d(5, { os: 'windows', architecture: 'amd64' }),
  ];

  it('parses os/arch[/variant], with aliases', () => {
    assert.deepEqual(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64', variant: 'v8' });
    assert.deepEqual(parsePlatform('linux/x86_64'), { os: 'linux', architecture: 'amd64' });
    assert.throws(() => parsePlatform('linux'), /os\/arch/);
    assert.throws(() => parsePlatform('a/b/c/d'), /os\/arch/);
    assert.equal(formatPlatform({ os: 'linux', architecture: 'arm', variant: 'v7' }), 'linux/arm/v7');
  });

  it('picks the exact match, the default variant, the best compatible variant', () => {
    assert.equal(selectPlatform(index, parsePlatform('linux/amd64')), index[0]);
    assert.equal(selectPlatform(index, parsePlatform('linux/arm64')), index[1]);
    assert.equal(selectPlatform(index, parsePlatform('linux/arm')), index[3]);
    assert.equal(selectPlatform(index, parsePlatform('linux/arm/v6')), index[2]);
    assert.equal(selectPlatform(index, parsePlatform('windows/amd64')), index[4]);
    assert.equal(selectPlatform(index, parsePlatform('linux/s390x')), undefined);
    // arm/v7 can run v6 when there is no v7
    assert.equal(selectPlatform([index[2]!], parsePlatform('linux/arm/v7')), index[2]);
    // but v6 cannot run v7
    assert.equal(selectPlatform([index[3]!], parsePlatform('linux/arm/v6')), undefined);
  });
});
