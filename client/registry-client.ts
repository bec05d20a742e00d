// One repository on one registry, through the OCI Distribution API: blobs (HEAD, GET with Range),
// uploads (monolithic for small blobs, chunked for big ones, cross-repository mount), manifests
// (GET verified against their digest, PUT, DELETE), tags and catalog (paginated), referrers
// (API, with the tag-schema fallback). Blob bodies are only ever streamed.
import { createHash } from 'node:crypto';
import { PassThrough, Transform, pipeline, type Readable } from 'node:stream';
import { parseDigest, type Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/manifest.js';
import { MediaType } from '../oci/media-types.js';
import { ClientError, IntegrityError, NotFoundError } from './errors.js';
import { replyError, type BufferedReply, type Transport, type StreamReply } from './transport.js';

export const MANIFEST_ACCEPT = [
  MediaType.OciIndex, MediaType.OciManifest, MediaType.DockerManifestList, MediaType.DockerManifest,
].join(', ');

export interface ManifestBlob {
  /** mediaType, digest and size of the bytes exactly as served. */
  descriptor: Descriptor;
  bytes: Buffer;
}

export interface UploadOptions {
  /** Another repository on the same registry that has the blob: try a cross-repository mount first. */
  mountFrom?: string;
  /** Blobs up to this size go in one PUT; bigger ones in chunks. Default 64 MiB. */
  monolithicMax?: number;
  /** Chunk size for chunked uploads. Default 32 MiB (raised to the registry's OCI-Chunk-Min-Length). */
  chunkSize?: number;
  /** Bytes sent so far (absolute position in the blob). */
  onProgress?: (sent: number) => void;
  /** Skip the HEAD (the caller already knows the blob is missing). */
  skipExistsCheck?: boolean;
}

/** Opens the blob's bytes from `offset`, `length` bytes (to the end when undefined). */
export type BlobOpener = (offset: number, length?: number) => Promise<Readable>;

export type UploadResult = 'exists' | 'mounted' | 'uploaded';

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** A transform that reports the running byte count. */
function counter(start: number, onProgress?: (n: number) => void): Transform {
  let n = start;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      n += chunk.length;
      onProgress?.(n);
      done(null, chunk);
    },
  });
}

/** Parses `Link: </v2/…?last=x&n=y>; rel="next"`. */
export function nextLink(link: string | string[] | undefined): string | undefined {
  const v = headerValue(link);
  if (!v) return undefined;
  for (const part of v.split(',')) {
    const m = /<([^>]*)>\s*;\s*rel="?next"?/i.exec(part);
    if (m) return m[1];
  }
  return undefined;
}

export class RegistryClient {
  constructor(readonly transport: Transport, readonly repository: string) {}

  get registry(): string { return this.transport.registry; }

  private pull(): string[] { return [`repository:${this.repository}:pull`]; }
  private push(): string[] { return [`repository:${this.repository}:pull,push`]; }
  private where(what: string): string { return `${what} ${this.registry}/${this.repository}`; }

  // ---- blobs ---------------------------------------------------------------------------

  /** Size of a blob, or undefined when the repository does not have it. */
  async blobSize(digest: Digest, scopes = this.pull()): Promise<number | undefined> {
    const r = await this.transport.request({ method: 'HEAD', path: `/v2/${this.repository}/blobs/${digest}`, scopes });
    if (r.status === 404) return undefined;
    if (r.status !== 200) throw replyError(this.where(`HEAD blob ${digest} in`), r.status);
    return Number(headerValue(r.headers['content-length']) ?? NaN);
  }

