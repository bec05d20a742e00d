// The attach socket of a container run with -i or -t: its supervisor listens on <container
// dir>/attach.sock (mode 0600: root's, like the container) and `berth attach`, `start -a` and a
// foreground `run -it` connect to it. It carries what the json-file log cannot: the live output as
// it comes (a prompt without a newline too), keys to the container's stdin, and the window size.
//
// Frames both ways: one type byte, a 4-byte big-endian length, the payload.
//   client → supervisor: STDIN bytes, STDIN_END (the client's stdin ended), RESIZE "ROWS COLS"
//   supervisor → client: STDOUT and STDERR bytes, EXIT "CODE" once the container has ended for good

export const FRAME = { stdin: 0, stdout: 1, stderr: 2, stdinEnd: 3, resize: 4, exit: 5 } as const;
export type FrameType = typeof FRAME[keyof typeof FRAME];

/** No frame is bigger than a read or a write of a stream; more is a broken peer. */
const MAX_FRAME = 1 << 20;

export const ATTACH_SOCKET = 'attach.sock';

export function encodeFrame(type: FrameType, payload: Buffer | string = ''): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const head = Buffer.alloc(5);
  head[0] = type;
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

/** Cuts a byte stream into frames, whatever the chunks' boundaries. */
export class FrameReader {
  #pending: Buffer = Buffer.alloc(0);
  constructor(private readonly onFrame: (type: number, payload: Buffer) => void) {}

  /** Throws on a frame over the limit (the peer is not speaking this protocol). */
  push(chunk: Buffer): void {
    this.#pending = this.#pending.length ? Buffer.concat([this.#pending, chunk]) : chunk;
    while (this.#pending.length >= 5) {
      const length = this.#pending.readUInt32BE(1);
      if (length > MAX_FRAME) throw new Error(`attach: a frame of ${length} bytes`);
      if (this.#pending.length < 5 + length) break;
      const type = this.#pending[0]!;
      const payload = this.#pending.subarray(5, 5 + length);
      this.#pending = this.#pending.subarray(5 + length);
      this.onFrame(type, payload);
    }
  }
}
