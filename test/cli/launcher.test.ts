// The `berth` executable as a user starts it (its shebang line): the arguments reach berth only, not Node.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../../cli/index.js', import.meta.url));

describe('the berth executable', () => {
  let dir: string;
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'berth-launcher-')); });
  after(() => rm(dir, { recursive: true, force: true }));

  const berth = (args: string[]) => new Promise<{ code: number; stderr: string }>((resolve) => {
    execFile(bin, args, { env: { ...process.env, BERTH_ROOT: join(dir, 'root'), BERTH_STORE: join(dir, 'store') } }, (err, _stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stderr });
    });
  });

  test('run --env-file is read by berth, never by Node (whose own --env-file would load NODE_OPTIONS from it)', async () => {
    const marker = join(dir, 'preloaded');
    await writeFile(join(dir, 'preload.cjs'), `require('fs').writeFileSync(${JSON.stringify(marker)}, 'ran');\n`);
    const envFile = join(dir, 'env');
    await writeFile(envFile, `NODE_OPTIONS=--require ${join(dir, 'preload.cjs')}\nFOO=bar\n`);
    const r = await berth(['run', '--pull', 'never', '--env-file', envFile, 'localhost/absent:1', 'true']);
    assert.equal(existsSync(marker), false, 'Node loaded the env file');
    assert.equal(r.code, 3, r.stderr); // berth's own answer: no such image
    assert.match(r.stderr, /^berth: .*absent/m);

    const missing = await berth(['run', '--env-file', join(dir, 'nope'), 'localhost/absent:1', 'true']);
    assert.equal(missing.code, 2);
    assert.equal(missing.stderr, `berth: --env-file ${join(dir, 'nope')}: no such file\n`);
  });
});
