// A configuration file (htpasswd, access rules) read again whenever its mtime changes, so edits need
// no restart. The first read's errors are the caller's (a startup error). Later, a file that cannot
// be read or parsed (mid-edit, moved away) keeps what was loaded last, and says so once per problem.
import { readFileSync, statSync } from 'node:fs';

export class WatchedFile<T> {
  #value: T;
  #mtimeMs: number;
  #reported: string | undefined;

  constructor(readonly path: string, private readonly parse: (text: string) => T, private readonly warn: (message: string) => void = () => undefined) {
    const mtimeMs = statSync(path).mtimeMs;
    this.#value = parse(readFileSync(path, 'utf8'));
    this.#mtimeMs = mtimeMs;
  }

  get current(): T {
    try {
      const mtimeMs = statSync(this.path).mtimeMs; // before the read: a write meanwhile is read again next time
      if (mtimeMs !== this.#mtimeMs) {
        this.#value = this.parse(readFileSync(this.path, 'utf8'));
        this.#mtimeMs = mtimeMs;
        this.#reported = undefined;
      }
    } catch (e) {
      const problem = (e as Error).message.split('\n')[0]!;
      if (problem !== this.#reported) this.warn(`${this.path}: ${problem}; keeping what was loaded before`);
      this.#reported = problem;
    }
    return this.#value;
  }
}
