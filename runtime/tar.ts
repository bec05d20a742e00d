// Tar headers, for inspection only: a streaming parser that passes the archive's bytes through
// untouched (GNU tar does the extracting) while it reports every entry's resolved name, link
// name, type and PAX records, and a small in-memory writer for generated archives (overlay
// whiteouts, test layers). Names are "binary strings" (latin1): one char per byte, so they
// round-trip exactly whatever the archive's encoding, and '/', '.' compare as bytes.
import { Transform, type TransformCallback } from 'node:stream';

const BLOCK = 512;
/** PAX and GNU long-name bodies are read into memory; this bounds them. */
const MAX_META = 1 << 20;

export type EntryType = 'file' | 'link' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

export interface TarEntry {
  name: string;
  type: EntryType;
  linkname: string;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  devmajor: number;
  devminor: number;
  /** PAX records in effect for this entry (global merged with local); values are raw bytes. */
  pax: Map<string, Buffer>;
}

export class TarFormatError extends Error {}

const TYPES: Record<string, EntryType> = {
  '0': 'file', '\0': 'file', '7': 'file', '1': 'link', '2': 'symlink', '3': 'char', '4': 'block', '5': 'dir', '6': 'fifo',
};

function cstring(b: Buffer, start: number, len: number): string {
  const end = b.indexOf(0, start);
  return b.toString('latin1', start, end < 0 || end > start + len ? start + len : end);
}

function numeric(b: Buffer, start: number, len: number, what: string): number {
  if (b[start]! & 0x80) {
    // base-256 (GNU): big-endian two's complement; only non-negative values make sense here
    if (b[start] === 0xff) throw new TarFormatError(`negative ${what} in tar header`);
    let v = b[start]! & 0x7f;
    for (let i = start + 1; i < start + len; i++) v = v * 256 + b[i]!;
    if (!Number.isSafeInteger(v)) throw new TarFormatError(`${what} too large in tar header`);
    return v;
  }
  const s = b.toString('latin1', start, start + len).replace(/[\0 ]+$/, '').replace(/^ +/, '');
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new TarFormatError(`invalid ${what} "${s.replace(/[^\x20-\x7e]/g, '?')}" in tar header`);
  return parseInt(s, 8);
}

function checksumOk(h: Buffer): boolean {
  const stored = numeric(h, 148, 8, 'checksum');
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const c = i >= 148 && i < 156 ? 0x20 : h[i]!;
    unsigned += c;
    signed += c > 127 ? c - 256 : c;
  }
  return stored === unsigned || stored === signed;
}

function isZero(b: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (b[i] !== 0) return false;
  return true;
}

/** Parses PAX extended-header records ("LEN key=value\n"). Values stay bytes (xattrs are binary). */
export function parsePax(body: Buffer, into: Map<string, Buffer> = new Map()): Map<string, Buffer> {
  let pos = 0;
  while (pos < body.length) {
    if (body[pos] === 0) break; // some writers pad with NULs
    const sp = body.indexOf(0x20, pos);
    if (sp < 0 || sp - pos > 20) throw new TarFormatError('malformed PAX record (no length)');
    const lenText = body.toString('latin1', pos, sp);
    if (!/^[0-9]+$/.test(lenText)) throw new TarFormatError('malformed PAX record length');
    const len = Number(lenText);
    const end = pos + len;
    if (len <= sp - pos + 1 || end > body.length || body[end - 1] !== 0x0a) throw new TarFormatError('malformed PAX record');
    const eq = body.indexOf(0x3d, sp + 1);
    if (eq < 0 || eq >= end) throw new TarFormatError('malformed PAX record (no "=")');
    const key = body.toString('latin1', sp + 1, eq);
    const value = body.subarray(eq + 1, end - 1);
    if (value.length === 0) into.delete(key); else into.set(key, Buffer.from(value));
    pos = end;
  }
  return into;
}

type State = 'header' | 'data' | 'end';

/**
 * A pass-through Transform that parses tar headers as the bytes flow and calls `onEntry` for every
 * real entry (PAX and GNU long-name entries are resolved, not reported). Throwing from onEntry
 * fails the stream. After the end-of-archive marker, the rest (record padding, trailing bytes) is
 * consumed but not passed on. EOF in the middle of an entry is an error.
 */
export class TarInspector extends Transform {
  private state: State = 'header';
  private hdr = Buffer.alloc(BLOCK);
  private hdrFill = 0;
  private remaining = 0; // bytes of entry data + padding left to pass
  private collect: Buffer[] | undefined; // the body of a metadata entry being read
  private collectKind = '';
  private collectSize = 0;
  private zeroBlocks = 0;
  private global = new Map<string, Buffer>();
  private local: Map<string, Buffer> | undefined;
  private longName: string | undefined;
  private longLink: string | undefined;
  entries = 0;

