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
   * A refresh token is void when its generation is older than the user's; one without a generation
   * (issued before they existed) when it was issued at or before the last revocation (seconds).
   */
  isRevoked(user: string, issuedAt: number, generation?: number): boolean {
    const doc = this.#read();
    if (generation !== undefined) return generation < (doc.generations[user] ?? 0);
    const before = doc.users[user];
    return before !== undefined && issuedAt <= before;
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
