// `berth volume ls --filter KEY=VALUE`: docker's volume filters (dangling: used by no container).
import { UsageError } from '../client/errors.js';
import { labelMatches, parseFilterFlags } from './filter-flags.js';
import type { VolumeInfo } from './volumes.js';

const KEYS = ['dangling', 'name', 'label', 'driver'] as const;
type Key = typeof KEYS[number];

export function parseVolumeFilters(flags: string[]): Map<Key, string[]> {
  return parseFilterFlags(flags, KEYS, (key, value, f) => {
    if (key === 'dangling' && !['true', 'false', '1', '0'].includes(value)) throw new UsageError(`--filter ${f}: dangling is true or false`);
  });
}

/** `inUse` tells whether a container uses the volume (asked only for a dangling filter). */
export async function filterVolumes(volumes: VolumeInfo[], filters: Map<Key, string[]>, inUse: (name: string) => Promise<boolean>): Promise<VolumeInfo[]> {
  const out: VolumeInfo[] = [];
  for (const v of volumes) {
    let ok = true;
    for (const [key, values] of filters) {
      const one = async (value: string): Promise<boolean> => {
        switch (key) {
          case 'dangling': return (await inUse(v.Name)) !== (value === 'true' || value === '1');
          case 'name': return v.Name.includes(value); // docker matches a part of the name
          case 'driver': return v.Driver === value;
          case 'label': return labelMatches(v.Labels, value);
        }
      };
      let any = false;
      for (const value of values) if (await one(value)) { any = true; break; }
      if (!any) { ok = false; break; }
    }
    if (ok) out.push(v);
  }
  return out;
}
