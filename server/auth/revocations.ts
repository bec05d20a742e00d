// Explicit refresh-token revocation: per user, a time before which refresh tokens are void.
// (A password change revokes them by itself: tokens carry a fingerprint of the hash.)
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export class Revocations {
  constructor(readonly path: string) {}

  #read(): Record<string, number> {
    try {
      const doc = JSON.parse(readFileSync(this.path, 'utf8')) as { users?: Record<string, number> };
      return doc.users ?? {};
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw e;
    }
  }

  /** Refresh tokens of this user issued at or before `issuedAt` (seconds) are void. */
  isRevoked(user: string, issuedAt: number): boolean {
    const before = this.#read()[user];
    return before !== undefined && issuedAt <= before;
  }

  revoke(user: string, at = Math.floor(Date.now() / 1000)): void {
    const users = this.#read();
    users[user] = at;
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    const tmp = `${this.path}.tmp-${process.pid}`;
    writeFileSync(tmp, JSON.stringify({ users }, null, 2), { mode: 0o600 });
    renameSync(tmp, this.path);
  }
}
