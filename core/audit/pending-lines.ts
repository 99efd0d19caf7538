import { hashLine, linePrefix, type AuditSource } from './record-format.js';

/**
 * A source's chained record lines not yet on disk, as the bytes that will be written: each line is composed
 * once, in place, hashed from there (one SHA-256 over the exact bytes, no string building, no second UTF-8
 * encoding) and written as one buffer. Kept across write failures, in order; a strict-mode rollback cuts it
 * back to an earlier mark.
 */
export class PendingLines {
  private buf: Buffer = Buffer.alloc(0);
  /** Bytes pending (whole lines, each ending in a newline). */
  length = 0;
  /** Lines pending. */
  count = 0;

  /**
   * Append the record line for `json` (the event's JSON bytes) and return the SHA-256 (hex) of the line, which is
   * `linePrefix(...)`, the JSON and `}`: composeLine's bytes exactly.
   */
  push(source: AuditSource, seq: number, prev: string, json: Uint8Array): string {
    const prefix = linePrefix(source, seq, prev);
    this.reserve(prefix.length + json.length + 2);
    const buf = this.buf;
    const start = this.length;
    let end = start + buf.write(prefix, start, 'latin1'); // ASCII only: digits, hex and fixed names
    buf.set(json, end);
    end += json.length;
    buf[end++] = 0x7d; // }
    const hash = hashLine(buf.subarray(start, end));
    buf[end++] = 0x0a; // \n
    this.length = end;
    this.count++;
    return hash;
  }

  /** The pending lines. Valid until the next push, cut or clear. */
  bytes(): Buffer {
    return this.buf.subarray(0, this.length);
  }

  /** Back to an earlier state (strict-mode rollback). */
  cut(count: number, length: number): void {
    this.count = count;
    this.length = length;
  }

  clear(): void {
    this.count = 0;
    this.length = 0;
    // After a disk outage grew it: do not keep megabytes around for batches of ~128 KB.
    if (this.buf.length > 4 * 1024 * 1024) this.buf = Buffer.alloc(0);
  }

  private reserve(extra: number): void {
    if (this.length + extra <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(256 * 1024, 2 * this.buf.length, this.length + extra));
    this.buf.copy(grown, 0, 0, this.length);
    this.buf = grown;
  }
}
