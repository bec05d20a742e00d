// Where an image is: parsing the SOURCE / DESTINATION arguments of push, pull and copy.
//   docker://host/repo:tag, or a bare reference      a registry
//   oci:<dir>[:tag]                                   an OCI image layout directory
//   docker-archive:<file>[:name:tag]                  a `docker save` tarball
//   local:<reference>                                 berth's local image store (shared with the runtime)
import { homedir } from 'node:os';
import { join } from 'node:path';
import { formatReference, parseImageReference, type ImageReference } from '../oci/image-reference.js';
import { TAG_PATTERN } from '../oci/reference.js';
import { UsageError } from './errors.js';

export type Location =
  | { kind: 'registry'; ref: ImageReference }
  | { kind: 'oci'; dir: string; tag?: string }
  | { kind: 'docker-archive'; path: string; ref?: string }
  | { kind: 'local'; ref: ImageReference };

export function parseLocation(input: string): Location {
  if (input.startsWith('oci:')) {
    const rest = input.slice(4);
    // the tag is after the last ':' unless that ':' is part of the path
    const colon = rest.lastIndexOf(':');
    let dir = rest;
    let tag: string | undefined;
    if (colon > 0 && !rest.slice(colon + 1).includes('/')) {
      dir = rest.slice(0, colon);
      tag = rest.slice(colon + 1);
      if (tag === '') tag = undefined;
      else if (!/^[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*$/.test(tag)) throw new UsageError(`invalid tag "${tag}" in ${input}`);
    }
    if (!dir) throw new UsageError(`missing directory in "${input}" (expected oci:<dir>[:tag])`);
    return { kind: 'oci', dir, ...(tag ? { tag } : {}) };
  }
  if (input.startsWith('docker-archive:')) {
    const rest = input.slice('docker-archive:'.length);
    const colon = rest.indexOf(':');
    const path = colon >= 0 ? rest.slice(0, colon) : rest;
    const ref = colon >= 0 ? rest.slice(colon + 1) : undefined;
    if (!path) throw new UsageError(`missing file in "${input}" (expected docker-archive:<file>[:name:tag])`);
    return { kind: 'docker-archive', path, ...(ref ? { ref } : {}) };
  }
  if (input.startsWith('local:')) return { kind: 'local', ref: parseImageReference(input.slice(6)) };
  if (input.startsWith('docker://')) return { kind: 'registry', ref: parseImageReference(input.slice(9)) };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(input) || /^(oci-archive|dir|containers-storage|docker-daemon):/.test(input)) {
    throw new UsageError(`unsupported location "${input.slice(0, 100)}": use a registry reference, oci:<dir>[:tag], docker-archive:<file>[:name:tag] or local:<reference>`);
  }
  return { kind: 'registry', ref: parseImageReference(input) };
}

export function describeLocation(l: Location): string {
  switch (l.kind) {
    case 'registry': return `${l.ref.registry}/${l.ref.repository}${l.ref.tag ? `:${l.ref.tag}` : ''}${l.ref.digest ? `@${l.ref.digest}` : ''}`;
    case 'local': return `local:${l.ref.registry}/${l.ref.repository}${l.ref.tag ? `:${l.ref.tag}` : ''}`;
    case 'oci': return `oci:${l.dir}${l.tag ? `:${l.tag}` : ''}`;
    case 'docker-archive': return `docker-archive:${l.path}${l.ref ? `:${l.ref}` : ''}`;
  }
}

/** Is `s` a bare tag ("v2"), as `berth tag IMAGE v2` accepts? */
export function isBareTag(s: string): boolean {
  return TAG_PATTERN.test(s) && !s.includes('/') && !s.includes(':');
}

/** The local image store: an OCI image layout whose tags are full references. */
export function localStoreDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.BERTH_STORE) return env.BERTH_STORE;
  return join(env.XDG_DATA_HOME || join(env.HOME || homedir(), '.local', 'share'), 'berth', 'images');
}

/** The tag an image has in the local store: its full reference without digest. */
export function localName(ref: ImageReference): string {
  return formatReference({ registry: ref.registry, repository: ref.repository, ...(ref.tag ? { tag: ref.tag } : {}) });
}
