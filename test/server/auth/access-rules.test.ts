import assert from 'node:assert/strict';
import { rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { globToRegExp, RulesFile, RulesError } from '../../../server/auth/access-rules.js';
import { parseScope, parseScopes } from '../../../server/auth/scope.js';
import { tempDir } from '../../helpers/registry.js';
import { RULES } from '../../helpers/auth.js';

describe('access rules', () => {
  it('patterns: * stays within a component, a trailing /* covers everything below, ** matches anything', () => {
    const m = (glob: string, name: string) => globToRegExp(glob).test(name);
    assert.ok(m('acme/*', 'acme/app') && m('acme/*', 'acme/team/app'));
    assert.ok(!m('acme/*', 'acme') && !m('acme/*', 'acmex/app'));
    assert.ok(m('acme/*-tools', 'acme/dev-tools') && !m('acme/*-tools', 'acme/x/dev-tools'));
    assert.ok(m('shared/**', 'shared/a/b/c') && m('**', 'anything/at/all'));
    assert.ok(!m('acme.app', 'acmexapp'), 'dots are literal');
  });

  it('grants per user: admins, own namespace, teams, rules, public; unknown actions never appear', async () => {
    const dir = await tempDir();
    try {
      await writeFile(join(dir, 'rules.yml'), RULES);
      const r = new RulesFile(join(dir, 'rules.yml'));
      assert.deepEqual(r.allowed('root', 'repository', 'anything/here'), ['pull', 'push', 'delete']);
      assert.deepEqual(r.allowed('alice', 'repository', 'alice'), ['pull', 'push', 'delete']);
      assert.deepEqual(r.allowed('alice', 'repository', 'alice/deep/app'), ['pull', 'push', 'delete']);
      assert.deepEqual(r.allowed('alice', 'repository', 'alicex/app'), []);
      assert.deepEqual(r.allowed('bob', 'repository', 'acme/app'), ['pull', 'push']);
      assert.deepEqual(r.allowed('carol', 'repository', 'acme/app'), ['pull']);
      assert.deepEqual(r.allowed('carol', 'repository', 'shared/x/y'), ['pull']);
      assert.deepEqual(r.allowed(undefined, 'repository', 'shared/x/y'), [], 'users: ["*"] means signed-in users');
      assert.deepEqual(r.allowed(undefined, 'repository', 'library/busybox'), ['pull']);
      assert.deepEqual(r.allowed('alice', 'repository', 'Alice/x'), [], 'invalid names match nothing');
      assert.deepEqual(r.allowed('alice', 'registry', 'catalog'), ['*']);
      assert.deepEqual(r.allowed('alice', 'registry', 'other'), []);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('an edit that breaks the file, or its removal, keeps the last good rules and says so once; a fixed file is read again', async () => {
    const dir = await tempDir();
    try {
      const path = join(dir, 'rules.yml');
      await writeFile(path, RULES);
      const warnings: string[] = [];
      const r = new RulesFile(path, (m) => warnings.push(m));
      assert.deepEqual(r.allowed('bob', 'repository', 'acme/app'), ['pull', 'push']);
      await writeFile(path, 'teams: { acme: { members: [alice], grants: [ { repositories: "acme/*" ');
      await utimes(path, new Date(), new Date(Date.now() + 5000));
      assert.deepEqual(r.allowed('bob', 'repository', 'acme/app'), ['pull', 'push'], 'the last good rules');
      assert.deepEqual(r.allowed('bob', 'repository', 'acme/app'), ['pull', 'push']);
      assert.equal(warnings.length, 1, warnings.join('\n'));
      assert.match(warnings[0]!, /rules\.yml: .*; keeping what was loaded before/);
      await rm(path);
      assert.deepEqual(r.allowed('bob', 'repository', 'acme/app'), ['pull', 'push']);
      assert.equal(warnings.length, 2);
      assert.match(warnings[1]!, /ENOENT/);
      await writeFile(path, RULES.replace('members: [alice, bob]', 'members: [alice]'));
      assert.deepEqual(r.allowed('bob', 'repository', 'acme/app'), [], 'the fixed file is in force');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a broken rules file is a clear startup error', async () => {
    const dir = await tempDir();
    try {
      for (const [text, pattern] of [
        ['bogus: 1', /unknown key "bogus"/],
        ['teams: { t: { members: [a], grants: [{ repositories: "x/*", actions: [fly] }] } }', /unknown action "fly"/],
        ['rules: [{ users: [a], actions: [pull] }]', /repositories: required/],
        ['admins: root', /expected a list of strings/],
      ] as const) {
        await writeFile(join(dir, 'r.yml'), text);
        assert.throws(() => new RulesFile(join(dir, 'r.yml')), (e: unknown) => e instanceof RulesError && pattern.test(e.message), text);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('scopes: names are validated, actions deduplicated, plugin classes accepted, junk dropped', () => {
    assert.deepEqual(parseScope('repository:org/app:pull,push,pull'), { type: 'repository', name: 'org/app', actions: ['pull', 'push'] });
    assert.deepEqual(parseScope('repository(plugin):org/app:pull'), { type: 'repository', name: 'org/app', actions: ['pull'] });
    for (const bad of ['repository:../x:pull', 'repository:Org/app:pull', 'repository:app:', 'registry:other:*', 'volume:x:pull', 'nonsense']) {
      assert.equal(parseScope(bad), undefined, bad);
    }
    assert.deepEqual(parseScopes(['repository:a:pull repository:a:push', 'registry:catalog:*']), [
      { type: 'repository', name: 'a', actions: ['pull', 'push'] }, { type: 'registry', name: 'catalog', actions: ['*'] }]);
  });
});
