// The transport against scripted HTTP servers: token flow and cache, Basic, retries, redirects.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ExitCode, UnauthorizedError } from '../../client/errors.js';
import { catalog, RegistryClient } from '../../client/registry-client.js';
import { Transport, retryAfterMs } from '../../client/transport.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

async function serve(handler: Handler): Promise<{ server: Server; host: string; port: number }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return { server, host: `127.0.0.1:${port}`, port };
}

const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('transport: Bearer token flow', () => {
  let reg: Awaited<ReturnType<typeof serve>>;
  const tokenRequests: URL[] = [];
  let issued = 0;
  let lifetime = 300;
  const revoked = new Set<string>();

  before(async () => {
    reg = await serve((req, res) => {
      const url = new URL(req.url!, 'http://x');
      if (url.pathname === '/token') {
        tokenRequests.push(url);
        if (req.headers.authorization !== `Basic ${b64('alice:secret')}`) { res.statusCode = 401; res.end('{"details":"bad creds"}'); return; }
        const token = `t${++issued}|${url.searchParams.getAll('scope').join(' ')}`;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ token, expires_in: lifetime, issued_at: new Date().toISOString() }));
        return;
      }
      const challenge = (scope?: string) => `Bearer realm="http://${reg.host}/token",service="test-registry"${scope ? `,scope="${scope}"` : ''}`;
      const auth = req.headers.authorization ?? '';
      const token = auth.startsWith('Bearer ') ? auth.slice(7) : '';
      if (url.pathname === '/v2/') {
        if (!token || revoked.has(token)) { res.statusCode = 401; res.setHeader('www-authenticate', challenge()); res.end(); return; }
        res.end('{}');
        return;
      }
      const m = /^\/v2\/(.+)\/tags\/list$/.exec(url.pathname);
      const need = m ? `repository:${m[1]}:pull` : 'registry:catalog:*';
      if (!token || revoked.has(token) || !token.split('|')[1]!.split(' ').includes(need)) {
        res.statusCode = 401;
        res.setHeader('www-authenticate', `${challenge(need)},error="insufficient_scope"`);
        res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
        return;
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(m ? { name: m[1], tags: ['v1'] } : { repositories: ['a/b'] }));
    });
  });
  after(() => reg.server.close());

  const transport = (password = 'secret') => new Transport(reg.host, { credentials: async () => ({ username: 'alice', password }), retryBaseMs: 5 });

  it('fetches a token for the scope with Basic credentials and caches it per scope', async () => {
    tokenRequests.length = 0;
    const t = transport();
    const client = new RegistryClient(t, 'team/app');
    assert.deepEqual(await client.tags(), ['v1']);
    assert.deepEqual(await client.tags(), ['v1']);
    assert.equal(tokenRequests.length, 1, 'one token for two requests with the same scope');
    assert.deepEqual(tokenRequests[0]!.searchParams.getAll('scope'), ['repository:team/app:pull']);
    assert.equal(tokenRequests[0]!.searchParams.get('service'), 'test-registry');
    assert.equal(tokenRequests[0]!.searchParams.get('account'), 'alice');
    await new RegistryClient(t, 'other/app').tags();
    assert.equal(tokenRequests.length, 2, 'another scope needs another token');
  });

  it('fetches a new token when the cached one expires', async () => {
    tokenRequests.length = 0;
    lifetime = 1;
    try {
      const client = new RegistryClient(transport(), 'team/app');
      await client.tags();
      await client.tags();
      assert.equal(tokenRequests.length, 1);
      await new Promise((r) => setTimeout(r, 1000));
      await client.tags();
      assert.equal(tokenRequests.length, 2, 'expired token replaced');
    } finally {
      lifetime = 300;
    }
  });

  it('a token the registry stops accepting (401) is replaced once, transparently', async () => {
    tokenRequests.length = 0;
    const client = new RegistryClient(transport(), 'team/app');
    await client.tags();
    revoked.add(`t${issued}|repository:team/app:pull`);
    assert.deepEqual(await client.tags(), ['v1']);
    assert.equal(tokenRequests.length, 2);
  });

  it('wrong credentials → UnauthorizedError (exit code 4), one line', async () => {
    const client = new RegistryClient(transport('wrong'), 'team/app');
    await assert.rejects(client.tags(), (e: unknown) => e instanceof UnauthorizedError && e.exitCode === ExitCode.Unauthorized && /incorrect username or password/.test((e as Error).message) && !(e as Error).message.includes('\n'));
  });

  it('verifyCredentials checks a login without any scope', async () => {
    await transport().verifyCredentials();
    await assert.rejects(transport('nope').verifyCredentials(), UnauthorizedError);
  });
});

