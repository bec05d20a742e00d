// docker's `volume ls --filter`: dangling (used by no container), name, label, driver.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { filterVolumes, parseVolumeFilters } from '../../runtime/volume-filter.js';
import type { VolumeInfo } from '../../runtime/volumes.js';

const vol = (Name: string, Labels: Record<string, string> | null = null): VolumeInfo => ({ Name, Driver: 'local', Mountpoint: `/v/${Name}/_data`, CreatedAt: '', Labels, Scope: 'local', Options: null });
const volumes = [vol('app-data', { tier: 'db' }), vol('app-cache'), vol('scratch', { tier: 'tmp' })];
const used = new Set(['app-data']);
const names = async (flags: string[]) => (await filterVolumes(volumes, parseVolumeFilters(flags), async (n) => used.has(n))).map((v) => v.Name);

test('volume ls --filter: dangling, name (a part of it), label, driver; keys all apply', async () => {
  assert.deepEqual(await names(['dangling=true']), ['app-cache', 'scratch']);
  assert.deepEqual(await names(['dangling=false']), ['app-data']);
  assert.deepEqual(await names(['name=app']), ['app-data', 'app-cache']);
  assert.deepEqual(await names(['name=app', 'dangling=true']), ['app-cache']);
  assert.deepEqual(await names(['label=tier']), ['app-data', 'scratch']);
  assert.deepEqual(await names(['label=tier=tmp', 'label=tier=db']), ['app-data', 'scratch']);
  assert.deepEqual(await names(['driver=local', 'name=scr']), ['scratch']);
  assert.deepEqual(await names(['driver=nfs']), []);
  assert.throws(() => parseVolumeFilters(['dangling=yes']), /dangling is true or false/);
  assert.throws(() => parseVolumeFilters(['size=1']), /the filters are dangling, name, label, driver/);
});
