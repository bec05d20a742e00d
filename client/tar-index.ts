// Reads the member table of an uncompressed tar file without reading the members: header blocks
// are read at their offsets and bodies skipped, so a multi-GB docker-archive is indexed with a
// few kB of I/O. Members are then streamed straight from the file by offset. Handles ustar
// prefixes, PAX (x) and GNU long names (L/K); symlinks and hardlinks are resolved on lookup.
import { open, type FileHandle } from 'node:fs/promises';
import { posix } from 'node:path';
import { ClientError } from './errors.js';

export interface TarMember {
  name: string;
  /** '0' file, '1' hardlink, '2' symlink, '5' directory… */
  type: string;
  /** Offset of the body in the file. */
  offset: number;
  size: number;
  linkname: string;
}

const BLOCK = 512;

function str(buf: Buffer, off: number, len: number): string {
  const end = buf.indexOf(0, off);
  return buf.toString('utf8', off, end >= 0 && end < off + len ? end : off + len);
}

function num(buf: Buffer, off: number, len: number): number {
  if (buf[off]! & 0x80) {
    // base-256 (GNU) for big sizes
    let v = 0;
    for (let i = off + 1; i < off + len; i++) v = v * 256 + buf[i]!;
    return v;
  }
  const s = str(buf, off, len).trim();
  return s ? parseInt(s, 8) : 0;
}

function normalize(name: string): string {
  return posix.normalize(name.replace(/^\/+/, '')).replace(/^\.\//, '').replace(/\/$/, '');
}

function parsePax(body: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < body.length) {
    const sp = body.indexOf(0x20, i);
    if (sp < 0) break;
    const len = Number(body.toString('ascii', i, sp));
    if (!len) break;
    const rec = body.toString('utf8', sp + 1, i + len - 1);
    const eq = rec.indexOf('=');
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    i += len;
  }
  return out;
}

export class TarIndex {
  private constructor(readonly path: string, readonly members: Map<string, TarMember>) {}

  /** Indexes the tar at `path`, or read through `handle` (left open) when given; `path` then only names it. */
  static async read(path: string, handle?: FileHandle): Promise<TarIndex> {
    const fh = handle ?? await open(path, 'r').catch((e: Error) => { throw new ClientError(`cannot open ${path}: ${e.message}`); });
    const members = new Map<string, TarMember>();
    try {
      const { size: fileSize } = await fh.stat();
      const head = Buffer.alloc(BLOCK);
      let pos = 0;
      let longName: string | undefined;
      let longLink: string | undefined;
      let pax: Record<string, string> = {};
      const first = await fh.read(head, 0, BLOCK, 0);
      if (first.bytesRead >= 2 && head[0] === 0x1f && head[1] === 0x8b) throw new ClientError(`${path} is gzip-compressed: decompress it first (gunzip)`);
      if (first.bytesRead >= 4 && head.readUInt32BE(0) === 0x28b52ffd) throw new ClientError(`${path} is zstd-compressed: decompress it first`);
      while (pos + BLOCK <= fileSize) {
        const { bytesRead } = await fh.read(head, 0, BLOCK, pos);
        if (bytesRead < BLOCK) break;
        if (head.every((b) => b === 0)) break;
        let sum = 0;
        for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : head[i]!;
        if (sum !== num(head, 148, 8)) throw new ClientError(`${path} is not a tar archive (bad header checksum at offset ${pos})`);
        const type = String.fromCharCode(head[156]!) || '0';
        const size = num(head, 124, 12);
        const body = pos + BLOCK;
        const next = body + Math.ceil(size / BLOCK) * BLOCK;
        if (type === 'x' || type === 'L' || type === 'K') {
          if (size > 1 << 20) throw new ClientError(`${path}: oversized extended header`);
          const buf = Buffer.alloc(size);
          await fh.read(buf, 0, size, body);
          if (type === 'x') pax = parsePax(buf);
          else if (type === 'L') longName = str(buf, 0, size);
          else longLink = str(buf, 0, size);
          pos = next;
        } else if (type === 'g') {
          pos = next;
        } else {
          const prefix = str(head, 345, 155);
          const name = pax.path ?? longName ?? (prefix ? `${prefix}/${str(head, 0, 100)}` : str(head, 0, 100));
          const linkname = pax.linkpath ?? longLink ?? str(head, 157, 100);
          const realSize = pax.size !== undefined ? Number(pax.size) : size;
          members.set(normalize(name), { name: normalize(name), type: type === '\0' ? '0' : type, offset: body, size: realSize, linkname });
          pax = {};
          longName = undefined;
          longLink = undefined;
          pos = body + Math.ceil(realSize / BLOCK) * BLOCK;
        }
      }
    } finally {
      if (!handle) await fh.close();
    }
    return new TarIndex(path, members);
  }

  /** A regular file member, following symlinks and hardlinks inside the archive. */
  file(name: string): TarMember | undefined {
    let n = normalize(name);
    for (let hops = 0; hops < 16; hops++) {
      const m = this.members.get(n);
      if (!m) return undefined;
      if (m.type === '0' || m.type === '7') return m;
      if (m.type === '1') { n = normalize(m.linkname); continue; }
      if (m.type === '2') { n = normalize(m.linkname.startsWith('/') ? m.linkname : posix.join(posix.dirname(n), m.linkname)); continue; }
      return undefined;
    }
    return undefined;
  }
}
