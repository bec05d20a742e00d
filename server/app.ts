// createApp builds the express app; it never listens (tests drive it in-process).
import express, { type Request, type Response } from 'express';
import { randomUUID } from 'node:crypto';
import { pino, type Logger } from 'pino';
import { pinoHttp } from 'pino-http';
import type { StorageAdapter } from '../storage-adapters/types.js';
import { RegistryError, errorMiddleware } from './errors.js';
import { createMetrics, type Metrics } from './metrics.js';
import { createRegistry } from './registry/index.js';
import { probeStorage } from './storage-health.js';
import type { RouteOptions } from './routes/context.js';
import { v2Router } from './routes/index.js';
import { noAuth } from './auth/authenticator.js';
import type { Auth } from './auth/index.js';
import type { Notifier } from './notifications/index.js';

export interface AppDeps {
  storage: StorageAdapter;
  logger?: Logger;
  metrics?: Metrics;
  /** Authentication and the optional built-in token issuer; none when absent. */
  auth?: Auth;
  /** Set while draining: new requests get 503 and the connection is closed. */
  isShuttingDown?: () => boolean;
  /** notifications.endpoints: webhooks told of pushes, pulls, mounts and deletes. */
  notifier?: Notifier;
  /** health.storagedriver's verdict: while it names a failure, requests get 503. */
  health?: { failing(): string | undefined };
}

export interface AppOptions extends Partial<RouteOptions> {
  /** Proxies whose X-Forwarded-For/-Proto are believed: the client address (login throttling, logs) and scheme (token realm). */
  trustedProxies?: string[];
  /** http.headers: sent with every response. */
  headers?: Record<string, string[]>;
  /** log.accesslog.disabled turns this off: one log line per request. */
  accessLog?: boolean;
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

export function createApp(options: AppOptions, deps: AppDeps): express.Express {
  const logger = deps.logger ?? pino({ level: 'silent' });
  const metrics = deps.metrics ?? createMetrics();
  const registry = createRegistry(deps.storage);
  const routeOptions: RouteOptions = {
    deleteEnabled: options.deleteEnabled ?? false,
    automaticCrossmount: options.automaticCrossmount ?? true,
    readOnly: options.readOnly ?? false,
  };

  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('query parser', 'simple');
  if (options.trustedProxies?.length) app.set('trust proxy', options.trustedProxies);

  app.use(pinoHttp({
    logger,
    autoLogging: options.accessLog ?? true,
    genReqId: (req, res) => {
      const given = req.headers['x-request-id'];
      const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
      res.setHeader('X-Request-Id', id);
      return id;
    },
    customLogLevel: (_req, res, err) => (err || res.statusCode >= 500 ? 'error' : 'info'),
    // Never log credentials or tokens; a redirect's presigned URL keeps its path, not its signature.
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]', 'res.headers.location'],
      censor: (value: unknown, path: string[]) => (path.at(-1) === 'location' && typeof value === 'string'
        ? value.replace(/\?.*$/s, (q) => (/[?&]X-Amz-|[?&]Signature=/i.test(q) ? '?[Redacted]' : q)) : '[Redacted]'),
    },
  }));

  app.use((req: Request, res: Response, next) => {
    for (const [name, values] of Object.entries(options.headers ?? {})) res.setHeader(name, values);
    res.setHeader('Docker-Distribution-API-Version', 'registry/2.0');
    if (deps.isShuttingDown?.()) {
      res.setHeader('Connection', 'close');
      return next(new RegistryError('UNAVAILABLE', undefined, { message: 'the registry is shutting down' }));
    }
    // (/healthz too, so a load balancer sees it; /metrics stays, to watch the outage)
    const unhealthy = req.path !== '/metrics' ? deps.health?.failing() : undefined;
    if (unhealthy) return next(new RegistryError('UNAVAILABLE', undefined, { message: unhealthy }));
    const end = metrics.duration.startTimer();
    res.on('finish', () => {
      const route = String(res.locals.route ?? 'other');
      end({ method: req.method, route });
      metrics.requests.inc({ method: req.method, route, status: String(res.statusCode) });
    });
    next();
  });

  app.get('/metrics', async (_req, res) => {
    res.setHeader('Content-Type', metrics.registry.contentType);
    res.end(await metrics.registry.metrics());
  });

  app.get('/healthz', async (_req, res) => {
    await probeStorage(deps.storage); // proves the backend answers now
    res.json({ status: 'ok', storage: deps.storage.name });
  });

  if (deps.auth?.tokenRouter) app.use('/auth/token', deps.auth.tokenRouter);
  app.use('/v2', v2Router({
    registry, options: routeOptions, metrics, authenticator: deps.auth?.authenticator ?? noAuth, ...(deps.notifier ? { notifier: deps.notifier } : {}),
  }));

  app.use((req, _res, next) => {
    next(new RegistryError('NOT_FOUND', { method: req.method, path: req.path.slice(0, 300) }));
  });
  app.use(errorMiddleware);
  return app;
}
