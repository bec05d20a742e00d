// One notification endpoint: its events are POSTed one envelope each, in order. A failed delivery
// (no answer within the timeout, a network error, a status outside 2xx/3xx) is tried again at once
// up to `threshold` times in a row, then every `backoff`, for as long as the endpoint is down, as
// distribution's retrying sink does. The queue lives in memory: it is capped, and what a restart
// or the cap drops is logged.
import type { Logger } from 'pino';
import { ENVELOPE_MEDIA_TYPE, type RegistryEvent } from './event.js';

export interface EndpointConfig {
  name: string;
  url: string;
  headers: Record<string, string[]>;
  timeoutMs: number;
  threshold: number;
  backoffMs: number;
  /** Events whose target has one of these media types are not sent (ignoredmediatypes and ignore.mediatypes). */
  ignoredMediaTypes: string[];
  ignoredActions: string[];
}

export const MAX_QUEUED = 10_000;

export class NotificationEndpoint {
  #queue: RegistryEvent[] = [];
  #running: Promise<void> | undefined;
  #closed = false;
  #wake: (() => void) | undefined;
  /** Deliveries in a row that failed. */
  failures = 0;
  delivered = 0;
  dropped = 0;

  /** The URL without its credentials, and the headers with them: fetch refuses a URL with a user or password, and names it, password and all, in its error. */
  readonly #url: string;
  readonly #headers: Headers;

  constructor(readonly config: EndpointConfig, private readonly logger?: Logger) {
    const url = new URL(config.url);
    this.#headers = new Headers();
    for (const [name, values] of Object.entries(config.headers)) for (const v of values) this.#headers.append(name, v);
    this.#headers.set('Content-Type', ENVELOPE_MEDIA_TYPE);
    // as distribution's Go client does: the URL's user and password are Basic auth, unless headers has its own
    if ((url.username || url.password) && !this.#headers.has('Authorization')) {
      const basic = Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64');
      this.#headers.set('Authorization', `Basic ${basic}`);
    }
    url.username = '';
    url.password = '';
    this.#url = url.href;
  }

  wants(event: RegistryEvent): boolean {
    return !this.config.ignoredActions.includes(event.action)
      && !(event.target.mediaType !== undefined && this.config.ignoredMediaTypes.includes(event.target.mediaType));
  }

  enqueue(event: RegistryEvent): void {
    if (this.#closed || !this.wants(event)) return;
    if (this.#queue.length >= MAX_QUEUED) {
      this.#queue.shift();
      if (this.dropped++ === 0) this.logger?.error(`notification queue full (${MAX_QUEUED}): dropping the oldest events`);
    }
    this.#queue.push(event);
    this.#running ??= this.#run().finally(() => { this.#running = undefined; });
  }

  get pending(): number {
    return this.#queue.length;
  }

  /** Stops taking events; waits up to `graceMs` for the queue to empty, then gives up on the rest. */
  async close(graceMs: number): Promise<void> {
    this.#closed = true;
    const deadline = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref());
    await Promise.race([this.#running ?? Promise.resolve(), deadline]);
    this.#wake?.();
    if (this.#queue.length) this.logger?.warn({ events: this.#queue.length }, 'notifications not delivered before shutdown');
    this.#queue = [];
  }

  async #run(): Promise<void> {
    while (this.#queue.length) {
      const event = this.#queue[0]!;
      const problem = await this.#deliver(event);
      if (problem === undefined) {
        // (unless a full queue dropped it meanwhile as the oldest: then the head is an event not yet sent)
        if (this.#queue[0] === event) this.#queue.shift();
        this.delivered++;
        if (this.failures >= this.config.threshold) this.logger?.info('notification endpoint reachable again');
        this.failures = 0;
        continue;
      }
      this.failures++;
      if (this.failures === this.config.threshold) {
        this.logger?.warn({ problem }, `notification endpoint failing: retrying every ${this.config.backoffMs} ms`);
      }
      if (this.#closed) return;
      if (this.failures >= this.config.threshold) await this.#sleep(this.config.backoffMs);
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#wake = () => { clearTimeout(timer); resolve(); };
    });
  }

  /** undefined when delivered, else why not. */
  async #deliver(event: RegistryEvent): Promise<string | undefined> {
    try {
      const res = await fetch(this.#url, {
        // redirects are followed, as distribution's client does (fetch drops Authorization across origins);
        // timeout 0 waits as long as it takes, as there
        method: 'POST', headers: this.#headers, body: JSON.stringify({ events: [event] }), redirect: 'follow',
        ...(this.config.timeoutMs > 0 ? { signal: AbortSignal.timeout(this.config.timeoutMs) } : {}),
      });
      await res.body?.cancel();
      return res.status >= 200 && res.status < 400 ? undefined : `HTTP ${res.status}`;
    } catch (e) {
      return (e as Error).name === 'TimeoutError' ? `no answer within ${this.config.timeoutMs} ms` : (e as Error).message;
    }
  }
}
