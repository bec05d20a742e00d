import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { PASSWORDS, writeHtpasswd } from '../../helpers/auth.js';
import { startTestServer, tempDir } from '../../helpers/registry.js';

describe('token realm behind a proxy', () => {
  it('http.host sets the realm clients are sent to; without it the request Host is used', async () => {
    const dir = await tempDir();
    await writeHtpasswd(join(dir, 'htpasswd'), PASSWORDS);
    const auth = { REGISTRY_AUTH: 'token', REGISTRY_AUTH_TOKEN_HTPASSWD: join(dir, 'htpasswd'), REGISTRY_AUTH_TOKEN_STATEDIRECTORY: join(dir, 'state') };
    const proxied = await startTestServer({ ...auth, REGISTRY_HTTP_HOST: 'https://registry.example.com/' });
    const direct = await startTestServer(auth);
    try {
      const a = await fetch(`${proxied.url}/v2/`);
      assert.equal(a.status, 401);
      assert.match(a.headers.get('www-authenticate')!, /^Bearer realm="https:\/\/registry\.example\.com\/auth\/token"/);
      const b = await fetch(`${direct.url}/v2/`);
      assert.match(b.headers.get('www-authenticate')!, new RegExp(`^Bearer realm="http://${direct.host.replace(/\./g, '\\.')}/auth/token"`));
    } finally {
      await proxied.stop();
      await direct.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
