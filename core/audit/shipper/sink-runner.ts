import { appendFile, mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Checkpoint } from '../checkpoint.js';
import { AUDIT_SOURCES, type AuditSource } from '../record-format.js';
import type { SendResult, ShippedRecord, Sink } from '../sinks/sink.js';
import { CursorStore } from './cursor-store.js';
import { LogReader } from './log-reader.js';

export interface SinkStats {
  readonly name: string;
  readonly type: string;
  /** delivering: caught up or working; backoff: the last delivery failed and a retry is scheduled. */
  readonly state: 'delivering' | 'backoff' | 'stopped';
  /** Records on disk not yet confirmed by this sink, per source. */
  readonly lag: Record<string, number>;
  readonly delivered: number;
  readonly errors: number;
  readonly deadLettered: number;
  readonly lastError: string | null;
  readonly lastDeliveryAt: string | null;
  readonly nextAttemptAt: string | null;
}

interface Unconfirmed {
  readonly source: AuditSource;
  readonly seq: number;
  readonly at: number;
  readonly generation: number;
}

export interface RunnerOptions {
  readonly dir: string;
  readonly batchMax: number;
  readonly resendWindowMs: number;
  readonly timeoutMs: number;
  /** How often to look for new records when caught up. */
  readonly pollMs?: number;
}

const BASE_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 60_000;

/**
 * Delivers one sink from its own cursor: at least once, in order per source, surviving restarts (the cursor is
 * on disk) and outages as long as retention keeps the records. Failures back off exponentially with full
 * jitter and never touch the data plane: this runs in the shipper thread, reading files the writer wrote.
 */
export class SinkRunner {
  private readonly readers = new Map<AuditSource, LogReader>();
  private readonly sent: Record<AuditSource, number>;
  private unconfirmed: Unconfirmed[] = [];
  private stopped = false;
  private attempts = 0;
  private wake: (() => void) | null = null;
  private readonly counters = { delivered: 0, errors: 0, deadLettered: 0 };
  private lastError: string | null = null;
  private lastDeliveryAt: number | null = null;
  private nextAttemptAt: number | null = null;
  private done: Promise<void> = Promise.resolve();
  private readonly checkpointFileSize = new Map<AuditSource, number>();

  private constructor(
    readonly sink: Sink,
    private readonly cursors: CursorStore,
    private readonly options: RunnerOptions,
  ) {
    this.sent = { ...cursors.cursor.confirmed };
    for (const s of AUDIT_SOURCES) this.readers.set(s, new LogReader(options.dir, s));
  }

  static async start(sink: Sink, options: RunnerOptions): Promise<SinkRunner> {
    const runner = new SinkRunner(sink, await CursorStore.open(options.dir, sink.name), options);
    runner.done = runner.loop();
    return runner;
  }

