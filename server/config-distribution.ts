// Sections of distribution's config.yml that berth does not implement. A config written for
// distribution (Debian's /etc/docker/registry/config.yml, the registry image's, a Helm chart's) must
// start berth, so these keys are accepted; but a setting whose absence changes what the registry
// does (a pull-through cache, storage middleware, URL filters) stops the start with
// one line, while one that only tunes or reports (a cache, an error reporter) is noted and ignored.
import { isTree, type Tree } from './config-tree.js';

const given = (v: unknown): boolean => v !== undefined && v !== null && v !== '' && v !== false
  && !(Array.isArray(v) && v.length === 0) && !(isTree(v) && Object.keys(v).length === 0);

/** The schema entries of these sections: anything is accepted here and judged by distributionOnly. */
export const DISTRIBUTION_ONLY_ROOT = ['proxy', 'redis', 'middleware', 'validation', 'compatibility', 'reporting'] as const;
export const DISTRIBUTION_ONLY_HTTP = ['prefix', 'net', 'http2', 'h2c'] as const;
export const DISTRIBUTION_ONLY_TLS = ['letsencrypt', 'ciphersuites'] as const;
export const DISTRIBUTION_ONLY_HEALTH = ['file', 'http', 'tcp'] as const;

export interface Verdict {
  /** Settings berth cannot honour and must not silently drop. */
  problems: string[];
  /** Settings berth ignores harmlessly; the server logs them once at start. */
  notes: string[];
}

export function distributionOnly(tree: Tree): Verdict {
  const problems: string[] = [];
  const notes: string[] = [];
  const section = (v: unknown): Tree => (isTree(v) ? v : {});
  const http = section(tree.http);
  const tls = section(http.tls);
  const log = section(tree.log);
  const health = section(tree.health);

  if (given(section(tree.proxy).remoteurl)) problems.push('proxy.remoteurl: berth is not a pull-through cache; remove the proxy section');
  const middleware = section(tree.middleware);
  for (const kind of Object.keys(middleware)) if (given(middleware[kind])) problems.push(`middleware.${kind}: berth has no ${kind} middleware (for presigned S3 URLs, see storage.s3.redirect)`);
  const urls = section(section(section(tree.validation).manifests).urls);
  if (given(urls.allow) || given(urls.deny)) problems.push('validation.manifests.urls: berth does not filter foreign layer URLs; remove allow/deny');
  if (given(section(section(tree.compatibility).schema1).enabled)) problems.push('compatibility.schema1.enabled: berth does not accept Docker schema 1 manifests');
  if (given(http.prefix) && http.prefix !== '/') problems.push(`http.prefix: berth serves /v2/ at the root; put a proxy in front to serve it under ${String(http.prefix)}`);
  if (given(http.net) && http.net !== 'tcp') problems.push(`http.net: "${String(http.net)}": berth listens on TCP only`);
  if (given(tls.letsencrypt)) problems.push('http.tls.letsencrypt: not supported; give http.tls.certificate and key (or selfsigned)');
  if (given(tls.ciphersuites)) problems.push('http.tls.ciphersuites: not supported; berth uses Node\'s default TLS ciphers');
  for (const kind of DISTRIBUTION_ONLY_HEALTH) if (given(health[kind])) problems.push(`health.${kind}: only health.storagedriver checks are supported`);

  if (given(tree.redis)) notes.push('redis: ignored (berth keeps no cache in redis)');
  if (given(tree.reporting)) notes.push('reporting: ignored (berth reports to no error service; see its log and /metrics)');
  if (given(log.hooks)) notes.push('log.hooks: ignored (berth sends no mail; watch its error log lines instead)');
  if (given(section(http.h2c).enabled)) notes.push('http.h2c: ignored (berth serves HTTP/1.1)');
  if (log.formatter !== undefined && log.formatter !== 'json') notes.push(`log.formatter: "${String(log.formatter)}" ignored; berth writes JSON lines`);
  return { problems, notes };
}
