// Streams a blob into a file, resumable: bytes go to `partial`, hashed as they arrive; after an
// interruption (in this run or an earlier one) the download continues from the bytes already in
// `partial` (re-hashed from disk) with a Range request. Only a blob whose size and digest match is
// renamed to its final path, so nothing partial ever looks complete.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open as openFile, rm, stat, truncate, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseDigest } from '../oci/digest.js';
import type { Descriptor } from '../oci/manifest.js';
import { ClientError, IntegrityError, NetworkError } from './errors.js';
import { commitFile } from './atomic.js';

/** Opens the blob at `offset`; answers where the stream really starts (0 if the Range was ignored). */
export type OffsetOpener = (offset: number) => Promise<{ stream: Readable; offset: number }>;

export interface IngestOptions {
  onProgress?: (bytes: number) => void;
  /** Resumes after broken streams within this run. Default 5. */
  retries?: number;
  signal?: AbortSignal;
}

export interface IngestResult {
  /** Bytes that were already on disk when this run started. */
  resumedFrom: number;
  /** Bytes received over the wire in this run. */
  fetched: number;
}

async function sizeOf(path: string): Promise<number> {
  try { return (await stat(path)).size; } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw e;
  }
}

async function hashPrefix(path: string, algorithm: string, length: number): Promise<Hash> {
  const hash = createHash(algorithm);
  if (length > 0) {
    for await (const chunk of createReadStream(path, { start: 0, end: length - 1, highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  }
  return hash;
}

export async function ingestBlob(desc: Descriptor, partial: string, final: string, open: OffsetOpener, opts: IngestOptions = {}): Promise<IngestResult> {
  const { algorithm, encoded } = parseDigest(desc.digest);
  await mkdir(dirname(partial), { recursive: true });
  await mkdir(dirname(final), { recursive: true });
  const retries = opts.retries ?? 5;
  let resumedFrom = -1;
  let fetched = 0;
  let restarted = false;
  for (let attempt = 0; ; attempt++) {
    opts.signal?.throwIfAborted();
    let have = await sizeOf(partial);
    if (have > desc.size) { await truncate(partial, 0); have = 0; }
    let hash = await hashPrefix(partial, algorithm, have);
    if (resumedFrom < 0) resumedFrom = have;
    let written = have;
    /** The partial file was fsynced after this attempt's download. */
    let synced = false;
    if (have < desc.size) {
      let src: { stream: Readable; offset: number };
      try {
        src = await open(have);
      } catch (e) {
        if (attempt < retries && e instanceof NetworkError) { await pause(attempt); continue; }
        throw e;
      }
      if (src.offset !== have) {
        // the source ignored the Range: start over
        if (have > 0) await truncate(partial, 0);
        have = 0;
        written = 0;
        hash = createHash(algorithm);
      }
      opts.onProgress?.(have);
      const h = hash;
      // One writable does it all: checks the size, hashes, reports progress and writes through our
      // own handle (vectored writes of what piled up meanwhile, up to 1 MiB), while early flushes
      // run on the same handle; the final fsync happens on it before it is closed.
      let failure: unknown;
      let fh: FileHandle | undefined;
      try {
        fh = await openFile(partial, have > 0 ? 'r+' : 'w');
      } catch (e) {
        failure = e;
        src.stream.destroy();
      }
      if (fh) {
        const file = fh;
        const flusher = new Flusher(file);
        let position = have;
        const take = (chunks: Buffer[], done: (e?: Error | null) => void) => {
          let n = 0;
          for (const c of chunks) n += c.length;
          if (written + n > desc.size) { done(new IntegrityError(`blob ${desc.digest}: more than the ${desc.size} bytes its descriptor says`)); return; }
          for (const c of chunks) h.update(c);
          written += n;
          fetched += n;
          writeAll(file, chunks, position).then(() => {
            position += n;
            opts.onProgress?.(written);
            flusher.wrote(n);
            done();
          }, done);
        };
        const out = new Writable({
          highWaterMark: 1 << 20,
          write(chunk: Buffer, _enc, done) { take([chunk], done); },
          writev(chunks, done) { take(chunks.map((c) => c.chunk as Buffer), done); },
        });
        try {
          await pipeline(src.stream, out, ...(opts.signal ? [{ signal: opts.signal }] as const : []));
        } catch (e) {
          failure = e;
        }
        try {
          await flusher.settled();
          if (failure === undefined && written === desc.size) {
            await file.sync();
            synced = true;
          }
        } catch (e) {
          failure ??= e;
        } finally {
          await file.close().catch(() => undefined);
        }
      }
      if (failure !== undefined) {
        const e = failure;
        if (e instanceof IntegrityError) { await rm(partial, { force: true }); throw e; }
        if (opts.signal?.aborted) throw e;
        if (attempt < retries) { await pause(attempt); continue; }
        throw e instanceof ClientError ? e : new NetworkError(`download of ${desc.digest} failed: ${(e as Error).message}`);
      }
      if (written < desc.size) {
        if (attempt < retries) { await pause(attempt); continue; }
        throw new NetworkError(`download of ${desc.digest} ended after ${written} of ${desc.size} bytes`);
      }
    }
    const actual = hash.digest('hex');
    if (actual !== encoded) {
      await rm(partial, { force: true });
      if (resumedFrom > 0 && !restarted) {
        // the bytes kept from an earlier run were bad: fetch the whole blob once more
        restarted = true;
        resumedFrom = 0;
        continue;
      }
      throw new IntegrityError(`blob ${desc.digest}: the bytes received have digest ${algorithm}:${actual}`);
    }
    await commitFile(partial, final, { synced });
    return { resumedFrom, fetched };
  }
}

/** Writes every byte of `chunks` at `position` (vectored; continues after a short write). */
async function writeAll(fh: FileHandle, chunks: Buffer[], position: number): Promise<void> {
  let bufs = chunks;
  let at = position;
  for (;;) {
    const total = bufs.reduce((a, b) => a + b.length, 0);
    if (total === 0) return;
    const { bytesWritten } = await fh.writev(bufs, at);
    if (bytesWritten >= total) return;
    if (bytesWritten <= 0) throw new Error('short write');
    at += bytesWritten;
    let skip = bytesWritten;
    const rest: Buffer[] = [];
    for (const b of bufs) {
      if (skip >= b.length) { skip -= b.length; continue; }
      rest.push(skip ? b.subarray(skip) : b);
      skip = 0;
    }
    bufs = rest;
  }
}

/** Bytes between early flushes of a download (see Flusher). */
const FLUSH_EVERY = 4 << 20;
/** Early flushes running in this process: one at a time, so they never crowd out the writes. */
let flushesRunning = 0;

/**
 * Starts writeback while a blob downloads: every FLUSH_EVERY bytes an fdatasync of what is written
 * so far, in the background (at most one in the whole process). The final fsync before the rename
 * then only has the tail left, instead of the whole blob after the last byte arrived. Failures
 * are ignored here: the final fsync reports them.
 */
class Flusher {
  private unflushed = 0;
  private running?: Promise<void>;
  constructor(private readonly fh: FileHandle) {}
  wrote(n: number): void {
    this.unflushed += n;
    if (this.unflushed < FLUSH_EVERY || this.running || flushesRunning > 0) return;
    this.unflushed = 0;
    flushesRunning++;
    this.running = this.fh.datasync().catch(() => undefined).finally(() => { flushesRunning--; this.running = undefined; });
  }
  /** Resolves when no early flush is running. */
  settled(): Promise<void> { return this.running ?? Promise.resolve(); }
}

function pause(attempt: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.min(200 * 2 ** attempt, 5000)));
}
