// Digests: strict parsing and on-the-fly hashing. A digest is only ever built from a string
// that passed parseDigest, so its encoded part is safe to use in a storage key.
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

export type Algorithm = 'sha256' | 'sha512';
export type Digest = `${Algorithm}:${string}`;

const ENCODED: Record<Algorithm, RegExp> = {
  sha256: /^[a-f0-9]{64}$/,
  sha512: /^[a-f0-9]{128}$/,
};

export class InvalidDigestError extends Error {
  constructor(readonly input: string, reason: string) {
    super(`invalid digest "${input.slice(0, 200)}": ${reason}`);
  }
}

export interface ParsedDigest { algorithm: Algorithm; encoded: string; digest: Digest }

/** Parses "algorithm:encoded" strictly: only sha256 and sha512, lowercase hex of the exact length. */
export function parseDigest(input: string): ParsedDigest {
  if (typeof input !== 'string') throw new InvalidDigestError(String(input), 'not a string');
  const colon = input.indexOf(':');
  if (colon < 0) throw new InvalidDigestError(input, 'expected "algorithm:hex"');
  const algorithm = input.slice(0, colon);
  const encoded = input.slice(colon + 1);
  if (algorithm !== 'sha256' && algorithm !== 'sha512') {
    throw new InvalidDigestError(input, `unsupported algorithm "${algorithm.slice(0, 32)}"`);
  }
  if (!ENCODED[algorithm].test(encoded)) {
    throw new InvalidDigestError(input, `${algorithm} needs ${algorithm === 'sha256' ? 64 : 128} lowercase hex characters`);
  }
  return { algorithm, encoded, digest: `${algorithm}:${encoded}` as Digest };
}

export function isDigest(input: string): boolean {
  try { parseDigest(input); return true; } catch { return false; }
}

export function digestOf(data: Buffer | string, algorithm: Algorithm = 'sha256'): Digest {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}` as Digest;
}

/** A pass-through stream that hashes and counts what flows through it. */
export class HashingStream extends Transform {
  readonly hash: Hash;
  bytes = 0;
  constructor(readonly algorithm: Algorithm = 'sha256', resume?: { hash: Hash; bytes: number }) {
    super({ highWaterMark: 1 << 20 });
    this.hash = resume?.hash ?? createHash(algorithm);
    this.bytes = resume?.bytes ?? 0;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    done(null, chunk);
  }
  /** The digest of everything seen so far; the underlying hash stays usable. */
  digest(): Digest {
    return `${this.algorithm}:${this.hash.copy().digest('hex')}` as Digest;
  }
}
