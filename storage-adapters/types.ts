// The one interface every storage backend implements. Keys look like "/a/b/c": absolute,
// slash-separated, each component [A-Za-z0-9._-]+ and never "." or "..". Content is
// written through FileWriter so nothing is visible before commit().
import type { Readable, Writable } from 'node:stream';

export interface Stat { size: number; modified: Date; isDirectory: boolean }

export interface ByteRange { offset: number; length?: number }

export interface FileWriter extends Writable {
  /** Bytes in the file, counting what an append writer started from. */
  readonly size: number;
  /**
   * Makes what was written durable and visible; the writer must have been ended first. An append commits only
   * over the content it started from: when another writer committed to the object first, it throws
   * ConflictError (then cancel() drops what it wrote).
   */
  commit(): Promise<void>;
  /** Drops what this writer wrote; an append writer goes back to the size it started at. */
  cancel(): Promise<void>;
  /**
   * Adapters whose objects several processes may append to at once (S3) name the committed content of an
   * appended object with a token: `startVersion` is what an append writer started from, `version` what its
   * commit() made. Equal tokens mean equal bytes, so a process trusts what it computed over those bytes
   * (a running digest) only while the token is still the same. See StorageAdapter.appendVersion.
   */
  readonly startVersion?: string;
  readonly version?: string;
}

export interface WriteOptions { append?: boolean }

export interface MoveOptions {
  /**
   * Moves only the content the caller looked at (e.g. hashed): the source must still be `size` bytes and, on
   * adapters with appendVersion, still the content `version` names. Otherwise ConflictError, and nothing moves.
   */
  expect?: { size: number; version?: string };
}

export interface PutOptions {
  /** Only create: ConflictError when the key exists already. Atomic against other such puts of the key. */
  ifAbsent?: boolean;
}

export interface StorageAdapter {
  readonly name: string;
  /**
   * The token of a key's committed content (see FileWriter.version), for adapters that several processes may
   * append to at once; undefined when the key does not exist.
   */
  appendVersion?(key: string): Promise<string | undefined>;
  /** Throws PathNotFoundError. */
  stat(key: string): Promise<Stat>;
  /** Throws PathNotFoundError, or InvalidOffsetError when the range starts past the end. */
  read(key: string, range?: ByteRange): Promise<Readable>;
  write(key: string, opts?: WriteOptions): Promise<FileWriter>;
  /** Whole small object (manifests, links); throws TooLargeError over maxBytes. */
  getSmall(key: string, maxBytes: number): Promise<Buffer>;
  /** Atomic replace (or, with ifAbsent, atomic create). */
  putSmall(key: string, data: Buffer, opts?: PutOptions): Promise<void>;
  /** Direct children of a prefix as full keys, in no particular order; nothing for a missing prefix. */
  list(prefix: string): AsyncIterable<string>;
  /** Atomic from the readers' point of view; replaces the target. Throws PathNotFoundError (and ConflictError, see MoveOptions). */
  move(from: string, to: string, opts?: MoveOptions): Promise<void>;
  /** Removes a key or everything under a prefix; a missing key is not an error. */
  delete(key: string): Promise<void>;
  /** A URL the client may fetch the object from directly, when the backend offers one. */
  redirectUrl?(key: string, method: 'GET' | 'HEAD'): Promise<string | undefined>;
  /** Removes what interrupted writes left behind (temp files, unfinished multipart uploads) before a time; dryRun only counts. */
  purgeTemporary?(olderThan: Date, dryRun?: boolean): Promise<number>;
  close?(): Promise<void>;
}

export class StorageError extends Error {}
export class PathNotFoundError extends StorageError {
  constructor(readonly key: string) { super(`path not found: ${key}`); }
}
/** The object is not (any more) what the operation was conditioned on: another writer got there first. */
export class ConflictError extends StorageError {
  constructor(readonly key: string, detail: string) { super(`${key} changed: ${detail}`); }
}
/** Appended data that can never be read back whole (S3: a part overwritten by a racing writer); start again. */
export class BrokenAppendError extends StorageError {
  constructor(readonly key: string, detail: string) { super(`${key} cannot be completed: ${detail}`); }
}
export class InvalidKeyError extends StorageError {
  constructor(readonly key: string) { super(`invalid storage key: ${JSON.stringify(key).slice(0, 300)}`); }
}
export class InvalidOffsetError extends StorageError {
  constructor(readonly key: string, readonly offset: number) { super(`invalid offset ${offset} for ${key}`); }
}
export class TooLargeError extends StorageError {
  constructor(readonly key: string, readonly maxBytes: number) { super(`${key} is larger than ${maxBytes} bytes`); }
}

const KEY_PATTERN = /^(\/[A-Za-z0-9._-]+)+$/;

export function checkKey(key: string): string {
  if (typeof key !== 'string' || !KEY_PATTERN.test(key)) throw new InvalidKeyError(key);
  for (const part of key.split('/')) if (part === '.' || part === '..') throw new InvalidKeyError(key);
  return key;
}
