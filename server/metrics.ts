// Prometheus metrics for one app instance (its own registry, so tests can build many apps).
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  registry: Registry;
  requests: Counter<'method' | 'route' | 'status'>;
  duration: Histogram<'method' | 'route'>;
  blobBytesSent: Counter;
  blobBytesReceived: Counter;
}

export function createMetrics(opts: { processMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (opts.processMetrics) collectDefaultMetrics({ register: registry });
  return {
    registry,
    requests: new Counter({
      name: 'berth_http_requests_total', help: 'HTTP requests by method, route and status',
      labelNames: ['method', 'route', 'status'], registers: [registry],
    }),
    duration: new Histogram({
      name: 'berth_http_request_duration_seconds', help: 'HTTP request latency by method and route',
      labelNames: ['method', 'route'], registers: [registry],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
    }),
    blobBytesSent: new Counter({ name: 'berth_blob_bytes_sent_total', help: 'Blob bytes served', registers: [registry] }),
    blobBytesReceived: new Counter({ name: 'berth_blob_bytes_received_total', help: 'Blob bytes received', registers: [registry] }),
  };
}
