// Config test helpers: a YAML file to load, and the problems a ConfigError lists.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../../server/config.js';
import { tempDir } from './registry.js';

export async function yamlFile(text: string): Promise<string> {
  const p = join(await tempDir(), 'config.yml');
  await writeFile(p, text);
  return p;
}

export function problems(fn: () => unknown): string[] {
  try { fn(); } catch (e) { if (e instanceof ConfigError) return e.problems; throw e; }
  assert.fail('expected a ConfigError');
}
