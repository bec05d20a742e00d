// Transfer progress: bars redrawn in place on a terminal, plain lines elsewhere, nothing with
// --quiet/--json; and the real CLI on a real pseudo-terminal (util-linux `script`) draws bars.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { createProgress, LineProgress, SilentProgress, TtyProgress, type Progress } from '../../client/progress.js';
import { createImageLayout, seededRandomBytes, type ImageLayout } from '../fixtures/oci-layout.js';
import { CLI, runCli } from '../helpers/cli.js';
import { startTestServer, type TestServer } from '../helpers/registry.js';

/** A stream that says it is a terminal of `columns` columns and keeps what is written. */
function fakeTerminal(columns = 100): NodeJS.WriteStream & { text: () => string } {
  const s = new PassThrough() as unknown as NodeJS.WriteStream & { text: () => string };
  let out = '';
  s.on('data', (d: Buffer) => { out += d.toString(); });
  Object.assign(s, { isTTY: true, columns, text: () => out });
  return s;
}

const ESC = '\x1b';
const visible = (s: string) => s.replace(/\x1b\[[0-9]*[A-Za-z]/g, '');

describe('progress output', () => {
  it('picks bars for a terminal, lines for a pipe, nothing for --quiet and --json', () => {
    const term = fakeTerminal();
    const saved = process.env.TERM;
    process.env.TERM = 'xterm';
    try {
      assert.ok(createProgress({ stream: term }) instanceof TtyProgress);
      assert.ok(createProgress({ stream: new PassThrough() as unknown as NodeJS.WriteStream }) instanceof LineProgress);
      assert.ok(createProgress({ stream: term, quiet: true }) instanceof SilentProgress);
      assert.ok(createProgress({ stream: term, json: true }) instanceof SilentProgress);
      process.env.TERM = 'dumb';
      assert.ok(createProgress({ stream: term }) instanceof LineProgress, 'TERM=dumb gets plain lines');
    } finally {
      if (saved === undefined) delete process.env.TERM; else process.env.TERM = saved;
    }
  });

  it('draws one bar per blob and redraws them in place; a log line goes above the bars', async () => {
    const term = fakeTerminal(100);
    const p = new TtyProgress(term);
    p.start('a', 'aaaa', 4000);
    p.start('b', 'bbbb', 2_000_000);
    p.update('a', 2000);
    p.update('b', 1_000_000);
    await new Promise((r) => setTimeout(r, 150)); // the first scheduled draw
    const first = term.text();
    assert.equal(first.split(`${ESC}[2K`).length - 1, 2, 'two bars drawn');
    assert.match(visible(first), /aaaa: \[=+> *\] 2\.00 kB\/4\.00 kB/);
    assert.match(visible(first), /bbbb: \[=+> *\] 1\.00 MB\/2\.00 MB/);
    assert.doesNotMatch(first, new RegExp(`${ESC}\\[\\d+F`), 'nothing to move back over yet');

    p.finish('a', 'done');
    p.log('manifest pushed');
    p.update('b', 2_000_000);
    p.finish('b', 'exists');
    p.close();
    const rest = term.text().slice(first.length);
    assert.ok(rest.startsWith(`${ESC}[2F${ESC}[J`), 'the log line first moves back over the two bars and erases them');
    const lines = visible(rest).split('\n').filter(Boolean);
    assert.equal(lines.length, 5, lines.join('\n'));
    assert.deepEqual(lines.slice(0, 2), ['manifest pushed', 'aaaa: done'], 'the log line, then the bars drawn again below it');
    assert.match(lines[2]!, /^bbbb: \[=+> *\] 1\.00 MB\/2\.00 MB$/);
    assert.ok(rest.lastIndexOf(`${ESC}[2F`) > rest.indexOf('manifest pushed'), 'the final draw moves back over the bars');
    assert.deepEqual(lines.slice(3), ['aaaa: done', 'bbbb: exists'], 'and shows every blob\'s status in place');
    for (const l of lines) assert.ok(l.length <= 99, 'no line wider than the terminal');
  });

  it('plain lines: one when a blob starts, one when it ends, no escape sequences', () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => { text += d.toString(); });
    const p: Progress = new LineProgress(out);
    p.start('a', 'aaaa', 4000);
    p.update('a', 400);
    p.finish('a', 'done');
    p.close();
    assert.equal(text, 'aaaa: copying 4.00 kB\naaaa: done\n');
  });
});

const script = ['/usr/bin/script', '/bin/script'].find((p) => existsSync(p));

describe('the CLI on a pseudo-terminal', { skip: script ? false : 'needs script (util-linux)' }, () => {
  let work: string;
  let server: TestServer;
  let image: ImageLayout;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-progress-'));
    server = await startTestServer();
    image = await createImageLayout(join(work, 'src'), {
      tag: 'v1',
      layers: [{ files: { 'a.bin': seededRandomBytes(3 << 20, 'tty-a') } }, { files: { 'b.bin': seededRandomBytes(2 << 20, 'tty-b') } }],
    });
    const push = await runCli(['push', `oci:${image.dir}:v1`, `${server.host}/tty/app:v1`]);
    assert.equal(push.code, 0, push.stderr);
  });
  after(async () => {
    await server?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** Runs a program to its end (asynchronously: the registry lives in this process). */
  function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ status: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
      child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      child.on('error', reject);
      child.on('close', (status) => { clearTimeout(timer); resolve({ status, stdout, stderr }); });
    });
  }

  it('berth pull draws per-layer bars on a terminal, and plain lines when its stderr is a pipe', async () => {
    const out = join(work, 'out');
    const args = [CLI, 'pull', `${server.host}/tty/app:v1`, `oci:${out}:v1`];
    const quoted = [process.execPath, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    // script runs the command on a new pty and copies what it printed to our stdout
    const tty = await run(script!, ['-qefc', quoted, '/dev/null'], { ...process.env, TERM: 'xterm', COLUMNS: '120' });
    assert.equal(tty.status, 0, tty.stdout + tty.stderr);
    assert.ok(tty.stdout.includes(`${ESC}[2K`), 'bars are drawn with line erases');
    const shown = visible(tty.stdout);
    for (const l of image.layers) assert.match(shown, new RegExp(`${l.descriptor.digest.slice(7, 19)}: done`), 'each layer ends as "done" in its bar');
    assert.doesNotMatch(shown, /: copying /, 'no plain start lines on a terminal');

    const piped = await run(process.execPath, [CLI, 'pull', `${server.host}/tty/app:v1`, `oci:${join(work, 'out2')}:v1`]);
    assert.equal(piped.status, 0, piped.stderr);
    assert.doesNotMatch(piped.stderr, /\x1b\[/, 'no escape sequences into a pipe');
    for (const l of image.layers) assert.match(piped.stderr, new RegExp(`${l.descriptor.digest.slice(7, 19)}: copying `));
  });
});
