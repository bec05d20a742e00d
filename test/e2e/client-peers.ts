// Peers for the client e2e tests: a private Debian docker-registry 2.8 instance (never :5000) on a
// free loopback port, optionally behind htpasswd (Basic) or token (Bearer) auth with a token
// server run here, and fixtures built locally.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createPrivateKey, createSign, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, get, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';

export const DISTRIBUTION_BIN = '/usr/bin/docker-registry';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function waitForHttp(url: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const tryOnce = () => {
      const req = get(url, (res) => { res.resume(); resolve(); });
      req.on('error', () => {
        if (Date.now() > deadline) reject(new Error(`${url} did not come up`));
        else setTimeout(tryOnce, 100);
      });
    };
    tryOnce();
  });
}

export interface Distribution {
  host: string;
  root: string;
  stop(): Promise<void>;
  logs(): string;
}

export interface DistributionOptions {
  auth?: 'htpasswd' | 'token';
  users?: Record<string, string>;
}

/** A JWT token server in the shape distribution's token auth expects (RS256 with an x5c chain). */
async function startTokenServer(dir: string, users: Record<string, string>, service: string): Promise<{ server: Server; realm: string; certFile: string; requests: number }> {
  const keyFile = join(dir, 'token.key');
  const certFile = join(dir, 'token.crt');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=berth-test-token'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl failed: ${r.stderr}`);
  const key = createPrivateKey(await readFile(keyFile));
  const certDer = new X509Certificate(await readFile(certFile)).raw.toString('base64');
  const b64url = (v: Buffer | string) => Buffer.from(v).toString('base64url');
  const state = { requests: 0 };
  const server = createServer((req, res) => {
    state.requests++;
    const url = new URL(req.url!, 'http://x');
    const auth = req.headers.authorization ?? '';
    let subject = '';
    if (auth.startsWith('Basic ')) {
      const [u, ...p] = Buffer.from(auth.slice(6), 'base64').toString().split(':');
      if (users[u!] !== p.join(':')) { res.statusCode = 401; res.end('{"details":"incorrect username or password"}'); return; }
      subject = u!;
    }
    const access = url.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean).map((s) => {
      const [type, ...rest] = s.split(':');
      const actions = rest.pop()!.split(',');
      // anonymous users get nothing; known users get what they ask for
      return { type: type!, name: rest.join(':'), actions: subject ? actions : [] };
    });
    const now = Math.floor(Date.now() / 1000);
    const header = { alg: 'RS256', typ: 'JWT', x5c: [certDer] };
    const claims = { iss: 'berth-test-issuer', sub: subject, aud: service, exp: now + 300, nbf: now - 10, iat: now, jti: String(Math.random()), access };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const sig = createSign('RSA-SHA256').update(input).sign(key);
    const token = `${input}.${b64url(sig)}`;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ token, access_token: token, expires_in: 300, issued_at: new Date().toISOString() }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return { server, realm: `http://127.0.0.1:${port}/token`, certFile, get requests() { return state.requests; } };
}

export async function startDistribution(opts: DistributionOptions = {}): Promise<Distribution> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-distribution-'));
  const port = await freePort();
  const users = opts.users ?? { alice: 'wonderland' };
  let authYaml = '';
  let tokenServer: Server | undefined;
  if (opts.auth === 'htpasswd') {
    const lines = Object.entries(users).map(([u, p]) => `${u}:${bcrypt.hashSync(p, 5)}`);
    await writeFile(join(dir, 'htpasswd'), `${lines.join('\n')}\n`);
    authYaml = `auth:\n  htpasswd:\n    realm: berth-test\n    path: ${join(dir, 'htpasswd')}\n`;
  } else if (opts.auth === 'token') {
    const ts = await startTokenServer(dir, users, 'berth-test-registry');
    tokenServer = ts.server;
    authYaml = `auth:\n  token:\n    realm: ${ts.realm}\n    service: berth-test-registry\n    issuer: berth-test-issuer\n    rootcertbundle: ${ts.certFile}\n`;
  }
  const config = `version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${join(dir, 'data')}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:${port}
${authYaml}`;
  await writeFile(join(dir, 'config.yml'), config);
  const child: ChildProcess = spawn(DISTRIBUTION_BIN, ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, OTEL_TRACES_EXPORTER: 'none' } });
  let logs = '';
  child.stdout!.on('data', (d) => { logs += d; });
  child.stderr!.on('data', (d) => { logs += d; });
  try {
    await waitForHttp(`http://127.0.0.1:${port}/v2/`);
  } catch (e) {
    child.kill('SIGKILL');
    throw new Error(`docker-registry did not start: ${(e as Error).message}\n${logs}`);
  }
  return {
    host: `127.0.0.1:${port}`,
    root: dir,
    logs: () => logs,
    async stop() {
      if (child.exitCode === null) { child.kill('SIGTERM'); await once(child, 'exit'); }
      tokenServer?.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
