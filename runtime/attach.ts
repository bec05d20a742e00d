// `berth run` in the foreground without --rm, Docker's default: the container is created and run
// under its supervisor exactly like a detached one, so it stays afterwards (ps -a, logs, start, diff,
// commit, rm), and the CLI stays attached to it: it prints the container's output as the supervisor
// logs it (line by line, stdout and stderr apart), forwards SIGINT, SIGTERM and SIGHUP to it
// (docker's --sig-proxy) and ends with the container's exit code. Killing the CLI does not stop the
// container, as with docker. `berth attach` and `berth start -a` attach the same way to a container
// that is already running.
//
// A container with -i or -t is attached through its supervisor's attach socket instead
// (attachToSocket): live output, keys to its stdin, the window size to its terminal, and
// ctrl-p ctrl-q (or --detach-keys) to detach, as with docker.
import { closeSync, openSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { UsageError } from '../client/errors.js';
import { ATTACH_SOCKET, encodeFrame, FRAME, FrameReader } from './attach-socket.js';
import { killContainer, loadContainer, streamLogs, type Container } from './containers.js';
import { exitStatus } from './executors/executor.js';

const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** docker's forwarding of the CLI's signals to the container (--sig-proxy); undoes itself. */
function proxySignals(root: string, c: Container): () => void {
  const handlers = FORWARDED.map((sig) => {
    // the state on disk, not `c`'s: between restarts, or once it has ended, there is nothing to signal
    const h = () => { loadContainer(root, c.config.id).then((now) => killContainer(now, sig)).catch(() => undefined); };
    process.on(sig, h);
    return [sig, h] as const;
  });
  return () => { for (const [sig, h] of handlers) process.off(sig, h); };
}

/**
 * Follows a started container until it has ended for good (restarts included); answers its exit
 * code. With `after` (logEnd() taken before the container was started, or now for docker attach),
 * only what was written since is printed; without it, the whole log (a new container's).
 */
export async function attachUntilExit(root: string, c: Container, out: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream } = process, after?: { ino: number; bytes: number }): Promise<number> {
  const unproxy = proxySignals(root, c);
  try {
    await streamLogs(root, c, { follow: true, pollMs: 50, ...(after ? { after } : {}), write: (s, stream) => { (stream === 'stderr' ? out.stderr : out.stdout).write(s); } });
  } finally {
    unproxy();
  }
  const end = await loadContainer(root, c.config.id);
  return end.state.exitCode ?? 125;
}

/**
 * docker's --detach-keys: comma-separated keys, each a letter or ctrl-X (X one of a-z @ [ \\ ] ^ _),
 * e.g. "ctrl-p,ctrl-q" (the default) or "ctrl-a,d".
 */
export function parseDetachKeys(spec: string): Buffer {
  const keys = spec.split(',').map((k) => {
    const ctrl = /^ctrl-([a-z@[\\\]^_])$/.exec(k);
    if (ctrl) return ctrl[1]!.charCodeAt(0) & 0x1f;
    if (/^[a-zA-Z]$/.test(k)) return k.charCodeAt(0);
    throw new UsageError(`--detach-keys ${spec}: "${k}" is not a key (a letter, or ctrl- and one of a-z @ [ \\ ] ^ _)`);
  });
  return Buffer.from(keys);
}

export const DEFAULT_DETACH_KEYS = parseDetachKeys('ctrl-p,ctrl-q');

/** Finds the detach keys in typed input (the sequence may span reads); keys that start it but do not finish it are passed on. */
export class DetachKeys {
  #held = 0;

  constructor(private readonly keys: Buffer = DEFAULT_DETACH_KEYS) {}

