// --label KEY=VALUE flags (containers, volumes): KEY alone is an empty value, as in docker.
import { UsageError } from '../client/errors.js';

export function parseLabels(flags: string[] = []): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const l of flags) {
    const eq = l.indexOf('=');
    const key = eq < 0 ? l : l.slice(0, eq);
    if (!key) throw new UsageError(`--label ${l}: expected KEY=VALUE`);
    labels[key] = eq < 0 ? '' : l.slice(eq + 1);
  }
  return labels;
}
