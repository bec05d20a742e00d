// GET/HEAD/DELETE /v2/<name>/blobs/<digest> : streamed, with single byte ranges.
import type { Request, Response } from 'express';
import { pipeline } from 'node:stream/promises';
import { parseDigest } from '../../oci/digest.js';
import { RegistryError } from '../errors.js';
import { BLOB_MEDIA_TYPE, notify, repoName, requireDeletes, type Handler } from './context.js';

interface Span { start: number; end: number }

/** Parses a single "bytes=a-b" range; undefined means "send everything" (absent or multi-range). */
export function parseRange(header: string | undefined, size: number): Span | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined; // multiple or malformed ranges: ignore (RFC 9110)
  const unsatisfiable = () => new RegistryError('RANGE_INVALID', { range: header.slice(0, 100), size }, {
    headers: { 'Content-Range': `bytes */${size}` }, message: 'requested range not satisfiable',
  });
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) throw unsatisfiable();
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || (m[2] !== '' && Number(m[2]) < start)) throw unsatisfiable();
  return { start, end };
}

async function sendBlob(ctx: Parameters<Handler>[0], req: Request, res: Response): Promise<void> {
  const name = repoName(ctx.params[0]!);
  const digest = parseDigest(ctx.params[1]!).digest;
  const size = await ctx.registry.blobs.sizeInRepo(name, digest);
  if (size === undefined) throw new RegistryError('BLOB_UNKNOWN', { digest });

  // a pull is a GET of the blob from its start (a resumed download's later ranges are the same pull)
  const pulled = () => notify(ctx, req, 'pull', `/v2/${name}/blobs/${digest}`, { mediaType: BLOB_MEDIA_TYPE, digest, size, repository: name });
  const redirect = await ctx.registry.blobs.redirectUrl(digest, req.method as 'GET' | 'HEAD');
  if (redirect) {
    res.status(307).setHeader('Location', redirect);
    res.setHeader('Docker-Content-Digest', digest);
    res.end();
    if (req.method === 'GET') pulled();
    return;
  }

  // a matching If-None-Match wins over Range (RFC 9110 13.2.2); a bad Range fails before any of the
  // blob's headers are set, so its 416 is not marked cacheable
  const unchanged = req.headers['if-none-match'] === `"${digest}"` || req.headers['if-none-match'] === digest;
  const span = unchanged ? undefined : parseRange(req.headers.range, size);
  res.setHeader('Docker-Content-Digest', digest);
  res.setHeader('ETag', `"${digest}"`);
  res.setHeader('Accept-Ranges', 'bytes');
  res.setHeader('Cache-Control', 'max-age=31536000');
  res.setHeader('Content-Type', 'application/octet-stream');
  if (unchanged) {
    res.status(304).end();
    return;
  }
  if (span) {
    res.status(206).setHeader('Content-Range', `bytes ${span.start}-${span.end}/${size}`);
  } else {
    res.status(200);
  }
  const length = span ? span.end - span.start + 1 : size;
  res.setHeader('Content-Length', length);
  if (req.method === 'HEAD' || length === 0) {
    res.end();
    if (req.method === 'GET') pulled();
    return;
  }
  const body = await ctx.registry.blobs.open(digest, span ? { offset: span.start, length } : undefined);
  let sent = 0;
  body.on('data', (chunk: Buffer) => { sent += chunk.length; });
  try {
    await pipeline(body, res);
  } catch (e) {
    // the client went away, nothing to answer; often it only closed the socket right after the
    // last byte (it counts Content-Length), before the stream saw its own end
    if (!(res.destroyed || res.writableEnded)) throw e;
  }
  ctx.metrics.blobBytesSent.inc(sent);
  if (sent === length && (!span || span.start === 0)) pulled();
}

export const getBlob: Handler = sendBlob;
export const headBlob: Handler = sendBlob;

export const deleteBlob: Handler = async (ctx, req, res) => {
  const name = repoName(ctx.params[0]!);
  requireDeletes(ctx);
  const digest = parseDigest(ctx.params[1]!).digest;
  if (!(await ctx.registry.blobs.unlink(name, digest))) throw new RegistryError('BLOB_UNKNOWN', { digest });
  res.status(202).setHeader('Content-Length', 0);
  res.end();
  notify(ctx, req, 'delete', undefined, { digest, repository: name });
};
