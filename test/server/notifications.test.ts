// Webhooks in distribution's format: what each operation sends, in order, through failures of the
// listener, with the endpoint's filters and headers; and the configuration's checks.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import request from 'supertest';
import { digestOf } from '../../oci/digest.js';
import { MediaType } from '../../oci/media-types.js';
import { createApp } from '../../server/app.js';
import { loadConfig } from '../../server/config.js';
import { MAX_QUEUED, NotificationEndpoint, type EndpointConfig } from '../../server/notifications/endpoint.js';
import { ENVELOPE_MEDIA_TYPE, type RegistryEvent } from '../../server/notifications/event.js';
import { Notifier } from '../../server/notifications/index.js';
import { FilesystemAdapter } from '../../storage-adapters/filesystem.js';
import { problems } from '../helpers/config.js';
import { pushBlob, pushImage } from '../helpers/push.js';
import { tempDir } from '../helpers/registry.js';

/** An HTTP listener that records envelopes; `failNext` answers that many requests with 500 first. */
class Listener {
  readonly envelopes: { headers: IncomingMessage['headers']; events: RegistryEvent[] }[] = [];
  failNext = 0;
  failed = 0;
  server!: Server;
  url = '';

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.url === '/moved') { res.writeHead(307, { Location: '/events' }).end(); return; }
        if (this.failNext > 0) { this.failNext--; this.failed++; res.writeHead(500).end(); return; }
        this.envelopes.push({ headers: req.headers, events: (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { events: RegistryEvent[] }).events });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/events`;
    return this.url;
  }

  get events(): RegistryEvent[] {
    return this.envelopes.flatMap((e) => e.events);
  }

  /** Waits until `n` events arrived (or fails after 10 s: delivery is asynchronous). */
  async waitFor(n: number): Promise<RegistryEvent[]> {
    for (let i = 0; i < 1000 && this.events.length < n; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(this.events.length, n, JSON.stringify(this.events.map((e) => e.action)));
    return this.events;
  }
}

function endpoint(url: string, over: Partial<EndpointConfig> = {}): EndpointConfig {
  return { name: 'hook', url, headers: {}, timeoutMs: 1000, threshold: 2, backoffMs: 20, ignoredMediaTypes: [], ignoredActions: [], ...over };
}

describe('notifications (webhooks)', () => {
  let root: string;
  let storage: FilesystemAdapter;
  before(async () => { root = await tempDir(); storage = new FilesystemAdapter({ rootdirectory: root }); });
  after(() => rm(root, { recursive: true, force: true }));

  async function setup(over: Partial<EndpointConfig> = {}, includeReferences = false) {
    const listener = new Listener();
    const url = await listener.start();
    const notifier = new Notifier({ endpoints: [endpoint(url, over)], includeReferences }, 5000);
    const app = createApp({ deleteEnabled: true }, { storage, notifier });
    return { listener, notifier, app, async close() { await notifier.close(1000); listener.server.close(); } };
  }

  it('push, pull, mount and delete each send one event in distribution\'s envelope, in order (a manifest delete one per tag it took too); HEADs send none', async () => {
    const t = await setup({ headers: { Authorization: ['Bearer hook-secret'] } });
    try {
      const image = await pushImage(t.app, 'org/app', 'v1', { layers: ['one'] });
      // config push, layer push, manifest push
      let events = await t.listener.waitFor(3);
      assert.deepEqual(events.map((e) => e.action), ['push', 'push', 'push']);
      const manifestPush = events[2]!;
      assert.deepEqual(
        { ...manifestPush.target, url: undefined },
        { mediaType: MediaType.OciManifest, digest: image.digest, size: image.manifest.length, length: image.manifest.length, repository: 'org/app', tag: 'v1', url: undefined },
      );
      assert.match(manifestPush.target.url!, new RegExp(`^http://127\\.0\\.0\\.1:\\d+/v2/org/app/manifests/${image.digest}$`));
      assert.equal(manifestPush.request.method, 'PUT');
      assert.match(manifestPush.id, /^[0-9a-f-]{36}$/);
      assert.ok(!Number.isNaN(Date.parse(manifestPush.timestamp)));
      assert.match(manifestPush.source.addr, /:5000$/);
      assert.deepEqual(events[1]!.target, {
        mediaType: 'application/octet-stream', digest: image.layers[0], size: 3, length: 3, repository: 'org/app',
        url: events[1]!.target.url,
      });
      const envelope = t.listener.envelopes[0]!;
      assert.equal(envelope.headers['content-type'], ENVELOPE_MEDIA_TYPE);
      assert.equal(envelope.headers.authorization, 'Bearer hook-secret');

      assert.equal((await request(t.app).head('/v2/org/app/manifests/v1')).status, 200);
      assert.equal((await request(t.app).head(`/v2/org/app/blobs/${image.layers[0]}`)).status, 200);
      assert.equal((await request(t.app).get('/v2/org/app/manifests/v1').set('User-Agent', 'docker/27 go/1.22')).status, 200);
      assert.equal((await request(t.app).get(`/v2/org/app/blobs/${image.layers[0]}`)).status, 200);
      assert.equal((await request(t.app).get(`/v2/org/app/blobs/${image.layers[0]}`).set('Range', 'bytes=1-2')).status, 206);
      assert.equal((await request(t.app).post(`/v2/org/other/blobs/uploads/?mount=${image.layers[0]}&from=org/app`)).status, 201);
      assert.equal((await request(t.app).delete(`/v2/org/app/manifests/${image.digest}`)).status, 202);
      // deleting a tagged manifest also deletes its tags, and distribution says so, one event each
      events = await t.listener.waitFor(8);
      assert.deepEqual(events.slice(3).map((e) => `${e.action} ${e.target.repository} ${e.target.tag ?? e.target.digest}`), [
        'pull org/app v1',
        `pull org/app ${image.layers[0]}`,
        `mount org/other ${image.layers[0]}`,
        `delete org/app ${image.digest}`,
        'delete org/app v1',
      ]);
      assert.deepEqual(events[7]!.target, { repository: 'org/app', tag: 'v1' });
      assert.equal(events[3]!.request.useragent, 'docker/27 go/1.22');
      assert.equal(events[5]!.target.fromRepository, 'org/app');
      assert.deepEqual(events[6]!.target, { repository: 'org/app', digest: image.digest });
    } finally {
      await t.close();
    }
  });

  it('a chunked upload is one push when it is finished; a listener that fails is retried, and events keep their order', async () => {
    const t = await setup();
    try {
      t.listener.failNext = 5; // threshold 2: two quick tries, then every backoff
      const data = Buffer.from('chunked blob data');
      const start = await request(t.app).post('/v2/org/chunks/blobs/uploads/');
      const loc = start.headers.location!;
      const mid = await request(t.app).patch(loc).set('Content-Type', 'application/octet-stream').set('Content-Range', '0-6').send(data.subarray(0, 7));
      assert.equal(mid.status, 202);
      const digest = digestOf(data);
      assert.equal((await request(t.app).put(`${mid.headers.location}?digest=${digest}`).set('Content-Type', 'application/octet-stream').send(data.subarray(7))).status, 201);
      const second = await pushBlob(t.app, 'org/chunks', 'second');
      const events = await t.listener.waitFor(2);
      assert.equal(t.listener.failed, 5);
      assert.deepEqual(events.map((e) => `${e.action} ${e.target.digest} ${e.target.size}`), [`push ${digest} ${data.length}`, `push ${second} 6`]);
      assert.equal(events[0]!.request.method, 'PUT');
    } finally {
      await t.close();
    }
  });

  it('ignore.actions and ignored media types filter; includereferences lists what a manifest refers to', async () => {
    const t = await setup({ ignoredActions: ['pull'], ignoredMediaTypes: ['application/octet-stream'] }, true);
    try {
      const image = await pushImage(t.app, 'org/filtered', 'v1');
      await request(t.app).get('/v2/org/filtered/manifests/v1');
      await request(t.app).delete(`/v2/org/filtered/manifests/${image.digest}`);
      await pushImage(t.app, 'org/filtered', 'v2');
      const events = await t.listener.waitFor(4);
      assert.deepEqual(events.map((e) => `${e.action} ${e.target.mediaType ?? '-'}`), [`push ${MediaType.OciManifest}`, 'delete -', 'delete -', `push ${MediaType.OciManifest}`]);
      assert.deepEqual(events[0]!.target.references!.map((r) => r.digest), [image.config, ...image.layers]);
    } finally {
      await t.close();
    }
  });

  it('requests never wait for a listener that is down, and shutdown gives up on it after its grace', async () => {
    const notifier = new Notifier({ endpoints: [endpoint('http://127.0.0.1:9/down', { threshold: 1, backoffMs: 60_000 })], includeReferences: false }, 5000);
    const app = createApp({}, { storage, notifier });
    assert.equal((await request(app).post(`/v2/org/down/blobs/uploads/?digest=${digestOf('x')}`).send(Buffer.from('x'))).status, 201);
    const ep = notifier.endpoints[0]!;
    for (let i = 0; i < 500 && ep.failures === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(ep.pending, 1);
    assert.ok(ep.failures >= 1);
    await notifier.close(50); // returns although the next try is a minute away
    assert.equal(ep.pending, 0);
    assert.equal(ep.delivered, 0);
  });

  it('a full queue drops the oldest event; when that is the one being delivered, the next is still sent', async () => {
    const received: string[] = [];
    let release!: () => void;
    const released = new Promise<void>((resolve) => { release = resolve; });
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push((JSON.parse(Buffer.concat(chunks).toString('utf8')) as { events: RegistryEvent[] }).events[0]!.id);
        if (received.length === 1) void released.then(() => res.writeHead(200).end()); // later ones are left hanging
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const ep = new NotificationEndpoint(endpoint(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, { timeoutMs: 60_000 }));
    const event = (id: number): RegistryEvent => ({
      id: String(id), timestamp: new Date(0).toISOString(), action: 'push', target: { repository: 'org/full' },
      request: { id: '', addr: '', host: '', method: 'PUT', useragent: '' }, actor: {}, source: { addr: 'here:5000', instanceID: 'i' },
    });
    const until = async (done: () => boolean) => { for (let i = 0; i < 1000 && !done(); i++) await new Promise((r) => setTimeout(r, 10)); };
    try {
      ep.enqueue(event(0));
      await until(() => received.length === 1);
      for (let i = 1; i <= MAX_QUEUED; i++) ep.enqueue(event(i)); // the last one pushes out event 0, in flight
      assert.equal(ep.dropped, 1);
      release();
      await until(() => received.length === 2);
      assert.deepEqual(received, ['0', '1']);
      assert.equal(ep.pending, MAX_QUEUED);
    } finally {
      server.closeAllConnections();
      server.close();
      await ep.close(50);
    }
  });

  it('a URL with a user and password is sent as Basic auth, as distribution does, and the password is never logged', async () => {
    const t = await setup();
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, new Writable({ write(chunk: Buffer, _enc, cb) { lines.push(chunk.toString('utf8')); cb(); } }));
    const withCreds = (url: string) => url.replace('http://', 'http://ci%40acme:p%3As3cret@');
    const notifier = new Notifier({ endpoints: [endpoint(withCreds(t.listener.url)), endpoint(withCreds('http://127.0.0.1:9/down'), { name: 'down', threshold: 1, backoffMs: 60_000 })], includeReferences: false }, 5000, logger);
    try {
      const app = createApp({}, { storage, notifier });
      assert.equal((await request(app).post(`/v2/org/creds/blobs/uploads/?digest=${digestOf('c')}`).send(Buffer.from('c'))).status, 201);
      await t.listener.waitFor(1);
      assert.equal(t.listener.envelopes[0]!.headers.authorization, `Basic ${Buffer.from('ci@acme:p:s3cret').toString('base64')}`);
      const down = notifier.endpoints[1]!;
      for (let i = 0; i < 500 && down.failures === 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(lines.some((l) => l.includes('notification endpoint failing')), lines.join(''));
      assert.ok(!lines.join('').includes('s3cret'), lines.join(''));
    } finally {
      await notifier.close(50);
      await t.close();
    }
  });

  it('a listener that moved (307) is followed there, as distribution\'s client does', async () => {
    const t = await setup();
    const notifier = new Notifier({ endpoints: [endpoint(t.listener.url.replace(/\/events$/, '/moved'))], includeReferences: false }, 5000);
    try {
      const app = createApp({}, { storage, notifier });
      assert.equal((await request(app).post(`/v2/org/moved/blobs/uploads/?digest=${digestOf('m')}`).send(Buffer.from('m'))).status, 201);
      const [event] = await t.listener.waitFor(1);
      assert.equal(event!.target.repository, 'org/moved');
      assert.equal(notifier.endpoints[0]!.delivered, 1);
    } finally {
      await notifier.close(50);
      await t.close();
    }
  });

  it('config: distribution\'s endpoint settings are read, disabled ones dropped, mistakes reported one by one', () => {
    const c = loadConfig({ overrides: { notifications: { events: { includereferences: true }, endpoints: [
      { name: 'alistener', url: 'https://hooks.example/event', headers: { Authorization: ['Bearer x'] }, timeout: '500ms', threshold: 5, backoff: '1s',
        ignoredmediatypes: ['application/octet-stream'], ignore: { mediatypes: ['text/plain'], actions: ['pull'] } },
      { name: 'off', url: 'https://x', disabled: true },
    ] } } });
    assert.deepEqual(c.notifications, { includeReferences: true, endpoints: [{
      name: 'alistener', url: 'https://hooks.example/event', headers: { Authorization: ['Bearer x'] }, timeoutMs: 500, threshold: 5, backoffMs: 1000,
      ignoredMediaTypes: ['application/octet-stream', 'text/plain'], ignoredActions: ['pull'],
    }] });
    const found = problems(() => loadConfig({ overrides: { notifications: { endpoints: [
      { url: 'ftp://x' }, { name: 'a', url: 'http://x', timeout: 'soon', colour: 'red', ignore: { actions: ['fetch'] } }, { name: 'a', url: 'http://y' },
    ] } } }));
    assert.deepEqual(found, [
      'notifications.endpoints[0].name: required',
      'notifications.endpoints[0].url: "ftp://x" is not an http(s) URL',
      'notifications.endpoints[1].colour: unknown key',
      'notifications.endpoints[1].ignore.actions: "fetch" is not one of push, pull, mount, delete',
      'notifications.endpoints[1].timeout: "soon" is not a duration like 30s, 5m or 168h',
      'notifications.endpoints: the name "a" is used twice',
    ]);
  });
});
