// docker's `images --filter`: dangling, reference patterns, labels, before/since.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { filterImages, parseImageFilters } from '../../runtime/image-filter.js';
import type { ImageSummary } from '../../runtime/image-store.js';

const img = (repository: string, tag: string, id: string, created: string, labels?: Record<string, string>): ImageSummary => ({
  repository, tag, name: repository === '<none>' ? `sha256:${id}` : `${repository}:${tag}`, digest: `sha256:${id}m`, id: `sha256:${id}`, size: 1, created, ...(labels ? { labels } : {}),
});
const images = [
  img('busybox', 'latest', 'aaaa1111', '2026-01-01T00:00:00Z', { tier: 'base' }),
  img('localhost:5000/team/app', 'v1', 'bbbb2222', '2026-02-01T00:00:00Z', { tier: 'front', owner: 'me' }),
  img('localhost:5000/team/app', 'v2', 'cccc3333', '2026-03-01T00:00:00Z'),
  img('<none>', '<none>', 'dddd4444', '2026-04-01T00:00:00Z'),
];
const names = (flags: string[]) => filterImages(images, parseImageFilters(flags)).map((i) => `${i.repository}:${i.tag}`);

test('images --filter: dangling, reference globs (a * stops at /), labels, before and since; keys all apply, values of one key are alternatives', () => {
  assert.deepEqual(names(['dangling=true']), ['<none>:<none>']);
  assert.deepEqual(names(['dangling=false']).length, 3);
  assert.deepEqual(names(['reference=busybox']), ['busybox:latest']);
  assert.deepEqual(names(['reference=localhost:5000/team/app:v*']), ['localhost:5000/team/app:v1', 'localhost:5000/team/app:v2']);
  assert.deepEqual(names(['reference=*:v1']), [], 'a * does not cross a /');
  assert.deepEqual(names(['reference=*/*/app:v1']), ['localhost:5000/team/app:v1']);
  assert.deepEqual(names(['label=tier']), ['busybox:latest', 'localhost:5000/team/app:v1']);
  assert.deepEqual(names(['label=tier=front', 'label=tier=base']), ['busybox:latest', 'localhost:5000/team/app:v1']);
  assert.deepEqual(names(['label=tier', 'label=owner=me', 'reference=busybox']), ['busybox:latest']);
  assert.deepEqual(names(['label=owner=me', 'dangling=false']), ['localhost:5000/team/app:v1']);
  assert.deepEqual(names(['before=localhost:5000/team/app:v2']), ['busybox:latest', 'localhost:5000/team/app:v1']);
  assert.deepEqual(names(['since=bbbb2222']), ['localhost:5000/team/app:v2', '<none>:<none>']);
  assert.throws(() => parseImageFilters(['colour=red']), /the filters are dangling, reference, label, before, since/);
  assert.throws(() => parseImageFilters(['dangling=maybe']), /dangling is true or false/);
  assert.throws(() => names(['before=nothere:1']), /no such image: nothere:1/);
  assert.deepEqual(names(['reference=busy[box']), [], 'a bracket is taken as it is');
});