  /**
   * Opens a blob from `offset` (Range). `offset` in the answer is where the stream really starts:
   * 0 when the registry ignored the Range and sent the whole blob.
   */
  async openBlob(digest: Digest, offset = 0, length?: number): Promise<{ stream: Readable; offset: number; size?: number }> {
    const headers: Record<string, string> = {};
    if (offset > 0 || length !== undefined) headers.range = `bytes=${offset}-${length !== undefined ? offset + length - 1 : ''}`;
    const r = await this.transport.stream({ method: 'GET', path: `/v2/${this.repository}/blobs/${digest}`, scopes: this.pull(), headers });
    if (r.status === 200) {
      const size = Number(headerValue(r.headers['content-length']));
      return { stream: r.stream, offset: 0, ...(Number.isFinite(size) ? { size } : {}) };
    }
    if (r.status === 206) {
      const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(headerValue(r.headers['content-range']) ?? '');
      if (!m || Number(m[1]) !== offset) { r.stream.destroy(); throw new ClientError(this.where(`GET blob ${digest} from`) + ': bad Content-Range in 206 reply'); }
      return { stream: r.stream, offset, ...(m[3] !== '*' ? { size: Number(m[3]) } : {}) };
    }
    throw replyError(this.where(`GET blob ${digest} from`), r.status, await small(r));
  }

  async deleteBlob(digest: Digest): Promise<void> {
    const r = await this.transport.request({ method: 'DELETE', path: `/v2/${this.repository}/blobs/${digest}`, scopes: [`repository:${this.repository}:delete`, ...this.push()] });
    if (r.status !== 202 && r.status !== 200) throw replyError(this.where(`DELETE blob ${digest} in`), r.status, r.body);
  }

  /** Uploads a blob unless the repository has it; mounts it from another repository when it can. */
  async uploadBlob(desc: Descriptor, open: BlobOpener, opts: UploadOptions = {}): Promise<UploadResult> {
    if (!opts.skipExistsCheck && (await this.blobSize(desc.digest, this.push())) !== undefined) return 'exists';
    let location: URL | undefined;
    let minChunk = 0;
    if (opts.mountFrom && opts.mountFrom !== this.repository) {
      const r = await this.transport.request({
        method: 'POST',
        path: `/v2/${this.repository}/blobs/uploads/?mount=${encodeURIComponent(desc.digest)}&from=${encodeURIComponent(opts.mountFrom)}`,
        scopes: [...this.push(), `repository:${opts.mountFrom}:pull`],
        headers: { 'content-length': '0' },
      });
      if (r.status === 201) return 'mounted';
      if (r.status !== 202) throw replyError(this.where(`mount ${desc.digest} from ${opts.mountFrom} into`), r.status, r.body);
      location = this.location(r);
      minChunk = Number(headerValue(r.headers['oci-chunk-min-length']) ?? 0) || 0;
    }
    // A failed session (network error after retries, server restarted…) is started again once.
    for (let round = 0; ; round++) {
      try {
        if (!location) ({ location, minChunk } = await this.startUpload());
        const monolithicMax = opts.monolithicMax ?? 64 * 1024 * 1024;
        if (desc.size <= monolithicMax) await this.putMonolithic(location, desc, open, opts);
        else await this.putChunked(location, desc, open, Math.max(opts.chunkSize ?? 32 * 1024 * 1024, minChunk), opts);
        return 'uploaded';
      } catch (e) {
        if (round >= 1 || e instanceof IntegrityError || (e instanceof ClientError && (e.exitCode === 4 || e.exitCode === 8))) throw e;
        location = undefined;
      }
    }
  }

  private location(r: { headers: StreamReply['headers']; url: URL }): URL {
    const loc = headerValue(r.headers.location);
    if (!loc) throw new ClientError(this.where('upload to') + ': the registry sent no Location');
    return new URL(loc, r.url);
  }

  private async startUpload(): Promise<{ location: URL; minChunk: number }> {
    const r = await this.transport.request({ method: 'POST', path: `/v2/${this.repository}/blobs/uploads/`, scopes: this.push(), headers: { 'content-length': '0' } });
    if (r.status !== 202) throw replyError(this.where('start upload to'), r.status, r.body);
    return { location: this.location(r), minChunk: Number(headerValue(r.headers['oci-chunk-min-length']) ?? 0) || 0 };
  }

