// Users from an htpasswd file, bcrypt entries only (as written by `htpasswd -B`). The file
// is re-read when it changes, so adding a user or changing a password needs no restart.
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import bcrypt from 'bcryptjs';

export class Htpasswd {
  #users = new Map<string, string>();
  #mtimeMs = -1;
  #dummy = '';
  readonly warnings: string[] = [];

  constructor(readonly path: string) {
    this.#reload();
  }

  #reload(): void {
    const st = statSync(this.path); // a missing file is a startup error, on purpose
    if (st.mtimeMs === this.#mtimeMs) return;
    const users = new Map<string, string>();
    const lines = readFileSync(this.path, 'utf8').split('\n');
    lines.forEach((line, i) => {
      const trimmed = line.trim();
      if (!trimmed || trimmed.startsWith('#')) return;
      const colon = trimmed.indexOf(':');
      const user = trimmed.slice(0, colon);
      const hash = trimmed.slice(colon + 1);
      if (colon <= 0 || !/^\$2[aby]\$\d\d\$/.test(hash)) {
        this.warnings.push(`${this.path}:${i + 1}: only bcrypt entries are supported (htpasswd -B); line ignored`);
        return;
      }
      users.set(user, hash.replace(/^\$2y\$/, '$2b$'));
    });
    this.#users = users;
    this.#mtimeMs = st.mtimeMs;
    // Unknown users are checked against a hash of the same cost as the real ones, so the time
    // an answer takes does not tell whether a user exists.
    const cost = Number(/^\$2[aby]\$(\d\d)\$/.exec(users.values().next().value ?? '')?.[1] ?? 10);
    this.#dummy = bcrypt.hashSync('not a password', Math.min(Math.max(cost, 4), 15));
  }

  has(user: string): boolean {
    this.#reload();
    return this.#users.has(user);
  }

  async verify(user: string, password: string): Promise<boolean> {
    this.#reload();
    const hash = this.#users.get(user);
    if (!hash) {
      await bcrypt.compare(password, this.#dummy);
      return false;
    }
    return bcrypt.compare(password, hash);
  }

  /** Changes whenever the user's password changes; refresh tokens carry it. */
  fingerprint(user: string): string | undefined {
    this.#reload();
    const hash = this.#users.get(user);
    return hash && createHash('sha256').update(hash).digest('base64url').slice(0, 16);
  }
}
