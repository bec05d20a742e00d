// S3 adapter (AWS S3, Ceph RGW, MinIO…). A key "/a/b" is the object "<rootdirectory>/a/b".
//
// Bytes only ever flow as streams: writes are multipart uploads fed one part (chunksize) at a time,
// reads are GetObject bodies, and moves copy server-side (CopyObject / UploadPartCopy) wherever S3 allows.
//
// Appends. S3 objects cannot grow, and an upload may be continued by any server instance, so an object
// written with { append: true } lives in the bucket as a run of part objects
//     <name>~parts/<offset, 20 digits>        ('~' never occurs in a key, so this cannot collide with one)
// one per committed append, each named by the byte offset it starts at. The object's size is the sum of the
// parts (one LIST), read() streams the parts in order, and move() assembles them into one plain object with a
// multipart upload: parts of at least 5 MiB are copied server-side with UploadPartCopy, runs of smaller parts
// are streamed through this process into ≥ 5 MiB upload parts (S3 wants every part but the last ≥ 5 MiB).
// A plain object at <name> shadows any parts, so write()/putSmall()/move() replace an appended object
// atomically by creating the plain object; write() and move() then remove the shadowed parts, and after a
// putSmall() the next append, move or delete does. An append to a plain object first turns it into part 0
// (server-side copy). Parts only become visible at commit (a PutObject or a completed multipart upload), and a
// cancelled append deletes the part it committed, if any.
import { Readable, Writable } from 'node:stream';
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CopyObjectCommand, CreateMultipartUploadCommand,
  DeleteObjectCommand, DeleteObjectsCommand, GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command,
  PutObjectCommand, S3Client, UploadPartCommand, UploadPartCopyCommand,
  type CompletedPart, type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import {
  checkKey, InvalidOffsetError, PathNotFoundError, StorageError, TooLargeError,
  type ByteRange, type FileWriter, type Stat, type StorageAdapter, type WriteOptions,
} from './types.js';

const MiB = 1024 * 1024;
/** S3's smallest part (all but the last). */
export const MIN_PART = 5 * MiB;
/** S3's largest CopyObject / UploadPartCopy source range. */
export const MAX_COPY = 5 * 1024 * MiB;
const MAX_PARTS = 10_000;
const DEFAULT_CHUNK = 10 * MiB;
const PARTS_SUFFIX = '~parts';
const OFFSET_DIGITS = 20;
const COMPONENT = /^[A-Za-z0-9._-]+$/;
const ASSEMBLY_CONCURRENCY = 4;
const READ_AHEAD = 3;
const REDIRECT_SECONDS = 20 * 60;

export interface S3AdapterOptions {
  bucket: string;
  region?: string;
  /** Endpoint of a non-AWS S3 (e.g. http://127.0.0.1:7480); a bare host gets http(s) from `secure`. */
  regionendpoint?: string;
  /** Path-style addressing; defaults to true when regionendpoint is set. */
  forcepathstyle?: boolean;
  rootdirectory?: string;
  /** Static credentials; without them the SDK's default credential chain is used. */
  accesskey?: string;
  secretkey?: string;
  sessiontoken?: string;
  /** Multipart part size in bytes (default 10 MiB, at least 5 MiB). */
  chunksize?: number;
  /** Offer presigned GET/HEAD URLs through redirectUrl(). */
  redirect?: boolean;
  /** https for a regionendpoint given without a scheme (default true). */
  secure?: boolean;
  /** SDK attempts per request, retrying throttling and 5xx (default 5). */
  maxattempts?: number;
  /** Keys per ListObjectsV2 page (default: the server's, 1000); small values let tests exercise paging. */
  pagesize?: number;
}

interface PartObject { name: string; offset: number; size: number; modified: Date }

/** One source range: bytes [start, start + length) of object `name`. */
export interface Segment { name: string; start: number; length: number }
export type PlannedPart = { kind: 'copy'; segment: Segment } | { kind: 'upload'; segments: Segment[]; length: number };

/**
 * Plans the parts of a multipart upload that concatenates `sources` in order. Ranges of sources that can
 * stand alone as a part (≥ min bytes) are copied server-side, at most copyMax bytes each; runs of smaller
 * pieces are gathered into upload parts of `target` bytes that stream through the process. Every part but
 * the last is ≥ min.
 */
