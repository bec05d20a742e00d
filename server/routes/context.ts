// What every route handler gets, and small helpers shared by several routes.
import type { Request, Response } from 'express';
import { isValidName } from '../../oci/reference.js';
import { RegistryError } from '../errors.js';
import type { Registry } from '../registry/index.js';
import type { Metrics } from '../metrics.js';
import type { Authenticator, Principal } from '../auth/authenticator.js';
import type { Notifier } from '../notifications/index.js';
import { targetUrl, type EventAction, type EventTarget } from '../notifications/event.js';

export interface RouteOptions {
  deleteEnabled: boolean;
  automaticCrossmount: boolean;
  /** storage.maintenance.readonly: only GET and HEAD are served. */
  readOnly?: boolean;
}

export interface RouteContext {
  registry: Registry;
  options: RouteOptions;
  metrics: Metrics;
  authenticator: Authenticator;
  /** Webhooks (notifications.endpoints), when configured. */
  notifier?: Notifier;
  /** The authorized caller of this request. */
  principal: Principal;
  /** Regex captures of the route: [name, reference?] */
  params: string[];
}

export type Handler = (ctx: RouteContext, req: Request, res: Response) => Promise<void>;

export function repoName(raw: string): string {
  if (!isValidName(raw)) throw new RegistryError('NAME_INVALID', { name: raw.slice(0, 300) });
  return raw;
}

/** Tells the notification endpoints (if any) what this request did; `path` is the object's /v2 path. */
export function notify(ctx: RouteContext, req: Request, action: EventAction, path: string | undefined, target: EventTarget): void {
  if (!ctx.notifier) return;
  ctx.notifier.emit(req, ctx.principal.user, action, path ? { ...target, url: targetUrl(req, path) } : target);
}

/** Blobs are untyped in storage; distribution's events call them this. */
export const BLOB_MEDIA_TYPE = 'application/octet-stream';

export function requireDeletes(ctx: RouteContext): void {
  if (!ctx.options.deleteEnabled) {
    throw new RegistryError('UNSUPPORTED', undefined, { message: 'deletes are disabled on this registry (storage.delete.enabled)' });
  }
}

export function queryString(req: Request, key: string): string | undefined {
  const v = req.query[key];
  if (v === undefined) return undefined;
  if (typeof v === 'string') return v;
  throw new RegistryError('UNSUPPORTED', { parameter: key }, { status: 400, message: `query parameter "${key}" given more than once` });
}

export function queryStrings(req: Request, key: string): string[] {
  const v = req.query[key];
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).map(String);
}

/** n/last pagination shared by tags/list and _catalog; writes the Link header when more remain. */
export function paginate(req: Request, res: Response, all: string[], basePath: string): string[] {
  const nRaw = queryString(req, 'n');
  const last = queryString(req, 'last');
  let n: number | undefined;
  if (nRaw !== undefined) {
    if (!/^\d{1,9}$/.test(nRaw)) throw new RegistryError('PAGINATION_NUMBER_INVALID', { n: nRaw.slice(0, 50) });
    n = Number(nRaw);
  }
  const after = last === undefined ? all : all.filter((x) => x > last);
  if (n === undefined) return after;
  const page = after.slice(0, n);
  if (n > 0 && after.length > n) {
    const params = new URLSearchParams({ n: String(n), last: page[page.length - 1]! });
    res.setHeader('Link', `<${basePath}?${params.toString()}>; rel="next"`);
  }
  return page;
}

export function sendJson(res: Response, status: number, body: unknown, contentType = 'application/json'): void {
  const text = JSON.stringify(body);
  res.status(status).setHeader('Content-Type', contentType);
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.end(text);
}
