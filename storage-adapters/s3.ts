// S3 adapter (AWS S3, Ceph RGW, MinIO…). A key "/a/b" is the object "<rootdirectory>/a/b".
//
// Bytes only ever flow as streams: writes are multipart uploads fed one part (chunksize) at a time,
// reads are GetObject bodies, and moves copy server-side (CopyObject, or UploadPartCopy over 5 GiB).
//
// Appends. S3 objects cannot grow, and an upload may be continued by any server instance, so an object
// written with { append: true } is, until it is read or moved, an open S3 multipart upload at the object's
// own name plus one small state object
//     <name>~parts/state        ('~' never occurs in a key, so this cannot collide with one)
// that records the upload id, the part list (ETag and size of parts 1..k) and, after that header, the tail:
// the last bytes (< 5 MiB) that do not make a part yet, because S3 wants every part but the last ≥ 5 MiB.
// An append streams the old tail and its new bytes into parts k+1… (each ≥ 5 MiB, at most chunksize); what is
// left over becomes the new tail. It commits by rewriting the state object, one atomic PutObject, so the
// object's size moves from one committed state to the next and nothing else is ever visible; parts of a
// failed append are simply never listed (and are overwritten by the next append's part numbers). The state
// object also carries the size in its metadata, so stat() only HEADs it.
// Reading an appended object completes the multipart upload (the tail as the last part) into a plain object
// first, since S3 cannot read an open upload; an object that is all tail is served from the state object.
// move() completes the upload the same way and then copies the plain object with one CopyObject (RGW copies by
// reference, so this costs no data copy there), instead of assembling many objects with UploadPartCopy.
// Several instances may append to and finish one object at once, so every change of a state object is
// conditional on the one it replaces (If-Match on its ETag, If-None-Match for the first): of two appends from
// one state only the first commits, the other gets ConflictError. Completing an upload (read, move) first
// seals its state, so an append that started from it can no longer commit (its bytes would be lost); a move also
// holds it (`moving`), so no new append starts while the object is published. A sealed state stays next to the
// plain object it completed into, naming that object's content for appendVersion() and move({ expect }).
// (The loser of two appends into one open upload may still have overwritten the winner's part of the same
// number; completing then fails on the part's ETag, so the upload cannot finish, but never with wrong bytes.)
// Deadlines: a command with no long body fails after readtimeout (#timed); every attempt of the others fails
// after readtimeout without a byte either way (the client's socketTimeout), so a long part upload is fine.
// A plain object at <name> shadows any append state: write()/putSmall()/move() replace an appended object by
// creating the plain object, and the stale state (and its upload) is dropped by them or by the next append,
// move or delete. An append to a plain object first turns it into part 1 (UploadPartCopy) or into the tail.
import { createHash, type Hash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CopyObjectCommand, CreateMultipartUploadCommand,
  DeleteObjectsCommand, GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command,
  ListPartsCommand, PutObjectCommand, S3Client, UploadPartCommand, UploadPartCopyCommand,
  type CompletedPart, type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import {
  BrokenAppendError, checkKey, ConflictError, InvalidOffsetError, PathNotFoundError, StorageError, TooLargeError,
  type ByteRange, type FileWriter, type MoveOptions, type PutOptions, type Stat, type StorageAdapter, type WriteOptions,
} from './types.js';

const MiB = 1024 * 1024;
/** S3's smallest part (all but the last). */
export const MIN_PART = 5 * MiB;
/** S3's largest CopyObject / UploadPartCopy source range. */
export const MAX_COPY = 5 * 1024 * MiB;
const MAX_PARTS = 10_000;
const DEFAULT_CHUNK = 10 * MiB;
const PARTS_SUFFIX = '~parts';
/** The append state object, inside the `~parts` prefix of the object it describes. */
const STATE_NAME = 'state';
/** The state header plus a tail of < MIN_PART; the header holds at most MAX_PARTS parts. */
const MAX_STATE = MIN_PART + 2 * MiB;
/** Object metadata (x-amz-meta-berth-size) of a state object: the appended object's size. */
const SIZE_META = 'berth-size';
const COMPONENT = /^[A-Za-z0-9._-]+$/;
const ASSEMBLY_CONCURRENCY = 4;
/** Parts uploading at once per writer: more keeps the link busy, each costs one part of memory. */
const UPLOAD_CONCURRENCY = 3;
/**
 * A part gathers in a pooled part buffer once it is bigger than this; smaller writes (configs, small layers, many
 * at once) keep the chunks they arrived in, so they never hold a whole part buffer each.
 */
const POOL_THRESHOLD = 4 * MiB;
const REDIRECT_SECONDS = 20 * 60;
/** A GetObject that gets no byte for this long while we want one fails (a stalled S3 connection). */
const DEFAULT_READ_TIMEOUT = 60_000;
/** How long a move's hold on an appended object keeps appends away; longer means its mover crashed. */
const MOVE_HOLD_MS = 60_000;
/** Looks a read takes at an object that appends keep changing before it gives up. */
const READ_ATTEMPTS = 3;

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
  /**
   * Milliseconds a GetObject may wait for its response, or for the next bytes of its body while the reader
   * wants them, before it fails (default 60 s). Time a slow reader keeps the body paused does not count.
   */
  readtimeout?: number;
}

/** A committed append (see the header comment): parts 1..k of an open multipart upload plus the tail. */
export interface AppendState {
  size: number;
  /** The multipart upload at the object's own name; absent while there are no parts. */
  upload?: string;
  parts: { etag: string; size: number }[];
  /** The bytes after the parts, < MIN_PART. */
  tail: Buffer;
  /** When its upload began to be completed (see the header comment); no append commits over it after that. */
  sealed?: number;
  /** Sealed by a move, which holds appends off for MOVE_HOLD_MS. */
  moving?: boolean;
}

/** A state as stored, with the ETag its conditional replacement needs. */
interface StoredState { state: AppendState; etag: string }

function encodeState(s: AppendState): Buffer {
  const header = JSON.stringify({
    v: 1, size: s.size, upload: s.upload, parts: s.parts.map((p) => [p.etag, p.size]),
    ...(s.sealed !== undefined ? { sealed: s.sealed, moving: s.moving === true } : {}),
  });
  return Buffer.concat([Buffer.from(`${header}\n`), s.tail]);
}

/** The token of an append state: its parts' ETags (content hashes, in their upload) and its tail; sealing keeps it. */
function stateVersion(s: AppendState): string {
  return createHash('sha256').update(encodeState({ size: s.size, upload: s.upload, parts: s.parts, tail: s.tail })).digest('hex');
}