export function planAssembly(
  sources: { name: string; size: number }[],
  { min = MIN_PART, target = DEFAULT_CHUNK, copyMax = MAX_COPY }: { min?: number; target?: number; copyMax?: number } = {},
): PlannedPart[] {
  if (target < min || copyMax < 2 * min) throw new Error('planAssembly: target must be ≥ min and copyMax ≥ 2·min');
  const plan: PlannedPart[] = [];
  let pending: Segment[] = [];
  let pendingLength = 0;
  for (const { name, size } of sources) {
    let pos = 0;
    while (pos < size) {
      const rest = size - pos;
      if (pendingLength === 0 && rest >= min) {
        let n = Math.min(rest, copyMax);
        if (rest - n > 0 && rest - n < min) n = rest - min; // keep the remainder copyable
        plan.push({ kind: 'copy', segment: { name, start: pos, length: n } });
        pos += n;
      } else {
        const n = Math.min(rest, target - pendingLength);
        pending.push({ name, start: pos, length: n });
        pendingLength += n;
        pos += n;
        if (pendingLength >= target) {
          plan.push({ kind: 'upload', segments: pending, length: pendingLength });
          pending = [];
          pendingLength = 0;
        }
      }
    }
  }
  if (pendingLength > 0) plan.push({ kind: 'upload', segments: pending, length: pendingLength });
  return plan;
}

function errorName(e: unknown): string | undefined {
  return (e as { name?: string } | undefined)?.name;
}

function httpStatus(e: unknown): number | undefined {
  return (e as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}

function isNotFound(e: unknown): boolean {
  const name = errorName(e);
  if (name === 'NoSuchBucket' || name === 'NoSuchUpload') return false;
  return name === 'NoSuchKey' || name === 'NotFound' || httpStatus(e) === 404;
}

/** Adds the operation and key to an SDK error; never includes credentials (the SDK's errors carry none). */
function wrap(op: string, key: string, e: unknown): Error {
  if (e instanceof StorageError) return e;
  const err = new StorageError(`s3 ${op} ${key}: ${errorName(e) ?? 'Error'}: ${(e as Error)?.message ?? String(e)}`);
  (err as Error & { cause?: unknown }).cause = e;
  return err;
}

function asReadable(body: unknown): Readable {
  if (body instanceof Readable) return body;
  if (body && typeof (body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] === 'function') {
    return Readable.from(body as AsyncIterable<Uint8Array>, { objectMode: false });
  }
  throw new StorageError('s3: GetObject returned no stream body');
}

async function drainToBuffer(body: Readable, limit: number, key: string, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const c of body) {
      const b = Buffer.isBuffer(c) ? c : Buffer.from(c as Uint8Array);
      total += b.length;
      if (total > limit) throw new TooLargeError(key, maxBytes);
      chunks.push(b);
    }
  } finally {
    body.destroy();
  }
  return Buffer.concat(chunks, total);
}

