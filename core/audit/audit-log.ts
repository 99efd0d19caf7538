import { mkdir } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { GatehouseError } from '../errors/index.js';
import { workerScript } from '../util/worker-script.js';
import { AUDIT_SOURCES, type AuditSource } from './record-format.js';
import { BatchEncoder, encodeOne } from './wire-batch.js';
import type { ToMain, ToWorker, WriterConfig, WriterStats } from './writer-protocol.js';

export { AUDIT_SOURCES, GENESIS_HASH, hashLine, segmentName, type AuditRecord, type AuditSource } from './record-format.js';

export interface AuditLogOptions {
  readonly dir: string;
  /** Events are handed to the writer at least this often (the data plane never waits on the disk). */
  readonly flushIntervalMs?: number;
  readonly segmentMaxBytes?: number;
  readonly segmentMaxAgeMs?: number;
  readonly checkpointIntervalMs?: number;
  readonly retentionMs?: number;
  readonly maxPendingBytes?: number;
  /** The sinks configured now: retention keeps what they have not confirmed, and ignores other cursor files. */
  readonly sinkNames?: readonly string[];
  readonly policyVersion?: string;
  /** Validate an event before it is written; throw to refuse it (an invalid event is a bug). */
  readonly validate?: (event: Record<string, unknown>) => void;
  /** Called when the writer reports a failure; events are kept and retried. */
  readonly onError?: (message: string) => void;
  readonly onStats?: (stats: WriterStats) => void;
}

const SOURCE_INDEX = new Map<AuditSource, number>(AUDIT_SOURCES.map((s, i) => [s, i]));
/** A batch is handed to the writer at this size even before the flush interval is up. */
const BATCH_BYTES = 128 * 1024;

/**
 * The durable, hash-chained audit log: `DIR/<source>/<first-seq>.jsonl` segments written by a worker thread.
 * `append` validates and serialises the event (the only work on the caller's thread) and queues it; the
 * writer chains, writes, rotates and checkpoints. `appendDurable` resolves only once the event is fsynced.
 */
export class AuditLog {
  private readonly batch = new BatchEncoder(BATCH_BYTES);
  private timer: NodeJS.Timeout | null = null;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();
  private closed = false;
  private latest: Record<string, { seq: number; hash: string }>;
  publicKeyPem = '';
  /** How long an appended event may wait before it is handed to the writer (a reload may change it). */
  flushIntervalMs: number;

  private constructor(
    private readonly worker: Worker,
    private readonly options: AuditLogOptions,
    heads: Record<string, { seq: number; hash: string }>,
  ) {
    this.latest = heads;
    this.flushIntervalMs = options.flushIntervalMs ?? 50;
  }

