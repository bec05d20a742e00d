// openapi.yaml is the server's contract. (a) The document's error codes are exactly
// ERROR_CODES. (b) Real requests against in-process registries, covering every operation and
// its success and error paths, are checked response by response against the document, and
// every documented (operation, status, error code) must actually have been produced.
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { createApp } from '../../server/app.js';
import { createAuth } from '../../server/auth/index.js';
import { ERROR_CODES } from '../../server/errors.js';
import { blobItem } from '../../server/registry/gc-barrier.js';
import { paths } from '../../server/registry/paths.js';
import { matchRoute, ROUTES } from '../../server/routes/index.js';
import type { StorageAdapter } from '../../storage-adapters/types.js';
import { authFixture, basic, PASSWORDS } from '../helpers/auth.js';
import { OpenApiContract, type Exchange, type Node } from '../helpers/openapi.js';
import { testApp, type TestApp } from '../helpers/registry.js';

const contract = OpenApiContract.load();
const doc = contract.doc;

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_EMPTY = 'application/vnd.oci.empty.v1+json';
const OCTETS = 'application/octet-stream';

const sha256 = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const sha512 = (b: Buffer | string): string => `sha512:${createHash('sha512').update(b).digest('hex')}`;
const ABSENT = sha256('never pushed anywhere');

// ---------------------------------------------------------------- wire helpers

interface Sent extends Exchange {
  header(name: string): string | undefined;
  headerLines(name: string): string[];
  json(): Node;
}

interface SendOptions {
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** Sent with Transfer-Encoding: chunked (no Content-Length). */
  chunked?: Buffer;
}

async function listen(app: Parameters<typeof createServer>[1]): Promise<Server> {
  const server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Sends one request and fails the test unless the response conforms to openapi.yaml. */
async function send(server: Server, method: string, url: string, opts: SendOptions = {}): Promise<Sent> {
  const req = new request.Test(server, method, url);
  const requestHeaders: Record<string, string> = {};
  for (const [k, v] of Object.entries(opts.headers ?? {})) { req.set(k, v); requestHeaders[k.toLowerCase()] = v; }
  req.redirects(0).ok(() => true).buffer(true).parse(((res: IncomingMessage, cb: (err: Error | null, body: Buffer) => void) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => cb(null, Buffer.concat(chunks)));
  }) as unknown as Parameters<typeof req.parse>[0]);
  let requestBody: Buffer | undefined;
  if (opts.chunked) {
    requestBody = opts.chunked;
    req.write(opts.chunked);
  } else if (opts.body !== undefined) {
    requestBody = Buffer.from(opts.body);
    // Bytes as given: superagent would otherwise JSON-serialize a Buffer sent as a +json type.
    req.serialize(((data: Buffer) => data) as unknown as Parameters<typeof req.serialize>[0]).send(requestBody);
  }
  const res = await req;
  const raw = (res as unknown as { res: IncomingMessage }).res.rawHeaders;
  const exchange: Exchange = {
    method, url, requestHeaders, requestBody, status: res.status, rawHeaders: raw,
    body: Buffer.isBuffer(res.body) ? res.body : Buffer.alloc(0),
  };
  const problems = contract.check(exchange);
  assert.deepEqual(problems, [], `response does not match openapi.yaml:\n  ${problems.join('\n  ')}`);
  const lines = (name: string) => {
    const out: string[] = [];
    for (let i = 0; i + 1 < raw.length; i += 2) if (raw[i]!.toLowerCase() === name.toLowerCase()) out.push(raw[i + 1]!);
    return out;
  };
  return {
    ...exchange,
    header: (name) => lines(name)[0],
    headerLines: lines,
    json: () => JSON.parse(exchange.body.toString('utf8')),
  };
}

function expectError(x: Sent, status: number, code: string): void {
  assert.equal(x.status, status, `${x.method} ${x.url}: ${x.body.toString('utf8')}`);
  if (x.method !== 'HEAD') assert.equal(x.json().errors[0].code, code);
}

/**
 * Sends GET and then HEAD for `url`: HEAD must answer with GET's status and the same
 * representation headers (send() already checks that HEAD has no body). Returns the GET.
 */
async function getAndHead(server: Server, url: string, opts: SendOptions = {}): Promise<Sent> {
  const get = await send(server, 'GET', url, opts);
  const head = await send(server, 'HEAD', url, opts);
  assert.equal(head.status, get.status, `HEAD ${url} vs GET`);
  for (const h of ['Content-Type', 'Content-Length', 'Link', 'OCI-Filters-Applied', 'WWW-Authenticate']) {
    assert.equal(head.header(h), get.header(h), `HEAD ${url} vs GET: ${h}`);
  }
  assert.ok(get.body.length > 0, `GET ${url} has a body`);
  assert.equal(head.header('Content-Length'), String(get.body.length), `HEAD ${url}: Content-Length is the GET body's`);
  return get;
}

/** A storage adapter that behaves like `target` except for the overridden members. */
function overlay(target: StorageAdapter, overrides: Partial<Record<keyof StorageAdapter, unknown>>): StorageAdapter {
  return new Proxy(target, {
    get(t, p) {
      if (Object.prototype.hasOwnProperty.call(overrides, p)) return (overrides as Record<PropertyKey, unknown>)[p];
      const v = Reflect.get(t, p, t) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  });
}

/** A concrete request path for a template. */
function concrete(template: string, values: Record<string, string> = {}): string {
  const defaults: Record<string, string> = { name: 'a/b', reference: 'latest', digest: ABSENT, uuid: randomUUID() };
  return template.replace(/\{([^}]+)\}/g, (_, n: string) => values[n] ?? defaults[n]!);
}

// ---------------------------------------------------------------- (a) the document itself