describe('transport: Basic, retries, redirects', () => {
  let reg: Awaited<ReturnType<typeof serve>>;
  let other: Awaited<ReturnType<typeof serve>>;
  const hits = new Map<string, number>();
  const seenAuth: (string | undefined)[] = [];
  const count = (k: string) => { const n = (hits.get(k) ?? 0) + 1; hits.set(k, n); return n; };

  before(async () => {
    other = await serve((req, res) => { seenAuth.push(req.headers.authorization); res.end('elsewhere'); });
    reg = await serve((req, res) => {
      const url = new URL(req.url!, 'http://x');
      if (req.headers.authorization !== `Basic ${b64('bob:pw')}`) {
        res.statusCode = 401; res.setHeader('www-authenticate', 'Basic realm="berth-test"'); res.end(); return;
      }
      switch (url.pathname) {
        case '/v2/': res.end('{}'); return;
        case '/v2/flaky/tags/list':
          if (count('flaky') <= 2) { res.statusCode = 503; res.end(); return; }
          res.end('{"name":"flaky","tags":["ok"]}');
          return;
        case '/v2/slow/tags/list':
          if (count('slow') === 1) { res.statusCode = 429; res.setHeader('retry-after', '1'); res.end(); return; }
          res.end('{"name":"slow","tags":["ok"]}');
          return;
        case '/v2/limited/tags/list':
          count('limited');
          res.statusCode = 429; res.setHeader('retry-after', '120');
          res.end('{"errors":[{"code":"TOOMANYREQUESTS","message":"try again in 120 s"}]}');
          return;
        case '/v2/reset/tags/list':
          if (count('reset') === 1) { req.socket.destroy(); return; }
          res.end('{"name":"reset","tags":["ok"]}');
          return;
        case '/v2/broken/tags/list':
          count('broken');
          res.statusCode = 500; res.end('{"errors":[{"code":"UNKNOWN","message":"boom"}]}');
          return;
        case '/v2/away/tags/list':
          res.statusCode = 307; res.setHeader('location', `http://localhost:${other.port}/somewhere`); res.end(); return;
        case '/v2/near/tags/list':
          res.statusCode = 307; res.setHeader('location', '/v2/near2/tags/list'); res.end(); return;
        case '/v2/near2/tags/list':
          res.end(JSON.stringify({ name: 'near', tags: [req.headers.authorization ? 'auth-kept' : 'auth-lost'] }));
          return;
        default: res.statusCode = 404; res.end();
      }
    });
  });
  after(() => { reg.server.close(); other.server.close(); });

  const transport = (retries = 4) => new Transport(reg.host, { credentials: async () => ({ username: 'bob', password: 'pw' }), retryBaseMs: 5, retries });

  it('answers a Basic challenge', async () => {
    assert.equal(await transport().authScheme(), 'basic');
    assert.deepEqual(await new RegistryClient(transport(), 'flaky').tags(), ['ok']);
  });

  it('retries 503 with backoff', async () => {
    hits.delete('flaky');
    assert.deepEqual(await new RegistryClient(transport(), 'flaky').tags(), ['ok']);
    assert.equal(hits.get('flaky'), 3);
  });

  it('waits as long as Retry-After says on 429', async () => {
    const start = Date.now();
    assert.deepEqual(await new RegistryClient(transport(), 'slow').tags(), ['ok']);
    assert.ok(Date.now() - start >= 950, `waited ${Date.now() - start} ms`);
    assert.equal(retryAfterMs('2'), 2000);
    assert.equal(retryAfterMs(new Date(Date.now() + 3000).toUTCString(), Date.now()) ! > 1000, true);
  });

  it('a Retry-After longer than it waits for fails at once with the registry\'s message, instead of a silent wait', async () => {
    const start = Date.now();
    await assert.rejects(new RegistryClient(transport(), 'limited').tags(), /429 TOOMANYREQUESTS: try again in 120 s/);
    assert.equal(hits.get('limited'), 1);
    assert.ok(Date.now() - start < 5000);
  });

  it('retries a connection reset', async () => {
    assert.deepEqual(await new RegistryClient(transport(), 'reset').tags(), ['ok']);
    assert.equal(hits.get('reset'), 2);
  });

  it('gives up after the configured retries with the registry\'s error', async () => {
    await assert.rejects(new RegistryClient(transport(2), 'broken').tags(), /500 UNKNOWN: boom/);
    assert.equal(hits.get('broken'), 3);
  });

  it('follows a redirect to another host without sending Authorization there', async () => {
    seenAuth.length = 0;
    const r = await transport().request({ method: 'GET', path: '/v2/away/tags/list', scopes: [] });
    assert.equal(r.body.toString(), 'elsewhere');
    assert.deepEqual(seenAuth, [undefined]);
  });

  it('keeps Authorization on a same-host redirect', async () => {
    assert.deepEqual(await new RegistryClient(transport(), 'near').tags(), ['auth-kept']);
  });

  it('an unreachable registry → NetworkError (exit code 5)', async () => {
    const t = new Transport('127.0.0.1:1', { retries: 1, retryBaseMs: 5 });
    await assert.rejects(t.ping(), (e: unknown) => (e as { exitCode?: number }).exitCode === ExitCode.Network && /cannot reach 127\.0\.0\.1:1/.test((e as Error).message));
  });

  it('a registry that accepts connections and never answers GET /v2/ is given up on, not retried for minutes', async () => {
    let connections = 0;
    const silent = createNetServer((socket) => { connections++; socket.on('error', () => undefined); });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const t = new Transport(`127.0.0.1:${(silent.address() as AddressInfo).port}`, { retries: 4, retryBaseMs: 5, timeoutMs: 300 });
      await assert.rejects(t.ping(), (e: unknown) => (e as { exitCode?: number }).exitCode === ExitCode.Network && /ETIMEDOUT/.test((e as Error).message));
      assert.equal(connections, 2, 'https, then plain http (loopback is insecure): once each');
    } finally {
      silent.close();
    }
  });
});