  /** The bytes to pass on, and whether the sequence was typed (what follows it is dropped). */
  scan(chunk: Buffer): { pass: Buffer; detach: boolean } {
    const keys = this.keys;
    if (!this.#held && !chunk.includes(keys[0]!)) return { pass: chunk, detach: false };
    const pass: number[] = [];
    for (const b of chunk) {
      if (b !== keys[this.#held] && this.#held) { // a broken sequence: what was held goes on, and b may start a new one
        pass.push(...keys.subarray(0, this.#held));
        this.#held = 0;
      }
      if (b === keys[this.#held]) {
        if (++this.#held === keys.length) { this.#held = 0; return { pass: Buffer.from(pass), detach: true }; }
      } else pass.push(b);
    }
    return { pass: Buffer.from(pass), detach: false };
  }
}

export interface SocketAttachIo {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  stdout: NodeJS.WritableStream & { isTTY?: boolean; rows?: number; columns?: number; on(e: 'resize', l: () => void): unknown; off(e: 'resize', l: () => void): unknown };
  stderr: NodeJS.WritableStream;
}

/** Connects to a container directory's attach socket (through /proc/self/fd: sockaddr_un holds 108 bytes). */
async function connectAttach(dir: string): Promise<Socket> {
  const fd = openSync(dir, 'r');
  try {
    return await new Promise<Socket>((resolve, reject) => {
      const s = connect(join(`/proc/self/fd/${fd}`, ATTACH_SOCKET));
      s.once('connect', () => { s.off('error', reject); resolve(s); });
      s.once('error', reject);
    });
  } finally {
    closeSync(fd);
  }
}

/**
 * Attaches to a running container with -i or -t through its supervisor's socket until it ends for
 * good (answers its exit code) or the user detaches with the detach keys, ctrl-p ctrl-q unless told
 * otherwise (answers 0, as docker does).
 * With `stdin`, what this process reads goes to the container; on a terminal, raw, key by key.
 */
export async function attachToSocket(root: string, c: Container, o: { stdin: boolean; detachKeys?: Buffer }, io: SocketAttachIo = process): Promise<number> {
  const tty = c.config.tty === true;
  let sock: Socket;
  try {
    sock = await connectAttach(c.dir);
  } catch {
    throw new Error(`container ${c.config.name} is not running (nothing to attach to)`);
  }
  let exitCode: number | undefined;
  let detached = false;
  let signalled: NodeJS.Signals | undefined;
  const reader = new FrameReader((type, payload) => {
    if (type === FRAME.stdout) io.stdout.write(payload);
    else if (type === FRAME.stderr) io.stderr.write(payload);
    else if (type === FRAME.exit) exitCode = Number(payload.toString());
  });
  sock.on('data', (d: Buffer) => { try { reader.push(d); } catch { sock.destroy(); } });
  sock.on('error', () => undefined);

  const sendSize = () => { if (io.stdout.isTTY && io.stdout.rows && io.stdout.columns) sock.write(encodeFrame(FRAME.resize, `${io.stdout.rows} ${io.stdout.columns}`)); };
  if (tty) { sendSize(); io.stdout.on('resize', sendSize); }
  const raw = o.stdin && tty && io.stdin.isTTY === true && typeof io.stdin.setRawMode === 'function';
  if (raw) io.stdin.setRawMode!(true);
  const keys = new DetachKeys(o.detachKeys);
  const send = (frame: Buffer) => {
    // the container takes its stdin at its own pace: stop reading ours until the socket drains
    if (!sock.write(frame)) { io.stdin.pause(); sock.once('drain', () => io.stdin.resume()); }
  };
  const onData = (chunk: Buffer) => {
    const { pass, detach } = raw ? keys.scan(chunk) : { pass: chunk, detach: false };
    if (pass.length) send(encodeFrame(FRAME.stdin, pass));
    if (detach) { detached = true; sock.end(); }
  };
  const onEnd = () => { if (sock.writable) sock.write(encodeFrame(FRAME.stdinEnd)); };
  if (o.stdin) {
    sock.write(encodeFrame(FRAME.stdin)); // "my stdin is attached": if this CLI dies, the supervisor ends it
    io.stdin.on('data', onData);
    io.stdin.on('end', onEnd);
  }
  // Without a terminal the CLI's signals are passed on (docker's sig-proxy). With one, as with docker,
  // they are not: ^C on a raw terminal is a key for the container, and a signal to the CLI ends the
  // attach only (restoring the terminal), leaving the container running.
  let unhook: () => void;
  if (tty) {
    const handlers = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((sig) => {
      const h = () => { signalled = sig; sock.destroy(); };
      process.on(sig, h);
      return [sig, h] as const;
    });
    unhook = () => { for (const [sig, h] of handlers) process.off(sig, h); };
  } else {
    unhook = proxySignals(root, c);
  }
  try {
    await new Promise<void>((resolve) => sock.once('close', () => resolve()));
  } finally {
    unhook();
    if (tty) io.stdout.off('resize', sendSize);
    if (o.stdin) {
      io.stdin.off('data', onData);
      io.stdin.off('end', onEnd);
      io.stdin.pause();
    }
    if (raw) io.stdin.setRawMode!(false);
  }
  if (detached) return 0;
  if (exitCode !== undefined) return exitCode;
  if (signalled) return exitStatus(null, signalled);
  const end = await loadContainer(root, c.config.id).catch(() => undefined);
  return end?.state.exitCode ?? 125;
}
