// docker's --filter KEY=VALUE flags (ps, images): values of one key are alternatives, different keys
// must all match. An unknown key, a missing value or one `check` refuses is a usage error.
import { UsageError } from '../client/errors.js';

export function parseFilterFlags<K extends string>(flags: string[], keys: readonly K[], check: (key: K, value: string, flag: string) => void = () => undefined): Map<K, string[]> {
  const out = new Map<K, string[]>();
  for (const f of flags) {
    const i = f.indexOf('=');
    const key = (i < 0 ? f : f.slice(0, i)) as K;
    const value = i < 0 ? '' : f.slice(i + 1);
    if (!keys.includes(key)) throw new UsageError(`--filter ${f}: the filters are ${keys.join(', ')}`);
    if (value === '') throw new UsageError(`--filter ${f}: expected ${key}=VALUE`);
    check(key, value, f);
    out.set(key, [...(out.get(key) ?? []), value]);
  }
  return out;
}

/** label=KEY (the label is there) or label=KEY=VALUE (with that value). */
export function labelMatches(labels: Record<string, string> | null | undefined, value: string): boolean {
  const eq = value.indexOf('=');
  const all = labels ?? {};
  return eq < 0 ? value in all : all[value.slice(0, eq)] === value.slice(eq + 1);
}
