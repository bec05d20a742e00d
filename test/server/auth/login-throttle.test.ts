import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { createApp } from '../../../server/app.js';
import { createAuth } from '../../../server/auth/index.js';
import { LoginThrottle } from '../../../server/auth/login-throttle.js';
import { FilesystemAdapter } from '../../../storage-adapters/filesystem.js';
import { errorCode } from '../../helpers/push.js';
import { authFixture, basic, PASSWORDS, type AuthFixture } from '../../helpers/auth.js';

describe('LoginThrottle', () => {
  it('lets a client fail `limit` times per window, then asks it to wait until its oldest failure leaves the window', () => {
    let now = 1_000_000;
    const t = new LoginThrottle(3, 60_000, 10_000, () => now);
    for (let i = 0; i < 3; i++) {
      assert.equal(t.retryAfter('a'), 0);
      t.failed('a');
      now += 10_000;
    }
    assert.equal(t.retryAfter('a'), 30, 'the first failure (at 0 s) leaves the window at 60 s; it is now 30 s');
    assert.equal(t.retryAfter('b'), 0, 'another client is not held back');
    now += 30_000;
    assert.equal(t.retryAfter('a'), 0);
    t.failed('a');
    assert.ok(t.retryAfter('a') > 0, 'the failures at 10 s and 20 s are still in the window');
  });

  it('a limit of 0 never throttles; the clients remembered are bounded', () => {
    const off = new LoginThrottle(0);
    for (let i = 0; i < 100; i++) off.failed('a');
    assert.equal(off.retryAfter('a'), 0);
    const small = new LoginThrottle(1, 60_000, 2);
    small.failed('a'); small.failed('b'); small.failed('c');
    assert.equal(small.retryAfter('a'), 0, 'the oldest client was forgotten');
    assert.ok(small.retryAfter('c') > 0);
  });
});

describe('failed sign-ins are throttled per client address', () => {
  let f: AuthFixture;
  let app: ReturnType<typeof createApp>;
  let behindProxy: ReturnType<typeof createApp>;
  let tokens: ReturnType<typeof createApp>;
  let t: AuthFixture;
  const wrong = basic('alice', 'not-her-password');
  const right = basic('bob', PASSWORDS.bob);

  before(async () => {
    f = await authFixture('htpasswd');
    const storage = new FilesystemAdapter({ rootdirectory: join(f.dir, 'data') });
    app = createApp({}, { storage, auth: await createAuth({ ...f.config, maxLoginFailures: 3 }) });
    behindProxy = createApp({ trustedProxies: ['loopback'] }, { storage, auth: await createAuth({ ...f.config, maxLoginFailures: 3 }) });
    t = await authFixture('token');
    tokens = createApp({}, { storage, auth: await createAuth({ ...t.config, maxLoginFailures: 3 }) });
  });
  after(() => Promise.all([f, t].map((x) => rm(x.dir, { recursive: true, force: true }))));

  it('after the limit, a password not verified before gets 429 TOOMANYREQUESTS with Retry-After, even the right one', async () => {
    const carol = basic('carol', PASSWORDS.carol);
    assert.equal((await request(app).get('/v2/').set('Authorization', carol)).status, 200);
    for (let i = 0; i < 3; i++) assert.equal((await request(app).get('/v2/').set('Authorization', wrong)).status, 401);
    assert.equal((await request(app).get('/v2/').set('Authorization', carol)).status, 200, 'credentials verified before still pass');
    const held = await request(app).get('/v2/').set('Authorization', right);
    assert.equal(held.status, 429);
    assert.equal(errorCode(held), 'TOOMANYREQUESTS');
    assert.ok(Number(held.headers['retry-after']) >= 1 && Number(held.headers['retry-after']) <= 60, held.headers['retry-after']);
    assert.match(held.body.errors[0].message, /too many failed sign-ins/);
    // without a trusted proxy, X-Forwarded-For is the client's own word and changes nothing
    assert.equal((await request(app).get('/v2/').set('Authorization', right).set('X-Forwarded-For', '192.0.2.7')).status, 429);
  });

  it('a flood of wrong passwords at once is checked one at a time, so the limit holds for it too', async () => {
    const storm = await Promise.all(Array.from({ length: 10 }, (_, i) => request(behindProxy).get('/v2/').set('Authorization', basic('alice', `guess-${i}`)).set('X-Forwarded-For', '192.0.2.9')));
    assert.deepEqual(storm.map((r) => r.status).sort(), [401, 401, 401, 429, 429, 429, 429, 429, 429, 429]);
  });

  it('behind a trusted proxy, each forwarded client address is counted on its own', async () => {
    for (let i = 0; i < 3; i++) {
      assert.equal((await request(behindProxy).get('/v2/').set('Authorization', wrong).set('X-Forwarded-For', '192.0.2.1')).status, 401);
    }
    assert.equal((await request(behindProxy).get('/v2/').set('Authorization', right).set('X-Forwarded-For', '192.0.2.1')).status, 429);
    assert.equal((await request(behindProxy).get('/v2/').set('Authorization', right).set('X-Forwarded-For', '192.0.2.2')).status, 200);
  });

  it('the token endpoint counts failures of both its GET and its password grant', async () => {
    for (let i = 0; i < 2; i++) assert.equal((await request(tokens).get('/auth/token?service=berth-test').set('Authorization', wrong)).status, 401);
    const form = { grant_type: 'password', service: 'berth-test', username: 'alice', password: 'nope' };
    assert.equal((await request(tokens).post('/auth/token').type('form').send(form)).status, 401);
    const held = await request(tokens).post('/auth/token').type('form').send({ ...form, username: 'bob', password: PASSWORDS.bob });
    assert.equal(held.status, 429);
    assert.equal(errorCode(held), 'TOOMANYREQUESTS');
  });
});
