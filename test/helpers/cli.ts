// Runs the real `berth` CLI (the compiled dist/cli/index.js) as a child process.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../cli/index.js', import.meta.url));

export interface CliResult { code: number | null; stdout: string; stderr: string }

export function runCli(args: string[], opts: { env?: Record<string, string>; input?: string; timeoutMs?: number; cwd?: string } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, ...opts.env }, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
    child.stdin.end(opts.input ?? '');
  });
}

export interface ServeProcess { child: ChildProcess; url: string; logs: () => string }

/** Starts `berth serve` and waits for its "listening" log line. */
/** `berth serve` with these arguments; `cli` may name another build's dist/cli/index.js (benchmarks compare builds). */
export function startServe(args: string[], env: Record<string, string> = {}, cli = CLI): Promise<ServeProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, 'serve', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`berth serve did not start:\n${out}`)); }, 20_000);
    const onData = (d: Buffer) => {
      out += d;
      const m = /"addr":"(https?:\/\/[^"]+)".*berth registry listening/.exec(out);
      if (m) { clearTimeout(timer); resolve({ child, url: m[1]!, logs: () => out }); }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`berth serve exited with ${code}:\n${out}`)); });
  });
}
