// Image references in docker's grammar, normalised the way docker does it:
//   busybox                          → docker.io/library/busybox:latest
//   ghcr.io/org/app@sha256:…         → ghcr.io/org/app@sha256:… (no implied tag)
//   host:5000/ns/team/app:tag@sha256:…  both a tag and a digest (the digest wins when pulling)
// The path part must also satisfy the distribution-spec name grammar (oci/reference.ts), so a
// parsed reference is safe to put in a URL.
import { parseDigest, type Digest } from './digest.js';
import { NAME_MAX_LENGTH, TAG_PATTERN, isValidName } from './reference.js';

export const DEFAULT_REGISTRY = 'docker.io';
export const DEFAULT_TAG = 'latest';
/** Where docker.io's API actually lives. */
export const DOCKER_HUB_API_HOST = 'registry-1.docker.io';
/** The key docker uses for Docker Hub in config.json `auths`. */
export const DOCKER_HUB_AUTH_KEY = 'https://index.docker.io/v1/';

export class InvalidReferenceError extends Error {
  readonly exitCode = 2;
  constructor(readonly input: string, reason: string) {
    super(`invalid reference "${input.slice(0, 300)}": ${reason}`);
  }
}

export interface ImageReference {
  /** Registry host as written after normalisation: "docker.io", "localhost:5000", "[::1]:5000". */
  registry: string;
  /** Repository path inside the registry: "library/busybox", "ns/team/app". */
  repository: string;
  tag?: string;
  digest?: Digest;
}

const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?$`);
const HEX64 = /^[a-f0-9]{64}$/;

/** True when the first path component names a registry host rather than a namespace (docker's rule). */
function looksLikeDomain(first: string): boolean {
  return first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase();
}

/** Parses and normalises a docker-style image reference. Throws InvalidReferenceError. */
export function parseImageReference(input: string, opts: { defaultTag?: boolean } = {}): ImageReference {
  if (typeof input !== 'string' || input === '') throw new InvalidReferenceError(String(input ?? ''), 'empty reference');
  if (input.length > 1024) throw new InvalidReferenceError(input, 'too long');
  if (/\s/.test(input)) throw new InvalidReferenceError(input, 'contains whitespace');
  if (HEX64.test(input)) throw new InvalidReferenceError(input, 'a 64-character hexadecimal string is an image ID, not a reference');
  let rest = input;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    const d = rest.slice(at + 1);
    rest = rest.slice(0, at);
    try { digest = parseDigest(d).digest; } catch (e) { throw new InvalidReferenceError(input, (e as Error).message); }
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const lastColon = rest.lastIndexOf(':');
  if (lastColon > lastSlash) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
    if (!TAG_PATTERN.test(tag)) throw new InvalidReferenceError(input, `invalid tag "${tag.slice(0, 200)}"`);
  }
  if (rest === '') throw new InvalidReferenceError(input, 'missing repository name');
  let registry: string;
  let repository: string;
  const slash = rest.indexOf('/');
  if (slash < 0 || !looksLikeDomain(rest.slice(0, slash))) {
    registry = DEFAULT_REGISTRY;
    repository = rest;
  } else {
    registry = rest.slice(0, slash);
    repository = rest.slice(slash + 1);
    if (!DOMAIN.test(registry)) throw new InvalidReferenceError(input, `invalid registry host "${registry.slice(0, 200)}"`);
  }
  const port = /:(\d+)$/.exec(registry)?.[1];
  if (port !== undefined && !(Number(port) >= 1 && Number(port) <= 65535)) throw new InvalidReferenceError(input, `invalid port ${port.slice(0, 20)} (1 to 65535)`);
  if (registry === 'index.docker.io' || registry === DOCKER_HUB_API_HOST) registry = DEFAULT_REGISTRY;
  if (registry === DEFAULT_REGISTRY && !repository.includes('/')) repository = `library/${repository}`;
  if (repository !== repository.toLowerCase()) throw new InvalidReferenceError(input, 'repository name must be lowercase');
  if (registry.length + 1 + repository.length > NAME_MAX_LENGTH) throw new InvalidReferenceError(input, `repository name must not be longer than ${NAME_MAX_LENGTH} characters`);
  if (!isValidName(repository)) throw new InvalidReferenceError(input, `invalid repository name "${repository.slice(0, 200)}"`);
  if (!tag && !digest && opts.defaultTag !== false) tag = DEFAULT_TAG;
  return { registry, repository, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

/** The fully qualified form: registry/repository[:tag][@digest]. */
export function formatReference(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/** Docker's short form: "busybox:latest" for docker.io/library/busybox:latest. */
export function familiarReference(ref: ImageReference): string {
  let name = `${ref.registry}/${ref.repository}`;
  if (ref.registry === DEFAULT_REGISTRY) name = ref.repository.startsWith('library/') && ref.repository.split('/').length === 2 ? ref.repository.slice(8) : ref.repository;
  return `${name}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/** What to ask the registry for: the digest when there is one, else the tag. */
export function manifestReference(ref: ImageReference): string {
  return ref.digest ?? ref.tag ?? DEFAULT_TAG;
}

/** Host name the registry API is reached at (docker.io's API lives on registry-1.docker.io). */
export function apiHost(registry: string): string {
  return registry === DEFAULT_REGISTRY ? DOCKER_HUB_API_HOST : registry;
}

/** Normalises a registry given on its own (login/logout): strips a scheme and path, maps Docker Hub aliases. */
export function normalizeRegistryHost(input: string): string {
  let s = input.trim();
  s = s.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  const slash = s.indexOf('/');
  if (slash >= 0) s = s.slice(0, slash);
  if (s === '') throw new InvalidReferenceError(input, 'empty registry host');
  if (!DOMAIN.test(s)) throw new InvalidReferenceError(input, `invalid registry host "${s.slice(0, 200)}"`);
  if (s === 'index.docker.io' || s === DOCKER_HUB_API_HOST) return DEFAULT_REGISTRY;
  return s;
}