  private async putMonolithic(location: URL, desc: Descriptor, open: BlobOpener, opts: UploadOptions): Promise<void> {
    const url = new URL(location);
    url.searchParams.set('digest', desc.digest);
    const r = await this.transport.stream({
      method: 'PUT', path: url.toString(), scopes: this.push(),
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(desc.size) },
      body: () => lazyBody(() => open(0), counter(0, opts.onProgress)),
    });
    const body = await small(r);
    if (r.status !== 201) throw replyError(this.where(`upload blob ${desc.digest} to`), r.status, body);
    checkDigestHeader(r, desc.digest);
  }

  private async putChunked(location: URL, desc: Descriptor, open: BlobOpener, chunkSize: number, opts: UploadOptions): Promise<void> {
    let offset = 0;
    let loc = location;
    let failures = 0;
    while (offset < desc.size) {
      const length = Math.min(chunkSize, desc.size - offset);
      const start = offset;
      let r: StreamReply;
      try {
        r = await this.transport.stream({
          method: 'PATCH', path: loc.toString(), scopes: this.push(),
          headers: { 'content-type': 'application/octet-stream', 'content-length': String(length), 'content-range': `${start}-${start + length - 1}` },
          body: () => lazyBody(() => open(start, length), counter(start, opts.onProgress)),
        });
      } catch (e) {
        if (++failures > 3) throw e;
        ({ offset, loc } = await this.uploadStatus(loc));
        continue;
      }
      const body = await small(r);
      if (r.status === 416 && ++failures <= 3) {
        // out of sync: ask the session where it is and continue from there
        ({ offset, loc } = await this.uploadStatus(loc));
        continue;
      }
      if (r.status !== 202) throw replyError(this.where(`upload chunk of ${desc.digest} to`), r.status, body);
      loc = this.location(r);
      const range = /^(?:bytes=)?0-(\d+)$/.exec(headerValue(r.headers.range) ?? '');
      offset = range ? Number(range[1]) + 1 : start + length;
    }
    const url = new URL(loc);
    url.searchParams.set('digest', desc.digest);
    const r = await this.transport.request({ method: 'PUT', path: url.toString(), scopes: this.push(), headers: { 'content-length': '0', 'content-type': 'application/octet-stream' } });
    if (r.status !== 201) throw replyError(this.where(`finish upload of ${desc.digest} to`), r.status, r.body);
    checkDigestHeader(r, desc.digest);
  }

  private async uploadStatus(loc: URL): Promise<{ offset: number; loc: URL }> {
    const r = await this.transport.request({ method: 'GET', path: loc.toString(), scopes: this.push() });
    if (r.status !== 204) throw replyError(this.where('upload status in'), r.status, r.body);
    const range = /^(?:bytes=)?0-(\d+)$/.exec(headerValue(r.headers.range) ?? '');
    return { offset: range ? Number(range[1]) + 1 : 0, loc: headerValue(r.headers.location) ? this.location(r) : loc };
  }

  // ---- manifests -----------------------------------------------------------------------

  /** GET a manifest by tag or digest; verified against the digest when asked by digest. */
  async getManifest(reference: string): Promise<ManifestBlob> {
    const r = await this.transport.request({ method: 'GET', path: `/v2/${this.repository}/manifests/${reference}`, scopes: this.pull(), headers: { accept: MANIFEST_ACCEPT } });
    if (r.status !== 200) throw replyError(this.where(`manifest ${reference} in`), r.status, r.body);
    const mediaType = (headerValue(r.headers['content-type']) ?? '').split(';')[0]!.trim() || mediaTypeFromBody(r.body);
    let digest: Digest;
    if (reference.includes(':')) {
      const want = parseDigest(reference);
      digest = `${want.algorithm}:${createHash(want.algorithm).update(r.body).digest('hex')}` as Digest;
      if (digest !== want.digest) throw new IntegrityError(this.where(`manifest ${reference} in`) + `: content has digest ${digest}`);
    } else {
      const served = headerValue(r.headers['docker-content-digest']);
      const alg = served?.startsWith('sha512:') ? 'sha512' : 'sha256';
      digest = `${alg}:${createHash(alg).update(r.body).digest('hex')}` as Digest;
      if (served && served !== digest) throw new IntegrityError(this.where(`manifest ${reference} in`) + `: served as ${served} but content has digest ${digest}`);
    }
    return { descriptor: { mediaType: mediaType === 'application/json' ? mediaTypeFromBody(r.body) : mediaType, digest, size: r.body.length }, bytes: r.body };
  }

  /** HEAD a manifest: its descriptor, or undefined when unknown. */
  async headManifest(reference: string): Promise<Descriptor | undefined> {
    const r = await this.transport.request({ method: 'HEAD', path: `/v2/${this.repository}/manifests/${reference}`, scopes: this.pull(), headers: { accept: MANIFEST_ACCEPT } });
    if (r.status === 404) return undefined;
    if (r.status !== 200) throw replyError(this.where(`manifest ${reference} in`), r.status);
    const digest = headerValue(r.headers['docker-content-digest']);
    if (!digest) return undefined;
    return {
      mediaType: (headerValue(r.headers['content-type']) ?? '').split(';')[0]!.trim(),
      digest: parseDigest(digest).digest,
      size: Number(headerValue(r.headers['content-length']) ?? 0),
    };
  }

  /** The digest a tag points to (HEAD, falling back to GET when the registry sends no digest). */
  async resolve(reference: string): Promise<Descriptor> {
    const head = await this.headManifest(reference);
    if (head) return head;
    return (await this.getManifest(reference)).descriptor;
  }

  async putManifest(reference: string, bytes: Buffer, mediaType: string): Promise<Digest | undefined> {
    const r = await this.transport.request({
      method: 'PUT', path: `/v2/${this.repository}/manifests/${reference}`, scopes: this.push(),
      headers: { 'content-type': mediaType, 'content-length': String(bytes.length) }, body: () => bytes,
    });
    if (r.status !== 201 && r.status !== 200) throw replyError(this.where(`push manifest ${reference} to`), r.status, r.body);
    const d = headerValue(r.headers['docker-content-digest']);
    return d ? (d as Digest) : undefined;
  }

  async deleteManifest(digest: Digest): Promise<void> {
    const r = await this.transport.request({ method: 'DELETE', path: `/v2/${this.repository}/manifests/${digest}`, scopes: [`repository:${this.repository}:delete`, ...this.push()] });
    if (r.status !== 202 && r.status !== 200) throw replyError(this.where(`delete manifest ${digest} in`), r.status, r.body);
  }

  // ---- listings ------------------------------------------------------------------------

  /** Every tag, following Link pagination. */
  async tags(opts: { pageSize?: number; last?: string; limit?: number } = {}): Promise<string[]> {
    const q = new URLSearchParams();
    if (opts.pageSize) q.set('n', String(opts.pageSize));
    if (opts.last) q.set('last', opts.last);
    return collectPages(`/v2/${this.repository}/tags/list${q.size ? `?${q}` : ''}`, 'tags', 'tags list', opts.limit, async (path) => {
      const r = await this.transport.request({ method: 'GET', path, scopes: this.pull() });
      if (r.status !== 200) throw replyError(this.where('list tags of'), r.status, r.body);
      return r;
    });
  }

  /** Descriptors of every manifest whose subject is `digest` (referrers API, else the tag schema). */
  async referrers(digest: Digest, artifactType?: string): Promise<Descriptor[]> {
    const q = artifactType ? `?artifactType=${encodeURIComponent(artifactType)}` : '';
    const r = await this.transport.request({ method: 'GET', path: `/v2/${this.repository}/referrers/${digest}${q}`, scopes: this.pull() });
    if (r.status === 200) {
      const doc = parseJson(r.body, 'referrers') as { manifests?: Descriptor[] };
      const all = doc.manifests ?? [];
      return artifactType ? all.filter((d) => d.artifactType === artifactType) : all;
    }
    if (r.status !== 404) throw replyError(this.where(`referrers of ${digest} in`), r.status, r.body);
    // Fallback: the referrers tag schema, <alg>-<hex>
    const tag = digest.replace(':', '-');
    try {
      const m = await this.getManifest(tag);
      const doc = parseJson(m.bytes, 'referrers index') as { manifests?: Descriptor[] };
      const all = doc.manifests ?? [];
      return artifactType ? all.filter((d) => d.artifactType === artifactType) : all;
    } catch (e) {
      if (e instanceof NotFoundError) return [];
      throw e;
    }
  }
}

