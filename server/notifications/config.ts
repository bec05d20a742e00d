// notifications.endpoints of the config file, checked like every other key: one problem per mistake.
import { isTree } from '../config-tree.js';
import type { EndpointConfig } from './endpoint.js';

const KEYS = new Set(['name', 'disabled', 'url', 'headers', 'timeout', 'threshold', 'backoff', 'ignoredmediatypes', 'ignore']);
const ACTIONS = ['push', 'pull', 'mount', 'delete'];

/**
 * The enabled endpoints. `duration` parses 1s/500ms forms (and bare seconds), `headers` a header map;
 * both report their own problems and return undefined on a bad value.
 */
export function endpointsFrom(
  value: unknown, problems: string[],
  duration: (v: unknown, where: string) => number | undefined,
  headers: (v: unknown, where: string) => Record<string, string[]> | undefined,
): EndpointConfig[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) { problems.push('notifications.endpoints: expected a list of endpoints'); return []; }
  const out: EndpointConfig[] = [];
  value.forEach((e, i) => {
    const where = `notifications.endpoints[${i}]`;
    if (!isTree(e)) { problems.push(`${where}: expected a mapping`); return; }
    for (const k of Object.keys(e)) if (!KEYS.has(k)) problems.push(`${where}.${k}: unknown key`);
    const name = typeof e.name === 'string' && e.name ? e.name : undefined;
    if (!name) problems.push(`${where}.name: required`);
    let url: URL | undefined;
    try { url = new URL(String(e.url)); } catch { /* below */ }
    if (!url || !['http:', 'https:'].includes(url.protocol)) problems.push(`${where}.url: "${String(e.url ?? '')}" is not an http(s) URL`);
    const count = (v: unknown, key: string, fallback: number) => {
      if (v === undefined) return fallback;
      if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v;
      problems.push(`${where}.${key}: expected a non-negative integer`);
      return fallback;
    };
    const strings = (v: unknown, key: string): string[] => {
      if (v === undefined || v === null) return [];
      if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v;
      problems.push(`${where}.${key}: expected a list of strings`);
      return [];
    };
    const ignore = isTree(e.ignore) ? e.ignore : {};
    if (e.ignore !== undefined && !isTree(e.ignore)) problems.push(`${where}.ignore: expected a mapping (mediatypes, actions)`);
    const ignoredActions = strings(ignore.actions, 'ignore.actions');
    for (const a of ignoredActions) if (!ACTIONS.includes(a)) problems.push(`${where}.ignore.actions: "${a}" is not one of ${ACTIONS.join(', ')}`);
    const endpoint: EndpointConfig = {
      name: name ?? '',
      url: url?.href ?? '',
      headers: e.headers === undefined ? {} : headers(e.headers, `${where}.headers`) ?? {},
      timeoutMs: e.timeout === undefined ? 1000 : duration(e.timeout, `${where}.timeout`) ?? 1000,
      threshold: Math.max(1, count(e.threshold, 'threshold', 10)),
      backoffMs: e.backoff === undefined ? 1000 : duration(e.backoff, `${where}.backoff`) ?? 1000,
      ignoredMediaTypes: [...strings(e.ignoredmediatypes, 'ignoredmediatypes'), ...strings(ignore.mediatypes, 'ignore.mediatypes')],
      ignoredActions,
    };
    if (e.disabled === true) return;
    if (e.disabled !== undefined && typeof e.disabled !== 'boolean') problems.push(`${where}.disabled: expected true or false`);
    out.push(endpoint);
  });
  const names = out.map((e) => e.name);
  for (const n of new Set(names.filter((n, i) => n && names.indexOf(n) !== i))) problems.push(`notifications.endpoints: the name "${n}" is used twice`);
  return out;
}