/** The token of a plain object: its ETag (a content hash). Never equal to a state's token (hex only). */
const plainVersion = (etag: string) => `etag:${etag}`;

/** A move holds the object (see the header comment), unless its mover is long gone. */
function isHeld(s: AppendState): boolean {
  return s.moving === true && Date.now() - (s.sealed ?? 0) < MOVE_HOLD_MS;
}

/**
 * RGW (Ceph 16) compares a PutObject's If-Match with the ETag without its quotes, and fails a quoted one;
 * HTTP (and so other S3s may) want it quoted. putState starts bare and turns to quoted for good when a
 * precondition fails on an ETag that in fact matches.
 */
const bareEtag = (etag: string) => etag.replace(/"/g, '');
const quotedEtag = (etag: string) => `"${bareEtag(etag)}"`;

function decodeState(raw: Buffer, key: string): AppendState {
  const nl = raw.indexOf(0x0a);
  try {
    if (nl < 0) throw new Error('no header');
    const h = JSON.parse(raw.subarray(0, nl).toString()) as {
      v: number; size: number; upload?: string; parts: [string, number][]; sealed?: number; moving?: boolean;
    };
    if (h.v !== 1 || !Array.isArray(h.parts)) throw new Error(`unknown version ${h.v}`);
    const tail = raw.subarray(nl + 1);
    const parts = h.parts.map(([etag, size]) => ({ etag: String(etag), size: Number(size) }));
    const sum = parts.reduce((n, p) => n + p.size, 0) + tail.length;
    if (sum !== h.size || (parts.length > 0 && !h.upload)) throw new Error(`sizes do not add up (${sum} ≠ ${h.size})`);
    return { size: h.size, upload: h.upload, parts, tail, ...(h.sealed !== undefined ? { sealed: Number(h.sealed), moving: h.moving === true } : {}) };
  } catch (e) {
    throw new StorageError(`s3: the append state of ${key} is corrupt: ${(e as Error).message}`);
  }
}

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

/** Throws ConflictError unless an object is the size and content (token) the caller expects. */
function checkExpected(key: string, size: number, version: string | undefined, expect: { size: number; version?: string }): void {
  if (size !== expect.size) throw new ConflictError(key, `it holds ${size} bytes, not ${expect.size}`);
  if (expect.version !== undefined && version !== expect.version) throw new ConflictError(key, 'its content changed');
}

function errorName(e: unknown): string | undefined {
  return (e as { name?: string } | undefined)?.name;
}

function httpStatus(e: unknown): number | undefined {
  return (e as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}

function isPreconditionFailed(e: unknown): boolean {
  return errorName(e) === 'PreconditionFailed' || httpStatus(e) === 412;
}

function isNoSuchUpload(e: unknown): boolean {
  return errorName(e) === 'NoSuchUpload' || httpStatus(e) === 404;
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

/**
 * Ceph 16's RGW reads a copy's source condition from x-amz-copy-if-match, not the standard
 * x-amz-copy-source-if-match (which it ignores); both are sent, each S3 honours the one it knows.
 */
function copyIfMatch<C>(command: C, etag: string): C {
  (command as unknown as WithStack).middlewareStack.add((next) => (args) => {
    const request = args.request as { headers?: Record<string, string> };
    if (request.headers) request.headers['x-amz-copy-if-match'] = etag;
    return next(args);
  }, { step: 'build', name: 'berthRgwCopyIfMatch' });
  return command;
}

type BuildHandler = (args: { request: unknown }) => Promise<unknown>;
interface WithStack { middlewareStack: { add(mw: (next: BuildHandler) => BuildHandler, opts: { step: 'build'; name: string }): void } }

/**
 * Signs the payload with the hash we computed while gathering it. The request still carries a signed payload
 * hash that S3 checks against the bytes, but the SDK neither hashes the body again nor needs it in one Buffer
 * (it would otherwise hash every Buffer body for the signature, and we would concatenate each part first).
 */
function signedPayload<C>(command: C, sha256: string): C {
  (command as unknown as WithStack).middlewareStack.add((next) => (args) => {
    const request = args.request as { headers?: Record<string, string> };
    if (request.headers) request.headers['x-amz-content-sha256'] = sha256;
    return next(args);
  }, { step: 'build', name: 'berthSignedPayload' });
  return command;
}

/**
 * Part-sized buffers for the writers, reused: filling a fresh multi-MiB allocation costs a page fault per 4 KiB,
 * and keeping each part as the small chunks it arrived in keeps the garbage collector busy. A few stay around
 * while writes come in and are let go after a quiet spell.
 */
export class PartPool {
  #free: Buffer[] = [];
  #timer: NodeJS.Timeout | undefined;
  constructor(readonly size: number, readonly keep: number) {}
  take(): Buffer {
    return this.#free.pop() ?? Buffer.allocUnsafeSlow(this.size);
  }
  give(b: Buffer): void {
    if (this.#free.length >= this.keep || b.length !== this.size) return;
    this.#free.push(b);
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => { this.#free = []; }, 30_000);
    this.#timer.unref();
  }
}

/**
 * Fails a GetObject body that gets no bytes for `ms` while it wants some: nothing is buffered, the response is
 * not complete and the socket is not paused. A slow reader is not a stall: its unread bytes stay buffered, and
 * once the buffer is full Node pauses the socket, so that time never counts.
 */
function guardIdle(body: Readable, ms: number, key: string): Readable {
  const socket = (body as Readable & { socket?: Readable | null }).socket;
  if (!socket || ms <= 0 || body.readableEnded) return body;
  const complete = () => (body as Readable & { complete?: boolean }).complete === true;
  let last = Date.now();
  const touch = () => { last = Date.now(); };
  const timer = setInterval(() => {
    if (complete()) { stop(); return; }
    if (socket.isPaused() || body.readableLength > 0) { last = Date.now(); return; }
    if (Date.now() - last >= ms) {
      stop();
      body.destroy(new StorageError(`s3 GetObject ${key}: no data from S3 for ${Math.round(ms / 1000)} s`));
    }
  }, Math.max(10, Math.floor(ms / 4)));
  timer.unref();
  const stop = () => { clearInterval(timer); socket.off('data', touch); };
  socket.on('data', touch);
  body.once('close', stop);
  return body;
}

export class S3Adapter implements StorageAdapter {
  readonly name = 's3';
  /** Whether this S3 wants If-Match quoted (see bareEtag). */
  #quotedIfMatch = false;
  /** Every command but GetObject: each attempt fails after readtimeout without a byte either way. */
  readonly client: S3Client;
  /**
   * GetObject only: its body may rightly sit paused while a slow reader catches up, which a socket timeout would
   * cut; #getBody and guardIdle bound it instead.
   */
  readonly #reader: S3Client;
  readonly bucket: string;
  /** Object-name prefix without leading or trailing slash; '' for the bucket's root. */
  readonly root: string;
  readonly partSize: number;
  readonly redirect: boolean;
  readonly pageSize: number | undefined;
  readonly readTimeout: number;
  /** Part buffers shared by this adapter's writers. */
  readonly pool: PartPool;

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
    this.pool = new PartPool(chunk, UPLOAD_CONCURRENCY + 1);
    this.redirect = opts.redirect ?? false;
    this.pageSize = opts.pagesize;
    this.readTimeout = opts.readtimeout ?? DEFAULT_READ_TIMEOUT;
    // The SDK warns, on stderr in 8 lines, that its releases after January 2027 will need Node 22. That is
    // for whoever updates package-lock.json, not for a user of `berth gc` or `berth serve` on Node 20.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    this.client = client ?? new S3Client(S3Adapter.clientConfig(opts, this.readTimeout));
    this.#reader = client ?? new S3Client(S3Adapter.clientConfig(opts));
  }

  /** The SDK settings; `idleTimeout` (ms) fails an attempt that sends and receives nothing for that long. */
  static clientConfig(opts: S3AdapterOptions, idleTimeout?: number): S3ClientConfig {
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
      // The SDK sends "Expect: 100-continue" with every body over 2 MiB and, unless given an Agent of our own, opens
      // a new connection for each such request and waits for the 100 before sending: a round trip and a TCP
      // handshake per part, measured at 15–25% of push throughput. It only saves sending a body that S3 would
      // refuse (bad credentials, wrong region), which for parts of an upload it has already accepted is rare.
      expectContinueHeader: false,
      requestHandler: {
        connectionTimeout: 10_000,
        // inactivity, not total time: a long part upload or a slow server-side copy (kept alive by S3) is fine
        ...(idleTimeout && idleTimeout > 0 ? { socketTimeout: idleTimeout } : {}),
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
      readtimeout: int('readtimeout'),
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

  #stateName(key: string): string {
    return this.#partsPrefix(key) + STATE_NAME;
  }

  // ---- small S3 helpers ----

  /**
   * Runs a command S3 answers at once (no long body either way) with a deadline of readtimeout, retries included:
   * a stalled S3 fails the request instead of hanging it. Other errors pass through unchanged.
   */
  async #timed<T>(op: string, key: string, run: (abortSignal: AbortSignal | undefined) => Promise<T>): Promise<T> {
    if (this.readTimeout <= 0) return run(undefined);
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), this.readTimeout);
    try {
      return await run(ac.signal);
    } catch (e) {
      if (ac.signal.aborted) throw new StorageError(`s3 ${op} ${key}: no response from S3 in ${Math.round(this.readTimeout / 1000)} s`);
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  async #head(name: string, key: string): Promise<{ size: number; modified: Date; meta: Record<string, string>; etag: string } | undefined> {
    try {
      const h = await this.#timed('HeadObject', key, (abortSignal) => this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: name }), { abortSignal }));
      return { size: h.ContentLength ?? 0, modified: h.LastModified ?? new Date(0), meta: h.Metadata ?? {}, etag: h.ETag ?? '' };
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
        page = await this.#timed('ListObjectsV2', key, (abortSignal) => this.client.send(new ListObjectsV2Command({
          Bucket: this.bucket, Prefix: prefix, Delimiter: delimiter, ContinuationToken: token, MaxKeys: this.pageSize,
        }), { abortSignal }));
      } catch (e) {
        throw wrap('ListObjectsV2', key, e);
      }
      yield page;
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async #deleteNames(names: string[], key: string): Promise<void> {
    for (let i = 0; i < names.length; i += 1000) {
      const batch = names.slice(i, i + 1000);
      let out;
      try {
        out = await this.#timed('DeleteObjects', key, (abortSignal) => this.client.send(new DeleteObjectsCommand({
          Bucket: this.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
        }), { abortSignal }));
      } catch (e) {
        throw wrap('DeleteObjects', key, e);
      }
      const errors = (out.Errors ?? []).filter((x) => x.Code !== 'NoSuchKey');
      if (errors.length) throw new StorageError(`s3 DeleteObjects ${key}: ${errors.length} failed, first ${errors[0]!.Key}: ${errors[0]!.Code} ${errors[0]!.Message ?? ''}`);
    }
  }

  /**
   * Deletes every object whose name starts with prefix, a page (≤ 1000) at a time. An append state object
   * among them first has its multipart upload aborted, unless `keepUploads` (the upload was completed).
   */
  async #deletePrefix(prefix: string, key: string, keepUploads = false): Promise<void> {
    for await (const page of this.#listAll(prefix, key)) {
      const names = (page.Contents ?? []).map((o) => o.Key!).filter(Boolean);
      if (!keepUploads) {
        for (const n of names) if (n.endsWith(`${PARTS_SUFFIX}/${STATE_NAME}`)) await this.#abortStateUpload(n, key);
      }
      if (names.length) await this.#deleteNames(names, key);
    }
  }

  /** Aborts the multipart upload a state object names, if it can still be read. */
  async #abortStateUpload(stateName: string, key: string): Promise<void> {
    const objectName = stateName.slice(0, -`${PARTS_SUFFIX}/${STATE_NAME}`.length);
    let state: AppendState | undefined;
    try {
      state = await this.#getStateByName(stateName, key);
    } catch (e) {
      if (e instanceof StorageError && /corrupt/.test(e.message)) return; // nothing trustworthy to abort; gc's purge will
      throw e;
    }
    if (state?.upload) await this.abortUpload(objectName, state.upload);
  }

  /** A GetObject with a deadline for the response; its body fails when S3 stalls mid-way (see guardIdle). */
  async #getBody(name: string, key: string, range?: string): Promise<{ body: Readable; length?: number; modified?: Date; etag: string }> {
    const ac = new AbortController();
    const timer = this.readTimeout > 0 ? setTimeout(() => ac.abort(), this.readTimeout) : undefined;
    try {
      const out = await this.#reader.send(new GetObjectCommand({ Bucket: this.bucket, Key: name, Range: range }), { abortSignal: ac.signal });
      return { body: guardIdle(asReadable(out.Body), this.readTimeout, key), length: out.ContentLength, modified: out.LastModified, etag: out.ETag ?? '' };
    } catch (e) {
      if (ac.signal.aborted) throw new StorageError(`s3 GetObject ${key}: no response from S3 in ${Math.round(this.readTimeout / 1000)} s`);
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  // ---- append state ----

  async #loadStateByName(stateName: string, key: string): Promise<StoredState | undefined> {
    let got: { body: Readable; etag: string };
    try {
      got = await this.#getBody(stateName, key);
    } catch (e) {
      if (e instanceof StorageError) throw e;
      if (isNotFound(e)) return undefined;
      throw wrap('GetObject', key, e);
    }
    return { state: decodeState(await drainToBuffer(got.body, MAX_STATE, key, MAX_STATE), key), etag: got.etag };
  }

  async #getStateByName(stateName: string, key: string): Promise<AppendState | undefined> {
    return (await this.#loadStateByName(stateName, key))?.state;
  }

  #loadState(key: string): Promise<StoredState | undefined> {
    return this.#loadStateByName(this.#stateName(key), key);
  }

  #getState(key: string): Promise<AppendState | undefined> {
    return this.#getStateByName(this.#stateName(key), key);
  }

  /**
   * Commits an append: one atomic PutObject of the state object, conditional on the state it replaces (its
   * ETag, or none there yet); ConflictError when another instance changed it first. Returns the new ETag.
   */
  async putState(key: string, state: AppendState, cond: { ifMatch?: string; ifAbsent?: boolean } = {}): Promise<string> {
    const body = encodeState(state);
    const put = (quoted: boolean) => this.#timed('PutObject', key, (abortSignal) => this.client.send(new PutObjectCommand({
      Bucket: this.bucket, Key: this.#stateName(key), Body: body, ContentLength: body.length,
      Metadata: { [SIZE_META]: String(state.size) },
      ...(cond.ifMatch !== undefined ? { IfMatch: (quoted ? quotedEtag : bareEtag)(cond.ifMatch) } : cond.ifAbsent ? { IfNoneMatch: '*' } : {}),
    }), { abortSignal }));
    try {
      try {
        return (await put(this.#quotedIfMatch)).ETag ?? '';
      } catch (e) {
        if (!isPreconditionFailed(e) || cond.ifMatch === undefined || this.#quotedIfMatch) throw e;
        // the other form, once: this S3 may want If-Match as HTTP writes it
        const current = await this.#head(this.#stateName(key), key);
        if (!current || bareEtag(current.etag) !== bareEtag(cond.ifMatch)) throw e;
        const r = await put(true);
        this.#quotedIfMatch = true;
        return r.ETag ?? '';
      }
    } catch (e) {
      if (isPreconditionFailed(e)) throw new ConflictError(key, 'another instance changed its append state first');
      if (e instanceof StorageError) throw e;
      throw wrap('PutObject', key, e);
    }
  }

  /** The token of a state and the plain object it may have completed into (see appendVersion). */
  #versionOf(plain: { size: number; etag: string } | undefined, stored: StoredState | undefined): string | undefined {
    if (!plain) return stored && stateVersion(stored.state);
    // a sealed state next to a plain object of its size is what that object completed (conversion drops the seal)
    if (stored?.state.sealed !== undefined && stored.state.size === plain.size) return stateVersion(stored.state);
    return plainVersion(plain.etag);
  }

  /** The token of the committed content: a plain object's ETag, or its append state's (kept when it is completed). */
  async appendVersion(key: string): Promise<string | undefined> {
    const [plain, stored] = await Promise.all([this.#head(this.objectName(key), key), this.#loadState(key).catch(() => undefined)]);
    return this.#versionOf(plain, stored);
  }

  /** Why an append's conditional commit failed: the object is being moved or is gone (PathNotFoundError), or another append won. */
  async conflictOf(key: string, e: ConflictError): Promise<StorageError> {
    const [plain, stored] = await Promise.all([this.#head(this.objectName(key), key), this.#loadState(key).catch(() => undefined)]);
    if ((!plain && !stored) || (stored && isHeld(stored.state))) return new PathNotFoundError(key);
    return e;
  }

  async deleteState(key: string): Promise<void> {
    await this.#deleteNames([this.#stateName(key)], key);
  }

  /**
   * Completes the multipart upload of an appended object, its tail as the last part, so that the plain object
   * holds its bytes; an object with no parts is PUT from its tail. The state object stays (the plain object
   * shadows it) until the caller removes it.
   */
  async #complete(key: string, name: string, state: AppendState): Promise<void> {
    if (!state.upload) {
      await this.#send('PutObject', key, () => this.#timed('PutObject', key, (abortSignal) => this.client.send(new PutObjectCommand({
        Bucket: this.bucket, Key: name, Body: state.tail, ContentLength: state.tail.length,
      }), { abortSignal })));
      return;
    }
    const uploadId = state.upload;
    const parts: CompletedPart[] = state.parts.map((p, i) => ({ PartNumber: i + 1, ETag: p.etag }));
    try {
      if (state.tail.length > 0) {
        const PartNumber = parts.length + 1;
        const r = await this.client.send(new UploadPartCommand({
          Bucket: this.bucket, Key: name, UploadId: uploadId, PartNumber, Body: state.tail, ContentLength: state.tail.length,
        }));
        parts.push({ PartNumber, ETag: r.ETag });
      }
      await this.client.send(new CompleteMultipartUploadCommand({
        Bucket: this.bucket, Key: name, UploadId: uploadId, MultipartUpload: { Parts: parts },
      }));
    } catch (e) {
      // Another instance may have completed it first (a concurrent read or move): then the object is there. AWS
      // answers NoSuchUpload. Ceph 16's RGW answers 500 "This multipart completion is already in progress" while the
      // other completion runs, and to every retry after it, once its object has been moved on; so ask whether the
      // upload is still open.
      if (isNoSuchUpload(e) || !(await this.#uploadOpen(name, uploadId, key))) {
        const head = await this.#head(name, key);
        if (head && head.size === state.size) return;
        if (head) throw new ConflictError(key, 'its multipart upload was completed elsewhere with other bytes');
        // completed and moved away by another instance, or aborted by a delete or gc
        throw new PathNotFoundError(key);
      }
      // a part the state lists was overwritten (two appends racing from one state into one upload: only one of
      // them commits its state, but both uploaded parts under the same numbers): no retry can complete it
      if ((e as { name?: string }).name === 'InvalidPart') throw new BrokenAppendError(key, 'a part was overwritten by a racing append');
      throw wrap('CompleteMultipartUpload', key, e);
    }
  }

  /** Whether a multipart upload is still open; false only when S3 says it is not (completed or aborted). */
  async #uploadOpen(name: string, uploadId: string, key: string): Promise<boolean> {
    try {
      await this.#timed('ListParts', key, (abortSignal) => this.client.send(new ListPartsCommand({
        Bucket: this.bucket, Key: name, UploadId: uploadId, MaxParts: 1,
      }), { abortSignal }));
      return true;
    } catch (e) {
      return !isNoSuchUpload(e); // (cannot tell: the caller keeps its own error)
    }
  }

  /**
   * Turns an appended object into a plain one so it can be read: seals and completes its upload. The sealed
   * state stays, shadowed (see the header comment). Returns false when there is no append state either.
   */
  async #materialize(key: string): Promise<boolean> {
    const name = this.objectName(key);
    if (await this.#head(name, key)) return true; // became plain meanwhile
    const stored = await this.#loadState(key);
    if (!stored) return false;
    await this.#sealAndComplete(key, name, stored, false);
    return true;
  }

  /**
   * Seals a state, so that an append that started from it can no longer commit (its If-Match fails) and lose its
   * bytes in an upload completed without them; then completes the upload. ConflictError when an append won.
   */
  async #sealAndComplete(key: string, name: string, stored: StoredState, moving: boolean): Promise<void> {
    if (stored.state.sealed === undefined || (moving && !isHeld(stored.state))) await this.#seal(key, stored, moving);
    await this.#complete(key, name, stored.state);
  }

  #seal(key: string, { state, etag }: StoredState, moving: boolean): Promise<string> {
    return this.putState(key, { ...state, sealed: Date.now(), moving }, { ifMatch: etag });
  }

  /**
   * Turns a plain object into the committed start of an append: part 1 (copied server-side) when it is big
   * enough to be a part, else the tail. A stale append state it shadowed is dropped first.
   */
  async #convertToAppend(key: string, name: string, size: number, stale: StoredState | undefined): Promise<StoredState> {
    // a sealed state's upload was completed (into this very object); an unsealed one's is shadowed, so unused
    if (stale?.state.upload && stale.state.sealed === undefined) await this.abortUpload(name, stale.state.upload);
    let state: AppendState;
    if (size < MIN_PART) {
      const { body } = await this.#send('GetObject', key, () => this.#getBody(name, key));
      state = { size, parts: [], tail: await drainToBuffer(body, MIN_PART, key, MIN_PART) };
    } else {
      const plan = planAssembly([{ name, size }], { target: this.partSize });
      const created = await this.#send('CreateMultipartUpload', key, () => this.#timed('CreateMultipartUpload', key, (abortSignal) => this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: name }), { abortSignal })));
      const upload = created.UploadId!;
      const parts: AppendState['parts'] = new Array(plan.length);
      try {
        await runPool(plan, ASSEMBLY_CONCURRENCY, async (part, i) => {
          if (part.kind !== 'copy') throw new StorageError('s3: unexpected assembly plan');
          const s = part.segment;
          const r = await this.#send('UploadPartCopy', key, () => this.client.send(new UploadPartCopyCommand({
            Bucket: this.bucket, Key: name, UploadId: upload, PartNumber: i + 1,
            CopySource: copySource(this.bucket, name), CopySourceRange: `bytes=${s.start}-${s.start + s.length - 1}`,
          })));
          parts[i] = { etag: r.CopyPartResult?.ETag ?? '', size: s.length };
        });
      } catch (e) {
        await this.abortUpload(name, upload).catch(() => undefined);
        throw e;
      }
      state = { size, upload, parts, tail: Buffer.alloc(0) };
    }
    let etag: string;
    try {
      etag = await this.putState(key, state, stale ? { ifMatch: stale.etag } : { ifAbsent: true });
    } catch (e) {
      if (state.upload) await this.abortUpload(name, state.upload).catch(() => undefined); // another instance converted it first
      throw e;
    }
    await this.#deleteNames([name], key);
    return { state, etag };
  }

  // ---- StorageAdapter ----

  async stat(key: string): Promise<Stat> {
    const name = this.objectName(key);
    const head = await this.#head(name, key);
    if (head) return { size: head.size, modified: head.modified, isDirectory: false };
    const state = await this.#head(this.#stateName(key), key);
    if (state) {
      const size = Number(state.meta[SIZE_META]);
      if (!Number.isSafeInteger(size) || size < 0) throw new StorageError(`s3: the append state of ${key} has no size`);
      return { size, modified: state.modified, isDirectory: false };
    }
    let page;
    try {
      page = await this.#timed('ListObjectsV2', key, (abortSignal) => this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: `${name}/`, MaxKeys: 1 }), { abortSignal }));
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
    const header = start > 0 || end !== undefined ? `bytes=${start}-${end ?? ''}` : undefined;
    for (let attempt = 0; ; attempt++) {
      try {
        return (await this.#getBody(name, key, header)).body;
      } catch (e) {
        if (e instanceof StorageError) throw e;
        if (errorName(e) === 'InvalidRange' || httpStatus(e) === 416) {
          // The range starts at or past the end: at the end is an empty read, past it an error.
          const st = await this.stat(key);
          if (start > st.size) throw new InvalidOffsetError(key, start);
          return Readable.from([]);
        }
        if (!isNotFound(e)) throw wrap('GetObject', key, e);
      }
      if (attempt >= READ_ATTEMPTS) throw new PathNotFoundError(key);
      // Not a plain object: an appended one? All tail is served from the state; otherwise complete it first.
      const state = await this.#getState(key);
      if (!state) throw new PathNotFoundError(key);
      if (start > state.size) throw new InvalidOffsetError(key, start);
      if (!state.upload) return Readable.from([state.tail.subarray(start, end === undefined ? undefined : end + 1)]);
      if (!(await this.#materializeOrRetry(key))) throw new PathNotFoundError(key);
    }
  }

  /** #materialize, where an append that committed meanwhile only means: look again. */
  async #materializeOrRetry(key: string): Promise<boolean> {
    try {
      return await this.#materialize(key);
    } catch (e) {
      if (e instanceof ConflictError) return true;
      throw e;
    }
  }

  async write(key: string, opts: WriteOptions = {}): Promise<FileWriter> {
    const name = this.objectName(key);
    if (!opts.append) {
      return new S3Writer(this, key, name, {
        // the new plain object shadows any append state already; drop it (and its upload) so it cannot linger
        afterCommit: () => this.#deletePrefix(this.#partsPrefix(key), key),
      });
    }
    return new S3Writer(this, key, name, { append: { start: await this.#appendStart(key, name) } });
  }

  /** The committed state an append continues (undefined for a new object), its plain object converted first. */
  async #appendStart(key: string, name: string, attempt = 0): Promise<StoredState | undefined> {
    const [head, loaded] = await Promise.all([this.#head(name, key), this.#loadState(key).catch((e) => e as Error)]);
    const stored = loaded instanceof Error ? undefined : loaded;
    // another instance is publishing it (finishing the upload): what is appended now would be lost
    if (stored && isHeld(stored.state)) throw new PathNotFoundError(key);
    if (head) return this.#convertToAppend(key, name, head.size, stored);
    if (loaded instanceof Error) throw loaded;
    if (loaded?.state.sealed === undefined) return loaded;
    // sealed, not yet completed (a read under way, or it crashed): complete it, then continue the plain object
    if (attempt >= READ_ATTEMPTS) throw new ConflictError(key, 'it keeps changing');
    await this.#materializeOrRetry(key);
    return this.#appendStart(key, name, attempt + 1);
  }

  async getSmall(key: string, maxBytes: number): Promise<Buffer> {
    const name = this.objectName(key);
    for (let attempt = 0; ; attempt++) {
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
      if (attempt >= READ_ATTEMPTS) throw new PathNotFoundError(key);
      const state = await this.#getState(key);
      if (!state) throw new PathNotFoundError(key);
      if (state.size > maxBytes) throw new TooLargeError(key, maxBytes);
      if (!state.upload) return Buffer.from(state.tail);
      if (!(await this.#materializeOrRetry(key))) throw new PathNotFoundError(key);
    }
  }

  async putSmall(key: string, data: Buffer, opts: PutOptions = {}): Promise<void> {
    const name = this.objectName(key);
    try {
      await this.#timed('PutObject', key, (abortSignal) => this.client.send(new PutObjectCommand({
        Bucket: this.bucket, Key: name, Body: data, ContentLength: data.length, ...(opts.ifAbsent ? { IfNoneMatch: '*' } : {}),
      }), { abortSignal }));
    } catch (e) {
      if (opts.ifAbsent && isPreconditionFailed(e)) throw new ConflictError(key, 'it exists already');
      if (e instanceof StorageError) throw e;
      throw wrap('PutObject', key, e);
    }
    // Any append state of this key is shadowed now; it is removed by the next append, move or delete.
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

  async move(from: string, to: string, opts: MoveOptions = {}): Promise<void> {
    const src = this.objectName(from);
    const dst = this.objectName(to);
    const { expect } = opts;
    if (from === to) { await this.stat(from); return; }
    // both looks at once: a plain source needs its size, an appended one its state
    const [plain, loaded] = await Promise.all([this.#head(src, from), this.#loadState(from).catch((e) => e as Error)]);
    const stored = loaded instanceof Error ? undefined : loaded;
    if (!plain && loaded instanceof Error) throw loaded;
    if (!plain && !stored) throw new PathNotFoundError(from);
    if (expect) checkExpected(from, plain?.size ?? stored!.state.size, this.#versionOf(plain, stored), expect);
    // an appended source's upload is completed here; a plain one may shadow a stale state whose upload must go
    const uploadsDone = !plain || stored?.state.sealed !== undefined;
    if (plain) {
      // hold appends off (they would convert the object while it is copied), then copy exactly what was looked at
      if (expect && stored && !isHeld(stored.state)) await this.#seal(from, stored, true);
      await this.#copy(src, plain.size, dst, from, expect ? plain.etag : undefined);
    } else if (!stored!.state.upload) {
      // all tail: seal it (an append from it can no longer commit), then PUT exactly that tail at the target, no copy
      const { tail } = stored!.state;
      await this.#seal(from, stored!, true);
      await this.#send('PutObject', to, () => this.#timed('PutObject', to, (abortSignal) => this.client.send(new PutObjectCommand({
        Bucket: this.bucket, Key: dst, Body: tail, ContentLength: tail.length,
      }), { abortSignal })));
    } else {
      await this.#sealAndComplete(from, src, stored!, true);
      const head = await this.#head(src, from);
      if (!head || head.size !== stored!.state.size) throw new ConflictError(from, 'it changed while its upload was completed');
      await this.#copy(src, head.size, dst, from, head.etag);
    }
    if (expect) {
      const moved = await this.#head(dst, to);
      if (moved?.size !== expect.size) throw new StorageError(`s3: ${to} holds ${moved?.size ?? 'no'} bytes after the move, not ${expect.size}`);
    }
    // The target is a plain object now, which shadows its old append state (if any); that goes, and the source.
    await Promise.all([
      this.#deletePrefix(this.#partsPrefix(to), to),
      this.#deleteNames([src], from),
      this.#deletePrefix(this.#partsPrefix(from), from, uploadsDone),
    ]);
  }

  async delete(key: string): Promise<void> {
    const name = this.objectName(key);
    await Promise.all([
      this.#deleteNames([name], key), this.#deletePrefix(`${name}/`, key), this.#deletePrefix(this.#partsPrefix(key), key),
    ]);
  }

  async redirectUrl(key: string, method: 'GET' | 'HEAD'): Promise<string | undefined> {
    if (!this.redirect) return undefined;
    const input = { Bucket: this.bucket, Key: this.objectName(key) };
    const command = method === 'HEAD' ? new HeadObjectCommand(input) : new GetObjectCommand(input);
    return getSignedUrl(this.client, command, { expiresIn: REDIRECT_SECONDS });
  }

  async close(): Promise<void> {
    this.client.destroy();
    this.#reader.destroy();
  }

  // ---- copying ----

  /** Copies the plain object `src` to `dst` server-side: one CopyObject up to 5 GiB, UploadPartCopy beyond. */
  async #copy(src: string, size: number, dst: string, key: string, etag?: string): Promise<void> {
    try {
      await this.#copyObject(src, size, dst, key, etag);
    } catch (e) {
      // with a condition, a source that is gone or another object is one that changed under the move
      if (etag !== undefined && (e instanceof PathNotFoundError || isPreconditionFailed((e as { cause?: unknown }).cause))) {
        throw new ConflictError(key, 'it changed while it was copied');
      }
      throw e;
    }
  }

  /** One CopyObject up to 5 GiB, UploadPartCopy beyond; only of the source with ETag `etag`, when given. */
  async #copyObject(src: string, size: number, dst: string, key: string, etag?: string): Promise<void> {
    const cond = <C>(command: C): C => (etag !== undefined ? copyIfMatch(command, etag) : command);
    if (size <= MAX_COPY) {
      await this.#send('CopyObject', key, () => this.client.send(cond(new CopyObjectCommand({
        Bucket: this.bucket, Key: dst, CopySource: copySource(this.bucket, src), CopySourceIfMatch: etag,
      }))));
      return;
    }
    const target = Math.min(Math.max(this.partSize, Math.ceil(size / (MAX_PARTS - 1))), MAX_COPY);
    const plan = planAssembly([{ name: src, size }], { target });
    if (plan.length > MAX_PARTS) throw new StorageError(`s3: ${key} needs ${plan.length} parts to copy, over S3's ${MAX_PARTS}`);
    let uploadId: string | undefined;
    try {
      const created = await this.#send('CreateMultipartUpload', key, () => this.#timed('CreateMultipartUpload', key, (abortSignal) => this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: dst }), { abortSignal })));
      uploadId = created.UploadId!;
      const done: CompletedPart[] = new Array(plan.length);
      await runPool(plan, ASSEMBLY_CONCURRENCY, async (part, i) => {
        if (part.kind !== 'copy') throw new StorageError('s3: unexpected assembly plan');
        const PartNumber = i + 1;
        const { segment: s } = part;
        const r = await this.#send('UploadPartCopy', key, () => this.client.send(cond(new UploadPartCopyCommand({
          Bucket: this.bucket, Key: dst, UploadId: uploadId, PartNumber, CopySourceIfMatch: etag,
          CopySource: copySource(this.bucket, s.name), CopySourceRange: `bytes=${s.start}-${s.start + s.length - 1}`,
        }))));
        done[i] = { PartNumber, ETag: r.CopyPartResult?.ETag };
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
      if (e instanceof StorageError) throw e;
      if (isNotFound(e)) throw new PathNotFoundError(key);
      throw wrap(op, key, e);
    }
  }

  /** Aborts multipart uploads under this adapter's root started before `olderThan` (interrupted writes). */
  async purgeTemporary(olderThan: Date, dryRun = false): Promise<number> {
    let aborted = 0;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      let page;
      try {
        page = await this.#timed('ListMultipartUploads', '/', (abortSignal) => this.client.send(new ListMultipartUploadsCommand({
          Bucket: this.bucket, Prefix: this.root ? `${this.root}/` : undefined, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker,
        }), { abortSignal }));
      } catch (e) {
        throw wrap('ListMultipartUploads', '/', e);
      }
      for (const u of page.Uploads ?? []) {
        if (!(u.Initiated && u.Initiated < olderThan && u.Key && u.UploadId)) continue;
        if (!dryRun) await this.abortUpload(u.Key, u.UploadId);
        aborted++;
      }
      if (!page.IsTruncated) return aborted;
      keyMarker = page.NextKeyMarker;
      uploadIdMarker = page.NextUploadIdMarker;
    }
  }

  async abortUpload(name: string, uploadId: string): Promise<void> {
    try {
      await this.#timed('AbortMultipartUpload', name, (abortSignal) => this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: name, UploadId: uploadId }), { abortSignal }));
    } catch (e) {
      if (e instanceof StorageError) throw e;
      if (errorName(e) !== 'NoSuchUpload' && httpStatus(e) !== 404) throw wrap('AbortMultipartUpload', name, e);
    }
  }
}

