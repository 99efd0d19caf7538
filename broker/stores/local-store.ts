import { randomUUID } from 'node:crypto';
import { createWriteStream, type Stats } from 'node:fs';
import { mkdir, open, readdir, rename, rmdir, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { satisfyRange, StoreError, type FileInfo, type ListPage, type ReadResult, type Store, type WriteOptions } from './store.js';

/*
 * Keys map to files so that every key S3 can hold (empty segments in a//b, names with % or ~, a key that is also
 * the prefix of another) maps to exactly one path, and no two keys share one:
 * - each segment escapes `%` as %25 and `~` as %7E; an empty segment is a lone `%` (which no escaped name can be);
 * - a file's name is its escaped segment followed by `~`, a directory's is the bare escaped segment, so `a` the
 *   file and `a/` the prefix live side by side.
 * Temporary files live in `.tmp/` at the root (no key's first segment starts with a dot).
 */
const encodeSegment = (s: string): string => (s === '' ? '%' : s.replace(/%/g, '%25').replace(/~/g, '%7E'));
const decodeSegment = (s: string): string => (s === '%' ? '' : s.replace(/%7E/g, '~').replace(/%25/g, '%'));

const etagOf = (info: Stats): string => `"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`;
const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

export class LocalStore implements Store {
  readonly type = 'local' as const;

  constructor(
    readonly name: string,
    private readonly root: string,
  ) {}

  private fileOf(key: string): string {
    const segments = key.split('/').map(encodeSegment);
    segments[segments.length - 1] += '~';
    return join(this.root, ...segments);
  }

  private info(key: string, s: Stats): FileInfo {
    return { key, size: s.size, modified: s.mtimeMs, etag: etagOf(s) };
  }

  async stat(key: string): Promise<FileInfo | null> {
    const s = await stat(this.fileOf(key)).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return null;
      throw new StoreError('unavailable', `stat failed (${err.code ?? 'error'})`);
    });
    return s?.isFile() ? this.info(key, s) : null;
  }

  async read(key: string, range?: { start?: number; end?: number; suffix?: number }): Promise<ReadResult> {
    // Open first, then fstat: the bytes streamed are those of the file whose size was reported, even if a writer
    // replaces it meanwhile (rename swaps the name, not the open file).
    const handle = await open(this.fileOf(key), 'r').catch((err: NodeJS.ErrnoException) => {
      throw err.code === 'ENOENT' || err.code === 'ENOTDIR' || err.code === 'EISDIR' ? new StoreError('not_found', 'no such file') : new StoreError('unavailable', `open failed (${err.code ?? 'error'})`);
    });
    const s = await handle.stat();
    const info = this.info(key, s);
    if (!range) return { info, body: handle.createReadStream() };
    const r = satisfyRange(range, s.size);
    if (!r) {
      await handle.close();
      throw new StoreError('range', 'range not satisfiable', s.size);
    }
    return { info, body: handle.createReadStream({ start: r.start, end: r.end }), range: r };
  }

  async write(key: string, body: Readable, options: WriteOptions): Promise<FileInfo> {
    if (options.length !== undefined && options.length > options.maxBytes) throw new StoreError('too_large', 'declared length over the limit');
    const tmpDir = join(this.root, '.tmp');
    await mkdir(tmpDir, { recursive: true, mode: 0o700 });
    const tmp = join(tmpDir, randomUUID());
    let received = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _enc, done) {
        received += chunk.length;
        if (received > options.maxBytes) done(new StoreError('too_large', 'body over the limit'));
        else done(null, chunk);
      },
    });
    try {
      await pipeline(body, counter, createWriteStream(tmp, { flags: 'wx', mode: 0o600, flush: true }));
      if (options.length !== undefined && received !== options.length) throw new StoreError('incomplete', `received ${received} of ${options.length} bytes`);
      const file = this.fileOf(key);
      await mkdir(dirname(file), { recursive: true, mode: 0o700 });
      // rename(2) replaces atomically: readers see the old file or the whole new one.
      await rename(tmp, file).catch(async (err: NodeJS.ErrnoException) => {
        // A concurrent delete may have removed the (then empty) parent between mkdir and rename.
        if (err.code !== 'ENOENT') throw err;
        await mkdir(dirname(file), { recursive: true, mode: 0o700 });
        await rename(tmp, file);
      });
      return this.info(key, await stat(file));
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      if (err instanceof StoreError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ECONNRESET' || (err as Error).message === 'aborted') throw new StoreError('incomplete', 'the client went away mid-upload');
      throw new StoreError('unavailable', `write failed (${code ?? 'error'})`);
    }
  }

  async delete(key: string): Promise<boolean> {
    const file = this.fileOf(key);
    try {
      await unlink(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return false;
      throw new StoreError('unavailable', `delete failed (${code ?? 'error'})`);
    }
    await this.pruneEmpty(dirname(file));
    return true;
  }

  /** Remove directories a delete or move left empty, up to the root (rmdir refuses a non-empty one). */
  private async pruneEmpty(dir: string): Promise<void> {
    while (dir.startsWith(`${this.root}/`)) {
      try {
        await rmdir(dir);
      } catch {
        return;
      }
      dir = dirname(dir);
    }
  }

  async move(from: string, to: string): Promise<FileInfo> {
    const source = this.fileOf(from);
    const target = this.fileOf(to);
    if (source === target) {
      const same = await this.stat(from);
      if (!same) throw new StoreError('not_found', 'no such file');
      return same;
    }
    await mkdir(dirname(target), { recursive: true, mode: 0o700 });
    try {
      await rename(source, target);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') throw new StoreError('not_found', 'no such file');
      throw new StoreError('unavailable', `move failed (${code ?? 'error'})`);
    }
    await this.pruneEmpty(dirname(source));
    return this.info(to, await stat(target));
  }

  async list(prefix: string, options: { startAfter?: string; limit: number }): Promise<ListPage> {
    // Walk from the deepest directory the prefix fully names; filter the rest by the prefix itself.
    const slash = prefix.lastIndexOf('/');
    const base = slash === -1 ? '' : prefix.slice(0, slash);
    const keys: string[] = [];
    const walk = async (dir: string, keyPrefix: string): Promise<void> => {
      const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
      for (const e of entries) {
        if (dir === this.root && e.name === '.tmp') continue;
        if (e.isDirectory()) await walk(join(dir, e.name), `${keyPrefix}${decodeSegment(e.name)}/`);
        else if (e.isFile() && e.name.endsWith('~')) {
          const key = `${keyPrefix}${decodeSegment(e.name.slice(0, -1))}`;
          if (key.startsWith(prefix) && (options.startAfter === undefined || byteOrder(key, options.startAfter) > 0)) keys.push(key);
        }
      }
    };
    const baseDir = base === '' ? this.root : join(this.root, ...base.split('/').map(encodeSegment));
    await walk(baseDir, base === '' ? '' : `${base}/`);
    keys.sort(byteOrder);
    const page = keys.slice(0, options.limit);
    const files: FileInfo[] = [];
    for (const key of page) {
      const info = await this.stat(key);
      if (info) files.push(info);
    }
    return keys.length > options.limit ? { files, next: page[page.length - 1] as string } : { files };
  }

  async close(): Promise<void> {
    // nothing held open between requests
  }
}