async function runPool<T>(items: T[], concurrency: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown;
  const worker = async () => {
    while (failed === undefined && next < items.length) {
      const i = next++;
      try { await fn(items[i]!, i); } catch (e) { failed ??= e; }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  if (failed !== undefined) throw failed;
}

function copySource(bucket: string, name: string): string {
  return `${bucket}/${name.split('/').map(encodeURIComponent).join('/')}`;
}

export class S3Adapter implements StorageAdapter {
  readonly name = 's3';
  readonly client: S3Client;
  readonly bucket: string;
  /** Object-name prefix without leading or trailing slash; '' for the bucket's root. */
  readonly root: string;
  readonly partSize: number;
  readonly redirect: boolean;
  readonly pageSize: number | undefined;

  constructor(opts: S3AdapterOptions, client?: S3Client) {
    if (!opts.bucket) throw new Error('s3: bucket is required');
    this.bucket = opts.bucket;
    this.root = (opts.rootdirectory ?? '').split('/').filter(Boolean).join('/');
    for (const part of this.root ? this.root.split('/') : []) {
      if (!COMPONENT.test(part) || part === '.' || part === '..') throw new Error(`s3: invalid rootdirectory "${opts.rootdirectory}"`);
    }
    const chunk = opts.chunksize ?? DEFAULT_CHUNK;
    if (!Number.isInteger(chunk) || chunk < MIN_PART) throw new Error(`s3: chunksize must be an integer ≥ ${MIN_PART} (5 MiB)`);
    if (chunk > MAX_COPY) throw new Error(`s3: chunksize must be ≤ ${MAX_COPY} (5 GiB)`);
    this.partSize = chunk;
    this.redirect = opts.redirect ?? false;
    this.pageSize = opts.pagesize;
    this.client = client ?? new S3Client(S3Adapter.clientConfig(opts));
  }

  static clientConfig(opts: S3AdapterOptions): S3ClientConfig {
    let endpoint = opts.regionendpoint || undefined;
    if (endpoint && !/^[a-z][a-z0-9+.-]*:\/\//i.test(endpoint)) endpoint = `${opts.secure === false ? 'http' : 'https'}://${endpoint}`;
    const config: S3ClientConfig = {
      region: opts.region || 'us-east-1',
      endpoint,
      forcePathStyle: opts.forcepathstyle ?? Boolean(endpoint),
      maxAttempts: opts.maxattempts ?? 5,
      // Non-AWS S3s (RGW, s3rver) reject or corrupt the streamed checksum trailer the SDK adds by default.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: {
        connectionTimeout: 10_000,
        httpAgent: { keepAlive: true, maxSockets: 64 },
        httpsAgent: { keepAlive: true, maxSockets: 64 },
      },
    };
    if (opts.accesskey || opts.secretkey) {
      if (!opts.accesskey || !opts.secretkey) throw new Error('s3: accesskey and secretkey must be given together');
      config.credentials = { accessKeyId: opts.accesskey, secretAccessKey: opts.secretkey, sessionToken: opts.sessiontoken || undefined };
    }
    return config;
  }

  /** The factory behind the 's3' driver: options as they come from the config's storage.s3 section. */
  static fromConfig(o: Record<string, unknown>): S3Adapter {
    const str = (k: string) => (o[k] === undefined || o[k] === null || o[k] === '' ? undefined : String(o[k]));
    const bool = (k: string) => (o[k] === undefined || o[k] === null ? undefined : o[k] === true || /^(true|1|yes)$/i.test(String(o[k])));
    const int = (k: string) => (o[k] === undefined || o[k] === null || o[k] === '' ? undefined : Number(o[k]));
    return new S3Adapter({
      bucket: str('bucket') ?? '',
      region: str('region'),
      regionendpoint: str('regionendpoint'),
      forcepathstyle: bool('forcepathstyle'),
      rootdirectory: str('rootdirectory'),
      accesskey: str('accesskey'),
      secretkey: str('secretkey'),
      sessiontoken: str('sessiontoken'),
      chunksize: int('chunksize'),
      redirect: bool('redirect'),
      secure: bool('secure'),
      maxattempts: int('maxattempts'),
      pagesize: int('pagesize'),
    });
  }

  // ---- names ----

  /** The object name of a key. */
  objectName(key: string): string {
    checkKey(key);
    return this.root ? `${this.root}${key}` : key.slice(1);
  }

  #partsPrefix(key: string): string {
    return `${this.objectName(key)}${PARTS_SUFFIX}/`;
  }

  #partName(key: string, offset: number): string {
    return this.#partsPrefix(key) + String(offset).padStart(OFFSET_DIGITS, '0');
  }

  // ---- small S3 helpers ----

  async #head(name: string, key: string): Promise<{ size: number; modified: Date } | undefined> {
    try {
      const h = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: name }));
      return { size: h.ContentLength ?? 0, modified: h.LastModified ?? new Date(0) };
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw wrap('HeadObject', key, e);
    }
  }

  async *#listAll(prefix: string, key: string, delimiter?: string) {
    let token: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(new ListObjectsV2Command({
          Bucket: this.bucket, Prefix: prefix, Delimiter: delimiter, ContinuationToken: token, MaxKeys: this.pageSize,
        }));
      } catch (e) {
        throw wrap('ListObjectsV2', key, e);
      }
      yield page;
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  /** The committed append parts of a key, in order; checks that they are contiguous. */
  async #parts(key: string): Promise<PartObject[]> {
    const prefix = this.#partsPrefix(key);
    const parts: PartObject[] = [];
    for await (const page of this.#listAll(prefix, key)) {
      for (const o of page.Contents ?? []) {
        const rest = o.Key?.slice(prefix.length) ?? '';
        if (!/^\d+$/.test(rest)) continue;
        parts.push({ name: o.Key!, offset: Number(rest), size: o.Size ?? 0, modified: o.LastModified ?? new Date(0) });
      }
    }
    parts.sort((a, b) => a.offset - b.offset);
    let expected = 0;
    for (const p of parts) {
      if (p.offset !== expected) {
        throw new StorageError(`s3: append parts of ${key} are not contiguous (part at ${p.offset}, expected ${expected}); concurrent appenders?`);
      }
      expected += p.size;
    }
    return parts;
  }

  async #deleteNames(names: string[], key: string): Promise<void> {
    for (let i = 0; i < names.length; i += 1000) {
      const batch = names.slice(i, i + 1000);
      let out;
      try {
        out = await this.client.send(new DeleteObjectsCommand({
          Bucket: this.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
        }));
      } catch (e) {
        throw wrap('DeleteObjects', key, e);
      }
      const errors = (out.Errors ?? []).filter((x) => x.Code !== 'NoSuchKey');
      if (errors.length) throw new StorageError(`s3 DeleteObjects ${key}: ${errors.length} failed, first ${errors[0]!.Key}: ${errors[0]!.Code} ${errors[0]!.Message ?? ''}`);
    }
  }

  /** Deletes every object whose name starts with prefix, a page (≤ 1000) at a time. */
  async #deletePrefix(prefix: string, key: string): Promise<void> {
    for await (const page of this.#listAll(prefix, key)) {
      const names = (page.Contents ?? []).map((o) => o.Key!).filter(Boolean);
      if (names.length) await this.#deleteNames(names, key);
    }
  }

  async #getBody(name: string, key: string, range?: string): Promise<{ body: Readable; length?: number }> {
    const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: name, Range: range }));
    return { body: asReadable(out.Body), length: out.ContentLength };
  }

  /** Streams the bytes [start, last] of a run of parts. */
  #readParts(parts: PartObject[], key: string, start: number, last: number): Readable {
    return this.#rangesStream(parts
      .filter((p) => p.size > 0 && p.offset + p.size - 1 >= start && p.offset <= last)
      .map((p) => ({ name: p.name, start: Math.max(start, p.offset) - p.offset, length: Math.min(last, p.offset + p.size - 1) - Math.max(start, p.offset) + 1 })), key);
  }

  /** Concatenates object ranges into one stream, fetching the next range while the current one drains. */
  #rangesStream(segments: Segment[], key: string): Readable {
    const fetch = (s: Segment) => {
      const p = this.#getBody(s.name, key, `bytes=${s.start}-${s.start + s.length - 1}`).then((r) => r.body);
      p.catch(() => undefined); // observed when its turn comes; avoids an unhandled rejection meanwhile
      return p;
    };
    async function* gen(): AsyncGenerator<Buffer> {
      // Up to READ_AHEAD requests are open ahead of the one being drained (tiny parts are latency-bound);
      // an unread response holds no more than its socket's buffers.
      const queue: Promise<Readable>[] = [];
      let fetched = 0;
      try {
        for (let i = 0; i < segments.length; i++) {
          while (fetched < segments.length && queue.length <= READ_AHEAD) queue.push(fetch(segments[fetched++]!));
          let body: Readable;
          try {
            body = await queue.shift()!;
          } catch (e) {
            throw isNotFound(e) ? new StorageError(`s3: a part of ${key} vanished while reading it (moved or deleted)`) : wrap('GetObject', key, e);
          }
          try {
            for await (const c of body) yield c as Buffer;
          } finally {
            body.destroy();
          }
        }
      } finally {
        for (const p of queue) p.then((b) => b.destroy(), () => undefined);
      }
    }
    return Readable.from(gen(), { objectMode: false });
  }

  // ---- StorageAdapter ----

  async stat(key: string): Promise<Stat> {
    const name = this.objectName(key);
    const head = await this.#head(name, key);
    if (head) return { ...head, isDirectory: false };
    const parts = await this.#parts(key);
    if (parts.length) {
      return {
        size: parts.reduce((n, p) => n + p.size, 0),
        modified: new Date(Math.max(...parts.map((p) => p.modified.getTime()))),
        isDirectory: false,
      };
    }
    let page;
    try {
      page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: `${name}/`, MaxKeys: 1 }));
    } catch (e) {
      throw wrap('ListObjectsV2', key, e);
    }
    const first = page.Contents?.[0];
    if (first) return { size: 0, modified: first.LastModified ?? new Date(0), isDirectory: true };
    throw new PathNotFoundError(key);
  }

  async read(key: string, range?: ByteRange): Promise<Readable> {
    const name = this.objectName(key);
    const start = range?.offset ?? 0;
    if (!Number.isInteger(start) || start < 0) throw new InvalidOffsetError(key, start);
    const end = range?.length !== undefined ? start + range.length - 1 : undefined;
    if (end !== undefined && end < start) {
      const st = await this.stat(key);
      if (st.isDirectory) throw new PathNotFoundError(key);
      if (start > st.size) throw new InvalidOffsetError(key, start);
      return Readable.from([]);
    }
    try {
      const header = start > 0 || end !== undefined ? `bytes=${start}-${end ?? ''}` : undefined;
      return (await this.#getBody(name, key, header)).body;
    } catch (e) {
      if (errorName(e) === 'InvalidRange' || httpStatus(e) === 416) {
        // The range starts at or past the end: at the end is an empty read, past it an error.
        const st = await this.stat(key);
        if (start > st.size) throw new InvalidOffsetError(key, start);
        return Readable.from([]);
      }
      if (!isNotFound(e)) throw wrap('GetObject', key, e);
    }
    const parts = await this.#parts(key);
    if (!parts.length) throw new PathNotFoundError(key);
    const size = parts.reduce((n, p) => n + p.size, 0);
    if (start > size) throw new InvalidOffsetError(key, start);
    return this.#readParts(parts, key, start, end === undefined ? size - 1 : Math.min(end, size - 1));
  }

  async write(key: string, opts: WriteOptions = {}): Promise<FileWriter> {
    const name = this.objectName(key);
    if (!opts.append) {
      return new S3Writer(this, key, name, 0, {
        // the new plain object shadows any append parts already; remove them so they cannot linger
        afterCommit: () => this.#deletePrefix(this.#partsPrefix(key), key),
      });
    }
    const [head, existing] = await Promise.all([this.#head(name, key), this.#parts(key).catch((e) => e as Error)]);
    let parts: PartObject[];
    if (head) {
      // A plain object shadows parts: drop the stale ones, then the plain object becomes part 0.
      await this.#deletePrefix(this.#partsPrefix(key), key);
      await this.#copy([{ name, size: head.size }], this.#partName(key, 0), key);
      try {
        await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: name }));
      } catch (e) {
        throw wrap('DeleteObject', key, e);
      }
      parts = [{ name: this.#partName(key, 0), offset: 0, size: head.size, modified: new Date() }];
    } else {
      if (existing instanceof Error) throw existing;
      parts = existing;
    }
    const startSize = parts.reduce((n, p) => n + p.size, 0);
    return new S3Writer(this, key, this.#partName(key, startSize), startSize, { append: true, exists: parts.length > 0 });
  }

  async getSmall(key: string, maxBytes: number): Promise<Buffer> {
    const name = this.objectName(key);
    try {
      const { body, length } = await this.#getBody(name, key);
      if (length !== undefined && length > maxBytes) {
        body.destroy();
        throw new TooLargeError(key, maxBytes);
      }
      return await drainToBuffer(body, maxBytes, key, maxBytes);
    } catch (e) {
      if (e instanceof StorageError) throw e;
      if (!isNotFound(e)) throw wrap('GetObject', key, e);
    }
    const parts = await this.#parts(key);
    if (!parts.length) throw new PathNotFoundError(key);
    const size = parts.reduce((n, p) => n + p.size, 0);
    if (size > maxBytes) throw new TooLargeError(key, maxBytes);
    return drainToBuffer(this.#readParts(parts, key, 0, size - 1), maxBytes, key, maxBytes);
  }

  async putSmall(key: string, data: Buffer): Promise<void> {
    const name = this.objectName(key);
    try {
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: name, Body: data, ContentLength: data.length }));
    } catch (e) {
      throw wrap('PutObject', key, e);
    }
    // Any append parts of this key are shadowed now; they are removed by the next append, move or delete.
  }

  async *list(prefix: string): AsyncIterable<string> {
    const base = prefix === '/' ? '' : checkKey(prefix);
    const s3Prefix = base === '' ? (this.root ? `${this.root}/` : '') : `${this.objectName(base)}/`;
    const seen = new Set<string>();
    for await (const page of this.#listAll(s3Prefix, prefix, '/')) {
      const names: string[] = [];
      for (const o of page.Contents ?? []) names.push(o.Key?.slice(s3Prefix.length) ?? '');
      for (const p of page.CommonPrefixes ?? []) {
        let n = p.Prefix?.slice(s3Prefix.length, -1) ?? '';
        if (n.endsWith(PARTS_SUFFIX)) n = n.slice(0, -PARTS_SUFFIX.length); // an appended object
        names.push(n);
      }
      for (const n of names) {
        if (!COMPONENT.test(n) || n === '.' || n === '..' || seen.has(n)) continue;
        seen.add(n);
        yield `${base}/${n}`;
      }
    }
  }

  async move(from: string, to: string): Promise<void> {
    const src = this.objectName(from);
    const dst = this.objectName(to);
    if (from === to) { await this.stat(from); return; }
    const head = await this.#head(src, from);
    if (head) {
      await this.#copy([{ name: src, size: head.size }], dst, from);
    } else {
      const parts = await this.#parts(from);
      if (!parts.length) throw new PathNotFoundError(from);
      await this.#copy(parts, dst, from);
    }
    // The target is a plain object now, which shadows its old append parts (if any); those go, and the source.
    await Promise.all([
      this.#deletePrefix(this.#partsPrefix(to), to),
      this.#deleteNames([src], from),
      this.#deletePrefix(this.#partsPrefix(from), from),
    ]);
  }

  async delete(key: string): Promise<void> {
    const name = this.objectName(key);
    await this.#deleteNames([name], key);
    await Promise.all([this.#deletePrefix(`${name}/`, key), this.#deletePrefix(this.#partsPrefix(key), key)]);
  }

  async redirectUrl(key: string, method: 'GET' | 'HEAD'): Promise<string | undefined> {
    if (!this.redirect) return undefined;
    const input = { Bucket: this.bucket, Key: this.objectName(key) };
    const command = method === 'HEAD' ? new HeadObjectCommand(input) : new GetObjectCommand(input);
    return getSignedUrl(this.client, command, { expiresIn: REDIRECT_SECONDS });
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  // ---- copying and assembling ----

  /**
   * Writes the concatenation of `sources` to the object `dst`: CopyObject when that is one whole source
   * of ≤ 5 GiB, a streamed PutObject when everything fits in one small upload, a multipart upload otherwise.
   */
  async #copy(sources: { name: string; size: number }[], dst: string, key: string): Promise<void> {
    const total = sources.reduce((n, s) => n + s.size, 0);
    const target = Math.max(this.partSize, Math.ceil(total / (MAX_PARTS - 1)));
    const plan = planAssembly(sources, { target: Math.min(target, MAX_COPY) });
    if (plan.length > MAX_PARTS) throw new StorageError(`s3: ${key} needs ${plan.length} parts to assemble, over S3's ${MAX_PARTS}`);
    const only = plan[0];
    if (plan.length === 0) {
      await this.#send('PutObject', key, () => this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: dst, Body: Buffer.alloc(0), ContentLength: 0 })));
      return;
    }
    if (plan.length === 1 && only!.kind === 'copy' && only!.segment.start === 0
      && only!.segment.length === sources.find((s) => s.name === only!.segment.name)?.size) {
      await this.#send('CopyObject', key, () => this.client.send(new CopyObjectCommand({
        Bucket: this.bucket, Key: dst, CopySource: copySource(this.bucket, only!.segment.name),
      })));
      return;
    }
    if (plan.length === 1 && only!.kind === 'upload') {
      await this.#withStreamRetry('PutObject', key, () => this.client.send(new PutObjectCommand({
        Bucket: this.bucket, Key: dst, Body: this.#rangesStream(only!.segments, key), ContentLength: only!.length,
      })));
      return;
    }
    let uploadId: string | undefined;
    try {
      const created = await this.#send('CreateMultipartUpload', key, () => this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: dst })));
      uploadId = created.UploadId!;
      const done: CompletedPart[] = new Array(plan.length);
      await runPool(plan, ASSEMBLY_CONCURRENCY, async (part, i) => {
        const PartNumber = i + 1;
        if (part.kind === 'copy') {
          const { segment: s } = part;
          const r = await this.#send('UploadPartCopy', key, () => this.client.send(new UploadPartCopyCommand({
            Bucket: this.bucket, Key: dst, UploadId: uploadId, PartNumber,
            CopySource: copySource(this.bucket, s.name), CopySourceRange: `bytes=${s.start}-${s.start + s.length - 1}`,
          })));
          done[i] = { PartNumber, ETag: r.CopyPartResult?.ETag };
        } else {
          const r = await this.#withStreamRetry('UploadPart', key, () => this.client.send(new UploadPartCommand({
            Bucket: this.bucket, Key: dst, UploadId: uploadId, PartNumber,
            Body: this.#rangesStream(part.segments, key), ContentLength: part.length,
          })));
          done[i] = { PartNumber, ETag: r.ETag };
        }
      });
      await this.#send('CompleteMultipartUpload', key, () => this.client.send(new CompleteMultipartUploadCommand({
        Bucket: this.bucket, Key: dst, UploadId: uploadId, MultipartUpload: { Parts: done },
      })));
      uploadId = undefined;
    } finally {
      if (uploadId) await this.abortUpload(dst, uploadId).catch(() => undefined);
    }
  }

  async #send<T>(op: string, key: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (e) {
      if (isNotFound(e)) throw new PathNotFoundError(key);
      throw wrap(op, key, e);
    }
  }

  /** A request whose body is a one-shot stream: the SDK cannot replay it, so retry here with a fresh one. */
  async #withStreamRetry<T>(op: string, key: string, run: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await run();
      } catch (e) {
        const status = httpStatus(e);
        const retryable = !(e instanceof StorageError) && (status === undefined || status >= 500 || status === 429 || errorName(e) === 'SlowDown');
        if (attempt >= 3 || !retryable) {
          if (isNotFound(e)) throw new PathNotFoundError(key);
          throw wrap(op, key, e);
        }
        await new Promise((r) => setTimeout(r, 200 * attempt ** 2));
      }
    }
  }

  /** Aborts multipart uploads under this adapter's root started before `olderThan` (interrupted writes). */
  async purgeTemporary(olderThan: Date): Promise<number> {
    let aborted = 0;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      let page;
      try {
        page = await this.client.send(new ListMultipartUploadsCommand({
          Bucket: this.bucket, Prefix: this.root ? `${this.root}/` : undefined, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker,
        }));
      } catch (e) {
        throw wrap('ListMultipartUploads', '/', e);
      }
      for (const u of page.Uploads ?? []) {
        if (u.Initiated && u.Initiated < olderThan && u.Key && u.UploadId) { await this.abortUpload(u.Key, u.UploadId); aborted++; }
      }
      if (!page.IsTruncated) return aborted;
      keyMarker = page.NextKeyMarker;
      uploadIdMarker = page.NextUploadIdMarker;
    }
  }

  async abortUpload(name: string, uploadId: string): Promise<void> {
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: name, UploadId: uploadId }));
    } catch (e) {
      if (errorName(e) !== 'NoSuchUpload' && httpStatus(e) !== 404) throw wrap('AbortMultipartUpload', name, e);
    }
  }
}

