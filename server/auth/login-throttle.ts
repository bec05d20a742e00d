// Failed sign-ins per client address: past the limit within a minute, further attempts from that
// address are answered 429 without running bcrypt, so one client can neither guess passwords
// quickly nor keep the event loop busy with hashes while others wait to sign in. Credentials
// already verified (CredentialChecker's cache) still pass. An address's checks also run one at a
// time, so a flood from one address takes one hash's share of the CPU, not all of it.
import { KeyedMutex } from '../registry/keyed-mutex.js';

export class LoginThrottle {
  /** Per client: times of its recent failures, oldest first (at most `limit`). */
  readonly #failures = new Map<string, number[]>();
  readonly #checks = new KeyedMutex();

  constructor(readonly limit: number, readonly windowMs = 60_000, private readonly maxClients = 10_000, private readonly now = Date.now) {}

  /** Seconds until `client` may try again, or 0 when it may now. */
  retryAfter(client: string): number {
    const recent = this.#recent(client);
    if (this.limit <= 0 || recent.length < this.limit) return 0;
    return Math.max(1, Math.ceil((recent[0]! + this.windowMs - this.now()) / 1000));
  }

  failed(client: string): void {
    if (this.limit <= 0) return;
    const recent = this.#recent(client);
    recent.push(this.now());
    if (recent.length > this.limit) recent.shift();
    this.#failures.delete(client); // re-inserted last: the map's order is the eviction order
    this.#failures.set(client, recent);
    if (this.#failures.size > this.maxClients) this.#failures.delete(this.#failures.keys().next().value!);
  }

  /** Runs `check` after the client's earlier checks have ended. */
  oneAtATime<T>(client: string, check: () => Promise<T>): Promise<T> {
    return this.#checks.run(client, check);
  }

  #recent(client: string): number[] {
    const since = this.now() - this.windowMs;
    const times = (this.#failures.get(client) ?? []).filter((t) => t > since);
    if (times.length === 0) this.#failures.delete(client);
    return times;
  }
}
