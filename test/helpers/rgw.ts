// A real S3 for tests: the single-node Ceph RGW of scripts/rgw.sh, started once (the script is idempotent and
// serialises concurrent starts with a lock), and a fresh bucket per test file. If RGW cannot be started the
// caller gets an error, so the tests fail rather than skip.
//
// To test against another S3 instead, set BERTH_S3_ENDPOINT, BERTH_S3_ACCESS_KEY and BERTH_S3_SECRET_KEY
// (and optionally BERTH_S3_REGION); BERTH_RGW_DIR picks the RGW scratch directory (default /tmp/berth-rgw).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import {
  AbortMultipartUploadCommand, CreateBucketCommand, DeleteBucketCommand, DeleteObjectsCommand,
  ListMultipartUploadsCommand, ListObjectsV2Command, S3Client,
} from '@aws-sdk/client-s3';

export interface S3Endpoint {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** How long starting RGW took in this process (0 when it was already running or external). */
  startMs: number;
}

export interface TestBucket {
  bucket: string;
  endpoint: S3Endpoint;
  /** A client with the settings RGW needs, for looking at the bucket directly. */
  client: S3Client;
  /** Options for createAdapter('s3', …) / S3Adapter.fromConfig. */
  adapterOptions(extra?: Record<string, unknown>): Record<string, unknown>;
  /** Empties and removes the bucket, then closes the client. */
  cleanup(): Promise<void>;
}

const SCRIPT = fileURLToPath(new URL('../../../scripts/rgw.sh', import.meta.url));

function parseEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

function runScript(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('bash', [SCRIPT, ...args], { timeout: 10 * 60_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`scripts/rgw.sh ${args.join(' ')} failed: ${err.message}\n${stderr.slice(-4000)}`));
      else resolve(stdout);
    });
  });
}

let started: Promise<S3Endpoint> | undefined;

/** Starts RGW unless it runs already (or an external S3 is configured) and returns where it is. */
export function ensureRgw(): Promise<S3Endpoint> {
  started ??= (async () => {
    const env = process.env;
    if (env.BERTH_S3_ENDPOINT && env.BERTH_S3_ACCESS_KEY && env.BERTH_S3_SECRET_KEY) {
      return {
        endpoint: env.BERTH_S3_ENDPOINT, region: env.BERTH_S3_REGION || 'us-east-1',
        accessKeyId: env.BERTH_S3_ACCESS_KEY, secretAccessKey: env.BERTH_S3_SECRET_KEY, startMs: 0,
      };
    }
    const t0 = performance.now();
    const dirArgs = env.BERTH_RGW_DIR ? [env.BERTH_RGW_DIR] : [];
    let already = true;
    try { await runScript(['status', ...dirArgs]); } catch { already = false; }
    const out = parseEnv(await runScript(['start', ...dirArgs]));
    if (!out.BERTH_S3_ENDPOINT || !out.BERTH_S3_ACCESS_KEY || !out.BERTH_S3_SECRET_KEY) {
      throw new Error('scripts/rgw.sh start printed no endpoint/credentials');
    }
    return {
      endpoint: out.BERTH_S3_ENDPOINT, region: out.BERTH_S3_REGION || 'us-east-1',
      accessKeyId: out.BERTH_S3_ACCESS_KEY, secretAccessKey: out.BERTH_S3_SECRET_KEY,
      startMs: already ? 0 : Math.round(performance.now() - t0),
    };
  })();
  started.catch(() => { started = undefined; });
  return started;
}

export function s3Client(ep: S3Endpoint): S3Client {
  return new S3Client({
    region: ep.region, endpoint: ep.endpoint, forcePathStyle: true,
    credentials: { accessKeyId: ep.accessKeyId, secretAccessKey: ep.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** Removes every object and unfinished multipart upload in a bucket (or under a prefix of it). */
export async function emptyBucket(client: S3Client, bucket: string, prefix?: string): Promise<void> {
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key! }));
    if (keys.length) await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys, Quiet: true } }));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
  for (const u of uploads.Uploads ?? []) {
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key!, UploadId: u.UploadId! })).catch(() => undefined);
  }
}

/** A new, empty bucket on the test S3. */
export async function freshBucket(prefix = 'berth-test'): Promise<TestBucket> {
  const endpoint = await ensureRgw();
  const client = s3Client(endpoint);
  const bucket = `${prefix}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  return {
    bucket, endpoint, client,
    adapterOptions: (extra = {}) => ({
      bucket, region: endpoint.region, regionendpoint: endpoint.endpoint, forcepathstyle: true,
      accesskey: endpoint.accessKeyId, secretkey: endpoint.secretAccessKey, ...extra,
    }),
    async cleanup() {
      try {
        await emptyBucket(client, bucket);
        await client.send(new DeleteBucketCommand({ Bucket: bucket }));
      } finally {
        client.destroy();
      }
    },
  };
}
