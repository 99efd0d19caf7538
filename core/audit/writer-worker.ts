import { randomUUID } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { loadOrCreateCheckpointKey } from './checkpoint.js';
import { droppedEventsEvent } from './dropped-events.js';
import { PendingLines } from './pending-lines.js';
import { AUDIT_SOURCES, type AuditSource } from './record-format.js';
import { retentionFloor } from './retention-floor.js';
import { SegmentStore, type RotationSettings } from './segment-store.js';
import { forEachItem } from './wire-batch.js';
import type { ToMain, ToWorker, WriterConfig } from './writer-protocol.js';

/**
 * The audit writer thread: it owns sequence numbers, the hash chains and the files, so the data plane only
 * serialises an event and posts it. Everything here runs in order, one message at a time.
 */
if (!parentPort) throw new Error('writer-worker must run as a worker thread');
const port = parentPort;

interface SourceState {
  readonly store: SegmentStore;
  /** Chained lines not yet on disk (kept across write failures, in order). */
  readonly pending: PendingLines;
  firstPendingSeq: number;
  seq: number;
  hash: string;
  /** Events refused because the pending bound was reached while the disk failed; reported once writes work. */
  dropped: number;
}

let config: WriterConfig;
const sources = new Map<AuditSource, SourceState>();
const stats = { written: 0, bytes: 0, errors: 0, dropped: 0, lastError: '', corruptSegments: 0, syncs: 0 };
let queue: Promise<void> = Promise.resolve();
let retryTimer: NodeJS.Timeout | null = null;
let syncTimer: NodeJS.Timeout | null = null;

const post = (message: ToMain): void => port.postMessage(message);
const errorCode = (err: unknown): string => (err as NodeJS.ErrnoException).code ?? (err as Error).message;
const pendingTotal = (): number => {
  let n = 0;
  for (const s of sources.values()) n += s.pending.length;
  return n;
};

function chain(state: SourceState, json: Uint8Array): void {
  const seq = state.seq + 1;
  if (state.pending.count === 0) state.firstPendingSeq = seq;
  state.hash = state.pending.push(state.store.source, seq, state.hash, json);
  state.seq = seq;
}

/** Write every source's pending lines. Returns false (keeping them) when the disk refuses. */
async function writePending(): Promise<boolean> {
  let ok = true;
  for (const state of sources.values()) {
    if (state.pending.count === 0) continue;
    // Events dropped while the disk failed are accounted for in the chain itself, first thing on recovery.
    try {
      await state.store.append(state.pending.bytes(), state.seq, state.hash, state.firstPendingSeq);
      stats.written += state.pending.count;
      stats.bytes += state.pending.length;
      state.pending.clear();
    } catch (err) {
      ok = false;
      stats.errors++;
      stats.lastError = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      post({ type: 'error', message: `audit write failed for ${state.store.source}: ${stats.lastError}` });
    }
  }
  if (!ok && !retryTimer) {
    retryTimer = setTimeout(() => {
      retryTimer = null;
      enqueue(async () => {
        if (await writePending()) {
          await recoverDrops();
          await writePending();
        }
      });
    }, 1000);
  }
  return ok;
}

/** After the disk came back: put a record of how many events were dropped into each affected chain. */
async function recoverDrops(): Promise<void> {
  for (const state of sources.values()) {
    if (state.dropped === 0 || state.pending.count > 0) continue;
    chain(state, Buffer.from(JSON.stringify(droppedEventsEvent(state.store.source, state.dropped, randomUUID(), config.policyVersion))));
    state.dropped = 0;
  }
}

interface Mark {
  readonly state: SourceState;
  readonly seq: number;
  readonly hash: string;
  readonly pendingCount: number;
  readonly pendingBytes: number;
}

function accept(data: Uint8Array, durable: boolean): Mark[] {
  const rollback: Mark[] = [];
  let total = pendingTotal(); // kept up to date below rather than summed per event
  forEachItem(data, (index, json) => {
    const state = sources.get(AUDIT_SOURCES[index] as AuditSource) as SourceState;
    if (!rollback.some((r) => r.state === state)) rollback.push({ state, seq: state.seq, hash: state.hash, pendingCount: state.pending.count, pendingBytes: state.pending.length });
    // In batched mode the data plane never waits: past the memory bound, events are dropped and counted.
    if (!durable && total > config.maxPendingBytes) {
      state.dropped++;
      stats.dropped++;
      return;
    }
    const before = state.pending.length;
    chain(state, json);
    total += state.pending.length - before;
  });
  return rollback;
}

