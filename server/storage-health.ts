// health.storagedriver: the storage is asked a cheap question every interval. After `threshold`
// failures in a row the registry is unhealthy, and every request but /metrics (/healthz too) gets 503,
// as distribution answers, so a load balancer sends clients elsewhere. One success makes it healthy.
import type { Logger } from 'pino';
import type { StorageAdapter } from '../storage-adapters/types.js';

/** A cheap storage round-trip: the first entry of the repositories listing (none is fine). */
export async function probeStorage(storage: StorageAdapter): Promise<void> {
  for await (const _ of storage.list('/repositories')) break;
}

export class StorageHealth {
  #failures = 0;
  #lastError = '';
  #timer: NodeJS.Timeout | undefined;
  #running = false;

  constructor(private readonly storage: StorageAdapter, private readonly intervalMs: number, private readonly threshold: number, private readonly logger?: Logger) {}

  /** The check's name, as distribution names it in /debug/health. */
  get name(): string { return `storagedriver_${this.storage.name}`; }

  /** Why the registry is unhealthy, or undefined while it is healthy. */
  failing(): string | undefined {
    return this.#failures >= this.threshold ? this.#lastError : undefined;
  }

  start(): void {
    this.#timer = setInterval(() => void this.check(), this.intervalMs);
    this.#timer.unref();
    void this.check();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** One probe; a storage that does not answer within the interval has failed it. */
  async check(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    let timeout: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        probeStorage(this.storage),
        new Promise((_, reject) => { timeout = setTimeout(() => reject(new Error(`no answer within ${this.intervalMs} ms`)), this.intervalMs); }),
      ]);
      if (this.#failures >= this.threshold) this.logger?.info({ check: this.name }, 'storage health check passes again');
      this.#failures = 0;
    } catch (e) {
      this.#failures++;
      this.#lastError = `storage health check failed: ${(e as Error).message.split('\n')[0]}`;
      this.logger?.error({ check: this.name, failures: this.#failures }, this.#lastError);
    } finally {
      clearTimeout(timeout);
      this.#running = false;
    }
  }
}
