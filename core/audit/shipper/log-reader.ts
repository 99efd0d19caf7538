import { open, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { AuditRecord, AuditSource } from '../record-format.js';
import { SEGMENT_FILE } from '../record-format.js';
import { listSegments } from '../segment-store.js';
import type { ShippedRecord } from '../sinks/sink.js';

const CHUNK = 256 * 1024;

/**
 * Reads one source's records in sequence order from the segments the writer appends to, for a sink's cursor.
 * Only whole lines are consumed (a line being written is read next time). It remembers where it stopped, so
 * following the log costs one read per call; asking for another position rescans from the right segment.
 */
export class LogReader {
  private segment: string | null = null;
  private handle: FileHandle | null = null;
  private offset = 0;
  private nextSeq = 1;
  /** Records retention removed before a sink had them (reported, then skipped). */
  skipped = 0;

  constructor(
    private readonly dir: string,
    readonly source: AuditSource,
  ) {}

  private get sourceDir(): string {
    return join(this.dir, this.source);
  }

  private async position(afterSeq: number): Promise<boolean> {
    const segments = await listSegments(this.sourceDir);
    const starts = segments.map((s) => Number(SEGMENT_FILE.exec(s)?.[1]));
    let index = -1;
    for (let i = 0; i < starts.length; i++) if ((starts[i] as number) <= afterSeq + 1) index = i;
    if (index === -1) {
      if (starts.length === 0) return false;
      // The wanted records were pruned by retention: continue from the oldest that remains.
      this.skipped += (starts[0] as number) - afterSeq - 1;
      index = 0;
      afterSeq = (starts[0] as number) - 1;
    }
    await this.handle?.close();
    this.segment = segments[index] as string;
    this.handle = await open(join(this.sourceDir, this.segment), 'r');
    this.offset = 0;
    this.nextSeq = starts[index] as number;
    // Skip forward to the record after afterSeq.
    while (this.nextSeq <= afterSeq) {
      const skipped = await this.readLines(afterSeq - this.nextSeq + 1, Number.MAX_SAFE_INTEGER);
      if (skipped.length === 0) break;
    }
    return true;
  }

  /** Up to maxRecords/maxBytes records with seq > afterSeq, in order; fewer (or none) when the log has no more. */
  async readAfter(afterSeq: number, maxRecords: number, maxBytes: number): Promise<ShippedRecord[]> {
    if (!this.handle || this.nextSeq !== afterSeq + 1) {
      if (!(await this.position(afterSeq))) return [];
    }
    let records = await this.readLines(maxRecords, maxBytes);
    if (records.length === 0 && (await this.advanceSegment())) records = await this.readLines(maxRecords, maxBytes);
    return records;
  }

  /** At the end of a segment, move to the next one if the writer has started it. */
  private async advanceSegment(): Promise<boolean> {
    const segments = await listSegments(this.sourceDir);
    const next = segments.find((s) => Number(SEGMENT_FILE.exec(s)?.[1]) === this.nextSeq);
    if (!next || next === this.segment) return false;
    // Only leave the current segment once it has no more whole lines to give.
    const size = (await stat(join(this.sourceDir, this.segment as string))).size;
    if (size > this.offset) return false;
    await this.handle?.close();
    this.segment = next;
    this.handle = await open(join(this.sourceDir, next), 'r');
    this.offset = 0;
    return true;
  }

  private async readLines(maxRecords: number, maxBytes: number): Promise<ShippedRecord[]> {
    const out: ShippedRecord[] = [];
    let bytes = 0;
    const handle = this.handle as FileHandle;
    while (out.length < maxRecords && bytes < maxBytes) {
      const buf = Buffer.allocUnsafe(CHUNK);
      const { bytesRead } = await handle.read(buf, 0, CHUNK, this.offset);
      if (bytesRead === 0) break;
      let start = 0;
      let consumedAny = false;
      for (;;) {
        const nl = buf.indexOf(0x0a, start);
        if (nl === -1 || nl >= bytesRead) break;
        const line = buf.toString('utf8', start, nl);
        const lineBytes = nl + 1 - start;
        start = nl + 1;
        consumedAny = true;
        this.offset += lineBytes;
        let record: AuditRecord;
        try {
          record = JSON.parse(line) as AuditRecord;
        } catch {
          continue; // a damaged line: `audit verify` reports it; shipping goes on with the next
        }
        this.nextSeq = record.seq + 1;
        out.push({ source: this.source, seq: record.seq, line, record });
        bytes += lineBytes;
        if (out.length >= maxRecords || bytes >= maxBytes) break;
      }
      if (!consumedAny) {
        // No whole line in the chunk: either a line being written right now, or one longer than the chunk.
        if (bytesRead < CHUNK) break;
        const big = await this.readLongLine();
        if (!big) break;
        this.nextSeq = big.seq + 1;
        out.push(big);
      }
    }
    return out;
  }

  private async readLongLine(): Promise<ShippedRecord | null> {
    const handle = this.handle as FileHandle;
    const parts: Buffer[] = [];
    let at = this.offset;
    for (let i = 0; i < 64; i++) {
      const buf = Buffer.allocUnsafe(CHUNK);
      const { bytesRead } = await handle.read(buf, 0, CHUNK, at);
      if (bytesRead === 0) return null;
      const nl = buf.subarray(0, bytesRead).indexOf(0x0a);
      if (nl !== -1) {
        parts.push(buf.subarray(0, nl));
        const line = Buffer.concat(parts).toString('utf8');
        this.offset = at + nl + 1;
        const record = JSON.parse(line) as AuditRecord;
        return { source: this.source, seq: record.seq, line, record };
      }
      parts.push(buf.subarray(0, bytesRead));
      at += bytesRead;
    }
    return null;
  }

  /** The last sequence number on disk for this source (for lag), by reading the tail of the newest segment. */
  async headSeq(): Promise<number> {
    const segments = await listSegments(this.sourceDir);
    for (let i = segments.length - 1; i >= 0; i--) {
      const file = join(this.sourceDir, segments[i] as string);
      const size = (await stat(file)).size;
      if (size === 0) continue;
      const handle = await open(file, 'r');
      try {
        const window = Math.min(size, 64 * 1024);
        const buf = Buffer.allocUnsafe(window);
        await handle.read(buf, 0, window, size - window);
        const end = buf.lastIndexOf(0x0a);
        const begin = buf.lastIndexOf(0x0a, end - 1);
        const seq = /"seq":(\d+)/.exec(buf.toString('utf8', begin + 1, end))?.[1];
        if (seq) return Number(seq);
      } finally {
        await handle.close();
      }
    }
    return 0;
  }

  async close(): Promise<void> {
    await this.handle?.close();
    this.handle = null;
  }
}
