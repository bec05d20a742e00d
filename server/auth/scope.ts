// Access in the Docker token spec's vocabulary: a resource (type + name) and actions.
// "repository:org/app:pull,push", "registry:catalog:*".
import { isValidName } from '../../oci/reference.js';

export interface Access { type: string; name: string; actions: string[] }

export const REPOSITORY_ACTIONS = ['pull', 'push', 'delete'] as const;

/** Parses one scope string; names are validated so a crafted name can never be granted. */
export function parseScope(scope: string): Access | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first <= 0 || last === first) return undefined;
  let type = scope.slice(0, first);
  const name = scope.slice(first + 1, last);
  const actions = [...new Set(scope.slice(last + 1).split(',').map((a) => a.trim()).filter(Boolean))];
  const plugin = /^([a-z0-9]+)\([a-z0-9]+\)$/.exec(type); // "repository(plugin)" is a repository too
  if (plugin) type = plugin[1]!;
  if (type === 'repository' && !isValidName(name)) return undefined;
  if (type === 'registry' && name !== 'catalog') return undefined;
  if (type !== 'repository' && type !== 'registry') return undefined;
  if (actions.length === 0) return undefined;
  return { type, name, actions };
}

/** Space-separated scopes (OAuth2 form) or several scope parameters. */
export function parseScopes(values: string[]): Access[] {
  const out: Access[] = [];
  for (const v of values) for (const s of v.split(' ')) {
    const a = s && parseScope(s);
    if (a) out.push(a);
  }
  return mergeAccess(out);
}

export function formatScope(a: Access): string {
  return `${a.type}:${a.name}:${a.actions.join(',')}`;
}

/** Merges entries for the same resource. */
export function mergeAccess(list: Access[]): Access[] {
  const byKey = new Map<string, Access>();
  for (const a of list) {
    const key = `${a.type}:${a.name}`;
    const prev = byKey.get(key);
    if (prev) prev.actions = [...new Set([...prev.actions, ...a.actions])];
    else byKey.set(key, { type: a.type, name: a.name, actions: [...a.actions] });
  }
  return [...byKey.values()];
}

/** Does a set of grants cover one action on one resource? "*" covers every action. */
export function covers(grants: Access[], type: string, name: string, action: string): boolean {
  return grants.some((g) => g.type === type && g.name === name && (g.actions.includes(action) || g.actions.includes('*')));
}
