// Start a registry from a Config: adapter → app → listen; graceful shutdown on demand.
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import { createAdapter } from '../storage-adapters/index.js';
import type { StorageAdapter } from '../storage-adapters/types.js';
import { createApp } from './app.js';
import { createAuth } from './auth/index.js';
import { ensureSelfSigned, trustInstructions } from './tls/self-signed.js';
import type { Config } from './config.js';
import { createMetrics, type Metrics } from './metrics.js';
import { StorageHealth } from './storage-health.js';
import { Notifier } from './notifications/index.js';
import { UploadSessions } from './registry/upload-session.js';
import { BlobStore } from './registry/blob-store.js';
import { withUploads } from './registry/repositories.js';

export interface RunningRegistry {
  server: Server;
  storage: StorageAdapter;
  url: string;
  /** http.debug.addr's listener, e.g. http://127.0.0.1:5001 */
  debugUrl?: string;
  /** Stops accepting, lets in-flight requests finish (up to the drain timeout), then closes. */
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

export async function startRegistry(config: Config, baseLogger: Logger = pino({ level: config.log.level })): Promise<RunningRegistry> {
  const logger = Object.keys(config.log.fields).length ? baseLogger.child(config.log.fields) : baseLogger;
  for (const note of config.notes) logger.warn(note);
  // Behind a proxy, http.host is the registry's public URL: the token realm clients are sent to.
  const token = config.auth.token && !config.auth.token.realm && config.http.publicHost
    ? { ...config.auth.token, realm: `${config.http.publicHost.replace(/\/+$/, '')}/auth/token` }
    : config.auth.token;
  const auth = await createAuth({ ...config.auth, token }, (m) => logger.warn(m));
  for (const w of auth.warnings) logger.warn(w);
  const storage = await createAdapter(config.storage.driver, config.storage.options);
  let shuttingDown = false;
  const metrics = createMetrics({ processMetrics: true });
  const notifier = config.notifications.endpoints.length ? new Notifier(config.notifications, config.http.port, logger.child({ component: 'notifications' })) : undefined;
  const health = config.health.storage && new StorageHealth(storage, config.health.storage.intervalMs, config.health.storage.threshold, logger);
  const app = createApp(
    {
      deleteEnabled: config.delete.enabled, automaticCrossmount: config.crossmount.automatic, trustedProxies: config.http.trustedProxies,
      readOnly: config.readOnly, headers: config.http.headers, accessLog: config.log.accessLog,
    },
    { storage, logger, auth, metrics, isShuttingDown: () => shuttingDown, ...(health ? { health } : {}), ...(notifier ? { notifier } : {}) },
  );
  const selfSigned = config.http.selfSigned ? ensureSelfSigned(config.http.selfSigned.directory, config.http.selfSigned.names) : undefined;
  const tls = config.http.tls ?? (selfSigned && { certificate: selfSigned.certificate, key: selfSigned.key });
  const server = tls
    ? createHttpsServer({
      cert: readFileSync(tls.certificate), key: readFileSync(tls.key), minVersion: config.http.minTls,
      // http.tls.clientcas: mutual TLS, a client without a certificate from these CAs is turned away in the handshake
      ...(config.http.clientCAs.length ? { ca: config.http.clientCAs.map((f) => readFileSync(f)), requestCert: true, rejectUnauthorized: true } : {}),
    }, app)
    : createHttpServer(app);
  server.requestTimeout = 0; // big blob uploads may take long, as long as bytes keep moving:
  // a socket that carries nothing for http.idletimeout is closed, so a stalled upload fails (its
  // partial chunk is undone) and frees its session, and a reader that stopped reading frees its file
  server.timeout = config.http.idletimeoutMs;
  server.headersTimeout = 60_000;

  await listen(server, config.http);
  const url = urlOf(server, tls ? 'https' : 'http');
  const addr = server.address() as AddressInfo;
  notifier?.listening(addr.port);
  const host = hostOf(addr);
  logger.info({ addr: url, storage: config.storage.driver, deletes: config.delete.enabled, auth: config.auth.mode, readOnly: config.readOnly }, 'berth registry listening');
  health?.start();
  const debugServer = config.http.debug && await listen(debugApp(metrics, health, config.http.debug.metricsPath), config.http.debug)
    .catch((e: Error) => { health?.stop(); server.close(); throw e; });
  const debugUrl = debugServer ? urlOf(debugServer, 'http') : undefined;
  if (debugUrl) logger.info({ addr: debugUrl }, 'debug server listening (/debug/health)');
  if (selfSigned) {
    const hostPort = `${config.http.host && !['0.0.0.0', '::'].includes(config.http.host) ? host : 'localhost'}:${addr.port}`;
    logger.info({ ca: selfSigned.caCert, created: selfSigned.created }, trustInstructions(selfSigned, hostPort));
  }
  if (config.auth.mode === 'none' && (!config.http.host || !LOOPBACK.has(config.http.host))) {
    logger.warn('the registry is open: no authentication is configured and it listens on a non-loopback address');
  }

  const purgeTimer = config.uploadPurging.enabled ? setInterval(() => {
    const uploads = new UploadSessions(storage, new BlobStore(storage));
    uploads.purge(withUploads(storage), new Date(Date.now() - config.uploadPurging.ageMs), config.uploadPurging.dryrun)
      .then((ids) => { if (ids.length) logger.info({ uploads: ids, dryRun: config.uploadPurging.dryrun }, 'purged abandoned uploads'); })
      .catch((err) => logger.error({ err }, 'upload purge failed'));
  }, config.uploadPurging.intervalMs) : undefined;
  purgeTimer?.unref();

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      shuttingDown = true;
      if (purgeTimer) clearInterval(purgeTimer);
      health?.stop();
      debugServer?.close();
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const force = setTimeout(() => server.closeAllConnections(), config.http.draintimeoutMs);
      force.unref();
      await done;
      clearTimeout(force);
      await notifier?.close(Math.min(config.http.draintimeoutMs, 10_000)); // the events of the last requests, if the endpoints answer
      await storage.close?.();
      logger.info('berth registry stopped');
    })();
    return closing;
  };
  return { server, storage, url, ...(debugUrl ? { debugUrl } : {}), close };
}