interface WriterOptions {
  /** Present for an append: the committed state it continues (undefined when the object is new). */
  append?: { start: StoredState | undefined };
  afterCommit?: () => Promise<void>;
}

/**
 * Streams into a multipart upload of partSize parts: one part is gathered while up to UPLOAD_CONCURRENCY
 * earlier ones upload, so memory stays bounded by a few parts. Nothing is visible until commit().
 *
 * A plain write completes its own upload at commit (or, when everything fit in one part, PUTs it).
 * An append continues the object's open upload: it starts from the committed tail, adds parts after the
 * committed ones, keeps what is left (< 5 MiB) as the new tail, and commits by writing the new state object.
 */
class S3Writer extends Writable implements FileWriter {
  /** The part being gathered: as the chunks it arrived in while small, then copied into a pooled buffer. */
  #chunks: Buffer[] = [];
  #part: Buffer | undefined;
  #buffered = 0;
  /** SHA-256 of the part being gathered, for its signature. */
  #hash: Hash = createHash('sha256');
  #written = 0;
  readonly #startSize: number;
  #uploadId: string | undefined;
  /** This writer created #uploadId (so cancel aborts it). */
  #ownUpload = false;
  #parts: CompletedPart[] = [];
  #partSizes: number[] = [];
  #inflight = new Set<Promise<void>>();
  #failure: unknown;
  #state: 'open' | 'committing' | 'committed' | 'failed' | 'cancelled' = 'open';
  /** What commit() changed: a plain object, or the append state. */
  #created = false;
  /** After an append's commit: the token of the state it committed (FileWriter.version). */
  version: string | undefined;

