// How much a storm of failed sign-ins slows everyone else: N wrong passwords sent at once, each from
// its own loopback address (so the per-address throttle does not stop them), while one client that
// signed in before (its credentials cached for 60 s) makes sequential GET /v2/ requests. Their
// latency is the event loop's: bcrypt on it stalled them for seconds; in worker threads it does not.
// `berth serve` runs as its own process with a cost-10 htpasswd. --cli compares another build.
//
//   npm run build && node dist/bench/signin-storm.js [--addresses 40] [--requests 30] [--rounds 3] [--cli path/to/dist/cli/index.js]
import { writeFile, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import bcrypt from 'bcryptjs';
import { CLI, startServe } from '../test/helpers/cli.js';
import { tempDir } from '../test/helpers/registry.js';

const { values: args } = parseArgs({
  options: {
    addresses: { type: 'string', default: '40' },
    requests: { type: 'string', default: '30' },
    rounds: { type: 'string', default: '3' },
    cli: { type: 'string', default: CLI },
  },
});
const addresses = Number(args.addresses);
const requests = Number(args.requests);
const rounds = Number(args.rounds);
if (!(addresses >= 1 && addresses <= 200 && requests >= 2 && rounds >= 1)) throw new Error('--addresses 1-200, --requests ≥ 2, --rounds ≥ 1');

/** GET /v2/ with Basic credentials from `localAddress`: [status, milliseconds]. */
function get(url: URL, credentials: string, localAddress: string): Promise<[number, number]> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    request({ host: url.hostname, port: url.port, path: '/v2/', localAddress, agent: false,
      headers: { authorization: `Basic ${Buffer.from(credentials).toString('base64')}` } }, (res) => {
      res.resume();
      res.on('end', () => resolve([res.statusCode ?? 0, performance.now() - t0]));
    }).on('error', reject).end();
  });
}

const dir = await tempDir('berth-bench-signin-');
try {
  await writeFile(join(dir, 'htpasswd'), `alice:${bcrypt.hashSync('alice-pw', 10)}\n`);
  const serve = await startServe(['--addr', '127.0.0.1:0', '--root', join(dir, 'data'), '--auth', 'htpasswd', '--htpasswd', join(dir, 'htpasswd')], {}, args.cli);
  try {
    const url = new URL(serve.url);
    if ((await get(url, 'alice:alice-pw', '127.0.0.2'))[0] !== 200) throw new Error('the good sign-in failed');
    console.log(`| round | wrong sign-ins at once | cached GET /v2/ median | max |\n|---|---|---|---|`);
    for (let round = 0; round < rounds; round++) {
      const storm = Promise.all(Array.from({ length: addresses }, (_, i) => get(url, `alice:wrong-${round}-${i}`, `127.0.0.${10 + i}`)));
      const ms: number[] = [];
      for (let i = 0; i < requests; i++) ms.push((await get(url, 'alice:alice-pw', '127.0.0.2'))[1]);
      const statuses = new Set((await storm).map(([s]) => s));
      if (statuses.size !== 1 || !statuses.has(401)) throw new Error(`wrong sign-ins answered ${[...statuses].join(', ')}, not only 401`);
      ms.sort((a, b) => a - b);
      console.log(`| ${round + 1} | ${addresses} | ${ms[Math.floor(ms.length / 2)]!.toFixed(1)} ms | ${ms.at(-1)!.toFixed(0)} ms |`);
    }
  } finally {
    serve.child.kill('SIGTERM');
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
