// The one registry of error codes. Handlers throw RegistryError; errorMiddleware writes
// {"errors":[{code,message,detail}]} and logs the failure once.
import type { ErrorRequestHandler, Request } from 'express';
import { InvalidDigestError } from '../oci/digest.js';
import { BrokenAppendError, InvalidKeyError, InvalidOffsetError, PathNotFoundError, StorageError, TooLargeError } from '../storage-adapters/types.js';

export const ERROR_CODES = {
  BLOB_UNKNOWN: { status: 404, message: 'blob unknown to registry' },
  BLOB_UPLOAD_INVALID: { status: 400, message: 'blob upload invalid' },
  BLOB_UPLOAD_UNKNOWN: { status: 404, message: 'blob upload unknown to registry' },
  DIGEST_INVALID: { status: 400, message: 'provided digest did not match uploaded content' },
  MANIFEST_BLOB_UNKNOWN: { status: 404, message: 'manifest references a manifest or blob unknown to registry' },
  MANIFEST_INVALID: { status: 400, message: 'manifest invalid' },
  MANIFEST_UNKNOWN: { status: 404, message: 'manifest unknown to registry' },
  NAME_INVALID: { status: 400, message: 'invalid repository name' },
  NAME_UNKNOWN: { status: 404, message: 'repository name not known to registry' },
  SIZE_INVALID: { status: 400, message: 'provided length did not match content length' },
  UNAUTHORIZED: { status: 401, message: 'authentication required' },
  DENIED: { status: 403, message: 'requested access to the resource is denied' },
  UNSUPPORTED: { status: 405, message: 'the operation is unsupported' },
  TOOMANYREQUESTS: { status: 429, message: 'too many requests' },
  // Beyond the OCI table, as distribution has them:
  TAG_INVALID: { status: 400, message: 'manifest tag did not match the tag grammar' },
  RANGE_INVALID: { status: 416, message: 'invalid content range' },
  PAGINATION_NUMBER_INVALID: { status: 400, message: 'invalid number of results requested' },
  UNAVAILABLE: { status: 503, message: 'service unavailable' },
  UNKNOWN: { status: 500, message: 'unknown error' },
  // berth's own: a path that is no endpoint at all.
  NOT_FOUND: { status: 404, message: 'no such endpoint' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface RegistryErrorOptions { status?: number; headers?: Record<string, string>; message?: string }

export class RegistryError extends Error {
  readonly status: number;
  readonly headers: Record<string, string>;
  constructor(readonly code: ErrorCode, readonly detail?: unknown, opts: RegistryErrorOptions = {}) {
    super(opts.message ?? ERROR_CODES[code].message);
    this.status = opts.status ?? ERROR_CODES[code].status;
    this.headers = opts.headers ?? {};
  }
}

function toRegistryError(err: unknown, req: Request): RegistryError {
  if (err instanceof RegistryError) return err;
  if (err instanceof InvalidDigestError) return new RegistryError('DIGEST_INVALID', { reason: err.message }, { message: 'invalid digest' });
  const e = err as { status?: number; type?: string; code?: string; expose?: boolean; message?: string };
  if (e?.type === 'entity.too.large') return new RegistryError('SIZE_INVALID', undefined, { status: 413, message: 'request body too large' });
  // Errors of express's body parsers (charset, encoding, too many fields…) are the client's.
  if (e?.expose && typeof e.status === 'number' && e.status >= 400 && e.status < 500) {
    return new RegistryError('UNSUPPORTED', undefined, { status: e.status, message: String(e.message).slice(0, 200) });
  }
  if (err instanceof BrokenAppendError) {
    return new RegistryError('BLOB_UPLOAD_INVALID', undefined, { message: 'the upload\'s data was overwritten by a concurrent request; start the upload again' });
  }
  // The storage backend failed (after its own retries): a clear, retryable 503 rather than a bare 500.
  // The detail names the operation only; adapter messages never carry credentials, but keys stay internal too.
  if (err instanceof StorageError && !(err instanceof PathNotFoundError || err instanceof InvalidKeyError || err instanceof InvalidOffsetError || err instanceof TooLargeError)) {
    return new RegistryError('UNAVAILABLE', undefined, { message: 'the storage backend is unavailable; retry later', headers: { 'Retry-After': '5' } });
  }
  if (e?.code === 'ENOSPC' || e?.code === 'EDQUOT') {
    return new RegistryError('UNAVAILABLE', undefined, { status: 507, message: 'the storage is full' });
  }
  // Only a connection that really went away is the client's fault; anything else is ours.
  const gone = e?.code === 'ECONNRESET' || e?.code === 'ERR_STREAM_PREMATURE_CLOSE' || e?.code === 'ABORT_ERR' || e?.type === 'request.aborted';
  if (gone && (req.socket?.destroyed || !req.complete)) {
    return new RegistryError('BLOB_UPLOAD_INVALID', undefined, { message: 'client closed the connection' });
  }
  return new RegistryError('UNKNOWN');
}

export const errorMiddleware: ErrorRequestHandler = (err, req, res, _next) => {
  const re = toRegistryError(err, req);
  const log = req.log;
  if (re.status >= 500) log?.error({ err }, 'request failed');
  else log?.info({ code: re.code, detail: re.detail }, re.message);
  if (res.headersSent) { res.destroy(); return; }
  for (const [k, v] of Object.entries(re.headers)) res.setHeader(k, v);
  const body: { code: string; message: string; detail?: unknown } = { code: re.code, message: re.message };
  if (re.detail !== undefined) body.detail = re.detail;
  res.status(re.status).type('application/json').send(JSON.stringify({ errors: [body] }));
};
