// Resumable pulls: a pull killed in the middle of a big layer leaves a partial blob; the next pull
// asks only for the missing bytes (Range) and the bytes already on disk are not fetched again.
// A counting proxy between the CLI and berth proves it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { collectBlobs, createImageLayout, resolveTag, seededRandomBytes, type ImageLayout } from '../fixtures/oci-layout.js';
import { CLI, runCli } from '../helpers/cli.js';
import { startTestServer, type TestServer } from '../helpers/registry.js';

interface BlobGet { range?: string; sent: number }

/** An HTTP proxy to `target` that logs blob GETs and can stall one blob after `cutAfter` bytes. */
async function countingProxy(target: string) {
  const gets = new Map<string, BlobGet[]>();
  const state: { stallDigest?: string; cutAfter: number } = { cutAfter: 0 };
  const server: Server = createServer((req, res) => {
    const m = /\/blobs\/(sha256:[a-f0-9]{64})$/.exec(req.url ?? '');
    // A fresh upstream connection per request (agent: false): a pooled keep-alive socket that the
    // registry closes just as it is reused would fail a request here and make the client retry it.
    const up = request(`http://${target}${req.url}`, { method: req.method, headers: { ...req.headers, host: target }, agent: false }, (upRes) => {
      res.writeHead(upRes.statusCode!, upRes.headers);
      if (!m || req.method !== 'GET') { upRes.pipe(res); return; }
      const entry: BlobGet = { sent: 0, ...(req.headers.range ? { range: String(req.headers.range) } : {}) };
      (gets.get(m[1]!) ?? gets.set(m[1]!, []).get(m[1]!)!).push(entry);
      const stall = state.stallDigest === m[1];
      upRes.on('data', (chunk: Buffer) => {
        if (stall) {
          const room = state.cutAfter - entry.sent;
          if (room <= 0) { upRes.destroy(); return; }
          const part = chunk.subarray(0, room);
          entry.sent += part.length;
          res.write(part);
          if (entry.sent >= state.cutAfter) upRes.destroy(); // and never end the response: the client hangs mid-layer
          return;
        }
        entry.sent += chunk.length;
        res.write(chunk);
      });
      upRes.on('end', () => { if (!stall) res.end(); });
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, host: `127.0.0.1:${(server.address() as AddressInfo).port}`, gets, state };
}

async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('resumable pull', () => {
  let server: TestServer;
  let proxy: Awaited<ReturnType<typeof countingProxy>>;
  let work: string;
  let image: ImageLayout;
  const BIG = 24 * 1024 * 1024;
  const CUT = 9 * 1024 * 1024 + 12345;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-resume-'));
    server = await startTestServer();
    proxy = await countingProxy(server.host);
    image = await createImageLayout(join(work, 'src'), {
      tag: 'v1',
      layers: [{ files: { 'small.txt': 'small' } }, { files: { 'big.bin': seededRandomBytes(BIG, 'resume') }, compression: 'none' }],
    });
    const push = await runCli(['push', `oci:${image.dir}:v1`, `${server.host}/resume/app:v1`]);
    assert.equal(push.code, 0, push.stderr);
  });
  after(async () => {
    proxy?.server.close();
    await server?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('a pull killed mid-layer continues from the bytes on disk, without fetching them again', async () => {
    const big = image.layers[1]!.descriptor;
    const out = join(work, 'out');
    const partial = join(out, '.berth-ingest', `sha256-${big.digest.slice(7)}`);
    proxy.state.stallDigest = big.digest;
    proxy.state.cutAfter = CUT;

    // 1st pull: the big layer stalls after CUT bytes; once they are all on disk, kill -9 the CLI
    const child = spawn(process.execPath, [CLI, 'pull', '-j', '1', `${proxy.host}/resume/app:v1`, `oci:${out}:v1`], { stdio: 'ignore', env: { ...process.env, BERTH_RETRY_BASE_MS: '20' } });
    try {
      await waitFor(() => existsSync(partial) && statSync(partial).size === CUT, 60_000, `${CUT} bytes in ${partial}`);
    } finally {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
    assert.equal(statSync(partial).size, CUT, 'the partial blob holds exactly what was received');
    assert.equal(existsSync(join(out, 'blobs', 'sha256', big.digest.slice(7))), false, 'no partial blob looks complete');

    // Other blobs may have been whole on disk but not yet moved into place when the kill landed;
    // the next pull resumes those too, so it reports every byte already in the ingest area.
    const ingest = join(out, '.berth-ingest');
    let onDisk = 0;
    let partials = 0;
    for (const name of await readdir(ingest)) {
      if (name.endsWith('.lock')) continue; // the killed pull's lock on a partial blob (the next one breaks it)
      const size = statSync(join(ingest, name)).size;
      onDisk += size;
      if (size > 0) partials++;
    }

    // 2nd pull: nothing stalls; the big layer is asked for from byte CUT on
    proxy.state.stallDigest = undefined;
    proxy.gets.clear();
    const r = await runCli(['pull', '--json', `${proxy.host}/resume/app:v1`, `oci:${out}:v1`], { timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.stderr);
    const gets = proxy.gets.get(big.digest)!;
    assert.equal(gets.length, 1, 'one request for the big layer');
    assert.equal(gets[0]!.range, `bytes=${CUT}-`);
    assert.equal(gets[0]!.sent, big.size - CUT, 'only the missing bytes crossed the wire');
    const j = JSON.parse(r.stdout);
    assert.equal(j.resumedBytes, onDisk);
    assert.ok(onDisk >= CUT);
    assert.equal(j.blobs.resumed, partials, 'every non-empty partial blob is resumed, the big layer among them');

    // the result is complete and verified, and the ingest area is gone
    const root = await resolveTag(out, 'v1');
    assert.equal(root.digest, image.manifest.descriptor.digest);
    const blobs = await collectBlobs(out, root);
    assert.equal(blobs.get(big.digest)!.bytes.length, big.size);
    assert.deepEqual(await readdir(out).then((names) => names.includes('.berth-ingest')), false);
  });

  it('a partial blob with wrong bytes is caught by the digest check and fetched again whole', async () => {
    const big = image.layers[1]!.descriptor;
    const out = join(work, 'out-corrupt');
    await mkdir(join(out, '.berth-ingest'), { recursive: true });
    await writeFile(join(out, '.berth-ingest', `sha256-${big.digest.slice(7)}`), Buffer.alloc(1024 * 1024, 7));
    proxy.gets.clear();
    const r = await runCli(['pull', `${proxy.host}/resume/app:v1`, `oci:${out}:v1`], { timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.stderr);
    const gets = proxy.gets.get(big.digest)!;
    assert.deepEqual(gets.map((g) => g.range), ['bytes=1048576-', undefined], 'resumed first, then fetched whole after the digest check failed');
    const blobs = await collectBlobs(out, await resolveTag(out, 'v1'));
    assert.equal(blobs.get(big.digest)!.bytes.length, big.size);
  });

  it('a registry that sends corrupt bytes fails the pull with exit code 6 and leaves no blob', async () => {
    const big = image.layers[1]!.descriptor;
    const out = join(work, 'out-bad-registry');
    // corrupt the blob inside the registry's storage (same size, different bytes)
    const stored = join(server.root, 'blobs', 'sha256', big.digest.slice(7, 9), big.digest.slice(7), 'data');
    const original = await readFile(stored);
    const bad = Buffer.from(original);
    bad[bad.length - 1] ^= 0xff;
    await writeFile(stored, bad);
    try {
      const r = await runCli(['pull', `${server.host}/resume/app:v1`, `oci:${out}:v1`], { timeoutMs: 120_000 });
      assert.equal(r.code, 6, r.stderr);
      assert.match(r.stderr, /^berth: blob sha256:[a-f0-9]{64}: the bytes received have digest/m);
      assert.equal(existsSync(join(out, 'blobs', 'sha256', big.digest.slice(7))), false);
      assert.equal(existsSync(join(out, '.berth-ingest', `sha256-${big.digest.slice(7)}`)), false);
    } finally {
      await writeFile(stored, original);
    }
  });
});
