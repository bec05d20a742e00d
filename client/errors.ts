// Client errors: every failure the client reports is one of these, with a one-line message and a
// distinct process exit code (the CLI's fail() uses exitCode). Nothing here ever carries a secret.

export const ExitCode = {
  Failure: 1,
  Usage: 2,
  NotFound: 3,
  Unauthorized: 4,
  Network: 5,
  Integrity: 6,
  Unsupported: 7,
  Denied: 8,
} as const;

export class ClientError extends Error {
  constructor(message: string, readonly exitCode: number = ExitCode.Failure, readonly code?: string) {
    super(message);
  }
}

/** A 404 or an OCI *_UNKNOWN code. */
export class NotFoundError extends ClientError {
  constructor(message: string, code?: string) { super(message, ExitCode.NotFound, code); }
}

/** 401: no credentials, or wrong ones. */
export class UnauthorizedError extends ClientError {
  constructor(message: string, code?: string) { super(message, ExitCode.Unauthorized, code); }
}

/** 403 / DENIED: the credentials are fine but do not allow this. */
export class DeniedError extends ClientError {
  constructor(message: string, code?: string) { super(message, ExitCode.Denied, code); }
}

/** Connection refused, reset, DNS, TLS handshake… after retries. */
export class NetworkError extends ClientError {
  constructor(message: string) { super(message, ExitCode.Network); }
}

/** Bytes that do not match their digest or size. */
export class IntegrityError extends ClientError {
  constructor(message: string) { super(message, ExitCode.Integrity); }
}

/** The registry does not support the operation (e.g. deletes disabled: 405 UNSUPPORTED). */
export class UnsupportedError extends ClientError {
  constructor(message: string, code?: string) { super(message, ExitCode.Unsupported, code); }
}

/** Blobs an image needs were deleted (a concurrent rmi or prune) between being found and being named: copy again. */
export class ContentRemovedError extends ClientError {}

export class UsageError extends ClientError {
  constructor(message: string) { super(message, ExitCode.Usage); }
}
