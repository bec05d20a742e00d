// Users from an htpasswd file, bcrypt entries only (as written by `htpasswd -B`). The file
// is re-read when it changes, so adding a user or changing a password needs no restart; a file
// gone or unreadable meanwhile keeps the users last read (watched-file.ts).
import { createHash } from 'node:crypto';
import { bcryptCompare, bcryptHash } from './bcrypt-pool.js';
import { WatchedFile } from './watched-file.js';

interface Users { users: Map<string, string>; dummy: Promise<string>; warnings: string[] }

function parseHtpasswd(path: string, text: string): Users {
  const users = new Map<string, string>();
  const warnings: string[] = [];
  text.split('\n').forEach((line, i) => {
    const trimmed = line.trim();
    if (!trimmed || trimmed.startsWith('#')) return;
    const colon = trimmed.indexOf(':');
    const user = trimmed.slice(0, colon);
    const hash = trimmed.slice(colon + 1);
    if (colon <= 0 || !/^\$2[aby]\$\d\d\$/.test(hash)) {
      warnings.push(`${path}:${i + 1}: only bcrypt entries are supported (htpasswd -B); line ignored`);
      return;
    }
    users.set(user, hash.replace(/^\$2y\$/, '$2b$'));
  });
  // Unknown users are checked against a hash of the same cost as the real ones, so the time
  // an answer takes does not tell whether a user exists. Made off the event loop, before it is needed.
  const cost = Number(/^\$2[aby]\$(\d\d)\$/.exec(users.values().next().value ?? '')?.[1] ?? 10);
  const dummy = bcryptHash('not a password', Math.min(Math.max(cost, 4), 15));
  dummy.catch(() => undefined); // a failure is the sign-in's to report, not an unhandled rejection
  return { users, warnings, dummy };
}

export class Htpasswd {
  readonly #file: WatchedFile<Users>;
  /** What the first read found wrong (later reads report through `warn`). */
  readonly warnings: string[];

  constructor(readonly path: string, warn: (message: string) => void = () => undefined) {
    let loaded = false;
    this.#file = new WatchedFile(path, (text) => {
      const parsed = parseHtpasswd(path, text);
      if (loaded) parsed.warnings.forEach(warn);
      return parsed;
    }, warn);
    loaded = true;
    this.warnings = this.#file.current.warnings;
  }

  has(user: string): boolean {
    return this.#file.current.users.has(user);
  }

  async verify(user: string, password: string): Promise<boolean> {
    const { users, dummy } = this.#file.current;
    const hash = users.get(user);
    if (!hash) {
      await bcryptCompare(password, await dummy);
      return false;
    }
    return bcryptCompare(password, hash);
  }

  /** Changes whenever the user's password changes; refresh tokens carry it. */
  fingerprint(user: string): string | undefined {
    const hash = this.#file.current.users.get(user);
    return hash && createHash('sha256').update(hash).digest('base64url').slice(0, 16);
  }
}