describe('listings a registry gets wrong', () => {
  let reg: Awaited<ReturnType<typeof serve>>;
  before(async () => {
    reg = await serve((req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.url === '/v2/') { res.end('{}'); return; }
      if (req.url!.startsWith('/v2/shape/tags/list')) { res.end('{"name":"shape","tags":"notalist"}'); return; }
      if (req.url!.startsWith('/v2/loop/tags/list')) { res.setHeader('link', '</v2/loop/tags/list?n=1&last=a>; rel="next"'); res.end('{"name":"loop","tags":["a"]}'); return; }
      if (req.url!.startsWith('/v2/_catalog')) { res.end('{"repositories":{"a":1}}'); return; }
      res.statusCode = 404;
      res.end('{}');
    });
  });
  after(() => { reg.server.close(); });

  it('a reply whose list is not a list of names is an error, not its characters one by one', async () => {
    const t = new Transport(reg.host, { retries: 0 });
    await assert.rejects(new RegistryClient(t, 'shape').tags(), /invalid tags list reply: "tags" is not a list of names/);
    await assert.rejects(catalog(t), /invalid catalog reply: "repositories" is not a list of names/);
  });

  it('a next-page link that comes round again ends the listing with an error instead of looping', async () => {
    await assert.rejects(new RegistryClient(new Transport(reg.host, { retries: 0 }), 'loop').tags(), /tags list pages loop/);
  });
});
