// Manifest validation and walking: what a manifest is, and which blobs and manifests it needs.
import { parseDigest, type Digest } from './digest.js';
import { MediaType, SCHEMA1_TYPES, manifestKind, type ManifestKind } from './media-types.js';

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  urls?: string[];
  platform?: Record<string, unknown>;
}

export interface ParsedManifest {
  mediaType: string;
  kind: ManifestKind;
  /** Blobs (config, layers) an image manifest needs in the repository. */
  blobs: Descriptor[];
  /** Manifests an index needs in the repository. */
  manifests: Descriptor[];
  /** Non-distributable layers: not needed in the repository, but part of the image when a client pushed them there. */
  foreignLayers: Descriptor[];
  subject?: Descriptor;
  artifactType?: string;
  annotations?: Record<string, string>;
  configMediaType?: string;
}

export class ManifestError extends Error {}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Optional fields given as JSON null are treated as absent (some clients write them). */
function dropNulls(v: Json): Json {
  const out: Json = {};
  for (const [k, x] of Object.entries(v)) if (x !== null) out[k] = x;
  return out;
}

function descriptor(raw: unknown, where: string): Descriptor {
  const v = isObject(raw) ? dropNulls(raw) : raw;
  if (!isObject(v)) throw new ManifestError(`${where}: expected a descriptor object`);
  if (typeof v.mediaType !== 'string' || v.mediaType === '') throw new ManifestError(`${where}.mediaType: required string`);
  if (typeof v.digest !== 'string') throw new ManifestError(`${where}.digest: required string`);
  let digest: Digest;
  try { digest = parseDigest(v.digest).digest; } catch (e) { throw new ManifestError(`${where}.digest: ${(e as Error).message}`); }
  if (typeof v.size !== 'number' || !Number.isSafeInteger(v.size) || v.size < 0) throw new ManifestError(`${where}.size: required non-negative integer`);
  if (v.annotations !== undefined && !isStringMap(v.annotations)) throw new ManifestError(`${where}.annotations: expected a map of strings`);
  if (v.artifactType !== undefined && typeof v.artifactType !== 'string') throw new ManifestError(`${where}.artifactType: expected a string`);
  if (v.urls !== undefined && !(Array.isArray(v.urls) && v.urls.every((u) => typeof u === 'string'))) throw new ManifestError(`${where}.urls: expected strings`);
  return v as unknown as Descriptor;
}

function isStringMap(v: unknown): v is Record<string, string> {
  return isObject(v) && Object.values(v).every((x) => typeof x === 'string');
}

function descriptors(v: unknown, where: string): Descriptor[] {
  if (!Array.isArray(v)) throw new ManifestError(`${where}: expected an array`);
  return v.map((d, i) => descriptor(d, `${where}[${i}]`));
}

/**
 * Parses a manifest pushed with the given Content-Type. The media type is the header's,
 * the manifest's own mediaType field must agree with it when both are present.
 */
/** What a manifest refers to: an image's config and layers, or an index's manifests (bare descriptors). */
export function manifestReferences(m: ParsedManifest): Descriptor[] {
  return [...m.blobs, ...m.manifests].map(({ mediaType, digest, size }) => ({ mediaType, digest, size }));
}

export function parseManifest(body: Buffer, contentType: string | undefined): ParsedManifest {
  const header = contentType?.split(';')[0]!.trim().toLowerCase() || undefined;
  let doc: unknown;
  try { doc = JSON.parse(body.toString('utf8')); } catch { throw new ManifestError('manifest is not valid JSON'); }
  if (!isObject(doc)) throw new ManifestError('manifest must be a JSON object');
  doc = dropNulls(doc);
  if (!isObject(doc)) throw new ManifestError('manifest must be a JSON object');
  const field = typeof doc.mediaType === 'string' ? doc.mediaType : undefined;
  if (doc.schemaVersion === 1 || (header && SCHEMA1_TYPES.includes(header) && header !== 'application/json') || (field && SCHEMA1_TYPES.includes(field))) {
    throw new ManifestError('Docker image manifest schema 1 is deprecated and not supported; push the image as Docker schema 2 or OCI');
  }
  if (doc.schemaVersion !== 2) throw new ManifestError('schemaVersion must be 2');
  if (doc.mediaType !== undefined && typeof doc.mediaType !== 'string') throw new ManifestError('mediaType: expected a string');
  const generic = !header || header === 'application/json' || header === 'application/octet-stream';
  if (field && !generic && field !== header) {
    throw new ManifestError(`mediaType "${field}" in the manifest does not match the Content-Type "${header}"`);
  }
  const mediaType = generic
    ? field ?? (Array.isArray(doc.manifests) ? MediaType.OciIndex : MediaType.OciManifest)
    : header!;
  const kind = manifestKind(mediaType);
  if (!kind) throw new ManifestError(`unsupported manifest media type "${mediaType.slice(0, 200)}"`);

  const parsed: ParsedManifest = { mediaType, kind, blobs: [], manifests: [], foreignLayers: [] };
  if (doc.subject !== undefined) parsed.subject = descriptor(doc.subject, 'subject');
  if (doc.artifactType !== undefined) {
    if (typeof doc.artifactType !== 'string') throw new ManifestError('artifactType: expected a string');
    parsed.artifactType = doc.artifactType;
  }
  if (doc.annotations !== undefined) {
    if (!isStringMap(doc.annotations)) throw new ManifestError('annotations: expected a map of strings');
    parsed.annotations = doc.annotations;
  }
  if (kind === 'image') {
    const config = descriptor(doc.config, 'config');
    parsed.configMediaType = config.mediaType;
    const layers = doc.layers === undefined && mediaType === MediaType.OciManifest ? [] : descriptors(doc.layers, 'layers');
    // Foreign / non-distributable layers (Windows base images) live elsewhere by design.
    parsed.blobs = [config, ...layers.filter((l) => !isNonDistributable(l.mediaType))];
    parsed.foreignLayers = layers.filter((l) => isNonDistributable(l.mediaType));
  } else {
    parsed.manifests = descriptors(doc.manifests, 'manifests');
  }
  return parsed;
}

export function isNonDistributable(mediaType: string): boolean {
  return mediaType === MediaType.DockerForeignLayer || mediaType.includes('.nondistributable.');
}

/** The artifactType a referrers response shows for a manifest (OCI image-spec rules). */
export function effectiveArtifactType(m: ParsedManifest): string | undefined {
  // "empty or missing" alike fall back to the config's media type (distribution-spec, Listing Referrers)
  return m.artifactType || (m.kind === 'image' ? m.configMediaType : undefined);
}
