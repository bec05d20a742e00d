// The supervisor's side of the attach socket (see attach-socket.ts): any number of clients get the
// live output; what they type goes to the container's stdin, their window size to its terminal.
import { once } from 'node:events';
import { closeSync, openSync } from 'node:fs';
import { chmod, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { ATTACH_SOCKET, encodeFrame, FRAME, FrameReader, type FrameType } from './attach-socket.js';

export interface AttachHandlers {
  /** Bytes for the container's stdin; a promise while they cannot be taken yet (the client waits). */
  stdin(data: Buffer): void | Promise<void>;
  /**
   * A client's stdin ended, or a client that had attached its stdin went away without saying so
   * (docker closes the container's stdin then only for `run -i`: StdinOnce).
   */
  stdinEnd(): void;
  resize(rows: number, cols: number): void;
}

/** A client this far behind on output is dropped rather than held in memory (it can attach again). */
const MAX_BACKLOG = 16 << 20;

export class AttachServer {
  readonly #clients = new Set<Socket>();
  #arrivals: Array<() => void> = [];

  /**
   * The socket is bound as /proc/self/fd/<dirFd>/attach.sock (sockaddr_un holds 108 bytes; container
   * directories can be deeper), and Node unlinks that same path when the server closes: the directory
   * stays open until then, so the path cannot name another directory's socket by that time.
   */
  private constructor(private readonly server: Server, private readonly path: string, private readonly dirFd: number) {}

  static async listen(dir: string, h: AttachHandlers): Promise<AttachServer> {
    const path = join(dir, ATTACH_SOCKET);
    await rm(path, { force: true }); // left by a supervisor that was killed
    const server = createServer();
    const dirFd = openSync(dir, 'r');
    const self = new AttachServer(server, path, dirFd);
    server.on('connection', (s) => self.#accept(s, h));
    try {
      server.listen(join(`/proc/self/fd/${dirFd}`, ATTACH_SOCKET));
      await once(server, 'listening');
      await chmod(path, 0o600); // (until now the umask's 0755: connecting needs write permission)
    } catch (e) {
      server.close();
      closeSync(dirFd);
      throw e;
    }
    return self;
  }

  #accept(s: Socket, h: AttachHandlers): void {
    this.#clients.add(s);
    let stdinAttached = false;
    let stdinEnded = false;
    const reader = new FrameReader((type, payload) => {
      if (type === FRAME.stdin) {
        stdinAttached = true; // (an empty frame says so before any key is typed)
        if (!payload.length) return;
        const wait = h.stdin(payload);
        if (wait) { s.pause(); wait.then(() => s.resume(), () => s.destroy()); }
      } else if (type === FRAME.stdinEnd) {
        stdinEnded = true;
        h.stdinEnd();
      } else if (type === FRAME.resize) {
        const m = /^(\d{1,5}) (\d{1,5})$/.exec(payload.toString());
        if (m) h.resize(Number(m[1]), Number(m[2]));
      }
    });
    s.on('data', (d: Buffer) => { try { reader.push(d); } catch { s.destroy(); } });
    s.on('error', () => undefined);
    s.on('close', () => {
      this.#clients.delete(s);
      if (stdinAttached && !stdinEnded) h.stdinEnd(); // a CLI killed mid-way: its stdin has ended too
    });
    for (const arrived of this.#arrivals.splice(0)) arrived();
  }

  /** Resolves when a client is attached (at once if one is), after `ms` without one, or on `signal`. */
  async firstClient(ms: number, signal?: AbortSignal): Promise<void> {
    if (this.#clients.size || signal?.aborted) return;
    await new Promise<void>((resolve) => {
      const done = () => { clearTimeout(timer); signal?.removeEventListener('abort', done); resolve(); };
      const timer = setTimeout(done, ms);
      signal?.addEventListener('abort', done);
      this.#arrivals.push(done);
    });
  }

  broadcast(type: FrameType, data: Buffer | string): void {
    if (!this.#clients.size) return;
    const frame = encodeFrame(type, data);
    for (const s of this.#clients) {
      if (s.writableLength > MAX_BACKLOG) s.destroy();
      else s.write(frame);
    }
  }

  /** Tells every client the exit code, waits (briefly) until it is sent, and removes the socket. */
  async close(exitCode: number): Promise<void> {
    this.server.close();
    const frame = encodeFrame(FRAME.exit, String(exitCode));
    await Promise.all([...this.#clients].map((s) => new Promise<void>((resolve) => {
      const timer = setTimeout(() => { s.destroy(); resolve(); }, 2000);
      s.end(frame, () => { clearTimeout(timer); resolve(); });
    })));
    await rm(this.path, { force: true });
    closeSync(this.dirFd);
  }
}
