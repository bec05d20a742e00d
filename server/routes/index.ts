// The /v2 route table. Repository names contain slashes, so routes are matched by regex on
// the raw (still percent-encoded) path; the name is validated by each handler before use.
import type { NextFunction, Request, Response } from 'express';
import { RegistryError } from '../errors.js';
import { getBase } from './base.js';
import { deleteBlob, getBlob, headBlob } from './blobs.js';
import { getCatalog } from './catalog.js';
import type { Handler, RouteContext } from './context.js';
import { deleteManifest, getManifest, headManifest, putManifest } from './manifests.js';
import { listReferrers } from './referrers.js';
import { listTags } from './tags.js';
import { deleteUpload, getUpload, patchUpload, putUpload, startUpload } from './uploads.js';

interface Route { name: string; pattern: RegExp; methods: Record<string, Handler> }

export const ROUTES: Route[] = [
  { name: 'base', pattern: /^\/v2\/?$/, methods: { GET: getBase, HEAD: getBase } },
  { name: 'catalog', pattern: /^\/v2\/_catalog$/, methods: { GET: getCatalog } },
  { name: 'tags', pattern: /^\/v2\/(.+)\/tags\/list$/, methods: { GET: listTags } },
  { name: 'manifest', pattern: /^\/v2\/(.+)\/manifests\/([^/]+)$/,
    methods: { GET: getManifest, HEAD: headManifest, PUT: putManifest, DELETE: deleteManifest } },
  { name: 'uploads', pattern: /^\/v2\/(.+)\/blobs\/uploads\/?$/, methods: { POST: startUpload } },
  { name: 'upload', pattern: /^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/,
    methods: { GET: getUpload, PATCH: patchUpload, PUT: putUpload, DELETE: deleteUpload } },
  { name: 'blob', pattern: /^\/v2\/(.+)\/blobs\/([^/]+)$/, methods: { GET: getBlob, HEAD: headBlob, DELETE: deleteBlob } },
  { name: 'referrers', pattern: /^\/v2\/(.+)\/referrers\/([^/]+)$/, methods: { GET: listReferrers } },
];

export function matchRoute(path: string): { route: Route; params: string[] } | undefined {
  for (const route of ROUTES) {
    const m = route.pattern.exec(path);
    if (m) return { route, params: m.slice(1) };
  }
  return undefined;
}

export function v2Router(base: Omit<RouteContext, 'params'>) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const found = matchRoute(req.baseUrl + req.path);
    if (!found) return next();
    res.locals.route = found.route.name;
    const handler = found.route.methods[req.method];
    if (!handler) {
      res.setHeader('Allow', Object.keys(found.route.methods).join(', '));
      throw new RegistryError('UNSUPPORTED', { method: req.method }, { message: `method ${req.method} is not allowed here` });
    }
    await handler({ ...base, params: found.params }, req, res);
  };
}