/** The registry's catalog, following Link pagination. */
export function catalog(transport: Transport, opts: { pageSize?: number; limit?: number } = {}): Promise<string[]> {
  return collectPages(`/v2/_catalog${opts.pageSize ? `?n=${opts.pageSize}` : ''}`, 'repositories', 'catalog', opts.limit, async (path) => {
    const r = await transport.request({ method: 'GET', path, scopes: ['registry:catalog:*'] });
    if (r.status !== 200) throw replyError(`list repositories of ${transport.registry}`, r.status, r.body);
    return r;
  });
}

/**
 * A listing's pages, following their Link headers: each page's `key` must be a list of names (or
 * null); a next link the listing has already been to is a registry's loop, and an error.
 */
async function collectPages(first: string, key: string, what: string, limit: number | undefined, get: (path: string) => Promise<BufferedReply>): Promise<string[]> {
  const out: string[] = [];
  const seen = new Set<string>();
  for (let path: string | undefined = first; path;) {
    const r = await get(path);
    const items = parseJson(r.body, what)[key] ?? [];
    if (!Array.isArray(items) || !items.every((i) => typeof i === 'string')) throw new ClientError(`the registry sent an invalid ${what} reply: "${key}" is not a list of names`);
    out.push(...items as string[]);
    if (limit && out.length >= limit) return out.slice(0, limit);
    const next = nextLink(r.headers.link);
    path = next ? new URL(next, r.url).toString() : undefined;
    if (path && seen.has(path)) throw new ClientError(`the registry's ${what} pages loop: the next page link ${path} was followed before`);
    if (path) seen.add(path);
  }
  return out;
}

