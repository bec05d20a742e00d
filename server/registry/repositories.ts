// Which repositories exist: a repository is a directory under /repositories that holds
// _manifests or _layers. Nested names (org/team/app) are found by walking down.
import type { StorageAdapter } from '../../storage-adapters/types.js';
import { isValidName } from '../../oci/reference.js';
import { basename, paths } from './paths.js';

/** Repositories: directories holding any of `markers` (by default, manifests or linked blobs). */
export async function listRepositories(storage: StorageAdapter, markers: string[] = ['_manifests', '_layers']): Promise<string[]> {
  const found: string[] = [];
  const walk = async (prefix: string, name: string): Promise<void> => {
    const children: string[] = [];
    for await (const key of storage.list(prefix)) children.push(basename(key));
    if (name && markers.some((m) => children.includes(m))) found.push(name);
    for (const child of children) {
      if (child.startsWith('_')) continue;
      const next = name ? `${name}/${child}` : child;
      if (isValidName(next)) await walk(`${prefix}/${child}`, next);
    }
  };
  await walk(paths.repositoriesRoot(), '');
  return found.sort();
}

export async function repositoryExists(storage: StorageAdapter, name: string): Promise<boolean> {
  for (const root of [paths.manifestsRoot(name), paths.layersRoot(name)]) {
    for await (const _ of storage.list(root)) return true;
  }
  return false;
}

export async function* iterateRepositories(storage: StorageAdapter, markers?: string[]): AsyncIterable<string> {
  yield* await listRepositories(storage, markers);
}

/** Repositories with upload sessions, for purging abandoned uploads. */
export const withUploads = (storage: StorageAdapter) => iterateRepositories(storage, ['_uploads']);
