// The ONLY place that builds storage keys. Every input has already been validated
// (repository names by the spec grammar, digests by parseDigest, tags by the tag
// grammar, upload ids as UUIDs); the asserts below make that a hard guarantee.
import { createHash } from 'node:crypto';
import { parseDigest, type Digest } from '../../oci/digest.js';
import { isValidName, isValidTag } from '../../oci/reference.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function isUploadId(id: string): boolean {
  return UUID.test(id);
}

function repo(name: string): string {
  if (!isValidName(name)) throw new Error(`refusing to build a path from an invalid name: ${name.slice(0, 300)}`);
  return `/repositories/${name}`;
}

function digestParts(digest: Digest): string {
  const { algorithm, encoded } = parseDigest(digest);
  return `${algorithm}/${encoded}`;
}

function tag(t: string): string {
  if (!isValidTag(t)) throw new Error(`refusing to build a path from an invalid tag: ${t.slice(0, 300)}`);
  return t;
}

function uploadId(id: string): string {
  if (!isUploadId(id)) throw new Error('refusing to build a path from an invalid upload id');
  return id;
}

const LEASE_ID = /^[A-Za-z0-9_-]{1,100}$/;

export function isLeaseId(id: string): boolean {
  return LEASE_ID.test(id);
}

function lease(id: string): string {
  if (!isLeaseId(id)) throw new Error('refusing to build a path from an invalid GC lease id');
  return id;
}

export const paths = {
  blobsRoot: () => '/blobs',
  blobData: (digest: Digest) => {
    const { algorithm, encoded } = parseDigest(digest);
    return `/blobs/${algorithm}/${encoded.slice(0, 2)}/${encoded}/data`;
  },
  repositoriesRoot: () => '/repositories',
  repository: (name: string) => repo(name),
  layersRoot: (name: string) => `${repo(name)}/_layers`,
  layerLink: (name: string, digest: Digest) => `${repo(name)}/_layers/${digestParts(digest)}/link`,
  manifestsRoot: (name: string) => `${repo(name)}/_manifests`,
  revisionsRoot: (name: string) => `${repo(name)}/_manifests/revisions`,
  revisionLink: (name: string, digest: Digest) => `${repo(name)}/_manifests/revisions/${digestParts(digest)}/link`,
  tagsRoot: (name: string) => `${repo(name)}/_manifests/tags`,
  tagLink: (name: string, t: string) => `${repo(name)}/_manifests/tags/${tag(t)}/link`,
  tag: (name: string, t: string) => `${repo(name)}/_manifests/tags/${tag(t)}`,
  referrersOf: (name: string, subject: Digest) => `${repo(name)}/_referrers/${digestParts(subject)}`,
  referrerLink: (name: string, subject: Digest, referrer: Digest) => {
    const { algorithm, encoded } = parseDigest(referrer);
    return `${repo(name)}/_referrers/${digestParts(subject)}/${algorithm}-${encoded}`;
  },
  uploadsRoot: (name: string) => `${repo(name)}/_uploads`,
  upload: (name: string, id: string) => `${repo(name)}/_uploads/${uploadId(id)}`,
  uploadData: (name: string, id: string) => `${repo(name)}/_uploads/${uploadId(id)}/data`,
  uploadStartedAt: (name: string, id: string) => `${repo(name)}/_uploads/${uploadId(id)}/startedat`,
  // Garbage collection's coordination state (see gc.ts): a lease while a run is active and a
  // tombstone per item it is about to delete, in a folder of the run's lease, so that a run only ever removes
  // its own. Items are hashed, so any item string is a safe key.
  gcRoot: () => '/_gc',
  gcLease: () => '/_gc/lease',
  gcTombstones: () => '/_gc/tombstones',
  gcTombstonesOf: (leaseId: string) => `/_gc/tombstones/${lease(leaseId)}`,
  gcTombstone: (leaseId: string, item: string) => `/_gc/tombstones/${lease(leaseId)}/${createHash('sha256').update(item).digest('hex')}`,
};

/** The last path component of a key. */
export function basename(key: string): string {
  return key.slice(key.lastIndexOf('/') + 1);
}
