import { writeSync } from 'node:fs';
import { mkdir, open, readdir, stat, truncate, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { signCheckpoint, type CheckpointKey } from './checkpoint.js';
import { GENESIS_HASH, hashLine, SEGMENT_FILE, segmentName, type AuditRecord, type AuditSource } from './record-format.js';

export interface RotationSettings {
  readonly segmentMaxBytes: number;
  readonly segmentMaxAgeMs: number;
}

/** What opening a source found: where its chain continues, and whether the last segment was damaged. */
export interface Recovery {
  readonly seq: number;
  readonly hash: string;
  /** A torn last line (a crash mid-write) was cut off. */
  readonly tornTailBytes: number;
  /** The last segment ends in lines that do not parse: it is left as evidence and a new segment is started. */
  readonly corruptSegment?: string;
}

/**
 * Write all of `buf` at the end of `handle`, or nothing: a write cut short (disk full, file size limit) is cut
 * off again, because the retry writes the whole lines again and would otherwise leave the fragment as garbage in
 * the middle of the file. Best effort: if the truncate fails too, the next start-up finds the damage.
 */
async function appendAll(handle: FileHandle, buf: Uint8Array, sizeBefore: number): Promise<void> {
  // Synchronous on purpose: this runs on the writer thread, which has nothing else to do meanwhile, and a
  // write to the page cache is short. Through the libuv pool each batch cost two thread hand-offs on a core the
  // data plane shares (append bench, CPU per event: other threads 1.8 -> 1.2 us, caller 8.8 -> 8.0 us).
  try {
    let written = 0;
    while (written < buf.length) written += writeSync(handle.fd, buf, written);
  } catch (err) {
    await handle.truncate(sizeBefore).catch(() => undefined);
    throw err;
  }
}

async function syncDirectory(dir: string): Promise<void> {
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

export const listSegments = async (dir: string): Promise<string[]> => (await readdir(dir).catch(() => [] as string[])).filter((f) => SEGMENT_FILE.test(f)).sort();

/**
 * Read the tail of a segment: the last line, if it parses as a record, and how many bytes follow the last
 * newline (a torn line from a crash mid-write). 'corrupt' when the last whole line does not parse.
 */
async function recoverTail(file: string): Promise<{ record: AuditRecord; line: string; tornBytes: number } | { record: null; tornBytes: number } | 'corrupt'> {
  const info = await stat(file);
  if (info.size === 0) return { record: null, tornBytes: 0 };
  const handle = await open(file, 'r');
  try {
    const window = Math.min(info.size, 4 * 1024 * 1024);
    const buf = Buffer.alloc(window);
    await handle.read(buf, 0, window, info.size - window);
    const lastNl = buf.lastIndexOf(0x0a);
    const tornBytes = window - (lastNl + 1);
    if (lastNl === -1) return window === info.size ? { record: null, tornBytes } : 'corrupt';
    const prevNl = buf.lastIndexOf(0x0a, lastNl - 1);
    if (prevNl === -1 && window < info.size) return 'corrupt'; // a line longer than 4 MiB is not ours
    const line = buf.subarray(prevNl + 1, lastNl).toString('utf8');
    try {
      const record = JSON.parse(line) as AuditRecord;
      if (typeof record.seq === 'number' && typeof record.prev === 'string') return { record, line, tornBytes };
    } catch {
      // fall through
    }
    return 'corrupt';
  } finally {
    await handle.close();
  }
}

/** The last record that parses anywhere in a damaged segment (slow path, start-up only). */
async function lastValidRecord(file: string): Promise<{ record: AuditRecord; line: string } | null> {
  const { readFile } = await import('node:fs/promises');
  const lines = (await readFile(file, 'utf8')).split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    try {
      const record = JSON.parse(lines[i] as string) as AuditRecord;
      if (typeof record.seq === 'number') return { record, line: lines[i] as string };
    } catch {
      // keep walking back
    }
  }
  return null;
}

/**
 * One source's segments: `DIR/<source>/<first seq>.jsonl`, appended to in whole lines, rotated by size and age,
 * with a signed checkpoint at each rotation and on a timer (`checkpoints.jsonl` beside them). Used by the
 * writer worker only.
 */
export class SegmentStore {
  seq = 0;
  hash = GENESIS_HASH;
  private file = '';
  private handle: FileHandle | null = null;
  private bytes = 0;
  private unsynced = false;
  private openedAt = 0;
  private lastCheckpointSeq = -1;

  private constructor(
    readonly source: AuditSource,
    readonly dir: string,
    private rotation: RotationSettings,
    private readonly key: CheckpointKey,
  ) {}

  static async open(root: string, source: AuditSource, rotation: RotationSettings, key: CheckpointKey): Promise<{ store: SegmentStore; recovery: Recovery }> {
    const dir = join(root, source);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const store = new SegmentStore(source, dir, rotation, key);
    const segments = await listSegments(dir);
    const last = segments[segments.length - 1];
    let tornTailBytes = 0;
    let corruptSegment: string | undefined;
    if (!last) {
      store.file = join(dir, segmentName(1));
      return { store, recovery: { seq: 0, hash: GENESIS_HASH, tornTailBytes } };
    }
    const path = join(dir, last);
    const size = (await stat(path)).size;
    const tail = await recoverTail(path);
    let head: { record: AuditRecord; line: string } | null = null;
    if (tail === 'corrupt') {
      corruptSegment = last;
      head = await lastValidRecord(path);
    } else {
      // Cut a torn final line (no newline): it was never a whole record.
      if (tail.tornBytes > 0) {
        tornTailBytes = tail.tornBytes;
        await truncate(path, size - tail.tornBytes);
      }
      if (tail.record) head = { record: tail.record, line: tail.line };
    }
    // A last segment with no whole record (rotated just before a crash, or all damage): the chain's head is at
    // the end of an earlier segment.
    for (let i = segments.length - 2; !head && i >= 0; i--) {
      const earlier = await recoverTail(join(dir, segments[i] as string));
      head = earlier === 'corrupt' ? await lastValidRecord(join(dir, segments[i] as string)) : earlier.record ? { record: earlier.record, line: earlier.line } : null;
    }
    if (head) {
      store.seq = head.record.seq;
      store.hash = hashLine(head.line);
    }
    // A damaged segment is left untouched (evidence for `audit verify`); new records go to a fresh one.
    store.file = corruptSegment ? join(dir, segmentName(store.seq + 1)) : path;
    return { store, recovery: { seq: store.seq, hash: store.hash, tornTailBytes, ...(corruptSegment ? { corruptSegment } : {}) } };
  }

  configure(rotation: RotationSettings): void {
    this.rotation = rotation;
  }

  private async ensureOpen(): Promise<FileHandle> {
    if (!this.handle) {
      this.handle = await open(this.file, 'a', 0o600);
      const info = await this.handle.stat();
      this.bytes = info.size;
      this.openedAt = info.size > 0 ? info.mtimeMs : Date.now();
      // A new segment's name is in the directory only once the directory is fsynced: without it a power loss
      // could keep the checkpoint that closed the previous segment and lose the new file, which verify would
      // then report as a cut tail.
      if (info.size === 0) await syncDirectory(this.dir);
    }
    return this.handle;
  }

  /** Append whole lines (already chained; the writer passes the bytes). Rotates first when the segment is full or old. */
  async append(lines: string | Uint8Array, lastSeq: number, lastHash: string, firstSeq: number): Promise<void> {
    let handle = await this.ensureOpen();
    const buf = typeof lines === 'string' ? Buffer.from(lines) : lines;
    if (this.bytes > 0 && (this.bytes + buf.length > this.rotation.segmentMaxBytes || Date.now() - this.openedAt > this.rotation.segmentMaxAgeMs)) {
      await this.rotate(firstSeq);
      handle = await this.ensureOpen();
    }
    await appendAll(handle, buf, this.bytes);
    this.unsynced = true;
    this.bytes += buf.length;
    this.seq = lastSeq;
    this.hash = lastHash;
  }

  async sync(): Promise<void> {
    if (!this.handle) return;
    this.unsynced = false; // cleared first: lines appended while the fsync runs are not covered by it
    try {
      await this.handle.sync();
    } catch (err) {
      this.unsynced = true;
      throw err;
    }
  }

  /** Whether lines were written since the last fsync. */
  get dirty(): boolean {
    return this.unsynced;
  }

  /** Close the current segment with a checkpoint and start the next one at `nextSeq`. */
  private async rotate(nextSeq: number): Promise<void> {
    await this.checkpoint(true);
    await this.handle?.close();
    this.handle = null;
    this.file = join(this.dir, segmentName(nextSeq));
  }

  /** Sign the chain head (skipped when nothing was appended since the last one, unless forced). */
  async checkpoint(force = false): Promise<void> {
    if (this.seq === 0 || (!force && this.seq === this.lastCheckpointSeq)) return;
    await this.sync();
    const segment = this.file.slice(this.dir.length + 1);
    const cp = signCheckpoint(this.key, { source: this.source, segment, seq: this.seq, hash: this.hash, time: new Date().toISOString() });
    // Whole and fsynced before a rotation opens the next segment: verify treats a closed segment without its
    // checkpoint as tampering, so a power loss must not keep the new segment and lose the checkpoint.
    const file = await open(join(this.dir, 'checkpoints.jsonl'), 'a', 0o600);
    try {
      await appendAll(file, Buffer.from(`${JSON.stringify(cp)}\n`), (await file.stat()).size);
      await file.sync();
    } finally {
      await file.close();
    }
    this.lastCheckpointSeq = this.seq;
  }

  /** Delete whole segments older than `retentionMs` whose records every sink already has (seq <= minDelivered). */
  async prune(retentionMs: number, minDelivered: number): Promise<string[]> {
    const segments = await listSegments(this.dir);
    const removed: string[] = [];
    for (let i = 0; i < segments.length - 1; i++) {
      const next = Number(SEGMENT_FILE.exec(segments[i + 1] as string)?.[1]);
      const path = join(this.dir, segments[i] as string);
      const info = await stat(path);
      if (next - 1 <= minDelivered && Date.now() - info.mtimeMs > retentionMs) {
        await unlink(path);
        removed.push(segments[i] as string);
      } else break;
    }
    return removed;
  }

  async close(): Promise<void> {
    try {
      await this.checkpoint();
      await this.handle?.sync();
    } finally {
      await this.handle?.close();
      this.handle = null;
    }
  }
}