  constructor(private readonly onEntry: (e: TarEntry) => void) {
    super({ highWaterMark: 1 << 20 });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    try {
      const keep = this.consume(chunk);
      done(null, keep === chunk.length ? chunk : keep > 0 ? chunk.subarray(0, keep) : undefined);
    } catch (e) {
      done(e as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    if (this.state === 'end' || (this.state === 'header' && this.hdrFill === 0 && !this.local && this.longName === undefined && this.longLink === undefined)) {
      done();
    } else {
      done(new TarFormatError('truncated tar archive (unexpected end of data)'));
    }
  }

  /** Parses a chunk; returns how many of its bytes belong to the archive (before the end marker). */
  private consume(chunk: Buffer): number {
    let pos = 0;
    while (pos < chunk.length) {
      if (this.state === 'end') return pos;
      if (this.state === 'data') {
        const n = Math.min(this.remaining, chunk.length - pos);
        if (this.collect) {
          const want = this.collectSize - this.collected();
          if (want > 0) this.collect.push(chunk.subarray(pos, pos + Math.min(n, want)));
        }
        this.remaining -= n;
        pos += n;
        if (this.remaining === 0) { this.state = 'header'; this.finishMeta(); }
        continue;
      }
      // header: fill 512 bytes
      const n = Math.min(BLOCK - this.hdrFill, chunk.length - pos);
      chunk.copy(this.hdr, this.hdrFill, pos, pos + n);
      this.hdrFill += n;
      pos += n;
      if (this.hdrFill < BLOCK) continue;
      this.hdrFill = 0;
      this.header(this.hdr);
    }
    return pos;
  }

  private collected(): number {
    let s = 0;
    for (const b of this.collect ?? []) s += b.length;
    return s;
  }

  private header(h: Buffer): void {
    if (isZero(h)) {
      this.zeroBlocks++;
      if (this.zeroBlocks >= 2) this.state = 'end';
      return;
    }
    if (this.zeroBlocks > 0) throw new TarFormatError('malformed tar archive: a lone zero block before more entries');
    if (!checksumOk(h)) throw new TarFormatError(`tar header checksum mismatch at entry ${this.entries + 1}`);
    const flag = String.fromCharCode(h[156]!);
    let size = numeric(h, 124, 12, 'size');
    const magic = h.toString('latin1', 257, 263);
    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      if (size > MAX_META) throw new TarFormatError(`tar ${flag} header of ${size} bytes is too large`);
      if ((flag === 'x' && this.local) || (flag === 'L' && this.longName !== undefined) || (flag === 'K' && this.longLink !== undefined)) {
        throw new TarFormatError(`malformed tar archive: two "${flag}" headers for one entry`);
      }
      this.collect = [];
      this.collectKind = flag;
      this.collectSize = size;
      this.startData(size);
      if (size === 0) this.finishMeta();
      return;
    }
    const type = TYPES[flag];
    if (!type) throw new TarFormatError(`unsupported tar entry type "${flag.replace(/[^\x20-\x7e]/g, '?')}"`);
    const pax = new Map(this.global);
    if (this.local) for (const [k, v] of this.local) pax.set(k, v);
    let name = cstring(h, 0, 100);
    if (magic === 'ustar\0' && h.toString('latin1', 508, 512) === 'tar\0') throw new TarFormatError('star-format tar headers are not supported');
    if (magic === 'ustar\0') {
      const prefix = cstring(h, 345, 155);
      if (prefix) name = `${prefix}/${name}`;
    }
    let linkname = cstring(h, 157, 100);
    if (this.longName !== undefined) {
      if (this.local?.has('path')) throw new TarFormatError('malformed tar archive: both a GNU long name and a PAX path');
      name = this.longName;
    }
    if (this.longLink !== undefined) {
      if (this.local?.has('linkpath')) throw new TarFormatError('malformed tar archive: both a GNU long link and a PAX linkpath');
      linkname = this.longLink;
    }
    const path = pax.get('path');
    if (path) name = path.toString('latin1');
    const lp = pax.get('linkpath');
    if (lp) linkname = lp.toString('latin1');
    const psize = pax.get('size');
    if (psize) {
      const t = psize.toString('latin1');
      if (!/^[0-9]+$/.test(t) || !Number.isSafeInteger(Number(t))) throw new TarFormatError('invalid PAX size');
      size = Number(t);
    }
    for (const k of pax.keys()) {
      if (k.startsWith('GNU.sparse')) throw new TarFormatError(`sparse tar entries are not supported (${name})`);
    }
    if (name.includes('\0') || linkname.includes('\0')) throw new TarFormatError('NUL in tar entry name');
    const headerOnly = type !== 'file';
    if (headerOnly && size !== 0) throw new TarFormatError(`tar entry ${name} of type ${type} has a size (${size})`);
    // GNU tar takes such an entry for a directory and reads its "data" as further entries, unseen here
    if (type === 'file' && name.endsWith('/') && size !== 0) throw new TarFormatError(`tar entry ${name} names a directory but has a size (${size})`);
    this.local = undefined;
    this.longName = undefined;
    this.longLink = undefined;
    const entry: TarEntry = {
      name, type, linkname, size,
      mode: numeric(h, 100, 8, 'mode'),
      uid: numeric(h, 108, 8, 'uid'),
      gid: numeric(h, 116, 8, 'gid'),
      devmajor: type === 'char' || type === 'block' ? numeric(h, 329, 8, 'devmajor') : 0,
      devminor: type === 'char' || type === 'block' ? numeric(h, 337, 8, 'devminor') : 0,
      pax,
    };
    this.entries++;
    this.onEntry(entry);
    this.startData(size);
  }

  private startData(size: number): void {
    this.remaining = size + ((BLOCK - (size % BLOCK)) % BLOCK);
    this.state = this.remaining > 0 ? 'data' : 'header';
  }

  private finishMeta(): void {
    if (!this.collect) return;
    const body = Buffer.concat(this.collect);
    this.collect = undefined;
    switch (this.collectKind) {
      case 'x': this.local = parsePax(body); break;
      case 'g': {
        const g = parsePax(body);
        for (const k of ['path', 'linkpath', 'size']) {
          if (g.has(k)) throw new TarFormatError(`a global PAX header sets "${k}", which is not supported`);
        }
        for (const [k, v] of g) this.global.set(k, v);
        break;
      }
      case 'L': this.longName = cstring(body, 0, body.length); break;
      case 'K': this.longLink = cstring(body, 0, body.length); break;
    }
  }
}

// ---- writer ---------------------------------------------------------------------------------

export interface TarWriteEntry {
  /** A binary (latin1) string; directories may end with "/". */
  name: string;
  type: EntryType;
  mode?: number;
  uid?: number;
  gid?: number;
  /** Seconds; a string like "1700000000.123456789" keeps sub-second precision (PAX). */
  mtime?: number | string;
  linkname?: string;
  data?: Buffer;
  devmajor?: number;
  devminor?: number;
  xattrs?: Record<string, Buffer | string>;
  /** Extra PAX records (e.g. to write unusual archives in tests). */
  pax?: Record<string, Buffer | string>;
  /** Write the name with a GNU 'L' long-name entry instead of PAX when it is long. */
  gnuLongName?: boolean;
}

const FLAG: Record<EntryType, string> = { file: '0', link: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' };

function octalField(h: Buffer, off: number, len: number, v: number): void {
  h.write(Math.trunc(v).toString(8).padStart(len - 1, '0'), off, len - 1, 'latin1');
}

function rawHeader(name: Buffer, flag: string, size: number, e: Partial<TarWriteEntry>, linkname: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(BLOCK);
  name.copy(h, 0, 0, Math.min(100, name.length));
  octalField(h, 100, 8, e.mode ?? (flag === '5' ? 0o755 : 0o644));
  octalField(h, 108, 8, e.uid ?? 0);
  octalField(h, 116, 8, e.gid ?? 0);
  octalField(h, 124, 12, size);
  octalField(h, 136, 12, Math.floor(Number(e.mtime ?? 0)));
  h.write(flag, 156, 1, 'latin1');
  linkname.copy(h, 157, 0, Math.min(100, linkname.length));
  h.write('ustar\u000000', 257, 8, 'latin1');
  octalField(h, 329, 8, e.devmajor ?? 0);
  octalField(h, 337, 8, e.devminor ?? 0);
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 8, 'latin1');
  return h;
}

function pad(b: Buffer): Buffer[] {
  const p = (BLOCK - (b.length % BLOCK)) % BLOCK;
  return p ? [b, Buffer.alloc(p)] : [b];
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'latin1'), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

/** Encodes entries as a tar archive (PAX where ustar does not suffice), with the end marker. */
export function encodeTar(entries: Iterable<TarWriteEntry>): Buffer {
  const out: Buffer[] = [];
  for (const e of entries) {
    const name = Buffer.from(e.name, 'latin1');
    const link = Buffer.from(e.linkname ?? '', 'latin1');
    const data = e.type === 'file' ? e.data ?? Buffer.alloc(0) : Buffer.alloc(0);
    const records: Buffer[] = [];
    if (name.length > 100 && !e.gnuLongName) records.push(paxRecord('path', name));
    if (link.length > 100) records.push(paxRecord('linkpath', link));
    if (typeof e.mtime === 'string') records.push(paxRecord('mtime', Buffer.from(e.mtime)));
    for (const [k, v] of Object.entries(e.xattrs ?? {})) records.push(paxRecord(`SCHILY.xattr.${k}`, Buffer.isBuffer(v) ? v : Buffer.from(v)));
    for (const [k, v] of Object.entries(e.pax ?? {})) records.push(paxRecord(k, Buffer.isBuffer(v) ? v : Buffer.from(v)));
    if (name.length > 100 && e.gnuLongName) {
      const body = Buffer.concat([name, Buffer.alloc(1)]);
      out.push(rawHeader(Buffer.from('././@LongLink'), 'L', body.length, {}), ...pad(body));
    }
    if (records.length) {
      const body = Buffer.concat(records);
      out.push(rawHeader(Buffer.from('PaxHeader'), 'x', body.length, {}), ...pad(body));
    }
    out.push(rawHeader(name, FLAG[e.type], data.length, e, link), ...pad(data));
  }
  out.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(out);
}