  /** Ask the loop to look for new records now (the writer just wrote). */
  nudge(): void {
    this.wake?.();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = null;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = null;
        resolve();
      };
    });
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      let worked = false;
      let failed: SendResult | null = null;
      this.confirmAged();
      for (const source of AUDIT_SOURCES) {
        if (this.stopped) break;
        const batch = await (this.readers.get(source) as LogReader).readAfter(this.sent[source], this.options.batchMax, 4 * 1024 * 1024);
        if (batch.length === 0) continue;
        worked = true;
        const result = await this.guarded(() => this.sink.send(batch));
        if (!(await this.apply(source, batch, result))) {
          failed = result;
          break;
        }
      }
      if (!failed && !this.stopped) {
        for (const source of AUDIT_SOURCES) {
          const result = await this.shipCheckpoints(source);
          if (result?.status === 'retry') {
            // A receiver that refuses checkpoints backs off and shows in stats like one that refuses records.
            this.counters.errors++;
            this.lastError = `checkpoints: ${result.error}`;
            failed = result;
            break;
          }
        }
      }
      await this.cursors.save();
      if (this.stopped) break;
      if (failed && failed.status === 'retry') {
        this.attempts++;
        // Full jitter (AWS architecture blog, "Exponential Backoff And Jitter"), at least what Retry-After asks.
        const ceiling = Math.min(MAX_BACKOFF_MS, BASE_BACKOFF_MS * 2 ** Math.min(this.attempts, 16));
        const delay = Math.max(failed.retryAfterMs ?? 0, Math.random() * ceiling);
        this.nextAttemptAt = Date.now() + delay;
        await this.sleep(delay);
        this.nextAttemptAt = null;
      } else if (!worked) {
        await this.sleep(this.options.pollMs ?? 200);
      }
    }
  }

  /** A sink that hangs is a failed delivery, not a stuck shipper. */
  private async guarded(send: () => Promise<SendResult>): Promise<SendResult> {
    let timer: NodeJS.Timeout | undefined;
    const limit = this.options.timeoutMs * 3 + 1000;
    try {
      return await Promise.race([
        send().catch((err: unknown): SendResult => ({ status: 'retry', kept: 0, error: `sink failed: ${(err as Error).message}` })),
        new Promise<SendResult>((resolve) => (timer = setTimeout(() => resolve({ status: 'retry', kept: 0, error: `no answer within ${limit} ms` }), limit))),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Apply a send result to the cursors. Returns false when the loop must back off. */
  private async apply(source: AuditSource, batch: readonly ShippedRecord[], result: SendResult): Promise<boolean> {
    const last = batch[batch.length - 1] as ShippedRecord;
    if (result.status === 'delivered') {
      if (result.deadLetter && result.deadLetter.length > 0) await this.deadLetter(result.deadLetter, result.reason ?? 'rejected by the receiver');
      this.sent[source] = last.seq;
      this.cursors.confirm(source, last.seq);
      this.counters.delivered += batch.length;
      this.succeeded();
      return true;
    }
    if (result.status === 'sent') {
      this.sent[source] = last.seq;
      this.unconfirmed.push({ source, seq: last.seq, at: Date.now(), generation: this.sink.generation?.() ?? 0 });
      this.counters.delivered += batch.length;
      this.succeeded();
      return true;
    }
    // retry: keep what the receiver kept, send the rest (and anything unconfirmed) again.
    const kept = batch[result.kept - 1];
    if (kept) this.cursors.confirm(source, kept.seq);
    this.rewind();
    this.counters.errors++;
    this.lastError = result.error;
    return false;
  }

  private succeeded(): void {
    this.attempts = 0;
    this.lastError = null;
    this.lastDeliveryAt = Date.now();
  }

  /** Records handed over without acknowledgement become confirmed once the resend window passes intact. */
  private confirmAged(): void {
    if (this.unconfirmed.length === 0) return;
    const generation = this.sink.generation?.() ?? 0;
    if (!this.sink.healthy() || this.unconfirmed.some((u) => u.generation !== generation)) {
      this.rewind();
      return;
    }
    const horizon = Date.now() - this.options.resendWindowMs;
    while (this.unconfirmed.length > 0 && (this.unconfirmed[0] as Unconfirmed).at <= horizon) {
      const u = this.unconfirmed.shift() as Unconfirmed;
      this.cursors.confirm(u.source, u.seq);
    }
  }

  /** Go back to the last confirmed position: everything after it is sent again (duplicates carry their seq). */
  private rewind(): void {
    for (const s of AUDIT_SOURCES) this.sent[s] = this.cursors.cursor.confirmed[s];
    this.unconfirmed = [];
  }

  private async shipCheckpoints(source: AuditSource): Promise<SendResult | null> {
    const file = join(this.options.dir, source, 'checkpoints.jsonl');
    // Checked on every pass, read only when it grew.
    const size = (await stat(file).catch(() => null))?.size ?? 0;
    if (size === (this.checkpointFileSize.get(source) ?? -1)) return null;
    const text = await readFile(file, 'utf8').catch(() => '');
    const lines = text.split('\n').filter((l) => l.length > 0);
    const already = this.cursors.cursor.checkpoints[source];
    const fresh = lines.slice(already).map((l) => JSON.parse(l) as Checkpoint);
    // A checkpoint travels once the records it vouches for have been confirmed.
    const ready = fresh.filter((c) => c.seq <= this.cursors.cursor.confirmed[source]);
    if (ready.length === fresh.length) this.checkpointFileSize.set(source, size);
    if (ready.length === 0) return null;
    const result = await this.guarded(() => this.sink.sendCheckpoints(ready));
    if (result.status !== 'retry') {
      this.cursors.confirmCheckpoints(source, already + ready.length);
      this.succeeded();
    } else this.checkpointFileSize.delete(source);
    return result;
  }

  private async deadLetter(records: readonly ShippedRecord[], reason: string): Promise<void> {
    const dir = join(this.options.dir, 'dead-letter');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const lines = records.map((r) => JSON.stringify({ sink: this.sink.name, reason, at: new Date().toISOString(), source: r.source, seq: r.seq, line: r.line })).join('\n');
    await appendFile(join(dir, `${this.sink.name}.jsonl`), `${lines}\n`, { mode: 0o600 });
    this.counters.deadLettered += records.length;
  }

  async stats(): Promise<SinkStats> {
    const lag: Record<string, number> = {};
    for (const [source, reader] of this.readers) lag[source] = Math.max(0, (await reader.headSeq()) - this.cursors.cursor.confirmed[source]);
    return {
      name: this.sink.name,
      type: this.sink.type,
      state: this.stopped ? 'stopped' : this.nextAttemptAt ? 'backoff' : 'delivering',
      lag,
      ...this.counters,
      lastError: this.lastError,
      lastDeliveryAt: this.lastDeliveryAt ? new Date(this.lastDeliveryAt).toISOString() : null,
      nextAttemptAt: this.nextAttemptAt ? new Date(this.nextAttemptAt).toISOString() : null,
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.done;
    await this.cursors.save(true);
    for (const r of this.readers.values()) await r.close();
    await this.sink.close();
  }
}
