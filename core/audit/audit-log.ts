import { hash } from 'node:crypto';
import { mkdir, open, readdir, stat, truncate, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { GatehouseError } from '../errors/index.js';

/** The components that write audit events. Each has its own sequence and hash chain. */
export const AUDIT_SOURCES = ['egress', 'broker', 'gateway', 'sds', 'control'] as const;
export type AuditSource = (typeof AUDIT_SOURCES)[number];

export const GENESIS_HASH = '0'.repeat(64);

/** One line of the audit log. `prev` is the SHA-256 (hex) of the previous line's exact bytes in this source. */
export interface AuditRecord<E = Record<string, unknown>> {
  readonly v: 1;
  readonly source: AuditSource;
  readonly seq: number;
  readonly prev: string;
  readonly event: E;
}

// One-shot hashing (crypto.hash) avoids a Hash object per record: this runs once per audited decision.
export const hashLine = (line: string): string => hash('sha256', line, 'hex');

/** The buffers after the first `offset` bytes. */
function sliceFrom(buffers: readonly Buffer[], offset: number): Buffer[] {
  const out: Buffer[] = [];
  let skip = offset;
  for (const b of buffers) {
    if (skip >= b.length) {
      skip -= b.length;
      continue;
    }
    out.push(skip > 0 ? b.subarray(skip) : b);
    skip = 0;
  }
  return out;
}

export const segmentName = (firstSeq: number): string => `${String(firstSeq).padStart(12, '0')}.jsonl`;

interface SourceState {
  seq: number;
  prev: string;
  file: string;
  handle: FileHandle | null;
  /** The buffer being filled (off the V8 heap: lines are encoded into it as they are appended). */
  current: Buffer;
  used: number;
  /** Filled buffers waiting to be written, in order. */
  sealed: Buffer[];
  sealedBytes: number;
  writing: Promise<void>;
}

const BUFFER_BYTES = 256 * 1024;

export interface AuditLogOptions {
  readonly dir: string;
  /** Events are written at least this often (the data plane never waits on the disk). */
  readonly flushIntervalMs?: number;
  /** Validate an event before it is written; throw to refuse it (an invalid event is a bug). */
  readonly validate?: (event: Record<string, unknown>) => void;
  /** Called when a write fails; the events stay queued and are retried on the next flush. */
  readonly onError?: (err: Error) => void;
}

/**
 * Read the last complete line of a segment. A torn final line (a crash mid-write) is cut off, so the chain
 * continues from the last record that was fully written.
 */
async function lastCompleteLine(file: string): Promise<string | null> {
  const info = await stat(file);
  if (info.size === 0) return null;
  const handle = await open(file, 'r');
  try {
    const window = Math.min(info.size, 1024 * 1024);
    const buf = Buffer.alloc(window);
    await handle.read(buf, 0, window, info.size - window);
    let end = buf.length;
    if (buf[end - 1] !== 0x0a) {
      const lastNl = buf.lastIndexOf(0x0a);
      await truncate(file, info.size - window + lastNl + 1);
      if (lastNl === -1) return null;
      end = lastNl + 1;
    }
    const prevNl = buf.lastIndexOf(0x0a, end - 2);
    return buf.subarray(prevNl + 1, end - 1).toString('utf8');
  } finally {
    await handle.close();
  }
}

/**
 * The durable, hash-chained audit log: `DIR/<source>/<first-seq>.jsonl`. Appends are synchronous and cheap
 * (sequence, hash, queue); a timer writes the queue at least every `flushIntervalMs`.
 */
export class AuditLog {
  private readonly sources = new Map<AuditSource, SourceState>();
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  private constructor(private readonly options: AuditLogOptions) {}

  static async open(options: AuditLogOptions): Promise<AuditLog> {
    const log = new AuditLog(options);
    try {
      await mkdir(options.dir, { recursive: true, mode: 0o700 });
      for (const source of AUDIT_SOURCES) await log.openSource(source);
    } catch (err) {
      if (err instanceof GatehouseError) throw err;
      throw new GatehouseError('GH_ERR_AUDIT_WRITE', { detail: (err as NodeJS.ErrnoException).code ?? 'error' }, { cause: err });
    }
    return log;
  }

  private async openSource(source: AuditSource): Promise<void> {
    const dir = join(this.options.dir, source);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const segments = (await readdir(dir)).filter((f) => /^\d{12}\.jsonl$/.test(f)).sort();
    let seq = 0;
    let prev = GENESIS_HASH;
    let file = join(dir, segmentName(1));
    const last = segments[segments.length - 1];
    if (last) {
      file = join(dir, last);
      const line = await lastCompleteLine(file);
      if (line !== null) {
        const record = JSON.parse(line) as AuditRecord;
        seq = record.seq;
        prev = hashLine(line);
      }
    }
    this.sources.set(source, { seq, prev, file, handle: null, current: Buffer.allocUnsafe(BUFFER_BYTES), used: 0, sealed: [], sealedBytes: 0, writing: Promise.resolve() });
  }

  /**
   * Append one event. Returns the record's sequence number. Throws if the event fails validation: writing
   * it would put a malformed record into the permanent trail.
   */
  append(source: AuditSource, event: Record<string, unknown>): number {
    if (this.closed) throw new GatehouseError('GH_ERR_AUDIT_WRITE', { detail: 'audit log is closed' });
    this.options.validate?.(event);
    const state = this.sources.get(source) as SourceState;
    const seq = state.seq + 1;
    const line = JSON.stringify({ v: 1, source, seq, prev: state.prev, event } satisfies AuditRecord);
    state.seq = seq;
    state.prev = hashLine(line);
    // Encode straight into the current buffer: the line string dies young and nothing big lives on the heap.
    // UTF-8 needs at most 3 bytes per UTF-16 unit; seal the buffer first when the worst case would not fit.
    const worst = line.length * 3 + 1;
    if (state.used + worst > state.current.length) {
      this.seal(state);
      if (worst > state.current.length) state.current = Buffer.allocUnsafe(worst);
    }
    state.used += state.current.write(line, state.used, 'utf8');
    state.current[state.used++] = 0x0a;
    if (state.sealedBytes > 0) void this.flush();
    else this.timer ??= setTimeout(() => void this.flush(), this.options.flushIntervalMs ?? 50);
    return seq;
  }

  /** Write everything queued so far. Resolves when it is on disk (not fsynced). */
  async flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    await Promise.all([...this.sources.values()].map((s) => this.flushSource(s)));
  }

  /** Move the filled part of the current buffer to the write queue and start a fresh buffer. */
  private seal(state: SourceState): void {
    if (state.used === 0) return;
    state.sealed.push(state.current.subarray(0, state.used));
    state.sealedBytes += state.used;
    state.current = Buffer.allocUnsafe(BUFFER_BYTES);
    state.used = 0;
  }

  private flushSource(state: SourceState): Promise<void> {
    const run = async (): Promise<void> => {
      this.seal(state);
      if (state.sealed.length === 0) return;
      const buffers = state.sealed;
      state.sealed = [];
      state.sealedBytes = 0;
      let written = 0;
      try {
        state.handle ??= await open(state.file, 'a', 0o600);
        const total = buffers.reduce((n, b) => n + b.length, 0);
        while (written < total) {
          const rest = sliceFrom(buffers, written);
          written += (await state.handle.writev(rest)).bytesWritten;
        }
      } catch (err) {
        // Keep what was not written: it is retried, in order, on the next flush. (A short write cannot tear a
        // record: the unwritten tail is written next, right after it.)
        const rest = sliceFrom(buffers, written);
        state.sealed = [...rest, ...state.sealed];
        state.sealedBytes += rest.reduce((n, b) => n + b.length, 0);
        this.options.onError?.(err as Error);
        if (!this.closed) this.timer ??= setTimeout(() => void this.flush(), 1000);
      }
    };
    state.writing = state.writing.then(run, run);
    return state.writing;
  }

  /** Position of each source's chain (for checkpoints and status). */
  heads(): Record<string, { seq: number; hash: string }> {
    const out: Record<string, { seq: number; hash: string }> = {};
    for (const [source, s] of this.sources) out[source] = { seq: s.seq, hash: s.prev };
    return out;
  }

  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
    for (const s of this.sources.values()) {
      await s.writing;
      await s.handle?.close();
      s.handle = null;
    }
  }
}
