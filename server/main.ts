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
import { createMetrics } from './metrics.js';
import { UploadSessions } from './registry/upload-session.js';
import { BlobStore } from './registry/blob-store.js';
import { withUploads } from './registry/repositories.js';

export interface RunningRegistry {
  server: Server;
  storage: StorageAdapter;
  url: string;
  /** Stops accepting, lets in-flight requests finish (up to the drain timeout), then closes. */
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

export async function startRegistry(config: Config, logger: Logger = pino({ level: config.log.level })): Promise<RunningRegistry> {
  // Behind a proxy, http.host is the registry's public URL: the token realm clients are sent to.
  const token = config.auth.token && !config.auth.token.realm && config.http.publicHost
    ? { ...config.auth.token, realm: `${config.http.publicHost.replace(/\/+$/, '')}/auth/token` }
    : config.auth.token;
  const auth = await createAuth({ ...config.auth, token }, (m) => logger.warn(m));
  for (const w of auth.warnings) logger.warn(w);
  const storage = await createAdapter(config.storage.driver, config.storage.options);
  let shuttingDown = false;
  const app = createApp(
    { deleteEnabled: config.delete.enabled, automaticCrossmount: config.crossmount.automatic, trustedProxies: config.http.trustedProxies },
    { storage, logger, auth, metrics: createMetrics({ processMetrics: true }), isShuttingDown: () => shuttingDown },
  );
  const selfSigned = config.http.selfSigned ? ensureSelfSigned(config.http.selfSigned.directory, config.http.selfSigned.names) : undefined;
  const tls = config.http.tls ?? (selfSigned && { certificate: selfSigned.certificate, key: selfSigned.key });
  const server = tls
    ? createHttpsServer({ cert: readFileSync(tls.certificate), key: readFileSync(tls.key) }, app)
    : createHttpServer(app);
  server.requestTimeout = 0; // big blob uploads may take long, as long as bytes keep moving:
  // a socket that carries nothing for http.idletimeout is closed, so a stalled upload fails (its
  // partial chunk is undone) and frees its session, and a reader that stopped reading frees its file
  server.timeout = config.http.idletimeoutMs;
  server.headersTimeout = 60_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.http.port, config.http.host, () => { server.off('error', reject); resolve(); });
  });
  const addr = server.address() as AddressInfo;
  const scheme = tls ? 'https' : 'http';
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const url = `${scheme}://${host}:${addr.port}`;
  logger.info({ addr: url, storage: config.storage.driver, deletes: config.delete.enabled, auth: config.auth.mode }, 'berth registry listening');
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
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const force = setTimeout(() => server.closeAllConnections(), config.http.draintimeoutMs);
      force.unref();
      await done;
      clearTimeout(force);
      await storage.close?.();
      logger.info('berth registry stopped');
    })();
    return closing;
  };
  return { server, storage, url, close };
}
