// Registry events in distribution's notification format (its docs' "Envelope"), so listeners written
// for distribution (CI triggers, scanners, audit logs) read berth's unchanged.
import { randomUUID } from 'node:crypto';
import type { Request } from 'express';

export type EventAction = 'push' | 'pull' | 'mount' | 'delete';

export const ENVELOPE_MEDIA_TYPE = 'application/vnd.docker.distribution.events.v1+json';

export interface EventTarget {
  mediaType?: string;
  digest?: string;
  size?: number;
  /** Same as size: distribution's older field name, still read by listeners. */
  length?: number;
  repository: string;
  url?: string;
  tag?: string;
  /** A mount's source repository. */
  fromRepository?: string;
  /** notifications.events.includereferences: what a manifest refers to (config, layers, child manifests). */
  references?: { mediaType: string; digest: string; size: number }[];
}

export interface RegistryEvent {
  id: string;
  timestamp: string;
  action: EventAction;
  target: EventTarget;
  request: { id: string; addr: string; host: string; method: string; useragent: string };
  actor: { name?: string };
  source: { addr: string; instanceID: string };
}

export function buildEvent(req: Request, user: string | undefined, action: EventAction, target: EventTarget, source: RegistryEvent['source']): RegistryEvent {
  return {
    id: randomUUID(),
    timestamp: new Date().toISOString(),
    action,
    target: target.size !== undefined ? { ...target, length: target.size } : target,
    request: {
      id: String((req as Request & { id?: unknown }).id ?? ''),
      addr: req.ip ?? '',
      host: req.headers.host ?? '',
      method: req.method,
      useragent: req.headers['user-agent'] ?? '',
    },
    actor: user !== undefined ? { name: user } : {},
    source,
  };
}

/** The absolute URL of a registry object, as the client addressed the registry. */
export function targetUrl(req: Request, path: string): string {
  return `${req.protocol}://${req.headers.host ?? 'localhost'}${path}`;
}
