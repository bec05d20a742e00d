import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { familiarReference, formatReference, InvalidReferenceError, normalizeRegistryHost, parseImageReference } from '../../oci/image-reference.js';

const D = `sha256:${'a'.repeat(64)}`;

describe('image references (docker grammar and normalisation)', () => {
  const cases: [string, string][] = [
    ['busybox', 'docker.io/library/busybox:latest'],
    ['busybox:1.36', 'docker.io/library/busybox:1.36'],
    ['library/busybox', 'docker.io/library/busybox:latest'],
    ['docker.io/busybox', 'docker.io/library/busybox:latest'],
    ['index.docker.io/library/busybox', 'docker.io/library/busybox:latest'],
    ['user/app', 'docker.io/user/app:latest'],
    ['ghcr.io/org/app:v1', 'ghcr.io/org/app:v1'],
    ['localhost/app', 'localhost/app:latest'],
    ['localhost:5000/app', 'localhost:5000/app:latest'],
    ['host:5000/ns/team/app:tag', 'host:5000/ns/team/app:tag'],
    [`host:5000/ns/team/app:tag@${D}`, `host:5000/ns/team/app:tag@${D}`],
    [`host:5000/app@${D}`, `host:5000/app@${D}`],
    ['127.0.0.1:5000/a/b', '127.0.0.1:5000/a/b:latest'],
    ['[::1]:5000/a', '[::1]:5000/a:latest'],
    ['registry.example.com/a__b/c-d.e', 'registry.example.com/a__b/c-d.e:latest'],
  ];
  for (const [input, want] of cases) {
    it(`${input} → ${want}`, () => assert.equal(formatReference(parseImageReference(input)), want));
  }

  it('splits registry, repository, tag and digest', () => {
    assert.deepEqual(parseImageReference(`host:5000/ns/team/app:tag@${D}`), { registry: 'host:5000', repository: 'ns/team/app', tag: 'tag', digest: D });
    assert.deepEqual(parseImageReference(`app@${D}`), { registry: 'docker.io', repository: 'library/app', digest: D });
  });

  it('only the first component with a dot, a port or "localhost" is a registry', () => {
    assert.equal(parseImageReference('myns/app').registry, 'docker.io');
    assert.equal(parseImageReference('my.host/app').registry, 'my.host');
    assert.equal(parseImageReference('localhost/app').registry, 'localhost');
    // docker's rule: an upper-case first component can only be a host name
    assert.equal(parseImageReference('Host/app').registry, 'Host');
  });

  it('familiar form drops docker.io/library', () => {
    assert.equal(familiarReference(parseImageReference('busybox')), 'busybox:latest');
    assert.equal(familiarReference(parseImageReference('user/app:1')), 'user/app:1');
    assert.equal(familiarReference(parseImageReference('h:1/a:1')), 'h:1/a:1');
  });

  const bad: [string, RegExp][] = [
    ['', /empty/],
    ['app/Name', /lowercase/],
    ['a b', /whitespace/],
    ['app:', /invalid tag/],
    ['app:-x', /invalid tag/],
    [`app:${'t'.repeat(129)}`, /invalid tag/],
    ['app@sha256:123', /sha256 needs 64/],
    ['app@md5:abc', /unsupported algorithm/],
    ['a//b', /invalid repository name/],
    ['host:5000/', /missing repository|invalid repository/],
    ['../etc/passwd', /invalid (registry host|repository name)/],
    ['a'.repeat(64).replace(/a/g, 'f'), /image ID/],
    [`h.io/${'a'.repeat(260)}`, /longer than 255/],
    ['-bad.host:99/app', /invalid registry host/],
    ['localhost:99999/app', /invalid port 99999/],
    ['127.0.0.1:0/app', /invalid port 0/],
  ];
  for (const [input, re] of bad) {
    it(`rejects ${JSON.stringify(input.slice(0, 40))}`, () => {
      assert.throws(() => parseImageReference(input), (e: unknown) => e instanceof InvalidReferenceError && re.test((e as Error).message) && (e as InvalidReferenceError).exitCode === 2);
    });
  }

  it('normalises registry hosts given to login', () => {
    assert.equal(normalizeRegistryHost('https://index.docker.io/v1/'), 'docker.io');
    assert.equal(normalizeRegistryHost('registry-1.docker.io'), 'docker.io');
    assert.equal(normalizeRegistryHost('http://localhost:5000/'), 'localhost:5000');
    assert.throws(() => normalizeRegistryHost('bad host'), InvalidReferenceError);
  });
});