describe('openapi.yaml: document', () => {
  const errorItem = doc.components.schemas.ErrorResponse.properties.errors.items;
  const enumCodes: string[] = errorItem.properties.code.enum;

  it('the ErrorResponse code enum is exactly the keys of ERROR_CODES', () => {
    assert.deepEqual([...enumCodes].sort(), Object.keys(ERROR_CODES).sort());
    assert.equal(new Set(enumCodes).size, enumCodes.length, 'duplicate codes in the enum');
  });

  it('every per-response code is a registry code sent with its registry status (or a known override), and only the reserved codes are never documented', () => {
    // The only places a code is sent with another status than its default: errors.ts callers,
    // and the form parser's client errors that toRegistryError passes through as UNSUPPORTED.
    const overrides = new Set(['SIZE_INVALID 413', 'SIZE_INVALID 416', 'UNSUPPORTED 400', 'UNSUPPORTED 413', 'UNSUPPORTED 415']);
    const used = new Set<string>();
    const visit = (responses: Node, where: string) => {
      for (const [status, r] of Object.entries<Node>(responses)) {
        for (const code of contract.codesOf(contract.resolve(r))) {
          used.add(code);
          assert.ok(code in ERROR_CODES, `${where} ${status}: unknown code ${code}`);
          const def = ERROR_CODES[code as keyof typeof ERROR_CODES].status;
          assert.ok(String(def) === status || overrides.has(`${code} ${status}`), `${where}: ${code} documented with ${status}, errors.ts says ${def}`);
        }
      }
    };
    for (const { method, template, operation } of contract.operations()) visit(operation.responses, `${method} ${template}`);
    for (const [template, item] of Object.entries<Node>(doc.paths)) if (item['x-berth-other-methods']) visit(item['x-berth-other-methods'], `other methods of ${template}`);
    visit(doc['x-berth-unmatched-requests'].responses, 'unmatched requests');
    const never = Object.keys(ERROR_CODES).filter((c) => !used.has(c)).sort();
    assert.deepEqual(never, [...doc['x-berth-reserved-error-codes'].codes].sort());
    for (const [code, { status }] of Object.entries(ERROR_CODES)) {
      if (!used.has(code)) assert.ok([401, 403, 429].includes(status), `${code} is never documented`);
    }
  });

  it('every response declares Docker-Distribution-API-Version and X-Request-Id as required', () => {
    const all: [string, Node][] = [];
    for (const { method, template, operation } of contract.operations()) {
      for (const [s, r] of Object.entries<Node>(operation.responses)) all.push([`${method} ${template} ${s}`, r]);
    }
    for (const [template, item] of Object.entries<Node>(doc.paths)) {
      for (const [s, r] of Object.entries<Node>(item['x-berth-other-methods'] ?? {})) all.push([`other ${template} ${s}`, r]);
    }
    for (const [s, r] of Object.entries<Node>(doc['x-berth-unmatched-requests'].responses)) all.push([`unmatched ${s}`, r]);
    for (const [where, r] of all) {
      const headers = contract.resolve(r).headers ?? {};
      for (const h of ['Docker-Distribution-API-Version', 'X-Request-Id']) {
        assert.ok(headers[h] && contract.resolve(headers[h]).required === true, `${where}: ${h} not declared as required`);
      }
      assert.ok(contract.resolve(r).description, `${where}: no description`);
    }
  });

  it('the /v2 paths are exactly the server route table (same routes, same methods)', () => {
    const covered = new Set<string>();
    for (const template of Object.keys(doc.paths)) {
      const found = matchRoute(concrete(template));
      if (!template.startsWith('/v2/')) { assert.equal(found, undefined, template); continue; }
      assert.ok(found, `${template} matches no server route`);
      covered.add(found.route.name);
      assert.deepEqual(Object.keys(found.route.methods).sort(), contract.methodsOf(template).sort(), `methods of ${template}`);
      assert.ok(doc.paths[template]['x-berth-other-methods']?.['405'], `${template} lacks x-berth-other-methods 405`);
    }
    assert.deepEqual([...covered].sort(), ROUTES.map((r) => r.name).sort());
  });

  it('every path parameter of every operation is declared, and every schema compiles', () => {
    for (const { method, template, operation } of contract.operations()) {
      const params = [...(doc.paths[template].parameters ?? []), ...(operation.parameters ?? [])].map((p: Node) => contract.resolve(p));
      const pathParams = params.filter((p: Node) => p.in === 'path').map((p: Node) => p.name).sort();
      const inTemplate = [...template.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort();
      assert.deepEqual(pathParams, inTemplate, `${method} ${template}`);
      for (const p of params) if (p.schema) contract.validator(p.schema);
      for (const r of Object.values<Node>(operation.responses)) {
        const resolved = contract.resolve(r);
        for (const h of Object.values<Node>(resolved.headers ?? {})) contract.validator(contract.resolve(h).schema);
        for (const m of Object.values<Node>(resolved.content ?? {})) if (m.schema) contract.validator(m.schema);
      }
    }
  });
});

// ---------------------------------------------------------------- (b) the contract, on the wire

describe('openapi.yaml: contract against the running server', () => {
  let main: TestApp;
  let server: Server;
  const extra: { server: Server; cleanup?: () => Promise<void> }[] = [];

  const REPO = 'contract/app';
  const OTHER = 'contract/other';
  const layer = randomBytes(300);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
  const empty = Buffer.from('{}');
  const image = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(layer), size: layer.length, newUnspecifiedField: null }],
  }, null, '\t'));
  const imageDigest = sha256(image);
  const artifact = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: 'application/vnd.example.sbom',
    config: { mediaType: OCI_EMPTY, digest: sha256(empty), size: empty.length },
    layers: [{ mediaType: OCI_EMPTY, digest: sha256(empty), size: empty.length }],
    subject: { mediaType: OCI_MANIFEST, digest: imageDigest, size: image.length },
    annotations: { 'org.example.test': 'contract' },
  }));
  const index = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [{ mediaType: OCI_MANIFEST, digest: imageDigest, size: image.length, platform: { os: 'linux', architecture: 'amd64' } }],
  }));

  const blobUrl = (repo: string, digest: string) => `/v2/${repo}/blobs/${digest}`;
  const manifestUrl = (repo: string, ref: string) => `/v2/${repo}/manifests/${ref}`;
  const pushBlob = async (srv: Server, repo: string, data: Buffer) => {
    const x = await send(srv, 'POST', `/v2/${repo}/blobs/uploads/?digest=${sha256(data)}`, { headers: { 'Content-Type': OCTETS }, body: data });
    assert.equal(x.status, 201);
  };
  const startUpload = async (srv: Server, repo: string): Promise<string> => {
    const x = await send(srv, 'POST', `/v2/${repo}/blobs/uploads/`);
    assert.equal(x.status, 202);
    return x.header('Location')!;
  };

  before(async () => {
    main = await testApp();
    server = await listen(main.app);
  });

  after(async () => {
    await close(server);
    await main.cleanup();
    for (const e of extra) { await close(e.server); await e.cleanup?.(); }
  });

  it('GET/HEAD /v2/ answer 200 and echo a valid X-Request-Id', async () => {
    const x = await send(server, 'GET', '/v2/', { headers: { 'X-Request-Id': 'contract-check.1' } });
    assert.equal(x.status, 200);
    assert.deepEqual(x.json(), {});
    assert.equal(x.header('X-Request-Id'), 'contract-check.1');
    const h = await send(server, 'HEAD', '/v2/', { headers: { 'X-Request-Id': 'not valid!' } });
    assert.equal(h.status, 200);
    assert.match(h.header('X-Request-Id')!, /^[0-9a-f-]{36}$/);
  });

  it('monolithic blob push (POST ?digest=) and its errors', async () => {
    for (const data of [config, layer, empty]) await pushBlob(server, REPO, data);
    const created = await send(server, 'POST', `/v2/${REPO}/blobs/uploads/?digest=${sha256(layer)}`, { headers: { 'Content-Type': OCTETS }, body: layer });
    assert.equal(created.header('Location'), blobUrl(REPO, sha256(layer)));
    assert.equal(created.header('Docker-Content-Digest'), sha256(layer));

    expectError(await send(server, 'POST', `/v2/${REPO}/blobs/uploads/?digest=${sha256('something else')}`, { headers: { 'Content-Type': OCTETS }, body: layer }), 400, 'DIGEST_INVALID');
    expectError(await send(server, 'POST', `/v2/${REPO}/blobs/uploads/?digest=sha256:nothex`, { headers: { 'Content-Type': OCTETS }, body: layer }), 400, 'DIGEST_INVALID');
    expectError(await send(server, 'POST', `/v2/${REPO}/blobs/uploads/?digest=${sha256(layer)}&digest=${sha256(layer)}`, { headers: { 'Content-Type': OCTETS }, body: layer }), 400, 'UNSUPPORTED');
    expectError(await send(server, 'POST', '/v2/Not_A/Valid..Name/blobs/uploads/'), 400, 'NAME_INVALID');
  });

  it('chunked upload: POST, PATCH with Content-Range, status, out-of-order 416, PUT with the last chunk', async () => {
    const blob = randomBytes(42);
    const loc = await startUpload(server, REPO);
    const uuid = loc.slice(loc.lastIndexOf('/') + 1);

    let x = await send(server, 'GET', loc);
    assert.equal(x.status, 204);
    assert.equal(x.header('Range'), '0-0');
    assert.equal(x.header('Docker-Upload-UUID'), uuid);

    x = await send(server, 'PATCH', loc, { headers: { 'Content-Type': OCTETS, 'Content-Range': '0-21' }, body: blob.subarray(0, 22) });
    assert.equal(x.status, 202);
    assert.equal(x.header('Range'), '0-21');
    assert.equal(x.header('Location'), loc);

    // Out of order: 416 with the session state, and the session survives.
    x = await send(server, 'PATCH', loc, { headers: { 'Content-Type': OCTETS, 'Content-Range': '30-41' }, body: blob.subarray(30, 42) });
    expectError(x, 416, 'RANGE_INVALID');
    assert.equal(x.header('Range'), '0-21');
    assert.equal(x.header('Location'), loc);
    // Malformed Content-Range, and a Content-Length that contradicts it.
    expectError(await send(server, 'PATCH', loc, { headers: { 'Content-Type': OCTETS, 'Content-Range': 'twenty-two' }, body: blob.subarray(22, 30) }), 416, 'RANGE_INVALID');
    expectError(await send(server, 'PATCH', loc, { headers: { 'Content-Type': OCTETS, 'Content-Range': '22-41' }, body: blob.subarray(22, 30) }), 416, 'SIZE_INVALID');
    // Chunked transfer: the announced length is only known wrong after reading.
    expectError(await send(server, 'PATCH', loc, { headers: { 'Content-Type': OCTETS, 'Content-Range': '22-41' }, chunked: blob.subarray(22, 30) }), 400, 'SIZE_INVALID');

    x = await send(server, 'GET', loc);
    assert.equal(x.status, 204);
    assert.equal(x.header('Range'), '0-21');

    // The final PUT: its own failure modes first, the session stays usable.
    expectError(await send(server, 'PUT', loc), 400, 'DIGEST_INVALID');
    expectError(await send(server, 'PUT', `${loc}?digest=sha256:short`), 400, 'DIGEST_INVALID');
    expectError(await send(server, 'PUT', `${loc}?digest=${sha256(blob)}&digest=${sha256(blob)}`), 400, 'UNSUPPORTED');
    expectError(await send(server, 'PUT', `${loc}?digest=${sha256(blob)}`, { headers: { 'Content-Type': OCTETS, 'Content-Range': '23-41' }, body: blob.subarray(23) }), 416, 'RANGE_INVALID');
    expectError(await send(server, 'PUT', `${loc}?digest=${sha256(blob)}`, { headers: { 'Content-Type': OCTETS, 'Content-Range': '22-41' }, body: blob.subarray(22, 40) }), 416, 'SIZE_INVALID');
    expectError(await send(server, 'PUT', `${loc}?digest=${sha256(blob)}`, { headers: { 'Content-Type': OCTETS, 'Content-Range': '22-41' }, chunked: blob.subarray(22, 40) }), 400, 'SIZE_INVALID');
    expectError(await send(server, 'PUT', `${loc}?digest=${sha256(randomBytes(4))}`), 400, 'DIGEST_INVALID');

    x = await send(server, 'PUT', `${loc}?digest=${sha512(blob)}`, { headers: { 'Content-Type': OCTETS, 'Content-Range': '22-41' }, body: blob.subarray(22) });
    assert.equal(x.status, 201);
    assert.equal(x.header('Location'), blobUrl(REPO, sha512(blob)));
    x = await send(server, 'GET', blobUrl(REPO, sha512(blob)));
    assert.equal(x.status, 200);
    assert.deepEqual(x.body, blob);
    // Finished: the session is gone.
    expectError(await send(server, 'GET', loc), 404, 'BLOB_UPLOAD_UNKNOWN');
  });

  it('streamed PATCH without Content-Range, and a PUT without a body', async () => {
    const blob = randomBytes(100);
    const loc = await startUpload(server, REPO);
    let x = await send(server, 'PATCH', loc, { headers: { 'Content-Type': OCTETS }, chunked: blob });
    assert.equal(x.status, 202);
    assert.equal(x.header('Range'), '0-99');
    x = await send(server, 'PUT', `${loc}?digest=${sha256(blob)}`);
    assert.equal(x.status, 201);
  });

  it('upload sessions: unknown ids, bad names, cancel', async () => {
    const unknown = `/v2/${REPO}/blobs/uploads/${randomUUID()}`;
    expectError(await send(server, 'GET', unknown), 404, 'BLOB_UPLOAD_UNKNOWN');
    expectError(await send(server, 'GET', `/v2/${REPO}/blobs/uploads/not-a-uuid`), 404, 'BLOB_UPLOAD_UNKNOWN');
    expectError(await send(server, 'PATCH', unknown, { headers: { 'Content-Type': OCTETS }, body: 'abc' }), 404, 'BLOB_UPLOAD_UNKNOWN');
    expectError(await send(server, 'PUT', `${unknown}?digest=${sha256('abc')}`), 404, 'BLOB_UPLOAD_UNKNOWN');
    expectError(await send(server, 'PUT', unknown), 404, 'BLOB_UPLOAD_UNKNOWN');
    expectError(await send(server, 'DELETE', unknown), 404, 'BLOB_UPLOAD_UNKNOWN');
    const bad = `/v2/UPPER/blobs/uploads/${randomUUID()}`;
    expectError(await send(server, 'GET', bad), 400, 'NAME_INVALID');
    expectError(await send(server, 'PATCH', bad, { headers: { 'Content-Type': OCTETS }, body: 'abc' }), 400, 'NAME_INVALID');
    expectError(await send(server, 'PUT', `${bad}?digest=${sha256('abc')}`), 400, 'NAME_INVALID');
    expectError(await send(server, 'DELETE', bad), 400, 'NAME_INVALID');

    const loc = await startUpload(server, REPO);
    // A session belongs to its repository.
    expectError(await send(server, 'GET', loc.replace(REPO, OTHER)), 404, 'BLOB_UPLOAD_UNKNOWN');
    const x = await send(server, 'DELETE', loc);
    assert.equal(x.status, 204);
    expectError(await send(server, 'GET', loc), 404, 'BLOB_UPLOAD_UNKNOWN');
    expectError(await send(server, 'DELETE', loc), 404, 'BLOB_UPLOAD_UNKNOWN');
  });

  it('cross-repository mount: from a repository, automatic, missing, and errors', async () => {
    let x = await send(server, 'POST', `/v2/${OTHER}/blobs/uploads/?mount=${sha256(layer)}&from=${REPO}`);
    assert.equal(x.status, 201);
    assert.equal(x.header('Location'), blobUrl(OTHER, sha256(layer)));
    x = await send(server, 'GET', blobUrl(OTHER, sha256(layer)));
    assert.deepEqual(x.body, layer);

    x = await send(server, 'POST', `/v2/contract/auto/blobs/uploads/?mount=${sha256(config)}`);
    assert.equal(x.status, 201, 'automatic cross-mount is on by default');
    x = await send(server, 'POST', `/v2/${OTHER}/blobs/uploads/?mount=${ABSENT}&from=${REPO}`);
    assert.equal(x.status, 202);
    assert.match(x.header('Location')!, new RegExp(`^/v2/${OTHER}/blobs/uploads/`));
    x = await send(server, 'POST', `/v2/${OTHER}/blobs/uploads/?mount=${sha256(config)}&from=contract/nothing-here`);
    assert.equal(x.status, 202);

    expectError(await send(server, 'POST', `/v2/${OTHER}/blobs/uploads/?mount=md5:abc&from=${REPO}`), 400, 'DIGEST_INVALID');
    expectError(await send(server, 'POST', `/v2/${OTHER}/blobs/uploads/?mount=${sha256(layer)}&from=..%2Fetc`), 400, 'NAME_INVALID');
    expectError(await send(server, 'POST', `/v2/${OTHER}/blobs/uploads/?mount=${sha256(layer)}&from=${REPO}&from=${REPO}`), 400, 'UNSUPPORTED');
  });

  it('manifest push by tag and by digest (tag query → one OCI-Tag line each), fetch, HEAD, 304', async () => {
    let x = await send(server, 'PUT', manifestUrl(REPO, 'latest'), { headers: { 'Content-Type': OCI_MANIFEST }, body: image });
    assert.equal(x.status, 201);
    assert.equal(x.header('Location'), manifestUrl(REPO, imageDigest));
    assert.equal(x.header('Docker-Content-Digest'), imageDigest);
    assert.deepEqual(x.headerLines('OCI-Tag'), []);

    x = await send(server, 'PUT', `${manifestUrl(REPO, imageDigest)}?tag=v1&tag=v2`, { headers: { 'Content-Type': OCI_MANIFEST }, body: image });
    assert.equal(x.status, 201);
    assert.deepEqual(x.headerLines('OCI-Tag'), ['v1', 'v2']);

    for (const ref of ['latest', imageDigest]) {
      x = await send(server, 'GET', manifestUrl(REPO, ref), { headers: { Accept: OCI_MANIFEST } });
      assert.equal(x.status, 200);
      assert.equal(x.header('Content-Type'), OCI_MANIFEST);
      assert.deepEqual(x.body, image);
      x = await send(server, 'HEAD', manifestUrl(REPO, ref));
      assert.equal(x.status, 200);
      assert.equal(x.header('Content-Length'), String(image.length));
    }
    x = await send(server, 'GET', manifestUrl(REPO, 'v1'), { headers: { 'If-None-Match': `"${imageDigest}"` } });
    assert.equal(x.status, 304);
    x = await send(server, 'HEAD', manifestUrl(REPO, 'v1'), { headers: { 'If-None-Match': `"${imageDigest}"` } });
    assert.equal(x.status, 304);

    // An index of it, pushed with a generic Content-Type (media type from the body).
    x = await send(server, 'PUT', manifestUrl(REPO, 'multi'), { headers: { 'Content-Type': 'application/json' }, body: index });
    assert.equal(x.status, 201);
    x = await send(server, 'GET', manifestUrl(REPO, 'multi'));
    assert.equal(x.header('Content-Type'), OCI_INDEX);
  });

  it('manifest errors: unknown, invalid tag/digest/name, bad body, missing blobs, too large', async () => {
    for (const method of ['GET', 'HEAD']) {
      expectError(await send(server, method, manifestUrl(REPO, 'nope')), 404, 'MANIFEST_UNKNOWN');
      expectError(await send(server, method, manifestUrl(REPO, '.INVALID_MANIFEST_NAME')), 404, 'MANIFEST_UNKNOWN');
      expectError(await send(server, method, manifestUrl(REPO, ABSENT)), 404, 'MANIFEST_UNKNOWN');
      expectError(await send(server, method, manifestUrl('contract/never', 'latest')), 404, 'MANIFEST_UNKNOWN');
      expectError(await send(server, method, manifestUrl(REPO, 'sha256:totallywrong')), 400, 'DIGEST_INVALID');
      expectError(await send(server, method, manifestUrl('Bad/Name', 'latest')), 400, 'NAME_INVALID');
    }
    const put = (ref: string, body: Buffer | string, type = OCI_MANIFEST, query = '') =>
      send(server, 'PUT', `${manifestUrl(REPO, ref)}${query}`, { headers: { 'Content-Type': type }, body });
    expectError(await put('latest', image, OCI_MANIFEST, '?tag=other'), 400, 'MANIFEST_INVALID');
    expectError(await put(imageDigest, image, OCI_MANIFEST, '?tag=-bad'), 400, 'TAG_INVALID');
    expectError(await put('-bad', image), 400, 'TAG_INVALID');
    expectError(await put(ABSENT, image), 400, 'DIGEST_INVALID');
    expectError(await put('sha256:baddigeststring', image), 400, 'DIGEST_INVALID');
    expectError(await put('blablabla', 'blablabla'), 400, 'MANIFEST_INVALID');
    expectError(await put('index-as-image', index, OCI_MANIFEST), 400, 'MANIFEST_INVALID');
    expectError(await send(server, 'PUT', manifestUrl('Bad/Name', 'latest'), { headers: { 'Content-Type': OCI_MANIFEST }, body: image }), 400, 'NAME_INVALID');

    const missing = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: ABSENT, size: 3 }, layers: [],
    }));
    const x = await put('missing', missing);
    expectError(x, 404, 'MANIFEST_BLOB_UNKNOWN');
    assert.deepEqual(x.json().errors[0].detail, { digests: [ABSENT] });

    const huge = Buffer.concat([Buffer.from('{"schemaVersion":2,"x":"'), Buffer.alloc(4 << 20, 'a'), Buffer.from('"}')]);
    expectError(await put('huge', huge), 413, 'SIZE_INVALID');
    expectError(await send(server, 'PUT', manifestUrl(REPO, 'huge'), { headers: { 'Content-Type': OCI_MANIFEST }, chunked: huge }), 413, 'SIZE_INVALID');
  });

  it('referrers: a manifest with a subject, OCI-Subject, artifactType filter, errors', async () => {
    let x = await send(server, 'PUT', manifestUrl(REPO, sha256(artifact)), { headers: { 'Content-Type': OCI_MANIFEST }, body: artifact });
    assert.equal(x.status, 201);
    assert.equal(x.header('OCI-Subject'), imageDigest);

    x = await getAndHead(server, `/v2/${REPO}/referrers/${imageDigest}`);
    assert.equal(x.status, 200);
    assert.equal(x.header('Content-Type'), OCI_INDEX);
    assert.equal(x.header('OCI-Filters-Applied'), undefined);
    assert.deepEqual(x.json().manifests, [{
      mediaType: OCI_MANIFEST, digest: sha256(artifact), size: artifact.length,
      artifactType: 'application/vnd.example.sbom', annotations: { 'org.example.test': 'contract' },
    }]);
    x = await getAndHead(server, `/v2/${REPO}/referrers/${imageDigest}?artifactType=application/vnd.example.sbom`);
    assert.equal(x.header('OCI-Filters-Applied'), 'artifactType');
    assert.equal(x.json().manifests.length, 1);
    x = await send(server, 'GET', `/v2/${REPO}/referrers/${imageDigest}?artifactType=application/other`);
    assert.deepEqual(x.json().manifests, []);
    x = await getAndHead(server, `/v2/contract/never/referrers/${ABSENT}`);
    assert.equal(x.status, 200);
    assert.deepEqual(x.json().manifests, []);

    expectError(await getAndHead(server, `/v2/${REPO}/referrers/sha256:nope`), 400, 'DIGEST_INVALID');
    expectError(await getAndHead(server, `/v2/BAD/referrers/${imageDigest}`), 400, 'NAME_INVALID');
    expectError(await getAndHead(server, `/v2/${REPO}/referrers/${imageDigest}?artifactType=a&artifactType=b`), 400, 'UNSUPPORTED');
  });

  it('tag list (GET and HEAD): full, paginated with Link, errors', async () => {
    let x = await getAndHead(server, `/v2/${REPO}/tags/list`);
    assert.equal(x.status, 200);
    assert.equal(x.header('Content-Type'), 'application/json');
    assert.deepEqual(x.json(), { name: REPO, tags: ['latest', 'multi', 'v1', 'v2'] });
    assert.equal(x.header('Link'), undefined);
    x = await getAndHead(server, `/v2/${REPO}/tags/list?n=2`);
    assert.deepEqual(x.json().tags, ['latest', 'multi']);
    assert.equal(x.header('Link'), `</v2/${REPO}/tags/list?n=2&last=multi>; rel="next"`);
    x = await getAndHead(server, `/v2/${REPO}/tags/list?n=2&last=multi`);
    assert.deepEqual(x.json().tags, ['v1', 'v2']);
    assert.equal(x.header('Link'), undefined);
    x = await getAndHead(server, `/v2/${REPO}/tags/list?n=0`);
    assert.deepEqual(x.json().tags, []);
    x = await getAndHead(server, `/v2/${OTHER}/tags/list`);
    assert.deepEqual(x.json(), { name: OTHER, tags: [] }, 'a repository with only blobs exists');

    expectError(await getAndHead(server, `/v2/${REPO}/tags/list?n=-1`), 400, 'PAGINATION_NUMBER_INVALID');
    expectError(await getAndHead(server, `/v2/${REPO}/tags/list?n=1&n=2`), 400, 'UNSUPPORTED');
    expectError(await getAndHead(server, '/v2/-bad-/tags/list'), 400, 'NAME_INVALID');
    expectError(await getAndHead(server, '/v2/contract/never/tags/list'), 404, 'NAME_UNKNOWN');
  });

  it('catalog (GET and HEAD): full, paginated with Link, errors', async () => {
    let x = await getAndHead(server, '/v2/_catalog');
    assert.equal(x.status, 200);
    assert.equal(x.header('Content-Type'), 'application/json');
    assert.deepEqual(x.json(), { repositories: ['contract/app', 'contract/auto', 'contract/other'] });
    x = await getAndHead(server, '/v2/_catalog?n=1&last=contract/app');
    assert.deepEqual(x.json().repositories, ['contract/auto']);
    assert.equal(x.header('Link'), `</v2/_catalog?n=1&last=${encodeURIComponent('contract/auto')}>; rel="next"`);
    expectError(await getAndHead(server, '/v2/_catalog?n=ten'), 400, 'PAGINATION_NUMBER_INVALID');
    expectError(await getAndHead(server, '/v2/_catalog?last=a&last=b'), 400, 'UNSUPPORTED');
  });

  it('blob GET/HEAD: 200, Range → 206, unsatisfiable → 416, If-None-Match → 304, unknown, bad digest', async () => {
    const d = sha256(layer);
    for (const method of ['GET', 'HEAD']) {
      let x = await send(server, method, blobUrl(REPO, d));
      assert.equal(x.status, 200);
      assert.equal(x.header('Content-Length'), String(layer.length));
      assert.equal(x.header('ETag'), `"${d}"`);
      if (method === 'GET') assert.deepEqual(x.body, layer);

      x = await send(server, method, blobUrl(REPO, d), { headers: { Range: 'bytes=10-19' } });
      assert.equal(x.status, 206);
      assert.equal(x.header('Content-Range'), `bytes 10-19/${layer.length}`);
      if (method === 'GET') assert.deepEqual(x.body, layer.subarray(10, 20));
      x = await send(server, method, blobUrl(REPO, d), { headers: { Range: 'bytes=-5' } });
      assert.equal(x.status, 206);
      assert.equal(x.header('Content-Range'), `bytes ${layer.length - 5}-${layer.length - 1}/${layer.length}`);
      x = await send(server, method, blobUrl(REPO, d), { headers: { Range: 'bytes=250-5000' } });
      assert.equal(x.header('Content-Range'), `bytes 250-${layer.length - 1}/${layer.length}`);

      for (const range of ['bytes=5000-10000', 'bytes=50-0']) {
        x = await send(server, method, blobUrl(REPO, d), { headers: { Range: range } });
        expectError(x, 416, 'RANGE_INVALID');
        assert.equal(x.header('Content-Range'), `bytes */${layer.length}`);
      }
      for (const inm of [`"${d}"`, d]) {
        x = await send(server, method, blobUrl(REPO, d), { headers: { 'If-None-Match': inm } });
        assert.equal(x.status, 304);
      }
      expectError(await send(server, method, blobUrl(REPO, ABSENT)), 404, 'BLOB_UNKNOWN');
      expectError(await send(server, method, blobUrl('contract/never', d)), 404, 'BLOB_UNKNOWN');
      expectError(await send(server, method, blobUrl(REPO, 'sha256:xyz')), 400, 'DIGEST_INVALID');
      expectError(await send(server, method, blobUrl('x/Y', d)), 400, 'NAME_INVALID');
    }
  });

  it('deletes: tag, manifest by digest (removes its tags and referrer entry), blob; then 404s; bad input', async () => {
    let x = await send(server, 'DELETE', manifestUrl(REPO, 'v2'));
    assert.equal(x.status, 202);
    expectError(await send(server, 'HEAD', manifestUrl(REPO, 'v2')), 404, 'MANIFEST_UNKNOWN');
    expectError(await send(server, 'DELETE', manifestUrl(REPO, 'v2')), 404, 'MANIFEST_UNKNOWN');
    expectError(await send(server, 'DELETE', manifestUrl(REPO, '.bad')), 404, 'MANIFEST_UNKNOWN');

    x = await send(server, 'DELETE', manifestUrl(REPO, sha256(artifact)));
    assert.equal(x.status, 202);
    x = await send(server, 'GET', `/v2/${REPO}/referrers/${imageDigest}`);
    assert.deepEqual(x.json().manifests, []);
    x = await send(server, 'DELETE', manifestUrl(REPO, imageDigest));
    assert.equal(x.status, 202);
    expectError(await send(server, 'GET', manifestUrl(REPO, 'latest')), 404, 'MANIFEST_UNKNOWN');
    expectError(await send(server, 'DELETE', manifestUrl(REPO, imageDigest)), 404, 'MANIFEST_UNKNOWN');
    expectError(await send(server, 'DELETE', manifestUrl(REPO, 'sha256:1234')), 400, 'DIGEST_INVALID');
    expectError(await send(server, 'DELETE', manifestUrl('Bad', 'latest')), 400, 'NAME_INVALID');

    x = await send(server, 'DELETE', blobUrl(REPO, sha256(layer)));
    assert.equal(x.status, 202);
    expectError(await send(server, 'GET', blobUrl(REPO, sha256(layer))), 404, 'BLOB_UNKNOWN');
    x = await send(server, 'GET', blobUrl(OTHER, sha256(layer)));
    assert.equal(x.status, 200, 'other repositories keep their link');
    expectError(await send(server, 'DELETE', blobUrl(REPO, sha256(layer))), 404, 'BLOB_UNKNOWN');
    expectError(await send(server, 'DELETE', blobUrl(REPO, 'sha256:1234')), 400, 'DIGEST_INVALID');
    expectError(await send(server, 'DELETE', blobUrl('Bad', sha256(layer))), 400, 'NAME_INVALID');
  });

  it('deletes disabled (storage.delete.enabled: false) → 405 UNSUPPORTED with Allow listing the route\'s other methods', async () => {
    const t = await testApp({ deleteEnabled: false });
    const srv = await listen(t.app);
    extra.push({ server: srv, cleanup: t.cleanup });
    await pushBlob(srv, REPO, config);
    await pushBlob(srv, REPO, layer);
    assert.equal((await send(srv, 'PUT', manifestUrl(REPO, 'latest'), { headers: { 'Content-Type': OCI_MANIFEST }, body: image })).status, 201);
    for (const [url, allow] of [
      [manifestUrl(REPO, 'latest'), 'GET, HEAD, PUT'],
      [manifestUrl(REPO, imageDigest), 'GET, HEAD, PUT'],
      [blobUrl(REPO, sha256(layer)), 'GET, HEAD'],
    ]) {
      const x = await send(srv, 'DELETE', url!);
      expectError(x, 405, 'UNSUPPORTED');
      assert.match(x.json().errors[0].message, /deletes are disabled/);
      assert.deepEqual(x.headerLines('Allow'), [allow]);
    }
    // The name is still checked first.
    expectError(await send(srv, 'DELETE', manifestUrl('Bad', 'latest')), 400, 'NAME_INVALID');
    assert.equal((await send(srv, 'GET', manifestUrl(REPO, 'latest'))).status, 200, 'nothing was deleted');
  });

  it('read-only (storage.maintenance.readonly) → 405 UNSUPPORTED on every write and delete, Allow listing the reads; reads work', async () => {
    const t = await testApp({ readOnly: true });
    const srv = await listen(t.app);
    extra.push({ server: srv, cleanup: t.cleanup });
    const writes = contract.operations().filter(({ method, template }) => template.startsWith('/v2/') && !['GET', 'HEAD'].includes(method));
    assert.deepEqual(writes.map(({ method, template }) => `${method} ${template}`).sort(), [
      'DELETE /v2/{name}/blobs/uploads/{uuid}', 'DELETE /v2/{name}/blobs/{digest}', 'DELETE /v2/{name}/manifests/{reference}',
      'PATCH /v2/{name}/blobs/uploads/{uuid}', 'POST /v2/{name}/blobs/uploads/', 'PUT /v2/{name}/blobs/uploads/{uuid}', 'PUT /v2/{name}/manifests/{reference}',
    ]);
    for (const { method, template } of writes) {
      const x = await send(srv, method, concrete(template, { name: REPO }), { headers: { 'Content-Type': 'application/octet-stream' }, body: Buffer.from('x') });
      expectError(x, 405, 'UNSUPPORTED');
      assert.match(x.json().errors[0].message, /read-only/);
      assert.deepEqual(x.headerLines('Allow'), [template.endsWith('/uploads/') ? '' : template.endsWith('{uuid}') ? 'GET' : 'GET, HEAD']);
    }
    assert.equal((await send(srv, 'GET', '/v2/')).status, 200);
    assert.equal((await send(srv, 'GET', manifestUrl(REPO, 'latest'))).status, 404, 'reads are served (nothing is stored here)');
  });

  it('blob GET/HEAD → 307 when the storage offers a direct URL', async () => {
    const t = await testApp();
    const storage = overlay(t.storage, {
      redirectUrl: async (key: string, method: string) => `https://blobs.example.test${key}?method=${method}&sig=x`,
    });
    const srv = await listen(createApp({ deleteEnabled: true }, { storage }));
    extra.push({ server: srv, cleanup: t.cleanup });
    await pushBlob(srv, REPO, layer);
    for (const method of ['GET', 'HEAD']) {
      const x = await send(srv, method, blobUrl(REPO, sha256(layer)));
      assert.equal(x.status, 307);
      assert.match(x.header('Location')!, /^https:\/\/blobs\.example\.test\/blobs\/sha256\//);
      assert.equal(x.header('Docker-Content-Digest'), sha256(layer));
    }
    expectError(await send(srv, 'GET', blobUrl(REPO, ABSENT)), 404, 'BLOB_UNKNOWN');
  });

  it('unknown paths → 404 NOT_FOUND; wrong methods → 405 with Allow (404 on /metrics and /healthz)', async () => {
    for (const url of ['/nope', '/v2/contract/app', '/v2/contract/app/unknown/thing', '/v3/']) {
      const x = await send(server, 'GET', url);
      expectError(x, 404, 'NOT_FOUND');
      assert.deepEqual(x.json().errors[0].detail, { method: 'GET', path: url });
    }
    expectError(await send(server, 'HEAD', '/nope'), 404, 'NOT_FOUND');
    for (const template of Object.keys(doc.paths)) {
      const documented = contract.methodsOf(template);
      const method = ['PATCH', 'POST', 'DELETE', 'PUT'].find((m) => !documented.includes(m))!;
      const x = await send(server, method, concrete(template));
      if (template.startsWith('/v2/')) {
        expectError(x, 405, 'UNSUPPORTED');
        assert.deepEqual(x.json().errors[0].detail, { method });
      } else {
        expectError(x, 404, 'NOT_FOUND');
      }
    }
    // HEAD is only routed where listed (not on the upload routes).
    let x = await send(server, 'HEAD', `/v2/${REPO}/blobs/uploads/${randomUUID()}`);
    expectError(x, 405, 'UNSUPPORTED');
    assert.equal(x.header('Allow'), 'GET, PATCH, PUT, DELETE');
    x = await send(server, 'HEAD', `/v2/${REPO}/blobs/uploads/`);
    expectError(x, 405, 'UNSUPPORTED');
    assert.equal(x.header('Allow'), 'POST');
    x = await send(server, 'PUT', `/v2/${REPO}/tags/list`);
    assert.equal(x.header('Allow'), 'GET, HEAD');
    expectError(await send(server, 'OPTIONS', '/v2/'), 405, 'UNSUPPORTED');
  });

  it('/metrics and /healthz', async () => {
    let x = await send(server, 'GET', '/metrics');
    assert.equal(x.status, 200);
    assert.match(x.body.toString('utf8'), /berth_http_requests_total\{/);
    x = await send(server, 'HEAD', '/metrics');
    assert.equal(x.status, 200);
    x = await send(server, 'GET', '/healthz');
    assert.deepEqual(x.json(), { status: 'ok', storage: 'filesystem' });
    x = await send(server, 'HEAD', '/healthz');
    assert.equal(x.status, 200);
  });

  it('auth off: /auth/token does not exist', async () => {
    for (const method of ['GET', 'HEAD', 'POST', 'OPTIONS']) expectError(await send(server, method, '/auth/token'), 404, 'NOT_FOUND');
  });

  it('htpasswd auth: 401 + Basic challenge, 403 DENIED for signed-in users without the right, on every /v2 operation', async () => {
    const f = await authFixture('htpasswd');
    const srv = await listen(f.app);
    extra.push({ server: srv, cleanup: () => rm(f.dir, { recursive: true, force: true }) });
    const alice = basic('alice', PASSWORDS.alice);
    const carol = basic('carol', PASSWORDS.carol);
    const withBody = (method: string, template: string): SendOptions => (
      template.includes('/manifests/') && method === 'PUT' ? { headers: { 'Content-Type': OCI_MANIFEST }, body: image }
        : method === 'PATCH' || method === 'POST' ? { headers: { 'Content-Type': OCTETS }, body: 'abc' } : {});
    for (const { method, template } of contract.operations()) {
      if (!template.startsWith('/v2/')) continue;
      // acme/other: nobody but admins may touch it.
      const url = concrete(template, { name: 'acme/other', digest: sha256(layer), reference: 'latest' });
      const opts = withBody(method, template);
      let x = await send(srv, method, url, { ...opts, headers: { ...opts.headers, Authorization: basic('alice', 'wrong') } });
      expectError(x, 401, 'UNAUTHORIZED');
      assert.equal(x.header('WWW-Authenticate'), 'Basic realm="berth-test", charset="UTF-8"');
      if (template === '/v2/' || template === '/v2/_catalog') continue;
      x = await send(srv, method, url, opts);
      expectError(x, 401, 'UNAUTHORIZED');
      x = await send(srv, method, url, { ...opts, headers: { ...opts.headers, Authorization: carol } });
      expectError(x, 403, 'DENIED');
    }
    expectError(await send(srv, 'GET', '/v2/'), 401, 'UNAUTHORIZED');
    assert.equal((await send(srv, 'GET', '/v2/', { headers: { Authorization: carol } })).status, 200);
    // Names are checked before credentials.
    expectError(await send(srv, 'GET', '/v2/Acme/tags/list'), 400, 'NAME_INVALID');

    // alice may push to acme/* (team grant); carol may only pull acme/app.
    let x = await send(srv, 'POST', `/v2/acme/app/blobs/uploads/?digest=${sha256(layer)}`, { headers: { 'Content-Type': OCTETS, Authorization: alice }, body: layer });
    assert.equal(x.status, 201);
    x = await send(srv, 'GET', blobUrl('acme/app', sha256(layer)), { headers: { Authorization: carol } });
    assert.deepEqual(x.body, layer);
    // Mounting needs pull on the source, and automatic cross-mount is off with auth.
    x = await send(srv, 'POST', `/v2/alice/app/blobs/uploads/?mount=${sha256(layer)}&from=acme/app`, { headers: { Authorization: alice } });
    assert.equal(x.status, 201);
    x = await send(srv, 'POST', `/v2/carol/app/blobs/uploads/?mount=${sha256(layer)}&from=alice/app`, { headers: { Authorization: carol } });
    assert.equal(x.status, 202);
    x = await send(srv, 'POST', `/v2/carol/app/blobs/uploads/?mount=${sha256(layer)}`, { headers: { Authorization: carol } });
    assert.equal(x.status, 202);
    // The catalog shows what the caller may pull.
    assert.deepEqual((await send(srv, 'GET', '/v2/_catalog', { headers: { Authorization: carol } })).json().repositories, ['acme/app']);
    assert.deepEqual((await send(srv, 'GET', '/v2/_catalog')).json().repositories, []);
    // Past auth.maxloginfailures, a sign-in not verified before is 429.
    const throttled = await listen(createApp({}, { storage: f.storage, auth: await createAuth({ ...f.config, maxLoginFailures: 1 }) }));
    extra.push({ server: throttled, cleanup: async () => undefined });
    expectError(await send(throttled, 'GET', '/v2/', { headers: { Authorization: basic('alice', 'wrong') } }), 401, 'UNAUTHORIZED');
    x = await send(throttled, 'GET', '/v2/', { headers: { Authorization: alice } });
    expectError(x, 429, 'TOOMANYREQUESTS');
    assert.ok(Number(x.header('Retry-After')) > 0);
  });

  it('token auth: Bearer challenges, and the built-in issuer at /auth/token (GET, HEAD, POST, OPTIONS)', async () => {
    const f = await authFixture('token');
    const srv = await listen(f.app);
    extra.push({ server: srv, cleanup: () => rm(f.dir, { recursive: true, force: true }) });
    const alice = basic('alice', PASSWORDS.alice);

    let x = await send(srv, 'GET', '/v2/');
    expectError(x, 401, 'UNAUTHORIZED');
    assert.match(x.header('WWW-Authenticate')!, /^Bearer realm="http:\/\/127\.0\.0\.1:\d+\/auth\/token",service="berth-test"$/);
    x = await send(srv, 'GET', '/v2/_catalog');
    assert.match(x.header('WWW-Authenticate')!, /,scope="registry:catalog:\*"$/);
    x = await send(srv, 'GET', '/v2/_catalog', { headers: { Authorization: 'Bearer not.a.token' } });
    expectError(x, 401, 'UNAUTHORIZED');
    assert.match(x.header('WWW-Authenticate')!, /,error="invalid_token"$/);

    // GET: anonymous and signed-in tokens, refresh token on request.
    x = await send(srv, 'GET', '/auth/token?service=berth-test&scope=repository:library/x:pull');
    assert.equal(x.status, 200);
    assert.equal(x.json().refresh_token, undefined);
    x = await send(srv, 'GET', '/auth/token?service=berth-test&scope=repository:alice/app:pull,push&offline_token=true&client_id=test&account=alice', { headers: { Authorization: alice } });
    const { token, refresh_token: refresh } = x.json();
    assert.ok(refresh);
    x = await send(srv, 'GET', '/v2/acme/app/tags/list', { headers: { Authorization: `Bearer ${token}` } });
    expectError(x, 401, 'UNAUTHORIZED');
    assert.match(x.header('WWW-Authenticate')!, /,scope="repository:acme\/app:pull",error="insufficient_scope"$/);
    x = await send(srv, 'POST', `/v2/alice/app/blobs/uploads/?digest=${sha256(layer)}`, { headers: { 'Content-Type': OCTETS, Authorization: `Bearer ${token}` }, body: layer });
    assert.equal(x.status, 201);
    assert.equal((await send(srv, 'HEAD', blobUrl('alice/app', sha256(layer)), { headers: { Authorization: `Bearer ${token}` } })).status, 200);

    expectError(await send(srv, 'GET', '/auth/token?service=elsewhere'), 400, 'UNSUPPORTED');
    expectError(await send(srv, 'GET', '/auth/token?account=bob', { headers: { Authorization: alice } }), 400, 'UNSUPPORTED');
    x = await send(srv, 'GET', '/auth/token', { headers: { Authorization: basic('alice', 'wrong') } });
    expectError(x, 401, 'UNAUTHORIZED');
    for (const [headers, status] of [[{}, 200], [{ Authorization: basic('alice', 'wrong') }, 401]] as const) {
      assert.equal((await send(srv, 'HEAD', '/auth/token?service=berth-test', { headers })).status, status);
    }
    assert.equal((await send(srv, 'HEAD', '/auth/token?service=elsewhere')).status, 400);
    x = await send(srv, 'OPTIONS', '/auth/token');
    assert.equal(x.status, 200);
    assert.equal(x.header('Allow'), 'GET, HEAD, POST');
    expectError(await send(srv, 'PUT', '/auth/token'), 404, 'NOT_FOUND');

    // POST: the OAuth2 grants.
    const form = (fields: Record<string, string>, headers: Record<string, string> = {}) => send(srv, 'POST', '/auth/token', {
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(fields).toString(),
    });
    x = await form({ grant_type: 'password', username: 'alice', password: PASSWORDS.alice, scope: 'repository:alice/app:pull', service: 'berth-test', access_type: 'offline', client_id: 'test' });
    assert.equal(x.status, 200);
    assert.ok(x.json().refresh_token);
    x = await form({ grant_type: 'refresh_token', refresh_token: refresh, scope: 'repository:alice/app:pull' });
    assert.equal(x.status, 200);
    assert.equal(x.json().refresh_token, refresh);
    expectError(await form({ grant_type: 'client_credentials' }), 400, 'UNSUPPORTED');
    expectError(await form({ grant_type: 'password', username: 'alice', password: 'wrong' }), 401, 'UNAUTHORIZED');
    expectError(await form({ grant_type: 'refresh_token', refresh_token: token }), 401, 'UNAUTHORIZED');
    expectError(await form({ grant_type: 'password', junk: 'x'.repeat(70_000) }), 413, 'SIZE_INVALID');
    // The form parser's refusals are client errors with its status, as UNSUPPORTED.
    x = await form({ grant_type: 'password' }, { 'Content-Type': 'application/x-www-form-urlencoded; charset=koi8-r' });
    expectError(x, 415, 'UNSUPPORTED');
    assert.equal(x.json().errors[0].message, 'unsupported charset "KOI8-R"');
    const fields = Object.fromEntries(Array.from({ length: 1001 }, (_, i) => [`f${i}`, '1']));
    x = await form({ grant_type: 'password', ...fields });
    expectError(x, 413, 'UNSUPPORTED');
    assert.equal(x.json().errors[0].message, 'too many parameters');
    x = await form({ grant_type: 'password' }, { 'Content-Encoding': 'compress' });
    expectError(x, 415, 'UNSUPPORTED');
    assert.equal(x.json().errors[0].message, 'unsupported content encoding "compress"');
    x = await form({ grant_type: 'password' }, { 'Content-Encoding': 'gzip' });
    expectError(x, 400, 'UNSUPPORTED');
    // Supported encodings and the 1000-field limit itself are fine (the grant is then judged).
    x = await send(srv, 'POST', '/auth/token', {
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Encoding': 'gzip' },
      body: gzipSync(new URLSearchParams({ grant_type: 'password', username: 'alice', password: PASSWORDS.alice }).toString()),
    });
    assert.equal(x.status, 200);
    const limit = Object.fromEntries(Array.from({ length: 997 }, (_, i) => [`f${i}`, '1']));
    x = await form({ grant_type: 'password', username: 'alice', password: PASSWORDS.alice, ...limit });
    assert.equal(x.status, 200);
    // Past auth.maxloginfailures, a sign-in not verified before is 429, on both endpoints' forms.
    const throttled = await listen(createApp({}, { storage: f.storage, auth: await createAuth({ ...f.config, maxLoginFailures: 1 }) }));
    extra.push({ server: throttled, cleanup: async () => undefined });
    expectError(await send(throttled, 'GET', '/auth/token', { headers: { Authorization: basic('alice', 'wrong') } }), 401, 'UNAUTHORIZED');
    x = await send(throttled, 'GET', '/auth/token?service=berth-test', { headers: { Authorization: basic('bob', PASSWORDS.bob) } });
    expectError(x, 429, 'TOOMANYREQUESTS');
    assert.ok(Number(x.header('Retry-After')) > 0);
    x = await send(throttled, 'POST', '/auth/token', {
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'password', username: 'bob', password: PASSWORDS.bob }).toString(),
    });
    expectError(x, 429, 'TOOMANYREQUESTS');
  });

  it('a failing storage backend → 500 UNKNOWN on every operation that touches storage', async () => {
    const t = await testApp();
    const boom = () => { throw new Error('storage is down'); };
    const failing = async () => boom();
    const storage = overlay(t.storage, {
      stat: failing, read: failing, write: failing, getSmall: failing, putSmall: failing, move: failing, delete: failing,
      list: () => ({ [Symbol.asyncIterator]: () => ({ next: failing }) }),
    });
    const srv = await listen(createApp({ deleteEnabled: true }, { storage }));
    extra.push({ server: srv, cleanup: t.cleanup });
    const uuid = randomUUID();
    const upload = `/v2/${REPO}/blobs/uploads/${uuid}`;
    const calls: [string, string, SendOptions?][] = [
      ['GET', '/v2/_catalog'],
      ['HEAD', '/v2/_catalog'],
      ['GET', `/v2/${REPO}/tags/list`],
      ['HEAD', `/v2/${REPO}/tags/list`],
      ['GET', manifestUrl(REPO, 'latest')],
      ['HEAD', manifestUrl(REPO, 'latest')],
      ['PUT', manifestUrl(REPO, 'latest'), { headers: { 'Content-Type': OCI_MANIFEST }, body: image }],
      ['DELETE', manifestUrl(REPO, 'latest')],
      ['GET', blobUrl(REPO, sha256(layer))],
      ['HEAD', blobUrl(REPO, sha256(layer))],
      ['DELETE', blobUrl(REPO, sha256(layer))],
      ['POST', `/v2/${REPO}/blobs/uploads/`],
      ['GET', upload],
      ['PATCH', upload, { headers: { 'Content-Type': OCTETS }, body: 'abc' }],
      ['PUT', `${upload}?digest=${sha256('abc')}`],
      ['DELETE', upload],
      ['GET', `/v2/${REPO}/referrers/${imageDigest}`],
      ['HEAD', `/v2/${REPO}/referrers/${imageDigest}`],
      ['GET', '/healthz'],
      ['HEAD', '/healthz'],
    ];
    for (const [method, url, opts] of calls) expectError(await send(srv, method, url, opts), 500, 'UNKNOWN');
    // Nothing else depends on storage.
    assert.equal((await send(srv, 'GET', '/v2/')).status, 200);
  });

  // Node marks a request `destroyed` once its body has been read to the end; a failure after
  // that point is the server's (500 UNKNOWN), not a client disconnect (400 BLOB_UPLOAD_INVALID).
  it('a storage failure after the manifest body was read → 500 UNKNOWN', async () => {
    const t = await testApp();
    const storage = overlay(t.storage, { stat: async () => { throw new Error('storage is down'); } });
    const srv = await listen(createApp({ deleteEnabled: true }, { storage }));
    extra.push({ server: srv, cleanup: t.cleanup });
    const put = () => new request.Test(srv, 'PUT', manifestUrl(REPO, 'latest')).set('Content-Type', OCI_MANIFEST)
      .serialize(((d: Buffer) => d) as unknown as Parameters<request.Test['serialize']>[0]).send(image);
    const raw = await put();
    assert.equal(raw.status, 500, raw.text);
    expectError(await send(srv, 'PUT', manifestUrl(REPO, 'latest'), { headers: { 'Content-Type': OCI_MANIFEST }, body: image }), 500, 'UNKNOWN');
  });

  it('a storage failure after a monolithic blob body was read → 500 UNKNOWN', async () => {
    const t = await testApp();
    // the body streams to the blob's key; linking it into the repository (putSmall) then fails
    const storage = overlay(t.storage, { putSmall: async () => { throw new Error('storage is down'); } });
    const srv = await listen(createApp({ deleteEnabled: true }, { storage }));
    extra.push({ server: srv, cleanup: t.cleanup });
    const url = `/v2/${REPO}/blobs/uploads/?digest=${sha256(layer)}`;
    const raw = await new request.Test(srv, 'POST', url).set('Content-Type', OCTETS).send(layer);
    assert.equal(raw.status, 500, raw.text);
    expectError(await send(srv, 'POST', url, { headers: { 'Content-Type': OCTETS }, body: layer }), 500, 'UNKNOWN');
  });

  it('a draining server → 503 UNAVAILABLE on every operation, route and unknown path', async () => {
    const t = await testApp();
    const srv = await listen(createApp({ deleteEnabled: true }, { storage: t.storage, isShuttingDown: () => true }));
    extra.push({ server: srv, cleanup: t.cleanup });
    for (const { method, template } of contract.operations()) {
      const x = await send(srv, method, concrete(template));
      expectError(x, 503, 'UNAVAILABLE');
      assert.equal(x.header('Connection'), 'close');
    }
    for (const template of Object.keys(doc.paths)) expectError(await send(srv, 'TRACE', concrete(template)), 503, 'UNAVAILABLE');
    expectError(await send(srv, 'GET', '/nope'), 503, 'UNAVAILABLE');
  });

  it('an online GC that deletes referenced content mid-write → 503 UNAVAILABLE with Retry-After, write rolled back', async () => {
    const t = await testApp();
    // Plays the collector: when a writer, seeing the lease, checks the tombstone of `victim`,
    // the blob is swept right then (and the tombstone is gone, as after a real sweep).
    let victim: string | undefined;
    const storage = overlay(t.storage, {
      stat: async (key: string) => {
        if (victim !== undefined && key === paths.gcTombstone('contract-test', blobItem(victim as never))) {
          const d = victim;
          victim = undefined;
          await t.storage.delete(paths.blobData(d as never));
        }
        return t.storage.stat(key);
      },
    });
    const srv = await listen(createApp({ deleteEnabled: true }, { storage }));
    extra.push({ server: srv, cleanup: t.cleanup });
    const blobs = Array.from({ length: 4 }, () => randomBytes(64));
    for (const b of [config, blobs[0]!, blobs[3]!]) await pushBlob(srv, REPO, b);
    // A collection is running from now on.
    await t.storage.putSmall(paths.gcLease(), Buffer.from(JSON.stringify({ id: 'contract-test', heartbeat: Date.now() })));
    const expect503 = (x: Sent) => {
      expectError(x, 503, 'UNAVAILABLE');
      assert.equal(x.header('Retry-After'), '1');
      assert.match(x.json().errors[0].message, /garbage-collected/, 'not a draining 503');
      assert.ok(victim === undefined, 'the collector ran during the request');
    };

    // Mount.
    victim = sha256(blobs[0]!);
    expect503(await send(srv, 'POST', `/v2/${OTHER}/blobs/uploads/?mount=${sha256(blobs[0]!)}&from=${REPO}`));
    expectError(await send(srv, 'HEAD', blobUrl(OTHER, sha256(blobs[0]!))), 404, 'BLOB_UNKNOWN');
    // Monolithic upload.
    victim = sha256(blobs[1]!);
    expect503(await send(srv, 'POST', `/v2/${REPO}/blobs/uploads/?digest=${sha256(blobs[1]!)}`, { headers: { 'Content-Type': OCTETS }, body: blobs[1]! }));
    expectError(await send(srv, 'HEAD', blobUrl(REPO, sha256(blobs[1]!))), 404, 'BLOB_UNKNOWN');
    // Finishing a chunked upload.
    const loc = await startUpload(srv, REPO);
    assert.equal((await send(srv, 'PATCH', loc, { headers: { 'Content-Type': OCTETS }, body: blobs[2]! })).status, 202);
    victim = sha256(blobs[2]!);
    expect503(await send(srv, 'PUT', `${loc}?digest=${sha256(blobs[2]!)}`));
    expectError(await send(srv, 'HEAD', blobUrl(REPO, sha256(blobs[2]!))), 404, 'BLOB_UNKNOWN');
    // A manifest push whose layer is collected.
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(blobs[3]!), size: blobs[3]!.length }],
    }));
    victim = sha256(blobs[3]!);
    const x = await send(srv, 'PUT', manifestUrl(REPO, 'gc-race'), { headers: { 'Content-Type': OCI_MANIFEST }, body: manifest });
    expect503(x);
    assert.match(JSON.stringify(x.json().errors[0].detail), /garbage collection/);
    expectError(await send(srv, 'HEAD', manifestUrl(REPO, 'gc-race')), 404, 'MANIFEST_UNKNOWN');
    expectError(await send(srv, 'HEAD', manifestUrl(REPO, sha256(manifest))), 404, 'MANIFEST_UNKNOWN');

    // With the lease still there but nothing collected, writes go through.
    await pushBlob(srv, REPO, blobs[3]!);
    assert.equal((await send(srv, 'PUT', manifestUrl(REPO, 'gc-race'), { headers: { 'Content-Type': OCI_MANIFEST }, body: manifest })).status, 201);
    // A referrer whose layer is collected is not left in its subject's referrers list.
    const subject = sha256(manifest);
    const referrer = Buffer.from(JSON.stringify({ ...JSON.parse(manifest.toString()), subject: { mediaType: OCI_MANIFEST, digest: subject, size: manifest.length } }));
    victim = sha256(blobs[3]!);
    expect503(await send(srv, 'PUT', manifestUrl(REPO, sha256(referrer)), { headers: { 'Content-Type': OCI_MANIFEST }, body: referrer }));
    assert.deepEqual((await send(srv, 'GET', `/v2/${REPO}/referrers/${subject}`)).json().manifests, []);
  });

  it('coverage: every documented (operation, status, error code) was produced by the server', () => {
    // Reachable only by means the tests cannot observe.
    const unobservable = new Map<string, string>([
      ['GET /v2/ 500', 'the handler cannot fail'],
      ['GET /v2/ 500 UNKNOWN', 'the handler cannot fail'],
      ['HEAD /v2/ 500', 'the handler cannot fail'],
      ['GET /metrics 500', 'prom-client does not fail'],
      ['GET /metrics 500 UNKNOWN', 'prom-client does not fail'],
      ['HEAD /metrics 500', 'prom-client does not fail'],
      ['GET /auth/token 500', 'signing does not fail with a loaded key'],
      ['GET /auth/token 500 UNKNOWN', 'signing does not fail with a loaded key'],
      ['HEAD /auth/token 500', 'signing does not fail with a loaded key'],
      ['POST /auth/token 500', 'signing does not fail with a loaded key (form parser errors are 4xx)'],
      ['POST /auth/token 500 UNKNOWN', 'signing does not fail with a loaded key (form parser errors are 4xx)'],
      ['PUT /v2/{name}/manifests/{reference} 400 BLOB_UPLOAD_INVALID', 'sent only after the client disconnected'],
      ['POST /v2/{name}/blobs/uploads/ 400 BLOB_UPLOAD_INVALID', 'sent only after the client disconnected'],
      ['PATCH /v2/{name}/blobs/uploads/{uuid} 400 BLOB_UPLOAD_INVALID', 'sent only after the client disconnected'],
      ['PUT /v2/{name}/blobs/uploads/{uuid} 400 BLOB_UPLOAD_INVALID', 'sent only after the client disconnected'],
    ]);
    const expected = contract.expectedCoverage();
    const stale = [...unobservable.keys()].filter((k) => !expected.includes(k));
    assert.deepEqual(stale, [], 'allow-listed combinations no longer in openapi.yaml');
    const missing = expected.filter((k) => !contract.seen.has(k) && !unobservable.has(k));
    assert.deepEqual(missing, [], 'documented but never produced by the server');
    const seenButAllowListed = [...unobservable.keys()].filter((k) => contract.seen.has(k));
    assert.deepEqual(seenButAllowListed, [], 'now observed: remove from the allow-list');
  });
});
