// Blob uploads: POST (start, monolithic, mount), PATCH (chunks), PUT (finish), GET (status), DELETE.
import type { Request, Response } from 'express';
import { parseDigest, type Digest } from '../../oci/digest.js';
import { isValidName } from '../../oci/reference.js';
import { RegistryError } from '../errors.js';
import { rangeHeader, type AppendOptions } from '../registry/upload-session.js';
import { BLOB_MEDIA_TYPE, notify, queryString, repoName, type Handler, type RouteContext } from './context.js';

function uploadLocation(name: string, id: string): string {
  return `/v2/${name}/blobs/uploads/${id}`;
}

function sendUploadState(res: Response, status: number, name: string, id: string, size: number): void {
  res.status(status);
  res.setHeader('Location', uploadLocation(name, id));
  res.setHeader('Range', rangeHeader(size));
  res.setHeader('Docker-Upload-UUID', id);
  res.setHeader('Content-Length', 0);
  res.end();
}

/** 201 for a blob now in the repository, and the event of how it came: pushed, or mounted (from a named repository or not). */
function sendCreated(ctx: RouteContext, req: Request, res: Response, name: string, digest: Digest, size: number, mount?: { from: string | undefined }): void {
  res.status(201);
  res.setHeader('Location', `/v2/${name}/blobs/${digest}`);
  res.setHeader('Docker-Content-Digest', digest);
  res.setHeader('Content-Length', 0);
  res.end();
  const target = { mediaType: BLOB_MEDIA_TYPE, digest, size, repository: name, ...(mount?.from !== undefined ? { fromRepository: mount.from } : {}) };
  notify(ctx, req, mount ? 'mount' : 'push', `/v2/${name}/blobs/${digest}`, target);
}

function hasBody(req: Request): boolean {
  const len = req.headers['content-length'];
  if (len !== undefined) return Number(len) > 0;
  return req.headers['transfer-encoding'] !== undefined;
}

/** Content-Range "start-end" (the spec's form; "bytes start-end" also accepted) → append options. */
function chunkRange(req: Request): Pick<AppendOptions, 'start' | 'length'> {
  const header = req.headers['content-range'];
  if (header === undefined) return {};
  const m = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(header.trim());
  if (!m || Number(m[2]) < Number(m[1])) {
    throw new RegistryError('RANGE_INVALID', { contentRange: header.slice(0, 100) }, { message: 'invalid Content-Range' });
  }
  const start = Number(m[1]);
  const length = Number(m[2]) - start + 1;
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) !== length) {
    throw new RegistryError('SIZE_INVALID', { contentRange: header, contentLength: declared },
      { status: 416, message: 'Content-Length does not match Content-Range' });
  }
  return { start, length };
}

/** chunkRange of a session, whose 416s carry its current Range and Location, as the spec's other 416s do. */
async function sessionChunkRange(ctx: RouteContext, req: Request, name: string, id: string): Promise<Pick<AppendOptions, 'start' | 'length'>> {
  try { return chunkRange(req); } catch (e) {
    if (e instanceof RegistryError && e.status === 416) {
      req.resume();
      const size = await ctx.registry.uploads.size(name, id); // (an unknown session is a 404 instead)
      Object.assign(e.headers, { Range: rangeHeader(size), Location: `/v2/${name}/blobs/uploads/${id}`, 'Docker-Upload-UUID': id });
    }
    throw e;
  }
}

function abortOnClose(req: Request, res: Response): AbortSignal {
  const ac = new AbortController();
  res.on('close', () => { if (!res.writableFinished) ac.abort(); });
  req.on('aborted', () => ac.abort());
  return ac.signal;
}

/** The mounted blob's size, or undefined when it cannot be mounted (the client uploads it instead). */
async function tryMount(ctx: RouteContext, name: string, digest: Digest, from: string | undefined): Promise<number | undefined> {
  const { blobs } = ctx.registry;
  let size: number | undefined;
  if (from !== undefined) {
    if (!isValidName(from)) throw new RegistryError('NAME_INVALID', { from: from.slice(0, 300) });
    // Mounting reveals content: the caller must be allowed to pull the source. If not, upload instead.
    if (!ctx.principal.can('repository', from, 'pull')) return undefined;
    size = await blobs.sizeInRepo(from, digest);
  } else if (ctx.options.automaticCrossmount && ctx.authenticator.mode === 'none') {
    // Without a source we cannot check a right to the content, so only open registries mount blindly.
    size = await blobs.size(digest);
  }
  if (size !== undefined) await blobs.link(name, digest);
  return size;
}

export const startUpload: Handler = async (ctx, req, res) => {
  const name = repoName(ctx.params[0]!);
  const mount = queryString(req, 'mount');
  const digestParam = queryString(req, 'digest');
  const { uploads } = ctx.registry;
  if (mount !== undefined) {
    const digest = parseDigest(mount).digest;
    const from = queryString(req, 'from');
    const size = await tryMount(ctx, name, digest, from);
    if (size !== undefined) {
      req.resume();
      sendCreated(ctx, req, res, name, digest, size, { from });
      return;
    }
  } else if (digestParam !== undefined) {
    const digest = parseDigest(digestParam).digest;
    const size = await uploads.ingest(name, digest, req, abortOnClose(req, res));
    ctx.metrics.blobBytesReceived.inc(size);
    sendCreated(ctx, req, res, name, digest, size);
    return;
  }
  req.resume();
  const id = await uploads.start(name);
  sendUploadState(res, 202, name, id, 0);
};

export const patchUpload: Handler = async (ctx, req, res) => {
  const name = repoName(ctx.params[0]!);
  const id = ctx.params[1]!;
  const range = await sessionChunkRange(ctx, req, name, id);
  const { size, appended } = await ctx.registry.uploads.append(name, id, req, { ...range, signal: abortOnClose(req, res) });
  ctx.metrics.blobBytesReceived.inc(appended);
  sendUploadState(res, 202, name, id, size);
};

export const putUpload: Handler = async (ctx, req, res) => {
  const name = repoName(ctx.params[0]!);
  const id = ctx.params[1]!;
  const digestParam = queryString(req, 'digest');
  if (digestParam === undefined) {
    await ctx.registry.uploads.size(name, id);
    throw new RegistryError('DIGEST_INVALID', undefined, { message: 'the digest query parameter is required to finish an upload' });
  }
  const digest = parseDigest(digestParam).digest;
  const withBody = hasBody(req);
  const opts: AppendOptions = withBody ? { ...await sessionChunkRange(ctx, req, name, id), signal: abortOnClose(req, res) } : {};
  const { size, appended } = await ctx.registry.uploads.finish(name, id, digest, withBody ? req : undefined, opts);
  ctx.metrics.blobBytesReceived.inc(appended);
  sendCreated(ctx, req, res, name, digest, size);
};

export const getUpload: Handler = async (ctx, _req, res) => {
  const name = repoName(ctx.params[0]!);
  const id = ctx.params[1]!;
  const size = await ctx.registry.uploads.size(name, id);
  sendUploadState(res, 204, name, id, size);
};

export const deleteUpload: Handler = async (ctx, _req, res) => {
  const name = repoName(ctx.params[0]!);
  await ctx.registry.uploads.cancel(name, ctx.params[1]!);
  res.status(204).setHeader('Content-Length', 0);
  res.end();
};
