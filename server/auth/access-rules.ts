// Who may do what, from a YAML rules file:
//
//   admins: [root]                       # everything everywhere
//   public: ["library/*", "acme/docs"]   # anyone, even anonymous, may pull
//   teams:
//     acme:
//       members: [alice, bob]
//       grants:
//         - { repositories: "acme/*", actions: [pull, push] }
//   rules:                               # per-user grants; users: ["*"] means any signed-in user
//     - { users: [carol], repositories: "acme/app", actions: [pull] }
//
// Every user owns the namespace named after them ("alice" and "alice/*"): pull, push, delete.
// Patterns: "*" matches within one path component, a trailing "/*" matches everything below,
// "**" matches anything. Names reach this code only after the spec grammar validated them,
// so "alice/../bob", encoded slashes or upper case can never match another namespace.
import { parse as parseYaml } from 'yaml';
import { isValidName } from '../../oci/reference.js';
import { REPOSITORY_ACTIONS } from './scope.js';
import { WatchedFile } from './watched-file.js';

interface Grant { pattern: RegExp; actions: string[] }
interface Compiled { admins: Set<string>; publicPatterns: RegExp[]; teams: { members: Set<string>; grants: Grant[] }[]; ruleGrants: { users: Set<string>; grant: Grant }[] }

export interface AccessPolicy {
  /** Actions a user (undefined = anonymous) may perform on a resource. */
  allowed(user: string | undefined, type: string, name: string): string[];
}

const ALL = [...REPOSITORY_ACTIONS];

export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') { re += '.*'; i++; }
    else if (c === '*' && i === glob.length - 1 && glob[i - 1] === '/') re += '.+';
    else if (c === '*') re += '[^/]*';
    else re += c.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Without a rules file: signed-in users may do everything, anonymous users nothing. */
export const authenticatedUsersMayDoEverything: AccessPolicy = {
  allowed: (user, type) => (type === 'registry' ? ['*'] : user === undefined ? [] : ALL),
};

export class RulesFile implements AccessPolicy {
  readonly #file: WatchedFile<Compiled>;

  /** A broken edit keeps the last good rules (which may grant more than intended): `warn` says so. */
  constructor(readonly path: string, warn?: (message: string) => void) {
    this.#file = new WatchedFile(path, (text) => compileRules(parseYaml(text), path), warn);
  }

  allowed(user: string | undefined, type: string, name: string): string[] {
    if (type === 'registry') return name === 'catalog' ? ['*'] : []; // the catalog filters itself
    if (type !== 'repository' || !isValidName(name)) return [];
    const c = this.#file.current;
    const out = new Set<string>();
    if (c.publicPatterns.some((p) => p.test(name))) out.add('pull');
    if (user !== undefined) {
      if (c.admins.has(user) || name === user || name.startsWith(`${user}/`)) return ALL;
      for (const team of c.teams) {
        if (!team.members.has(user)) continue;
        for (const g of team.grants) if (g.pattern.test(name)) g.actions.forEach((a) => out.add(a));
      }
      for (const r of c.ruleGrants) {
        if ((r.users.has(user) || r.users.has('*')) && r.grant.pattern.test(name)) r.grant.actions.forEach((a) => out.add(a));
      }
    }
    if (out.has('*')) return ALL;
    return ALL.filter((a) => out.has(a));
  }
}

export class RulesError extends Error {}

function compileRules(doc: unknown, path: string): Compiled {
  const fail = (msg: string): never => { throw new RulesError(`${path}: ${msg}`); };
  const obj = (doc ?? {}) as Record<string, unknown>;
  if (typeof obj !== 'object' || Array.isArray(obj)) fail('expected a mapping');
  for (const k of Object.keys(obj)) if (!['admins', 'public', 'teams', 'rules'].includes(k)) fail(`unknown key "${k}"`);
  const strings = (v: unknown, where: string): string[] => {
    if (v === undefined) return [];
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) fail(`${where}: expected a list of strings`);
    return v as string[];
  };
  const grant = (g: unknown, where: string): Grant => {
    const o = g as Record<string, unknown>;
    if (!o || typeof o !== 'object' || typeof o.repositories !== 'string') fail(`${where}.repositories: required pattern`);
    const actions = strings(o.actions, `${where}.actions`);
    for (const a of actions) if (a !== '*' && !(REPOSITORY_ACTIONS as readonly string[]).includes(a)) fail(`${where}.actions: unknown action "${a}" (pull, push, delete or *)`);
    return { pattern: globToRegExp(o.repositories as string), actions };
  };
  const teams = (obj.teams ?? {}) as Record<string, { members?: unknown; grants?: unknown }>;
  const compiledTeams = Object.entries(teams).map(([team, t]) => {
    const members = new Set(strings(t?.members, `teams.${team}.members`));
    if (t?.grants !== undefined && !Array.isArray(t.grants)) fail(`teams.${team}.grants: expected a list`);
    return { members, grants: ((t?.grants as unknown[]) ?? []).map((g, i) => grant(g, `teams.${team}.grants[${i}]`)) };
  });
  if (obj.rules !== undefined && !Array.isArray(obj.rules)) fail('rules: expected a list');
  const ruleGrants = ((obj.rules as unknown[]) ?? []).map((r, i) => ({
    users: new Set(strings((r as Record<string, unknown>)?.users, `rules[${i}].users`)), grant: grant(r, `rules[${i}]`),
  }));
  return {
    admins: new Set(strings(obj.admins, 'admins')),
    publicPatterns: strings(obj.public, 'public').map(globToRegExp),
    teams: compiledTeams,
    ruleGrants,
  };
}