function parseJson(body: Buffer, what: string): Record<string, unknown> {
  try {
    const v = JSON.parse(body.toString('utf8')) as unknown;
    if (typeof v === 'object' && v !== null) return v as Record<string, unknown>;
  } catch { /* fall through */ }
  throw new ClientError(`the registry sent an invalid ${what} reply`);
}

export function mediaTypeFromBody(bytes: Buffer): string {
  try {
    const doc = JSON.parse(bytes.toString('utf8')) as { mediaType?: string; manifests?: unknown; schemaVersion?: number };
    if (typeof doc.mediaType === 'string') return doc.mediaType;
    return Array.isArray(doc.manifests) ? MediaType.OciIndex : MediaType.OciManifest;
  } catch {
    return MediaType.OciManifest;
  }
}

function checkDigestHeader(r: { headers: StreamReply['headers'] }, digest: Digest): void {
  const d = headerValue(r.headers['docker-content-digest']);
  if (d && d !== digest) throw new IntegrityError(`the registry stored ${d} for blob ${digest}`);
}

async function small(r: StreamReply): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of r.stream) {
      n += (c as Buffer).length;
      if (n > 64 * 1024) { r.stream.destroy(); break; }
      parts.push(c as Buffer);
    }
  } catch { /* an error body we could not read fully is still an error */ }
  return Buffer.concat(parts);
}

/**
 * A request body that opens its source when the request starts sending, piped through `through`
 * (progress). Errors of the source propagate to the request.
 */
function lazyBody(open: () => Promise<Readable>, through: Transform): Readable {
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  open().then((src) => {
    pipeline(src, through, out, (e) => { if (e) out.destroy(e); });
  }, (e: Error) => out.destroy(e));
  return out;
}