/** An address as a URL's host: IPv6 in brackets. */
function hostOf(addr: AddressInfo): string {
  return addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
}

function urlOf(server: Server, scheme: string): string {
  const addr = server.address() as AddressInfo;
  return `${scheme}://${hostOf(addr)}:${addr.port}`;
}

function listen(server: Server, at: { host: string | undefined; port: number }): Promise<Server> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host, () => { server.off('error', reject); resolve(server); });
  });
}

/**
 * http.debug.addr: distribution's debug listener, for monitoring on a port kept off the public one.
 * /debug/health answers {} (200) or the failing check (503); the metrics path serves Prometheus when enabled.
 */
function debugApp(metrics: Metrics, health: StorageHealth | undefined, metricsPath: string | undefined): Server {
  return createHttpServer((req, res) => {
    const path = (req.url ?? '/').replace(/\?.*$/s, '');
    const send = (status: number, type: string, body: string) => { res.writeHead(status, { 'Content-Type': type }).end(req.method === 'HEAD' ? undefined : body); };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain', 'method not allowed\n');
    if (path === '/debug/health') {
      const failing = health?.failing();
      return send(failing ? 503 : 200, 'application/json', JSON.stringify(failing ? { [health!.name]: failing } : {}));
    }
    if (metricsPath !== undefined && path === metricsPath) {
      void metrics.registry.metrics().then((text) => send(200, metrics.registry.contentType, text), () => send(500, 'text/plain', 'metrics failed\n'));
      return;
    }
    send(404, 'text/plain', 'not found\n');
  });
}