async function handle(message: ToWorker): Promise<void> {
  switch (message.type) {
    case 'batch':
      accept(message.data, false);
      if (await writePending()) armGroupSync();
      return;
    case 'durable': {
      const rollback = accept(message.data, true);
      let ok = await writePending();
      if (ok) {
        try {
          for (const r of rollback) await r.state.store.sync();
          stats.syncs += rollback.length;
        } catch (err) {
          ok = false;
          stats.lastError = (err as NodeJS.ErrnoException).code ?? 'fsync failed';
        }
      }
      if (!ok) {
        // SECURITY (strict mode): the caller refuses the traffic, so these events must not appear later as
        // decisions that were acted on. Undo them from the chain; nothing of them reaches the disk.
        for (const r of rollback) {
          // Except when the write went through and only the fsync failed: those lines are in the file, and
          // rewinding the chain past them would give their seq to the next event and break the chain for good.
          // They stay, as decisions recorded but refused (no end event follows them).
          if (r.state.store.seq > r.seq) continue;
          r.state.seq = r.seq;
          r.state.hash = r.hash;
          r.state.pending.cut(r.pendingCount, r.pendingBytes);
        }
      }
      post({ type: 'ack', id: message.id, ok, ...(ok ? {} : { error: stats.lastError }) });
      return;
    }
    case 'flush': {
      const ok = await writePending();
      if (ok && message.sync) for (const s of sources.values()) await s.store.sync();
      post({ type: 'ack', id: message.id, ok });
      return;
    }
    case 'configure': {
      const previous = config.checkpointIntervalMs;
      config = { ...config, ...message.config };
      for (const s of sources.values()) s.store.configure(config.rotation);
      if (config.checkpointIntervalMs !== previous) armCheckpoints();
      return;
    }
    case 'checkpoint':
      for (const s of sources.values()) await s.store.checkpoint();
      post({ type: 'ack', id: message.id, ok: true });
      return;
    case 'close': {
      // Close every store even when the disk fails, and say so: events still pending here are lost.
      let ok = await writePending();
      for (const s of sources.values()) {
        try {
          await s.store.close();
        } catch (err) {
          ok = false;
          stats.lastError = errorCode(err);
        }
      }
      post({ type: 'ack', id: message.id, ok, ...(ok ? {} : { error: stats.lastError }) });
      port.close();
      return;
    }
    case 'init':
      return;
  }
}

/**
 * Group commit for batched mode: one fsync, at most one sync interval after a write, covers everything written
 * since the last one. Without it, lines sat in the page cache until the next checkpoint or rotation, and an OS
 * crash or power loss could lose minutes of decisions instead of the documented interval.
 */
function armGroupSync(): void {
  if (syncTimer) return;
  syncTimer = setTimeout(() => {
    syncTimer = null;
    enqueue(async () => {
      for (const s of sources.values()) {
        if (!s.store.dirty) continue;
        try {
          await s.store.sync();
          stats.syncs++;
        } catch (err) {
          // The lines stay written and dirty: the next batch arms another attempt; the error is counted and said.
          stats.errors++;
          stats.lastError = errorCode(err);
          post({ type: 'error', message: `audit fsync failed for ${s.store.source}: ${stats.lastError}` });
        }
      }
    });
  }, config.syncIntervalMs);
}

let checkpointTimer: NodeJS.Timeout | undefined;

/** (Re)start the checkpoint timer at the configured interval: a reload that changes it takes effect at once. */
function armCheckpoints(): void {
  clearInterval(checkpointTimer);
  checkpointTimer = setInterval(() => enqueue(async () => void (await Promise.all([...sources.values()].map((s) => s.store.checkpoint())))), config.checkpointIntervalMs).unref();
}

function enqueue(task: () => Promise<void>): void {
  queue = queue.then(task).catch((err: unknown) => post({ type: 'error', message: `audit writer: ${(err as Error).message}` }));
}

async function init(message: Extract<ToWorker, { type: 'init' }>): Promise<void> {
  config = message.config;
  const key = await loadOrCreateCheckpointKey(config.dir);
  const recoveries: Record<string, unknown> = {};
  for (const source of AUDIT_SOURCES) {
    const { store, recovery } = await SegmentStore.open(config.dir, source, config.rotation as RotationSettings, key);
    sources.set(source, { store, pending: new PendingLines(), firstPendingSeq: recovery.seq + 1, seq: recovery.seq, hash: recovery.hash, dropped: 0 });
    recoveries[source] = recovery;
    if (recovery.corruptSegment) stats.corruptSegments++;
  }
  armCheckpoints();
  setInterval(() => post({ type: 'stats', stats: { ...stats, pendingBytes: pendingTotal(), heads: heads() } }), 1000).unref();
  setInterval(
    () =>
      enqueue(async () => {
        const floor = await retentionFloor(config.dir, config.sinkNames);
        for (const s of sources.values()) await s.store.prune(config.retentionMs, floor[s.store.source] as number);
      }),
    10 * 60_000,
  ).unref();
  post({ type: 'ready', heads: heads(), recoveries, publicKeyPem: key.publicKeyPem, kid: key.kid });
}

const heads = (): Record<string, { seq: number; hash: string }> => Object.fromEntries([...sources].map(([name, s]) => [name, { seq: s.seq, hash: s.hash }]));

port.on('message', (message: ToWorker) => {
  if (message.type === 'init') {
    // Which file or directory failed, not only the errno: it is what an operator has to fix.
    init(message).catch((err: unknown) => {
      const e = err as NodeJS.ErrnoException;
      post({ type: 'fatal', message: e.code && e.path ? `${e.code} (${e.syscall ?? 'access'} ${e.path})` : errorCode(err) });
    });
    return;
  }
  // Every request is answered, failed or not: an unanswered one hangs its caller (and keeps the process alive).
  enqueue(() =>
    handle(message).catch((err: unknown) => {
      if ('id' in message) post({ type: 'ack', id: message.id, ok: false, error: errorCode(err) });
      throw err;
    }),
  );
});
