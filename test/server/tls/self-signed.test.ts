import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFile, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { describe, it } from 'node:test';
import { ensureSelfSigned } from '../../../server/tls/self-signed.js';
import { tempDir } from '../../helpers/registry.js';

describe('self-signed TLS', () => {
  it('creates a CA and a server certificate for localhost, 127.0.0.1, ::1, the hostname and extra names, signed by the CA', async () => {
    const dir = await tempDir();
    try {
      const f = ensureSelfSigned(dir, ['registry.internal', '10.1.2.3']);
      assert.equal(f.created, true);
      const ca = new X509Certificate(await readFile(f.caCert));
      const cert = new X509Certificate(await readFile(f.certificate));
      assert.ok(ca.ca);
      assert.ok(cert.checkIssued(ca) && cert.verify(ca.publicKey));
      for (const host of ['localhost', hostname(), 'registry.internal']) assert.ok(cert.checkHost(host), host);
      for (const ip of ['127.0.0.1', '::1', '10.1.2.3']) assert.ok(cert.checkIP(ip), ip);
      assert.equal(cert.checkHost('evil.example'), undefined);
      assert.equal((await stat(f.key)).mode & 0o777, 0o600);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reuses what it made; a new name reissues the server certificate under the same CA', async () => {
    const dir = await tempDir();
    try {
      const first = ensureSelfSigned(dir);
      const caBefore = await readFile(first.caCert, 'utf8');
      const certBefore = await readFile(first.certificate, 'utf8');
      assert.equal(ensureSelfSigned(dir).created, false);
      assert.equal(await readFile(first.certificate, 'utf8'), certBefore);
      const again = ensureSelfSigned(dir, ['new.name']);
      assert.equal(again.created, true);
      assert.equal(await readFile(first.caCert, 'utf8'), caBefore);
      assert.ok(new X509Certificate(await readFile(again.certificate)).checkHost('new.name'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
