// Blob upload sessions. All state lives in storage (the data file and a start stamp), so
// any server instance, or this one after a restart, can continue an upload. The running
// hash is only a cache: when it is missing or stale, finishing re-reads the data. The cache keeps the
// MAX_CACHED_HASHES most recently used sessions, so abandoned uploads cannot pile up in memory.
// Within one process every change of a session (append, finish, cancel) runs under its lock; a
// session that vanishes under a request (cancelled by another instance, purged) is BLOB_UPLOAD_UNKNOWN.
// Across instances (S3) the storage orders them: an append commits only over the content it started from (the
// loser of two gets 416), and finish publishes only the content it hashed (storage.move's expect), so a blob is
// never stored under a digest its bytes do not have, whatever another instance appends meanwhile.
import { randomUUID } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { Writable, type Readable } from 'node:stream';
import type { Hash } from 'node:crypto';
import { HashingStream, digestOf, parseDigest, type Algorithm, type Digest } from '../../oci/digest.js';
import { ConflictError, PathNotFoundError, StorageError, type FileWriter, type StorageAdapter } from '../../storage-adapters/types.js';
import { RegistryError } from '../errors.js';
import type { BlobStore } from './blob-store.js';
import { KeyedMutex } from './keyed-mutex.js';
import { paths, isUploadId } from './paths.js';

export interface AppendOptions {
  /** Where the client says this chunk starts (Content-Range); must equal the current size. */
  start?: number;
  /** How many bytes the client says it sends (from Content-Range). */
  length?: number;
  signal?: AbortSignal;
}

/** A running digest over an upload's bytes; `version` names those bytes where the adapter can (see FileWriter.version). */
interface RunningHash { algorithm: Algorithm; hash: Hash; bytes: number; version?: string }

export interface Appended { size: number; appended: number }

export function rangeHeader(size: number): string {
  return `0-${size > 0 ? size - 1 : 0}`;
}

/** Running hashes kept at most (each a few hundred bytes); the least recently used goes first. */
const MAX_CACHED_HASHES = 1024;
/** Times finish() hashes and publishes again when the upload changed under it (another instance appended or finished it). */
const PUBLISH_ATTEMPTS = 3;

/** 416 for a chunk that does not start at the session's size, with what the client needs to go on. */
function rangeInvalid(repo: string, id: string, size: number, detail: Record<string, unknown>, message: string): RegistryError {
  return new RegistryError('RANGE_INVALID', detail, {
    headers: { Range: rangeHeader(size), Location: `/v2/${repo}/blobs/uploads/${id}`, 'Docker-Upload-UUID': id },
    message,
  });
}

/** A session's data gone from under a request: another instance finished or cancelled it, or it was purged. */
function sessionGone(id: string): (e: unknown) => never {
  return (e) => {
    if (e instanceof PathNotFoundError) throw new RegistryError('BLOB_UPLOAD_UNKNOWN', { uuid: id });
    throw e;
  };
}

/** How many times (100 ms apart) a finish that found no data looks whether another instance published the upload. */
const PUBLISHED_ELSEWHERE_CHECKS = 20;

export class UploadSessions {
  #hashes = new Map<string, RunningHash>();
  #mutex = new KeyedMutex();
  /** Sessions a chunk is being written to here, with their size before it: what a status request reports meanwhile. */
  #writing = new Map<string, number>();

  #cacheHash(id: string, h: RunningHash): void {
    this.#hashes.delete(id);
    this.#hashes.set(id, h); // (a Map iterates in insertion order: the first is the least recently used)
    if (this.#hashes.size > MAX_CACHED_HASHES) this.#hashes.delete(this.#hashes.keys().next().value!);
  }

  constructor(private readonly storage: StorageAdapter, private readonly blobs: BlobStore) {}

  async start(repo: string): Promise<string> {
    const id = randomUUID();
    await this.storage.putSmall(paths.uploadStartedAt(repo, id), Buffer.from(new Date().toISOString()));
    return id;
  }

