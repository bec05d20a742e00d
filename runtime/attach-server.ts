// The supervisor's side of the attach socket (see attach-socket.ts): any number of clients get the
// live output; what they type goes to the container's stdin, their window size to its terminal.
import { once } from 'node:events';
import { chmod, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { ATTACH_SOCKET, encodeFrame, FRAME, FrameReader, withSocketPath, type FrameType } from './attach-socket.js';

export interface AttachHandlers {
  stdin(data: Buffer): void;
  /** A client's stdin ended (docker closes the container's stdin then only for `run -i`: StdinOnce). */
  stdinEnd(): void;
  resize(rows: number, cols: number): void;
}

/** A client this far behind on output is dropped rather than held in memory (it can attach again). */
const MAX_BACKLOG = 16 << 20;

export class AttachServer {
  readonly #clients = new Set<Socket>();
  #arrivals: Array<() => void> = [];

  private constructor(private readonly server: Server, private readonly path: string) {}

  static async listen(dir: string, h: AttachHandlers): Promise<AttachServer> {
    const path = join(dir, ATTACH_SOCKET);
    await rm(path, { force: true }); // left by a supervisor that was killed
    const server = createServer();
    const self = new AttachServer(server, path);
    server.on('connection', (s) => self.#accept(s, h));
    await withSocketPath(dir, async (p) => {
      server.listen(p);
      await once(server, 'listening');
    });
    await chmod(path, 0o600); // (until now the umask's 0755: connecting needs write permission)
    return self;
  }

  #accept(s: Socket, h: AttachHandlers): void {
    this.#clients.add(s);
    const reader = new FrameReader((type, payload) => {
      if (type === FRAME.stdin) h.stdin(payload);
      else if (type === FRAME.stdinEnd) h.stdinEnd();
      else if (type === FRAME.resize) {
        const m = /^(\d{1,5}) (\d{1,5})$/.exec(payload.toString());
        if (m) h.resize(Number(m[1]), Number(m[2]));
      }
    });
    s.on('data', (d: Buffer) => { try { reader.push(d); } catch { s.destroy(); } });
    s.on('error', () => undefined);
    s.on('close', () => this.#clients.delete(s));
    for (const arrived of this.#arrivals.splice(0)) arrived();
  }

  /** Resolves when a client is attached (at once if one is), or after `ms` without one. */
  async firstClient(ms: number): Promise<void> {
    if (this.#clients.size) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#arrivals.push(() => { clearTimeout(timer); resolve(); });
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
  }
}