  static async open(options: AuditLogOptions): Promise<AuditLog> {
    try {
      await mkdir(options.dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new GatehouseError('GH_ERR_AUDIT_WRITE', { detail: (err as NodeJS.ErrnoException).code ?? 'error' }, { cause: err });
    }
    const config: WriterConfig = {
      dir: options.dir,
      rotation: { segmentMaxBytes: options.segmentMaxBytes ?? 64 * 1024 * 1024, segmentMaxAgeMs: options.segmentMaxAgeMs ?? 3_600_000 },
      checkpointIntervalMs: options.checkpointIntervalMs ?? 60_000,
      retentionMs: options.retentionMs ?? 30 * 86_400_000,
      maxPendingBytes: options.maxPendingBytes ?? 64 * 1024 * 1024,
      ...(options.sinkNames ? { sinkNames: options.sinkNames } : {}),
      syncIntervalMs: options.flushIntervalMs ?? 50,
      policyVersion: options.policyVersion ?? 'sha256:0000000000000000',
    };
    const worker = new Worker(workerScript(import.meta.url, 'core/audit/writer-worker.js'));
    const ready = await new Promise<Extract<ToMain, { type: 'ready' }>>((resolve, reject) => {
      const onMessage = (m: ToMain): void => {
        if (m.type === 'ready') {
          worker.off('message', onMessage);
          resolve(m);
        } else if (m.type === 'fatal') reject(new GatehouseError('GH_ERR_AUDIT_WRITE', { detail: m.message }));
      };
      worker.on('message', onMessage);
      worker.once('error', (err) => reject(new GatehouseError('GH_ERR_AUDIT_WRITE', { detail: err.message })));
      worker.postMessage({ type: 'init', config } satisfies ToWorker);
    }).catch(async (err: unknown) => {
      // A writer that failed to start would otherwise keep running and keep the process alive after the error.
      await worker.terminate();
      throw err;
    });
    // Damage found at start-up is reported like a write error: the segment is left as evidence for `audit verify`.
    for (const [source, r] of Object.entries(ready.recoveries) as Array<[string, { corruptSegment?: string }]>) {
      if (r.corruptSegment) options.onError?.(`audit segment ${source}/${r.corruptSegment} is damaged: left as it is, new records go to a new segment; run "gatehouse audit verify"`);
    }
    const log = new AuditLog(worker, options, ready.heads);
    log.publicKeyPem = ready.publicKeyPem;
    worker.on('message', (m: ToMain) => log.onMessage(m));
    worker.on('error', (err) => options.onError?.(`audit writer crashed: ${err.message}`));
    worker.unref();
    return log;
  }

  private onMessage(m: ToMain): void {
    if (m.type === 'ack') {
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (m.ok) w?.resolve();
      else w?.reject(new GatehouseError('GH_ERR_AUDIT_WRITE', { detail: m.error ?? 'write failed' }));
    } else if (m.type === 'stats') {
      this.latest = m.stats.heads;
      this.options.onStats?.(m.stats);
    } else if (m.type === 'error' || m.type === 'fatal') {
      this.options.onError?.(m.message);
    }
  }

  private serialise(event: Record<string, unknown>): string {
    if (this.closed) throw new GatehouseError('GH_ERR_AUDIT_WRITE', { detail: 'audit log is closed' });
    this.options.validate?.(event);
    return JSON.stringify(event);
  }

  /** Queue one event. Throws if the event fails validation: writing it would put a malformed record in the trail. */
  append(source: AuditSource, event: Record<string, unknown>): void {
    const json = this.serialise(event);
    const index = SOURCE_INDEX.get(source) as number;
    if (!this.batch.add(index, json)) {
      this.post();
      this.batch.add(index, json);
    }
    if (this.batch.bytes > BATCH_BYTES) this.post();
    else this.timer ??= setTimeout(() => this.post(), this.flushIntervalMs);
  }

  /**
   * Write and fsync one event, after everything queued before it (written first; fsynced with it when of the same
   * source). Rejects when it cannot be made durable.
   */
  appendDurable(source: AuditSource, event: Record<string, unknown>): Promise<void> {
    const data = encodeOne(SOURCE_INDEX.get(source) as number, this.serialise(event));
    // What was queued before goes first as a batch of its own: it was acted on already, so when this write is
    // refused and undone, those events must stay pending and be retried, not be undone with it.
    this.post();
    return this.request({ type: 'durable', id: this.nextId++, data }, data);
  }

  private post(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const data = this.batch.take();
    // Transferred: the writer gets the bytes without a copy, and this thread no longer holds them.
    if (data) this.worker.postMessage({ type: 'batch', data } satisfies ToWorker, [data.buffer]);
  }

  private request(message: Extract<ToWorker, { id: number }>, transfer?: Uint8Array<ArrayBuffer>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiting.set(message.id, { resolve: () => resolve(), reject });
      this.worker.ref(); // a pending answer keeps the process alive until it arrives
      this.worker.postMessage(message, transfer ? [transfer.buffer] : []);
    }).finally(() => {
      if (this.waiting.size === 0) this.worker.unref();
    });
  }

  /** Resolves when everything appended so far is written (with `sync`, also fsynced). */
  flush(sync = false): Promise<void> {
    this.post();
    return this.request({ type: 'flush', id: this.nextId++, sync });
  }

  /** Sign a checkpoint of every chain now (tests, shutdown). */
  checkpoint(): Promise<void> {
    this.post();
    return this.request({ type: 'checkpoint', id: this.nextId++ });
  }

  configure(settings: Partial<Omit<WriterConfig, 'dir'>>): void {
    this.worker.postMessage({ type: 'configure', config: settings } satisfies ToWorker);
  }

  /** Each source's chain head as last reported by the writer. */
  heads(): Record<string, { seq: number; hash: string }> {
    return this.latest;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.post();
    this.closed = true;
    try {
      await this.request({ type: 'close', id: this.nextId++ });
    } finally {
      await this.worker.terminate(); // even when the last write failed: the caller is shutting down
    }
  }
}
