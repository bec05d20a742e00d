// Explicit refresh-token revocation, per user: a generation number that refresh tokens carry
// (`rgen`) and that a revocation bumps, so every token issued before it is void and one issued
// right after (even in the same second) is good. Tokens from before generations existed are
// judged by the time of the last revocation instead. (A password change revokes tokens by itself:
// they carry a fingerprint of the hash.)
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** A JSON object of user → number, as a Map: a user named "__proto__" or "constructor" is a user like any other. */
function numbers(o: unknown): Map<string, number> {
  const entries = o && typeof o === 'object' && !Array.isArray(o) ? Object.entries(o) : [];
  return new Map(entries.filter((e): e is [string, number] => typeof e[1] === 'number' && Number.isSafeInteger(e[1])));
}

export class Revocations {
  constructor(readonly path: string) {}

  #read(): { users: Map<string, number>; generations: Map<string, number> } {
    try {
      const doc = JSON.parse(readFileSync(this.path, 'utf8')) as { users?: unknown; generations?: unknown };
      return { users: numbers(doc.users), generations: numbers(doc.generations) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { users: new Map(), generations: new Map() };
      throw e;
    }
  }

  /** The generation new refresh tokens of this user carry. */
  generation(user: string): number {
    return this.#read().generations.get(user) ?? 0;
  }

  /**
   * A refresh token is void when its generation is older than the user's, or when it was issued
   * before the second of the last revocation (which also holds if this file was ever reset and
   * generations started again). A token without a generation (issued before they existed) is void
   * when issued at or before that second.
   */
  isRevoked(user: string, issuedAt: number, generation?: number): boolean {
    const doc = this.#read();
    const at = doc.users.get(user);
    if (generation !== undefined) return generation < (doc.generations.get(user) ?? 0) || (at !== undefined && issuedAt < at);
    return at !== undefined && issuedAt <= at;
  }

  revoke(user: string, at = Math.floor(Date.now() / 1000)): void {
    const doc = this.#read();
    doc.users.set(user, at);
    doc.generations.set(user, (doc.generations.get(user) ?? 0) + 1);
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    const tmp = `${this.path}.tmp-${process.pid}`;
    // Object.fromEntries defines "__proto__" as an own key, which JSON.stringify then writes
    writeFileSync(tmp, JSON.stringify({ users: Object.fromEntries(doc.users), generations: Object.fromEntries(doc.generations) }, null, 2), { mode: 0o600 });
    renameSync(tmp, this.path);
  }
}
