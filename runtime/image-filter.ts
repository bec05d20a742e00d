// `berth images --filter KEY=VALUE`: docker's image filters. Values of one key are alternatives,
// different keys must all match.
import { UsageError } from '../client/errors.js';
import type { ImageSummary } from './image-store.js';
import { labelMatches, parseFilterFlags } from './filter-flags.js';

const KEYS = ['dangling', 'reference', 'label', 'before', 'since'] as const;
type Key = typeof KEYS[number];
export type ImageFilters = Map<Key, string[]>;

export function parseImageFilters(flags: string[]): ImageFilters {
  return parseFilterFlags(flags, KEYS, (key, value, f) => {
    if (key === 'dangling' && value !== 'true' && value !== 'false') throw new UsageError(`--filter ${f}: dangling is true or false`);
  });
}

/** docker's reference patterns (Go's path.Match): * and ? stop at a slash. */
function globRegExp(pattern: string): RegExp {
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]');
  return new RegExp(`^${re}$`);
}

/** before=IMAGE / since=IMAGE: that image (a name or an ID prefix) among the listed ones. */
function createdOf(images: ImageSummary[], ref: string): number {
  const hex = ref.replace(/^sha256:/, '');
  const found = images.find((i) => `${i.repository}:${i.tag}` === ref || i.repository === ref && i.tag === 'latest' || i.name === ref)
    ?? (/^[0-9a-f]{4,}$/.test(hex) ? images.find((i) => i.id.replace(/^sha256:/, '').startsWith(hex)) : undefined);
  if (!found) throw new UsageError(`--filter: no such image: ${ref}`);
  return Date.parse(found.created ?? '');
}

export function filterImages(images: ImageSummary[], filters: ImageFilters): ImageSummary[] {
  const bounds = { before: filters.get('before')?.map((r) => createdOf(images, r)), since: filters.get('since')?.map((r) => createdOf(images, r)) };
  const one = (i: ImageSummary, key: Key, value: string): boolean => {
    const created = Date.parse(i.created ?? '');
    switch (key) {
      case 'dangling': return (i.tag === '<none>') === (value === 'true');
      case 'reference': {
        const re = globRegExp(value);
        return i.repository !== '<none>' && (re.test(`${i.repository}:${i.tag}`) || re.test(i.repository));
      }
      case 'label': return labelMatches(i.labels, value);
      case 'before': return bounds.before!.some((t) => created < t);
      case 'since': return bounds.since!.some((t) => created > t);
    }
  };
  return images.filter((i) => [...filters].every(([key, values]) => values.some((v) => one(i, key, v))));
}
