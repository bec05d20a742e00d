// Filesystem adapter: every committed write is temp file → fsync → rename → fsync(dir),
// so a crash leaves either the old object or the new one, never a torn one.
import { constants, createReadStream } from 'node:fs';
import { link, mkdir, open, readdir, rename, rm, stat, truncate, unlink, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { Readable, Writable } from 'node:stream';
import {
  checkKey, ConflictError, InvalidOffsetError, PathNotFoundError, TooLargeError,
  type ByteRange, type FileWriter, type MoveOptions, type PutOptions, type Stat, type StorageAdapter, type WriteOptions,
} from './types.js';

const READ_CHUNK = 1 << 20; // 1 MiB reads roughly double hashing throughput (FACTS)
/** Not a valid key component ('~'), so it can never collide with stored content. */
const TEMP_DIR = '~tmp';

export interface FilesystemOptions { rootdirectory: string }

function isNotFound(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, constants.O_RDONLY);
  try { await fh.sync(); } finally { await fh.close(); }
}

class FsFileWriter extends Writable implements FileWriter {
  #written = 0;
  #closed = false;
  constructor(
    private readonly fh: FileHandle,
    private readonly startSize: number,
    private readonly finalPath: string,
    private readonly tempPath: string | undefined,
  ) {
    super({ highWaterMark: READ_CHUNK });
  }

  get size(): number { return this.startSize + this.#written; }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#writeAll([chunk]).then(() => cb(), cb);
  }

  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    this.#writeAll(chunks.map((c) => c.chunk)).then(() => cb(), cb);
  }

  async #writeAll(buffers: Buffer[]): Promise<void> {
    let pending = buffers;
    while (pending.length > 0) {
      const { bytesWritten } = await this.fh.writev(pending);
      this.#written += bytesWritten;
      let skip = bytesWritten;
      const rest: Buffer[] = [];
      for (const b of pending) {
        if (skip >= b.length) { skip -= b.length; continue; }
        rest.push(skip > 0 ? b.subarray(skip) : b);
        skip = 0;
      }
      pending = rest;
    }
  }

  async #close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.fh.close();
  }

  async commit(): Promise<void> {
    if (!this.writableFinished) throw new Error('FileWriter.commit() before the stream finished');
    await this.fh.sync();
    await this.#close();
    if (this.tempPath) {
      // The target directory appears only now: a cancelled write leaves no empty directory behind.
      await mkdir(dirname(this.finalPath), { recursive: true });
      await rename(this.tempPath, this.finalPath); // an error here is the caller's error, never swallowed
      await fsyncDir(dirname(this.finalPath));
    }
  }

  async cancel(): Promise<void> {
    if (!this.destroyed && !this.writableFinished) this.destroy();
    await this.#close();
    if (this.tempPath) await unlink(this.tempPath).catch((e) => { if (!isNotFound(e)) throw e; });
    else await truncate(this.finalPath, this.startSize);
  }
}

export class FilesystemAdapter implements StorageAdapter {
  readonly name = 'filesystem';
  readonly root: string;

  constructor(opts: FilesystemOptions) {
    this.root = resolve(opts.rootdirectory);
  }

