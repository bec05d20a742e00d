import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { challengeScopes, parseChallenges } from '../../client/challenge.js';

describe('WWW-Authenticate challenge parsing', () => {
  it('a Bearer challenge with realm, service and scope', () => {
    const [c] = parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"');
    assert.equal(c!.scheme, 'bearer');
    assert.deepEqual(c!.params, { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' });
  });

  it('Basic, case-insensitive scheme and param names, spaces around =', () => {
    const [c] = parseChallenges('BASIC Realm = "Registry Realm"');
    assert.deepEqual(c, { scheme: 'basic', params: { realm: 'Registry Realm' } });
  });

  it('several challenges in one header, and in several headers', () => {
    const cs = parseChallenges('Basic realm="x", Bearer realm="https://a/token",service="s"');
    assert.deepEqual(cs.map((c) => c.scheme), ['basic', 'bearer']);
    assert.equal(cs[1]!.params.service, 's');
    const many = parseChallenges(['Basic realm="x"', 'Bearer realm="y"']);
    assert.deepEqual(many.map((c) => c.params.realm), ['x', 'y']);
  });

  it('quoted strings keep commas and escaped quotes; tokens are unquoted', () => {
    const [c] = parseChallenges('Bearer realm="https://a/t",scope="repository:a:pull,push repository:b:pull",error=insufficient_scope,x="say \\"hi\\""');
    assert.equal(c!.params.scope, 'repository:a:pull,push repository:b:pull');
    assert.equal(c!.params.error, 'insufficient_scope');
    assert.equal(c!.params.x, 'say "hi"');
    assert.deepEqual(challengeScopes(c!), ['repository:a:pull,push', 'repository:b:pull']);
  });

  it('a token68 credential form and garbage do not throw', () => {
    const [c] = parseChallenges('Negotiate abc123==');
    assert.equal(c!.scheme, 'negotiate');
    assert.equal(c!.params[''], 'abc123==');
    assert.doesNotThrow(() => parseChallenges('",,,=="; Bearer'));
    assert.deepEqual(parseChallenges(undefined), []);
  });
});
