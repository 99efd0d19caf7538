/**
 * Events on their way from the data plane to the writer thread: one buffer per batch, transferred (not copied)
 * with `postMessage`. Each item is the source's index into AUDIT_SOURCES (1 byte), the length of the event's
 * JSON in bytes (UInt32LE) and the JSON itself in UTF-8.
 *
 * Why bytes and not an array of [source, json] tuples: structured cloning copies every string on both sides
 * and keeps ~1 KB strings alive on the caller's heap until the next flush (50 ms), so they survive scavenges
 * and get promoted. Encoded at once, the JSON string dies young, the hand-off is a pointer move, and the
 * writer gets the bytes it hashes and writes without decoding or re-encoding them.
 */
const HEADER = 5;
/** Room left after the hand-off threshold, so events up to ~20 K characters never need an exact size. */
const SLACK = 64 * 1024;

/** Builds one batch on the caller's thread. */
export class BatchEncoder {
  private buf: Buffer<ArrayBuffer> | null = null;
  private used = 0;
  private items = 0;

  /** `threshold`: the size at which the caller hands a batch over; buffers have room for one more event. */
  constructor(private readonly threshold: number) {}

  /** Bytes in the batch so far. */
  get bytes(): number {
    return this.used;
  }

  /**
   * Add one event. False (nothing added) when it does not fit after the events already in the batch: hand
   * those over first, then add it to the fresh batch (which is made big enough for it).
   */
  add(sourceIndex: number, json: string): boolean {
    // A UTF-16 code unit takes at most 3 UTF-8 bytes; the exact length is worked out only when that could matter.
    let need = HEADER + json.length * 3;
    let buf = this.buf;
    if (!buf || buf.length - this.used < need) {
      need = HEADER + Buffer.byteLength(json);
      if (buf && buf.length - this.used < need) {
        if (this.items > 0) return false;
        buf = null;
      }
      // Its own ArrayBuffer (not the shared Buffer pool), so it can be transferred.
      buf ??= this.buf = Buffer.allocUnsafeSlow(Math.max(this.threshold + SLACK, need));
    }
    const n = buf.write(json, this.used + HEADER);
    buf[this.used] = sourceIndex;
    buf.writeUInt32LE(n, this.used + 1);
    this.used += HEADER + n;
    this.items++;
    return true;
  }

  /** The batch so far (to transfer: its `.buffer` is its own), or null when empty; the next add starts a new one. */
  take(): Buffer<ArrayBuffer> | null {
    if (this.items === 0 || !this.buf) return null;
    const out = this.buf.subarray(0, this.used);
    this.buf = null;
    this.used = 0;
    this.items = 0;
    return out;
  }
}

/** One event as a batch of its own (strict durability). */
export function encodeOne(sourceIndex: number, json: string): Buffer<ArrayBuffer> {
  const n = Buffer.byteLength(json);
  const buf = Buffer.allocUnsafeSlow(HEADER + n);
  buf[0] = sourceIndex;
  buf.writeUInt32LE(n, 1);
  buf.write(json, HEADER);
  return buf;
}

/** Call `fn` for each event of a batch, in order: the source index and a view of the JSON bytes. */
export function forEachItem(data: Uint8Array, fn: (sourceIndex: number, json: Uint8Array) => void): void {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (let off = 0; off < data.length; ) {
    const length = view.getUint32(off + 1, true);
    const start = off + HEADER;
    fn(data[off] as number, data.subarray(start, start + length));
    off = start + length;
  }
}