  get startVersion(): string | undefined {
    return this.opts.append?.start ? stateVersion(this.opts.append.start.state) : undefined;
  }

  constructor(
    private readonly adapter: S3Adapter,
    private readonly key: string,
    private readonly objectName: string,
    private readonly opts: WriterOptions = {},
  ) {
    super({ highWaterMark: 1 << 20 });
    const prev = opts.append?.start?.state;
    this.#startSize = prev?.size ?? 0;
    if (prev) {
      this.#uploadId = prev.upload;
      this.#parts = prev.parts.map((p, i) => ({ PartNumber: i + 1, ETag: p.etag }));
      this.#partSizes = prev.parts.map((p) => p.size);
      if (prev.tail.length) this.#gather(prev.tail);
    }
  }

  get size(): number { return this.#startSize + this.#written; }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#take(chunk).then(() => cb(), cb);
  }

  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    (async () => { for (const { chunk } of chunks) await this.#take(chunk); })().then(() => cb(), cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    // Surface a part upload that failed already to whoever is piping into us; commit() waits for the rest, so the
    // last part can start while earlier ones are still uploading.
    cb(this.#failure ? (this.#failure as Error) : null);
  }

  async #take(chunk: Buffer): Promise<void> {
    if (this.#state !== 'open') throw new StorageError(`s3: write to a ${this.#state} writer for ${this.key}`);
    const partSize = this.adapter.partSize;
    this.#written += chunk.length;
    while (chunk.length > 0) {
      const n = Math.min(chunk.length, partSize - this.#buffered);
      this.#gather(n === chunk.length ? chunk : chunk.subarray(0, n));
      chunk = chunk.subarray(n);
      if (this.#buffered >= partSize) await this.#flushPart();
    }
  }

  /** Waits for every part upload under way; rejects if one failed. */
  async #drain(): Promise<void> {
    await Promise.all(this.#inflight);
    if (this.#failure) throw this.#failure;
  }

  /** Adds bytes to the part being gathered (they fit). */
  #gather(piece: Buffer): void {
    if (!this.#part && this.#buffered + piece.length > POOL_THRESHOLD) {
      this.#part = this.adapter.pool.take();
      let at = 0;
      for (const c of this.#chunks) at += c.copy(this.#part, at);
      this.#chunks = [];
    }
    if (this.#part) piece.copy(this.#part, this.#buffered);
    else this.#chunks.push(piece);
    this.#hash.update(piece);
    this.#buffered += piece.length;
  }

  /** Takes the gathered part out of the writer: its bytes, their SHA-256, and the pooled buffer to give back. */
  #gathered(): { body: Buffer; sha256: string; pooled: Buffer | undefined } {
    const pooled = this.#part;
    const body = pooled ? pooled.subarray(0, this.#buffered)
      : this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.#buffered);
    const g = { body, sha256: this.#hash.digest('hex'), pooled };
    this.#chunks = [];
    this.#part = undefined;
    this.#buffered = 0;
    this.#hash = createHash('sha256');
    return g;
  }

  /** Starts uploading the gathered part once fewer than UPLOAD_CONCURRENCY uploads are under way. */
  async #flushPart(): Promise<void> {
    while (this.#inflight.size >= UPLOAD_CONCURRENCY) await Promise.race(this.#inflight);
    if (this.#failure) throw this.#failure;
    const { body, sha256, pooled } = this.#gathered();
    const { client, bucket } = this.adapter;
    if (!this.#uploadId) {
      try {
        const { readTimeout } = this.adapter; // no body: a deadline, as #timed gives the adapter's own commands
        const created = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: this.objectName }),
          readTimeout > 0 ? { abortSignal: AbortSignal.timeout(readTimeout) } : {});
        this.#uploadId = created.UploadId!;
        this.#ownUpload = true;
      } catch (e) {
        throw wrap('CreateMultipartUpload', this.key, e);
      }
    }
    const PartNumber = this.#parts.length + 1;
    // an append keeps the last part number for its tail, which completing the upload adds as the last part
    if (PartNumber > (this.opts.append ? MAX_PARTS - 1 : MAX_PARTS)) {
      throw new StorageError(`s3: ${this.key} would need more than S3's ${MAX_PARTS} parts (raise chunksize)`);
    }
    this.#parts.push({ PartNumber });
    this.#partSizes.push(body.length);
    const uploadId = this.#uploadId;
    const upload: Promise<void> = client.send(signedPayload(new UploadPartCommand({
      Bucket: bucket, Key: this.objectName, UploadId: uploadId, PartNumber, Body: body, ContentLength: body.length,
    }), sha256)).then((r) => {
      this.#parts[PartNumber - 1] = { PartNumber, ETag: r.ETag };
      if (pooled) this.adapter.pool.give(pooled); // (after a failure it is dropped: a write may still hold it)
    }, (e) => {
      // an append's upload completed or aborted by another instance (the session finished or deleted there)
      this.#failure ??= this.opts.append && errorName(e) === 'NoSuchUpload' ? new PathNotFoundError(this.key) : wrap('UploadPart', this.key, e);
      throw this.#failure;
    })
      .finally(() => { this.#inflight.delete(upload); });
    upload.catch(() => undefined); // awaited by the next flush, _final, commit or cancel
    this.#inflight.add(upload);
  }

  async commit(): Promise<void> {
    if (!this.writableFinished) throw new Error('FileWriter.commit() before the stream finished');
    if (this.#state !== 'open') throw new StorageError(`s3: commit of a ${this.#state} writer for ${this.key}`);
    this.#state = 'committing';
    try {
      if (this.opts.append) await this.#commitAppend();
      else await this.#commitPlain();
      this.#state = 'committed';
    } catch (e) {
      this.#state = 'failed'; // what was written may be gone; the caller cancels
      throw e;
    }
    if (this.#created) await this.opts.afterCommit?.();
  }

  async #commitPlain(): Promise<void> {
    const { client, bucket } = this.adapter;
    if (!this.#uploadId) {
      const { body, sha256, pooled } = this.#gathered();
      try {
        await client.send(signedPayload(new PutObjectCommand({ Bucket: bucket, Key: this.objectName, Body: body, ContentLength: body.length }), sha256));
      } catch (e) {
        throw wrap('PutObject', this.key, e);
      }
      if (pooled) this.adapter.pool.give(pooled);
    } else {
      if (this.#buffered > 0) await this.#flushPart();
      await this.#drain();
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
  }

  async #commitAppend(): Promise<void> {
    const start = this.opts.append!.start;
    if (this.#written === 0 && start) { this.version = this.startVersion; return; } // nothing new: the committed state stands
    // What is left becomes a part when S3 accepts it as one (≥ 5 MiB), else the tail.
    if (this.#buffered >= MIN_PART) await this.#flushPart();
    await this.#drain();
    const { body, pooled } = this.#gathered();
    const tail = pooled ? Buffer.from(body) : body; // the pooled buffer goes back
    if (pooled) this.adapter.pool.give(pooled);
    const state: AppendState = {
      size: this.size,
      upload: this.#uploadId,
      parts: this.#parts.map((p, i) => ({ etag: p.ETag ?? '', size: this.#partSizes[i]! })),
      tail,
    };
    try {
      // only over the state this append started from: of two appends from one state, one commits
      await this.adapter.putState(this.key, state, start ? { ifMatch: start.etag } : { ifAbsent: true });
    } catch (e) {
      if (e instanceof ConflictError) throw await this.adapter.conflictOf(this.key, e);
      throw e;
    }
    this.version = stateVersion(state);
    this.#created = true;
  }

  async cancel(): Promise<void> {
    if (!this.destroyed && !this.writableFinished) this.destroy();
    if (this.#state === 'cancelled') return;
    const committed = this.#state === 'committed' && this.#created;
    this.#state = 'cancelled';
    this.#chunks = [];
    this.#part = undefined;
    this.#buffered = 0;
    await Promise.allSettled(this.#inflight);
    if (this.opts.append && committed) {
      const prev = this.opts.append.start?.state;
      // An append goes back to where it started: the previous state again (its parts are untouched).
      if (prev) await this.adapter.putState(this.key, prev);
      else await this.adapter.deleteState(this.key);
    }
    // An upload this writer started is referenced by no state now (a plain write's is completed or unused).
    if (this.#uploadId && this.#ownUpload) {
      const id = this.#uploadId;
      this.#uploadId = undefined;
      await this.adapter.abortUpload(this.objectName, id);
    }
    // A replacing write keeps its committed object.
  }
}