  /**
   * Current size of an upload; BLOB_UPLOAD_UNKNOWN when there is no such session. The bytes of a chunk
   * still being written (by this instance) do not count: the chunk may yet fail and be undone.
   */
  async size(repo: string, id: string): Promise<number> {
    if (!isUploadId(id)) throw new RegistryError('BLOB_UPLOAD_UNKNOWN', { uuid: id.slice(0, 100) });
    const before = this.#writing.get(id);
    if (before !== undefined) return before;
    return (await this.#stored(repo, id)) ?? 0;
  }

  /** The size of a session's data as stored, undefined when it has none yet; BLOB_UPLOAD_UNKNOWN for no session. */
  async #stored(repo: string, id: string): Promise<number | undefined> {
    // both round trips at once; a missing session wins over any error reading the data
    const [session, data] = await Promise.allSettled([
      this.#requireSession(repo, id),
      this.storage.stat(paths.uploadData(repo, id)).then((st) => st.size, (e) => {
        if (e instanceof PathNotFoundError) return undefined;
        throw e;
      }),
    ]);
    if (session.status === 'rejected') throw session.reason;
    if (data.status === 'rejected') throw data.reason;
    return data.value;
  }

  /** Appends a chunk; resolves with the session's new size and how many bytes this chunk added. */
  append(repo: string, id: string, body: Readable, opts: AppendOptions = {}): Promise<Appended> {
    return this.#mutex.run(id, () => this.#append(repo, id, body, opts)).catch(sessionGone(id));
  }

