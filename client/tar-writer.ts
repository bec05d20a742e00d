// Writes a tar stream member by member: each body is streamed from its source with its size
// known up front (checked), so archives of any size are written without buffering. ustar headers,
// with a PAX record for names that do not fit.
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { ClientError } from './errors.js';

export interface TarWriterEntry {
  name: string;
  size: number;
  mode?: number;
  mtime?: number;
  /** Opens the body; not called for size 0. */
  open?: () => Readable | Promise<Readable>;
  /** Small bodies can be given directly. */
  data?: Buffer;
}

const BLOCK = 512;

function octal(v: number, width: number): string {
  return Math.trunc(v).toString(8).padStart(width - 1, '0');
}

function header(name: string, size: number, mode: number, mtime: number, type: string): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(name, 0, 100, 'utf8');
  h.write(octal(mode, 8), 100, 8);
  h.write(octal(0, 8), 108, 8);
  h.write(octal(0, 8), 116, 8);
  h.write(octal(size, 12), 124, 12);
  h.write(octal(mtime, 12), 136, 12);
  h.write('        ', 148, 8);
  h.write(type, 156, 1);
  h.write('ustar\u000000', 257, 8);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 8);
  return h;
}

function pax(fields: Record<string, string>): Buffer {
  let out = '';
  for (const [k, v] of Object.entries(fields)) {
    const body = ` ${k}=${v}\n`;
    let len = Buffer.byteLength(body) + 1;
    while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
    out += `${len}${body}`;
  }
  return Buffer.from(out, 'utf8');
}

function write(out: Writable, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    out.write(data, (e) => (e ? reject(e) : resolve()));
  });
}

export async function writeTar(out: Writable, entries: Iterable<TarWriterEntry> | AsyncIterable<TarWriterEntry>): Promise<void> {
  for await (const e of entries) {
    const mode = e.mode ?? 0o644;
    const mtime = e.mtime ?? 0;
    if (Buffer.byteLength(e.name) > 100) {
      const body = pax({ path: e.name });
      await write(out, header('PaxHeader', body.length, 0o644, mtime, 'x'));
      await write(out, Buffer.concat([body, Buffer.alloc((BLOCK - (body.length % BLOCK)) % BLOCK)]));
    }
    await write(out, header(e.name.slice(0, 100), e.size, mode, mtime, '0'));
    if (e.size > 0) {
      if (e.data) {
        if (e.data.length !== e.size) throw new ClientError(`tar member ${e.name}: ${e.data.length} bytes, header says ${e.size}`);
        await write(out, e.data);
      } else if (e.open) {
        let n = 0;
        const count = new Transform({
          transform(chunk: Buffer, _enc, done) {
            n += chunk.length;
            if (n > e.size) { done(new ClientError(`tar member ${e.name}: more than ${e.size} bytes`)); return; }
            done(null, chunk);
          },
        });
        await pipeline(await e.open(), count, out, { end: false });
        if (n !== e.size) throw new ClientError(`tar member ${e.name}: ${n} bytes, expected ${e.size}`);
      }
      const pad = (BLOCK - (e.size % BLOCK)) % BLOCK;
      if (pad) await write(out, Buffer.alloc(pad));
    }
  }
  await write(out, Buffer.alloc(BLOCK * 2));
}
