// notifications: distribution's webhooks. Each successful push, pull, mount and delete under /v2
// becomes an event for every enabled endpoint that does not ignore it; delivery happens in the
// background and never slows or fails the request.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Request } from 'express';
import type { Logger } from 'pino';
import { NotificationEndpoint, type EndpointConfig } from './endpoint.js';
import { buildEvent, type EventAction, type EventTarget } from './event.js';

export interface NotificationsConfig {
  endpoints: EndpointConfig[];
  /** notifications.events.includereferences: manifest events list what the manifest refers to. */
  includeReferences: boolean;
}

export class Notifier {
  readonly endpoints: NotificationEndpoint[];
  readonly includeReferences: boolean;
  readonly #source: { addr: string; instanceID: string };

  /** `port`: where this instance listens (events name it as their source); see listening(). */
  constructor(config: NotificationsConfig, port: number, logger?: Logger) {
    this.endpoints = config.endpoints.map((e) => new NotificationEndpoint(e, logger?.child({ endpoint: e.name })));
    this.includeReferences = config.includeReferences;
    this.#source = { addr: `${hostname()}:${port}`, instanceID: randomUUID() };
  }

  /** The port really listened on (http.addr may ask for port 0). */
  listening(port: number): void {
    this.#source.addr = `${hostname()}:${port}`;
  }

  emit(req: Request, user: string | undefined, action: EventAction, target: EventTarget): void {
    const { references, ...rest } = target;
    const event = buildEvent(req, user, action, this.includeReferences && references ? { ...rest, references } : rest, this.#source);
    for (const endpoint of this.endpoints) endpoint.enqueue(event);
  }

  async close(graceMs: number): Promise<void> {
    await Promise.all(this.endpoints.map((e) => e.close(graceMs)));
  }
}