  /** Throws BLOB_UPLOAD_UNKNOWN unless the session exists. */
  async #requireSession(repo: string, id: string): Promise<void> {
    if (!isUploadId(id)) throw new RegistryError('BLOB_UPLOAD_UNKNOWN', { uuid: id.slice(0, 100) });
    try {
      await this.storage.stat(paths.uploadStartedAt(repo, id));
    } catch (e) {
      if (e instanceof PathNotFoundError) throw new RegistryError('BLOB_UPLOAD_UNKNOWN', { uuid: id });
      throw e;
    }
  }

  /** Opens the append writer of a session that exists: opening makes the data file, so nothing is opened for an unknown one. */
  async #openAppend(repo: string, id: string): Promise<FileWriter> {
    await this.#requireSession(repo, id);
    return this.storage.write(paths.uploadData(repo, id), { append: true });
  }

  async #append(repo: string, id: string, body: Readable, opts: AppendOptions): Promise<Appended> {
    // a request that waited for the session's lock and was given up meanwhile (its client gone, or the socket timed out)
    if (opts.signal?.aborted) {
      body.resume();
      throw new RegistryError('BLOB_UPLOAD_INVALID', { uuid: id }, { message: 'the request was aborted' });
    }
    let writer: FileWriter;
    try {
      writer = await this.#openAppend(repo, id);
    } catch (e) {
      body.resume();
      throw e instanceof ConflictError ? await this.#superseded(repo, id) : e;
    }
    const startSize = writer.size;
    this.#writing.set(id, startSize);
    try {
      return await this.#write(repo, id, writer, body, opts);
    } catch (e) {
      throw e instanceof ConflictError ? await this.#superseded(repo, id) : e;
    } finally {
      this.#writing.delete(id);
    }
  }

  /** Another instance appended first (its chunk took this offset): 416 with the size now, as for a wrong offset. */
  async #superseded(repo: string, id: string): Promise<RegistryError> {
    const size = (await this.#stored(repo, id)) ?? 0;
    return rangeInvalid(repo, id, size, { reason: 'another request appended to the upload first' },
      `another request appended to the upload first; it is now ${size} bytes`);
  }

  async #write(repo: string, id: string, writer: FileWriter, body: Readable, opts: AppendOptions): Promise<Appended> {
    const startSize = writer.size;
    if (opts.start !== undefined && opts.start !== startSize) {
      await writer.cancel();
      body.resume();
      throw rangeInvalid(repo, id, startSize, { expectedStart: startSize, got: opts.start }, `chunk must start at byte ${startSize}`);
    }
    const cached = this.#hashes.get(id);
    this.#hashes.delete(id);
    // Keep hashing only when the running hash covers exactly the bytes already stored.
    // Where several instances may append (S3), also only when the stored bytes are the ones it hashed: two
    // racing appends at one offset leave one of them stored, and the other's hash must not be trusted.
    const sameBytes = !this.storage.appendVersion || (cached?.version !== undefined && cached.version === writer.startVersion);
    const resume = cached && cached.bytes === startSize && cached.algorithm === 'sha256' && sameBytes ? cached : undefined;
    const hasher = startSize === 0 || resume ? new HashingStream('sha256', resume) : undefined;
    try {
      if (hasher) await pipeline(body, hasher, writer, { signal: opts.signal });
      else await pipeline(body, writer, { signal: opts.signal });
      if (opts.length !== undefined && writer.size - startSize !== opts.length) {
        throw new RegistryError('SIZE_INVALID', { expected: opts.length, received: writer.size - startSize },
          { message: 'chunk length does not match Content-Range' });
      }
      await writer.commit();
      // Where several instances may append (S3), a first chunk creates the session's data with nothing to be
      // conditional on, so a DELETE on another instance may have missed it. That DELETE removes the start stamp
      // first (see cancel), so the stamp looked at after the commit tells: gone, and the chunk is undone.
      if (startSize === 0 && this.storage.appendVersion) await this.#requireSession(repo, id);
    } catch (e) {
      await writer.cancel().catch(() => undefined);
      throw e;
    }
    if (hasher) this.#cacheHash(id, { algorithm: 'sha256', hash: hasher.hash, bytes: writer.size, ...(writer.version !== undefined ? { version: writer.version } : {}) });
    return { size: writer.size, appended: writer.size - startSize };
  }

  /** Completes an upload: optional last chunk, digest check, then the blob becomes visible. */
  finish(repo: string, id: string, expected: Digest, body?: Readable, opts: AppendOptions = {}): Promise<Appended> {
    return this.#mutex.run(id, async () => {
      let appended = 0;
      if (body) ({ appended } = await this.#append(repo, id, body, opts));
      let size: number;
      for (let attempt = 1; ; attempt++) {
        try {
          size = await this.#publish(repo, id, expected, attempt > 1);
          break;
        } catch (e) {
          if (!(e instanceof ConflictError) || attempt >= PUBLISH_ATTEMPTS) throw e;
        }
      }
      // the session goes before the link: a client retrying after a failed link must start over, not find it empty
      await this.storage.delete(paths.upload(repo, id));
      this.#hashes.delete(id);
      await this.blobs.link(repo, expected);
      return { size, appended };
    }).catch(sessionGone(id));
  }

  /**
   * Hashes the session's data and stores it as the blob: only the content it hashed (the data's token is taken
   * first, and move() refuses anything else with ConflictError), and only after checking the digest.
   * `again`: an earlier attempt met a change; data gone now means another instance finished the upload.
   */
  async #publish(repo: string, id: string, expected: Digest, again: boolean): Promise<number> {
    const dataKey = paths.uploadData(repo, id);
    const [stored, version, have] = await Promise.all([
      this.#stored(repo, id), this.storage.appendVersion?.(dataKey), this.blobs.size(expected),
    ]);
    if (stored === undefined && again) throw new PathNotFoundError(dataKey);
    const { digest, bytes } = await this.#digest(repo, id, stored ?? 0, parseDigest(expected).algorithm, version);
    if (digest !== expected) {
      if (stored === undefined && await this.#publishedElsewhere(repo, id)) throw new PathNotFoundError(dataKey);
      throw new RegistryError('DIGEST_INVALID', { expected, actual: digest, size: bytes });
    }
    if (have === bytes) return bytes; // stored already (a copy of another size is corrupt, and is replaced)
    if (bytes === 0) await this.storage.putSmall(paths.blobData(expected), Buffer.alloc(0));
    else await this.storage.move(dataKey, paths.blobData(expected), { expect: { size: bytes, ...(version !== undefined ? { version } : {}) } });
    const now = await this.blobs.size(expected);
    if (now !== bytes) throw new StorageError(`blob ${expected} holds ${now ?? 'no'} bytes after it was stored, not ${bytes}`);
    return bytes;
  }

  /**
   * A session with no data was asked for the digest of some bytes. Where instances share the storage, another may
   * have published it: that moves the data away first and removes the session a moment later. So the session is
   * watched for a while; going away means that happened (404), staying means the upload really is empty.
   */
  async #publishedElsewhere(repo: string, id: string): Promise<boolean> {
    if (!this.storage.appendVersion) return false; // one instance: its session lock orders everything
    for (let i = 0; i < PUBLISHED_ELSEWHERE_CHECKS; i++) {
      await new Promise((r) => setTimeout(r, 100));
      try {
        await this.#requireSession(repo, id);
      } catch (e) {
        if (e instanceof RegistryError && e.code === 'BLOB_UPLOAD_UNKNOWN') return true;
        throw e;
      }
    }
    return false;
  }

  /** The digest of a session's data and how many bytes it covers: the running hash when it is of exactly that content. */
  async #digest(repo: string, id: string, size: number, algorithm: Algorithm, version: string | undefined): Promise<{ digest: Digest; bytes: number }> {
    const cached = this.#hashes.get(id);
    if (cached && cached.bytes === size && cached.algorithm === algorithm
      && (!this.storage.appendVersion || (cached.version !== undefined && cached.version === version))) {
      return { digest: `${algorithm}:${cached.hash.copy().digest('hex')}` as Digest, bytes: size };
    }
    if (size === 0) return { digest: digestOf(Buffer.alloc(0), algorithm), bytes: 0 };
    const hasher = new HashingStream(algorithm);
    let bytes = 0;
    for await (const chunk of await this.storage.read(paths.uploadData(repo, id))) {
      hasher.hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
    }
    return { digest: hasher.digest(), bytes };
  }

  /**
   * Uploads a whole blob in one request (POST ?digest=): the digest is known up front, so the bytes
   * stream straight to the blob's own key through a writer that stays invisible until commit, which
   * happens only once the digest matched. No session, no copy. A blob already stored is only hashed.
   */
  async ingest(repo: string, expected: Digest, body: Readable, signal?: AbortSignal): Promise<number> {
    const hasher = new HashingStream(parseDigest(expected).algorithm);
    const mismatch = () => new RegistryError('DIGEST_INVALID', { expected, actual: hasher.digest(), size: hasher.bytes });
    const have = await this.blobs.size(expected);
    if (have !== undefined) {
      await pipeline(body, hasher, new Writable({ write: (_c, _e, cb) => cb() }), { signal });
      if (hasher.digest() !== expected) throw mismatch();
      if (hasher.bytes !== have) await this.#dropCorrupt(expected, have, hasher.bytes);
    } else {
      const writer = await this.storage.write(paths.blobData(expected));
      try {
        await pipeline(body, hasher, writer, { signal });
        if (hasher.digest() !== expected) throw mismatch();
        await writer.commit();
      } catch (e) {
        await writer.cancel().catch(() => undefined);
        throw e;
      }
    }
    await this.blobs.link(repo, expected);
    return hasher.bytes;
  }

  /**
   * The stored copy of a blob is not its content (its size differs from bytes that hash to the digest): it can
   * only be corrupt. It goes, and the client is asked to retry, which then stores its bytes.
   */
  async #dropCorrupt(digest: Digest, stored: number, size: number): Promise<never> {
    await this.storage.delete(paths.blobData(digest));
    throw new RegistryError('UNAVAILABLE', { digest, stored, size }, {
      message: 'the stored copy of this blob was corrupt and has been removed; retry', headers: { 'Retry-After': '1' },
    });
  }

  /** Deletes a session; after a request still writing to it has ended (which then finds it gone, if it comes later). */
  cancel(repo: string, id: string): Promise<void> {
    return this.#mutex.run(id, async () => {
      await this.size(repo, id);
      // the start stamp first: a first chunk committed on another instance meanwhile looks for it afterwards (#write)
      await this.storage.delete(paths.uploadStartedAt(repo, id));
      await this.storage.delete(paths.upload(repo, id));
      this.#hashes.delete(id);
    });
  }

  /** Removes sessions started before the cutoff; returns how many. */
  async purge(repos: AsyncIterable<string>, olderThan: Date, dryRun = false): Promise<string[]> {
    const purged: string[] = [];
    for await (const repo of repos) {
      for await (const key of this.storage.list(paths.uploadsRoot(repo))) {
        const id = key.slice(key.lastIndexOf('/') + 1);
        if (!isUploadId(id)) continue;
        let started: Date;
        try {
          started = new Date((await this.storage.getSmall(paths.uploadStartedAt(repo, id), 64)).toString());
        } catch (e) {
          if (!(e instanceof PathNotFoundError)) throw e;
          started = (await this.storage.stat(key).catch(() => ({ modified: new Date(0) }))).modified;
        }
        if (!(started < olderThan)) continue;
        purged.push(`${repo}/${id}`);
        if (!dryRun) { await this.storage.delete(key); this.#hashes.delete(id); }
      }
    }
    return purged;
  }
}
