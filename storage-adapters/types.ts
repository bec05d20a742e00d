// The one interface every storage backend implements. Keys look like "/a/b/c": absolute,
// slash-separated, each component [A-Za-z0-9._-]+ and never "." or "..". Content is
// written through FileWriter so nothing is visible before commit().
import type { Readable, Writable } from 'node:stream';

export interface Stat { size: number; modified: Date; isDirectory: boolean }

export interface ByteRange { offset: number; length?: number }

export interface FileWriter extends Writable {
  /** Bytes in the file, counting what an append writer started from. */
  readonly size: number;
  /** Makes what was written durable and visible; the writer must have been ended first. */
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

export interface StorageAdapter {
  readonly name: string;
  /** The committed content's token of an appended object (see FileWriter.version); undefined when it has none. */
  appendVersion?(key: string): Promise<string | undefined>;
  /** Throws PathNotFoundError. */
  stat(key: string): Promise<Stat>;
  /** Throws PathNotFoundError, or InvalidOffsetError when the range starts past the end. */
  read(key: string, range?: ByteRange): Promise<Readable>;
  write(key: string, opts?: WriteOptions): Promise<FileWriter>;
  /** Whole small object (manifests, links); throws TooLargeError over maxBytes. */
  getSmall(key: string, maxBytes: number): Promise<Buffer>;
  /** Atomic replace. */
  putSmall(key: string, data: Buffer): Promise<void>;
  /** Direct children of a prefix as full keys, in no particular order; nothing for a missing prefix. */
  list(prefix: string): AsyncIterable<string>;
  /** Atomic from the readers' point of view; replaces the target. Throws PathNotFoundError. */
  move(from: string, to: string): Promise<void>;
  /** Removes a key or everything under a prefix; a missing key is not an error. */
  delete(key: string): Promise<void>;
  /** A URL the client may fetch the object from directly, when the backend offers one. */
  redirectUrl?(key: string, method: 'GET' | 'HEAD'): Promise<string | undefined>;
  /** Removes what interrupted writes left behind (temp files, unfinished multipart uploads) before a time. */
  purgeTemporary?(olderThan: Date): Promise<number>;
  close?(): Promise<void>;
}

export class StorageError extends Error {}
export class PathNotFoundError extends StorageError {
  constructor(readonly key: string) { super(`path not found: ${key}`); }
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