  #path(key: string): string {
    return join(this.root, checkKey(key));
  }

  async stat(key: string): Promise<Stat> {
    try {
      const s = await stat(this.#path(key));
      return { size: s.size, modified: s.mtime, isDirectory: s.isDirectory() };
    } catch (e) {
      if (isNotFound(e)) throw new PathNotFoundError(key);
      throw e;
    }
  }

  /** Opens a regular file for reading with its size; a missing key or a directory is PathNotFoundError. */
  async #openFile(key: string): Promise<{ fh: FileHandle; size: number }> {
    let fh: FileHandle;
    try {
      fh = await open(this.#path(key), 'r');
    } catch (e) {
      if (isNotFound(e) || (e as NodeJS.ErrnoException).code === 'EISDIR') throw new PathNotFoundError(key);
      throw e;
    }
    const st = await fh.stat();
    if (!st.isFile()) { await fh.close(); throw new PathNotFoundError(key); }
    return { fh, size: st.size };
  }

  async read(key: string, range?: ByteRange): Promise<Readable> {
    const { fh, size } = await this.#openFile(key);
    const start = range?.offset ?? 0;
    if (start > size) { await fh.close(); throw new InvalidOffsetError(key, start); }
    const end = range?.length !== undefined ? start + range.length - 1 : undefined;
    if (end !== undefined && end < start) { await fh.close(); return Readable.from([]); }
    return createReadStream('', { fd: fh, start, end, highWaterMark: READ_CHUNK, autoClose: true });
  }

  async write(key: string, opts: WriteOptions = {}): Promise<FileWriter> {
    const finalPath = this.#path(key);
    if (opts.append) {
      await mkdir(dirname(finalPath), { recursive: true });
      const fh = await open(finalPath, 'a');
      const { size } = await fh.stat();
      return new FsFileWriter(fh, size, finalPath, undefined);
    }
    // Temp files live in one directory (same filesystem, so rename stays atomic): what a crash
    // leaves behind is in one place, and purgeTemporary() clears it.
    const tempDir = join(this.root, TEMP_DIR);
    await mkdir(tempDir, { recursive: true });
    const tempPath = join(tempDir, `${randomBytes(12).toString('hex')}`);
    const fh = await open(tempPath, 'wx');
    return new FsFileWriter(fh, 0, finalPath, tempPath);
  }

  async getSmall(key: string, maxBytes: number): Promise<Buffer> {
    const { fh, size } = await this.#openFile(key);
    try {
      if (size > maxBytes) throw new TooLargeError(key, maxBytes);
      return await fh.readFile();
    } finally {
      await fh.close();
    }
  }

  async putSmall(key: string, data: Buffer, opts: PutOptions = {}): Promise<void> {
    if (opts.ifAbsent) return this.#create(key, data);
    const w = await this.write(key);
    try {
      await new Promise<void>((res, rej) => w.end(data, (err?: Error | null) => (err ? rej(err) : res())));
      await w.commit();
    } catch (e) {
      await w.cancel().catch(() => undefined);
      throw e;
    }
  }

  /** Create-only: link() of a complete temp file fails when the name exists, atomically, across processes. */
  async #create(key: string, data: Buffer): Promise<void> {
    const finalPath = this.#path(key);
    const tempDir = join(this.root, TEMP_DIR);
    await mkdir(tempDir, { recursive: true });
    const tempPath = join(tempDir, randomBytes(12).toString('hex'));
    const fh = await open(tempPath, 'wx');
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await mkdir(dirname(finalPath), { recursive: true });
      await link(tempPath, finalPath);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new ConflictError(key, 'it exists already');
      throw e;
    } finally {
      await unlink(tempPath).catch(() => undefined);
    }
    await fsyncDir(dirname(finalPath));
  }

  async *list(prefix: string): AsyncIterable<string> {
    const base = prefix === '/' ? '' : checkKey(prefix);
    let names: string[];
    try {
      names = await readdir(join(this.root, base));
    } catch (e) {
      if (isNotFound(e)) return;
      throw e;
    }
    for (const n of names) if (base || n !== TEMP_DIR) yield `${base}/${n}`;
  }

  async move(from: string, to: string, opts: MoveOptions = {}): Promise<void> {
    const src = this.#path(from);
    const dst = this.#path(to);
    // One process serves a filesystem root and orders its appends and moves of a key (the upload session lock),
    // so the size the caller saw is the size now unless something outside the registry wrote to the file.
    if (opts.expect) {
      const { size } = await this.stat(from);
      if (size !== opts.expect.size) throw new ConflictError(from, `${size} bytes, expected ${opts.expect.size}`);
    }
    await mkdir(dirname(dst), { recursive: true });
    try {
      await rename(src, dst);
    } catch (e) {
      if (isNotFound(e)) throw new PathNotFoundError(from);
      throw e;
    }
    await fsyncDir(dirname(dst));
  }

  async delete(key: string): Promise<void> {
    try {
      await rm(this.#path(key), { recursive: true, force: true });
    } catch (e) {
      // Something was written under it while it was removed (a push linking a blob as GC sweeps its old
      // link): what is newer than the delete stays, as with S3, whose delete removes the keys it listed.
      if ((e as NodeJS.ErrnoException).code !== 'ENOTEMPTY') throw e;
    }
  }

  async purgeTemporary(olderThan: Date, dryRun = false): Promise<number> {
    const dir = join(this.root, TEMP_DIR);
    let removed = 0;
    for (const name of await readdir(dir).catch((): string[] => [])) {
      const p = join(dir, name);
      const st = await stat(p).catch(() => undefined);
      if (!st || !(st.mtime < olderThan)) continue;
      if (!dryRun) await unlink(p).catch(() => undefined);
      removed++;
    }
    return removed;
  }
}
