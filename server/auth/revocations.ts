// Explicit refresh-token revocation, per user: a generation number that refresh tokens carry
// (`rgen`) and that a revocation bumps, so every token issued before it is void and one issued
// right after (even in the same second) is good. Tokens from before generations existed are
// judged by the time of the last revocation instead. (A password change revokes tokens by itself:
// they carry a fingerprint of the hash.)
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export class Revocations {
  constructor(readonly path: string) {}

  #read(): { users: Record<string, number>; generations: Record<string, number> } {
    try {
      const doc = JSON.parse(readFileSync(this.path, 'utf8')) as { users?: Record<string, number>; generations?: Record<string, number> };
      return { users: doc.users ?? {}, generations: doc.generations ?? {} };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { users: {}, generations: {} };
      throw e;
    }
  }

  /** The generation new refresh tokens of this user carry. */
  generation(user: string): number {
    return this.#read().generations[user] ?? 0;
  }

  /**
   * A refresh token is void when its generation is older than the user's, or when it was issued
   * before the second of the last revocation (which also holds if this file was ever reset and
   * generations started again). A token without a generation (issued before they existed) is void
   * when issued at or before that second.
   */
  isRevoked(user: string, issuedAt: number, generation?: number): boolean {
    const doc = this.#read();
    const at = doc.users[user];
    if (generation !== undefined) return generation < (doc.generations[user] ?? 0) || (at !== undefined && issuedAt < at);
    return at !== undefined && issuedAt <= at;
  }

  revoke(user: string, at = Math.floor(Date.now() / 1000)): void {
    const doc = this.#read();
    doc.users[user] = at;
    doc.generations[user] = (doc.generations[user] ?? 0) + 1;
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    const tmp = `${this.path}.tmp-${process.pid}`;
    writeFileSync(tmp, JSON.stringify(doc, null, 2), { mode: 0o600 });
    renameSync(tmp, this.path);
  }
}
