// The /v2 route table. Repository names contain slashes, so routes are matched by regex on
// the raw (still percent-encoded) path; the name is validated by each handler before use.
import type { NextFunction, Request, Response } from 'express';
import { RegistryError } from '../errors.js';
import type { Access } from '../auth/scope.js';
import { isValidName } from '../../oci/reference.js';
import { getBase } from './base.js';
import { deleteBlob, getBlob, headBlob } from './blobs.js';
import { getCatalog } from './catalog.js';
import { repoName, type Handler, type RouteContext } from './context.js';
import { deleteManifest, getManifest, headManifest, putManifest } from './manifests.js';
import { listReferrers } from './referrers.js';
import { listTags } from './tags.js';
import { deleteUpload, getUpload, patchUpload, putUpload, startUpload } from './uploads.js';

/** What a method on a route needs: the repository actions (or catalog access) to authorize. */
type Needs = (name: string) => Access[];
interface Route { name: string; pattern: RegExp; methods: Record<string, [Handler, Needs]> }

const repo = (...actions: string[]): Needs => (name) => [{ type: 'repository', name, actions }];
const pull = repo('pull');
// writes need pull too, as distribution asks: a push-only caller would otherwise learn, from a manifest PUT's
// MANIFEST_BLOB_UNKNOWN or a mount, which blobs a repository it may not read holds
const push = repo('pull', 'push');
const del = repo('delete');
const catalog: Needs = () => [{ type: 'registry', name: 'catalog', actions: ['*'] }];

export const ROUTES: Route[] = [
  // The base route needs no particular right, only a valid caller when auth is on.
  { name: 'base', pattern: /^\/v2\/?$/, methods: { GET: [getBase, () => []], HEAD: [getBase, () => []] } },
  { name: 'catalog', pattern: /^\/v2\/_catalog$/, methods: { GET: [getCatalog, catalog], HEAD: [getCatalog, catalog] } },
  { name: 'tags', pattern: /^\/v2\/(.+)\/tags\/list$/, methods: { GET: [listTags, pull], HEAD: [listTags, pull] } },
  { name: 'manifest', pattern: /^\/v2\/(.+)\/manifests\/([^/]+)$/,
    methods: { GET: [getManifest, pull], HEAD: [headManifest, pull], PUT: [putManifest, push], DELETE: [deleteManifest, del] } },
  { name: 'uploads', pattern: /^\/v2\/(.+)\/blobs\/uploads\/?$/, methods: { POST: [startUpload, push] } },
  { name: 'upload', pattern: /^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/,
    methods: { GET: [getUpload, push], PATCH: [patchUpload, push], PUT: [putUpload, push], DELETE: [deleteUpload, push] } },
  { name: 'blob', pattern: /^\/v2\/(.+)\/blobs\/([^/]+)$/, methods: { GET: [getBlob, pull], HEAD: [headBlob, pull], DELETE: [deleteBlob, del] } },
  { name: 'referrers', pattern: /^\/v2\/(.+)\/referrers\/([^/]+)$/, methods: { GET: [listReferrers, pull], HEAD: [listReferrers, pull] } },
];

/** A mount can use pull on its source but works without it (it falls back to an upload). */
function wantedBy(route: string, req: Request): Access[] {
  const from = req.query.from;
  if (route !== 'uploads' || typeof req.query.mount !== 'string' || typeof from !== 'string' || !isValidName(from)) return [];
  return [{ type: 'repository', name: from, actions: ['pull'] }];
}

export function matchRoute(path: string): { route: Route; params: string[] } | undefined {
  for (const route of ROUTES) {
    const m = route.pattern.exec(path);
    if (m) return { route, params: m.slice(1) };
  }
  return undefined;
}

export function v2Router(base: Omit<RouteContext, 'params' | 'principal'>) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const found = matchRoute(req.baseUrl + req.path);
    if (!found) return next();
    res.locals.route = found.route.name;
    const method = found.route.methods[req.method];
    if (!method) {
      res.setHeader('Allow', Object.keys(found.route.methods).join(', '));
      throw new RegistryError('UNSUPPORTED', { method: req.method }, { message: `method ${req.method} is not allowed here` });
    }
    if (base.options.readOnly && req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', Object.keys(found.route.methods).filter((m) => m === 'GET' || m === 'HEAD').join(', '));
      throw new RegistryError('UNSUPPORTED', { method: req.method }, { message: 'the registry is read-only for maintenance (storage.maintenance.readonly)' });
    }
    const [handler, needs] = method;
    // The name is checked against the grammar before it reaches the access rules or storage.
    const name = found.params.length ? repoName(found.params[0]!) : '';
    const principal = await base.authenticator.authorize(req, needs(name), wantedBy(found.route.name, req));
    if (principal.user) res.locals.user = principal.user;
    try {
      await handler({ ...base, params: found.params, principal }, req, res);
    } catch (e) {
      // A 405 (e.g. deletes disabled) must say what is allowed (RFC 9110).
      if (e instanceof RegistryError && e.status === 405 && !e.headers.Allow) {
        e.headers.Allow = Object.keys(found.route.methods).filter((m) => m !== req.method).join(', ');
      }
      throw e;
    }
  };
}
