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
// ctrl-p ctrl-q to detach, as with docker.
import { closeSync, openSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
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

const CTRL_P = 0x10;
const CTRL_Q = 0x11;

/** Finds docker's detach keys, ctrl-p ctrl-q, in typed input (the pair may span two reads). */
export class DetachKeys {
  #held = false;

  /** The bytes to pass on, and whether the sequence was typed (what follows it is dropped). */
  scan(chunk: Buffer): { pass: Buffer; detach: boolean } {
    if (!this.#held && !chunk.includes(CTRL_P)) return { pass: chunk, detach: false };
    const pass: number[] = [];
    for (const b of chunk) {
      if (this.#held) {
        this.#held = false;
        if (b === CTRL_Q) return { pass: Buffer.from(pass), detach: true };
        pass.push(CTRL_P);
      }
      if (b === CTRL_P) this.#held = true;
      else pass.push(b);
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
 * good (answers its exit code) or the user detaches with ctrl-p ctrl-q (answers 0, as docker does).
 * With `stdin`, what this process reads goes to the container; on a terminal, raw, key by key.
 */
export async function attachToSocket(root: string, c: Container, o: { stdin: boolean }, io: SocketAttachIo = process): Promise<number> {
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
  const keys = new DetachKeys();
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
