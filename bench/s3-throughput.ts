// Push and pull throughput through berth on a real S3 (the local Ceph RGW) versus the raw
// AWS SDK (lib-storage Upload / GetObject) against the same RGW, in one run.
//   npm run build && node dist/bench/s3-throughput.js [sizeMiB=256] [rounds=3]
//
// The raw SDK upload is measured twice: with the SDK's defaults (the baseline of the "vs raw SDK" column), and
// with expectContinueHeader: false, the one client setting berth changes that matters for throughput (see
// storage-adapters/s3.ts), so that berth's ratio against an equally tuned raw client is printed too.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Writable, type Readable } from 'node:stream';
import { DeleteObjectCommand, GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { once } from 'node:events';
import { loadConfig } from '../server/config.js';
import { createAdapter } from '../storage-adapters/index.js';
import { startServe } from '../test/helpers/cli.js';
import { freshBucket } from '../test/helpers/rgw.js';

const sizeMiB = Number(process.argv[2] ?? 256);
const rounds = Number(process.argv[3] ?? 3);
const PART = 16 << 20;

async function makeFile(dir: string): Promise<{ path: string; digest: string; size: number }> {
  const path = join(dir, 'blob');
  const hash = createHash('sha256');
  const out = createWriteStream(path);
  for (let i = 0; i < sizeMiB; i++) {
    const chunk = randomBytes(1 << 20);
    hash.update(chunk);
    if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((r) => out.end(() => r()));
  return { path, digest: `sha256:${hash.digest('hex')}`, size: sizeMiB << 20 };
}

const sink = () => new Writable({ highWaterMark: 1 << 20, write(_c, _e, cb) { cb(); } });

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

function httpSend(url: string, method: string, body: Readable | undefined, headers: Record<string, string | number> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => { res.resume(); res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers })); });
    req.on('error', reject);
    if (body) pipeline(body, req).catch(reject);
    else req.end();
  });
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-bench-'));
  const bucket = await freshBucket('berth-bench');
  const file = await makeFile(dir);
  const env = {
    REGISTRY_HTTP_ADDR: '127.0.0.1:0', REGISTRY_LOG_LEVEL: 'warn', REGISTRY_STORAGE: 's3', REGISTRY_STORAGE_S3_BUCKET: bucket.bucket,
    REGISTRY_STORAGE_S3_REGION: bucket.endpoint.region, REGISTRY_STORAGE_S3_REGIONENDPOINT: bucket.endpoint.endpoint,
    REGISTRY_STORAGE_S3_FORCEPATHSTYLE: 'true', REGISTRY_STORAGE_S3_ACCESSKEY: bucket.endpoint.accessKeyId,
    REGISTRY_STORAGE_S3_SECRETKEY: bucket.endpoint.secretAccessKey, REGISTRY_STORAGE_S3_CHUNKSIZE: String(PART),
    REGISTRY_STORAGE_DELETE_ENABLED: 'true',
  };
  // The registry runs as its own process, as in production; this process only plays the client.
  const serve = await startServe([], { ...env, REGISTRY_LOG_LEVEL: 'info' });
  // A second instance on the same bucket that answers blob GETs with a presigned-URL redirect.
  const redirecting = await startServe([], { ...env, REGISTRY_LOG_LEVEL: 'info', REGISTRY_STORAGE_S3_REDIRECT: 'true' });
  const config = loadConfig({ env });
  const storage = await createAdapter(config.storage.driver, config.storage.options);
  const registry = { url: serve.url, storage };
  const finishing: number[] = [];
  const tuned = new S3Client({
    region: bucket.endpoint.region, endpoint: bucket.endpoint.endpoint, forcePathStyle: true,
    credentials: { accessKeyId: bucket.endpoint.accessKeyId, secretAccessKey: bucket.endpoint.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED', expectContinueHeader: false,
  });
  const results: Record<string, number[]> = { 'raw SDK upload': [], 'raw SDK upload (no Expect: 100-continue)': [], 'berth push (monolithic)': [], 'berth push (chunked 32 MiB)': [], 'raw SDK GetObject': [], 'berth pull (GET blob)': [], 'berth pull (307 to presigned S3 URL)': [] };
  try {
    for (let r = 0; r < rounds; r++) {
      const key = `raw/${r}`;
      results['raw SDK upload']!.push(await time(() => new Upload({ client: bucket.client, params: { Bucket: bucket.bucket, Key: key, Body: createReadStream(file.path, { highWaterMark: 1 << 20 }) }, partSize: PART, queueSize: 4 }).done()));
      results['raw SDK upload (no Expect: 100-continue)']!.push(await time(() => new Upload({ client: tuned, params: { Bucket: bucket.bucket, Key: `${key}-tuned`, Body: createReadStream(file.path, { highWaterMark: 1 << 20 }) }, partSize: PART, queueSize: 4 }).done()));
      await bucket.client.send(new DeleteObjectCommand({ Bucket: bucket.bucket, Key: `${key}-tuned` }));
      results['raw SDK GetObject']!.push(await time(async () => {
        const obj = await bucket.client.send(new GetObjectCommand({ Bucket: bucket.bucket, Key: key }));
        await pipeline(obj.Body as Readable, sink());
      }));
      await bucket.client.send(new DeleteObjectCommand({ Bucket: bucket.bucket, Key: key }));

      const repo = `bench/r${r}`;
      // every push stores the blob anew: remove what an earlier round left
      await registry.storage.delete(`/blobs/sha256/${file.digest.slice(7, 9)}/${file.digest.slice(7)}`);
      results['berth push (monolithic)']!.push(await time(async () => {
        const res = await httpSend(`${registry.url}/v2/${repo}/blobs/uploads/?digest=${file.digest}`, 'POST', createReadStream(file.path, { highWaterMark: 1 << 20 }),
          { 'Content-Type': 'application/octet-stream', 'Content-Length': file.size });
        if (res.status !== 201) throw new Error(`push failed: ${res.status}`);
      }));
      // Both pulls drain into the same sink (no client-side hashing), so they compare transport only.
      results['berth pull (GET blob)']!.push(await time(async () => {
        await new Promise<void>((resolve, reject) => {
          request(`${registry.url}/v2/${repo}/blobs/${file.digest}`, (res) => {
            if (res.statusCode !== 200) reject(new Error(`pull failed: ${res.statusCode}`));
            pipeline(res, sink()).then(resolve, reject);
          }).on('error', reject).end();
        });
      }));
      results['berth pull (307 to presigned S3 URL)']!.push(await time(async () => {
        const location = await new Promise<string>((resolve, reject) => {
          request(`${redirecting.url}/v2/${repo}/blobs/${file.digest}`, (res) => {
            res.resume();
            if (res.statusCode !== 307 || !res.headers.location) reject(new Error(`expected a redirect, got ${res.statusCode}`));
            else resolve(res.headers.location);
          }).on('error', reject).end();
        });
        await new Promise<void>((resolve, reject) => {
          request(location, (res) => {
            if (res.statusCode !== 200) reject(new Error(`presigned GET failed: ${res.statusCode}`));
            pipeline(res, sink()).then(resolve, reject);
          }).on('error', reject).end();
        });
      }));
      // chunked: delete the repo's link and the blob so the push really uploads again
      const repo2 = `bench/c${r}`;
      await registry.storage.delete(`/blobs/sha256/${file.digest.slice(7, 9)}/${file.digest.slice(7)}`);
      results['berth push (chunked 32 MiB)']!.push(await time(async () => {
        const start = await httpSend(`${registry.url}/v2/${repo2}/blobs/uploads/`, 'POST', undefined);
        const loc = String(start.headers.location);
        const chunk = 32 << 20;
        for (let off = 0; off < file.size; off += chunk) {
          const end = Math.min(off + chunk, file.size) - 1;
          const res = await httpSend(`${registry.url}${loc}`, 'PATCH', createReadStream(file.path, { start: off, end, highWaterMark: 1 << 20 }),
            { 'Content-Type': 'application/octet-stream', 'Content-Length': end - off + 1, 'Content-Range': `${off}-${end}` });
          if (res.status !== 202) throw new Error(`PATCH failed: ${res.status}`);
        }
        const t0 = performance.now();
        const done = await httpSend(`${registry.url}${loc}?digest=${file.digest}`, 'PUT', undefined);
        finishing.push((performance.now() - t0) / 1000);
        if (done.status !== 201) throw new Error(`PUT failed: ${done.status}`);
      }));
    }
  } finally {
    for (const s of [serve, redirecting]) { s.child.kill('SIGTERM'); await once(s.child, 'exit'); }
    tuned.destroy();
    await storage.close?.();
    await bucket.cleanup();
    await rm(dir, { recursive: true, force: true });
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const mbps = (name: string) => sizeMiB / median(results[name]!);
  console.log(`\nS3 throughput, ${sizeMiB} MiB blob, median of ${rounds} rounds, Ceph RGW on loopback (scripts/rgw.sh)\n`);
  console.log('| operation | MiB/s | vs raw SDK | vs raw SDK without Expect: 100-continue |');
  console.log('|---|---|---|---|');
  const rows = [
    ['raw SDK upload', 'raw SDK upload'], ['raw SDK upload (no Expect: 100-continue)', 'raw SDK upload'],
    ['berth push (monolithic)', 'raw SDK upload'], ['berth push (chunked 32 MiB)', 'raw SDK upload'],
    ['raw SDK GetObject', 'raw SDK GetObject'], ['berth pull (GET blob)', 'raw SDK GetObject'],
    ['berth pull (307 to presigned S3 URL)', 'raw SDK GetObject'],
  ] as const;
  for (const [name, raw] of rows) {
    const tunedRatio = raw === 'raw SDK upload' ? `${(mbps(name) / mbps('raw SDK upload (no Expect: 100-continue)')).toFixed(2)}×` : '';
    console.log(`| ${name} | ${mbps(name).toFixed(0)} | ${(mbps(name) / mbps(raw)).toFixed(2)}× | ${tunedRatio} |`);
  }
  console.log(`\n(chunked: the final PUT, which completes the upload's multipart upload and copies it to the digest's key, took a median ${median(finishing).toFixed(2)} s of ${median(results['berth push (chunked 32 MiB)']!).toFixed(2)} s)`);
}

await main();
