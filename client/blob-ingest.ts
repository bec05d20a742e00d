// Streams a blob into a file, resumable: bytes go to `partial`, hashed as they arrive; after an
// interruption (in this run or an earlier one) the download continues from the bytes already in
// `partial` (re-hashed from disk) with a Range request. Only a blob whose size and digest match is
// renamed to its final path, so nothing partial ever looks complete.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm, stat, truncate } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Transform, type Readable } from 'node:stream';
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
      const verify = new Transform({
        highWaterMark: 1 << 20,
        transform(chunk: Buffer, _enc, done) {
          written += chunk.length;
          fetched += chunk.length;
          if (written > desc.size) { done(new IntegrityError(`blob ${desc.digest}: more than the ${desc.size} bytes its descriptor says`)); return; }
          h.update(chunk);
          opts.onProgress?.(written);
          done(null, chunk);
        },
      });
      const out = createWriteStream(partial, { flags: have > 0 ? 'r+' : 'w', start: have });
      try {
        await pipeline(src.stream, verify, out, ...(opts.signal ? [{ signal: opts.signal }] as const : []));
      } catch (e) {
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
    await commitFile(partial, final);
    return { resumedFrom, fetched };
  }
}

function pause(attempt: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.min(200 * 2 ** attempt, 5000)));
}