interface WriterOptions {
  append?: boolean;
  /** For an append: whether the object already existed (then an empty append commits nothing). */
  exists?: boolean;
  afterCommit?: () => Promise<void>;
}

/** Parts uploading at once per writer: more keeps the link busy, each costs one part of memory. */
const UPLOAD_CONCURRENCY = 3;

/**
 * Streams into a multipart upload of partSize parts: one part is gathered while up to UPLOAD_CONCURRENCY
 * earlier ones upload, so memory stays bounded by a few parts. Nothing is visible until commit(), which
 * completes the upload (or, when everything fit in one part, PUTs it).
 */
class S3Writer extends Writable implements FileWriter {
  #chunks: Buffer[] = [];
  #buffered = 0;
  #written = 0;
  #uploadId: string | undefined;
  #parts: CompletedPart[] = [];
  #inflight = new Set<Promise<void>>();
  #failure: unknown;
  #state: 'open' | 'committing' | 'committed' | 'failed' | 'cancelled' = 'open';
  #created = false;

  constructor(
    private readonly adapter: S3Adapter,
    private readonly key: string,
    private readonly objectName: string,
    private readonly startSize: number,
    private readonly opts: WriterOptions = {},
  ) {
    super({ highWaterMark: 1 << 20 });
  }

  get size(): number { return this.startSize + this.#written; }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#take(chunk).then(() => cb(), cb);
  }

  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    (async () => { for (const { chunk } of chunks) await this.#take(chunk); })().then(() => cb(), cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    // surface a failed part upload to whoever is piping into us
    this.#drain().then(() => cb(), cb);
  }

  async #take(chunk: Buffer): Promise<void> {
    if (this.#state !== 'open') throw new StorageError(`s3: write to a ${this.#state} writer for ${this.key}`);
    const partSize = this.adapter.partSize;
    while (chunk.length > 0) {
      const n = Math.min(chunk.length, partSize - this.#buffered);
      this.#chunks.push(n === chunk.length ? chunk : chunk.subarray(0, n));
      this.#buffered += n;
      this.#written += n;
      chunk = chunk.subarray(n);
      if (this.#buffered >= partSize) await this.#flushPart();
    }
  }

  /** Waits for every part upload under way; rejects if one failed. */
  async #drain(): Promise<void> {
    await Promise.all(this.#inflight);
    if (this.#failure) throw this.#failure;
  }

  /** Starts uploading the gathered part once fewer than UPLOAD_CONCURRENCY uploads are under way. */
  async #flushPart(): Promise<void> {
    while (this.#inflight.size >= UPLOAD_CONCURRENCY) await Promise.race(this.#inflight);
    if (this.#failure) throw this.#failure;
    const body = Buffer.concat(this.#chunks, this.#buffered);
    this.#chunks = [];
    this.#buffered = 0;
    const { client, bucket } = this.adapter;
    if (!this.#uploadId) {
      try {
        const created = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: this.objectName }));
        this.#uploadId = created.UploadId!;
      } catch (e) {
        throw wrap('CreateMultipartUpload', this.key, e);
      }
    }
    const PartNumber = this.#parts.length + 1;
    this.#parts.push({ PartNumber });
    const uploadId = this.#uploadId;
    const upload: Promise<void> = client.send(new UploadPartCommand({
      Bucket: bucket, Key: this.objectName, UploadId: uploadId, PartNumber, Body: body, ContentLength: body.length,
    })).then((r) => { this.#parts[PartNumber - 1] = { PartNumber, ETag: r.ETag }; }, (e) => { this.#failure ??= wrap('UploadPart', this.key, e); throw this.#failure; })
      .finally(() => { this.#inflight.delete(upload); });
    upload.catch(() => undefined); // awaited by the next flush, _final, commit or cancel
    this.#inflight.add(upload);
  }

  async commit(): Promise<void> {
    if (!this.writableFinished) throw new Error('FileWriter.commit() before the stream finished');
    if (this.#state !== 'open') throw new StorageError(`s3: commit of a ${this.#state} writer for ${this.key}`);
    this.#state = 'committing';
    const { client, bucket } = this.adapter;
    try {
      if (!this.#uploadId) {
        if (this.opts.append && this.#written === 0 && this.opts.exists) { this.#state = 'committed'; return; }
        const body = Buffer.concat(this.#chunks, this.#buffered);
        this.#chunks = [];
        try {
          await client.send(new PutObjectCommand({ Bucket: bucket, Key: this.objectName, Body: body, ContentLength: body.length }));
        } catch (e) {
          throw wrap('PutObject', this.key, e);
        }
      } else {
        await this.#drain();
        if (this.#buffered > 0) { await this.#flushPart(); await this.#drain(); }
        try {
          await client.send(new CompleteMultipartUploadCommand({
            Bucket: bucket, Key: this.objectName, UploadId: this.#uploadId, MultipartUpload: { Parts: this.#parts },
          }));
        } catch (e) {
          throw wrap('CompleteMultipartUpload', this.key, e);
        }
        this.#uploadId = undefined;
      }
      this.#created = true;
      this.#state = 'committed';
    } catch (e) {
      this.#state = 'failed'; // what was written may be gone; the caller cancels
      throw e;
    }
    await this.opts.afterCommit?.();
  }

  async cancel(): Promise<void> {
    if (!this.destroyed && !this.writableFinished) this.destroy();
    if (this.#state === 'cancelled') return;
    const committed = this.#state === 'committed';
    this.#state = 'cancelled';
    this.#chunks = [];
    this.#buffered = 0;
    await Promise.allSettled(this.#inflight);
    if (this.#uploadId) {
      const id = this.#uploadId;
      this.#uploadId = undefined;
      await this.adapter.abortUpload(this.objectName, id);
    }
    // An append goes back to where it started: drop the part it committed. A replacing write keeps its object.
    if (committed && this.opts.append && this.#created) {
      try {
        await this.adapter.client.send(new DeleteObjectCommand({ Bucket: this.adapter.bucket, Key: this.objectName }));
      } catch (e) {
        throw wrap('DeleteObject', this.key, e);
      }
    }
  }
}
