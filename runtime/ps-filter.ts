// `berth ps --filter KEY=VALUE`: docker's container filters. Values of one key are alternatives,
// different keys must all match.
import { UsageError } from '../client/errors.js';
import type { Container } from './containers.js';
import { labelMatches, parseFilterFlags } from './filter-flags.js';

const KEYS = ['id', 'name', 'label', 'status', 'exited', 'ancestor', 'network', 'health'] as const;
type Key = typeof KEYS[number];
const STATUSES = ['created', 'restarting', 'running', 'paused', 'exited', 'removing', 'dead']; // the last two never match here

export type PsFilters = Map<Key, string[]>;

/** Parses the --filter flags; an unknown key or a bad value is a usage error. */
export function parsePsFilters(flags: string[]): PsFilters {
  return parseFilterFlags(flags, KEYS, (key, value, f) => {
    if (key === 'status' && !STATUSES.includes(value)) throw new UsageError(`--filter ${f}: a status is one of ${STATUSES.join(', ')}`);
    if (key === 'health' && !['starting', 'healthy', 'unhealthy', 'none'].includes(value)) throw new UsageError(`--filter ${f}: health is one of starting, healthy, unhealthy, none`);
    if (key === 'exited' && !/^-?\d+$/.test(value)) throw new UsageError(`--filter ${f}: expected an exit code`);
    if (key === 'name') {
      try { new RegExp(value); } catch { throw new UsageError(`--filter ${f}: not a valid regular expression`); }
    }
  });
}

/** A status filter lists stopped containers too, as docker's does without -a. */
export function filtersIncludeStopped(filters: PsFilters): boolean {
  return filters.has('status');
}

/** The ways to name a stored image: docker.io/library/x:latest, x:latest, x, docker.io/library/x. */
function imageNames(name: string): string[] {
  const short = name.replace(/^docker\.io\/(library\/)?/, '');
  return [name, short].flatMap((n) => [n, n.replace(/:latest$/, '')]);
}

function matches(c: Container, key: Key, value: string, paused: boolean): boolean {
  switch (key) {
    case 'id': return c.config.id.startsWith(value.toLowerCase());
    case 'name': return new RegExp(value).test(c.config.name) || new RegExp(value).test(`/${c.config.name}`); // docker's names begin with /
    case 'label': return labelMatches(c.config.labels, value);
    case 'status': return (paused ? 'paused' : c.state.status) === value;
    case 'exited': return c.state.status === 'exited' && (c.state.exitCode ?? 0) === Number(value);
    case 'ancestor': {
      // a name, or an image ID (a prefix of the config digest) or manifest digest (inspect's Image)
      const hex = value.replace(/^sha256:/, '');
      const byDigest = (d: string | undefined) => !!d && hex.length >= 4 && /^[0-9a-f]+$/.test(hex) && d.replace(/^sha256:/, '').startsWith(hex);
      return imageNames(c.config.image).includes(value) || byDigest(c.config.imageId) || byDigest(c.config.imageDigest);
    }
    case 'network': return [c.config.networkName ?? c.config.network ?? 'none', ...(c.config.extraNetworks ?? []).map((n) => n.name)].includes(value);
    case 'health': return (c.state.status === 'running' && c.state.health ? c.state.health.status : 'none') === value;
  }
}

/** The containers every filter key matches (any of its values). */
export function filterContainers(cs: Container[], filters: PsFilters, isPaused: (c: Container) => boolean): Container[] {
  return cs.filter((c) => [...filters].every(([key, values]) => values.some((v) => matches(c, key, v, isPaused(c)))));
}
