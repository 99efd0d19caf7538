import { mkdir, open, readdir, readFile, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { AuditLog, GENESIS_HASH, segmentName } from '../core/audit/audit-log.js';
import { validateEvent } from '../core/audit/event-schema.js';
import { composeLine } from '../core/audit/record-format.js';
import { verifyAuditDir } from '../core/audit/verify-chain.js';
import { egressEventPool } from './audit-events.js';
import { threadCpuSeconds, threadIds } from './thread-cpu.js';

/**
 * Append benchmark (its own process; the runner pins it to one core, so the caller's thread and the writer
 * thread share that core, as they do in `gatehouse up` pinned the same way). Input: one JSON argument. Output:
 * one JSON line. Rounds alternate audit / baseline so drift hits both alike; every round is bounded by an
 * event count and a deadline.
 *
 * - audit: `AuditLog.append` of real egress events (validated, serialised, SHA-256 chained by the writer
 *   thread, small segments so it rotates, a short checkpoint interval so it signs), timed until `close()` has
 *   written, checkpointed and fsynced everything.
 * - baseline: the same number of lines of the same length, appended with plain `FileHandle.write` in the same
 *   batch size, rotated at the same size with an fsync per segment and at the end: the disk work without the
 *   JSON, the hashing, the signing or the thread hand-off.
 */
interface Config {
  dir: string;
  events: number;
  rounds: number;
  segmentMaxBytes: number;
  checkpointIntervalMs: number;
  deadlineSeconds: number;
}

export interface AuditRound {
  events: number;
  seconds: number;
  perSecond: number;
  /** CPU seconds of the caller's thread (validate + stringify + post) and of the writer thread. */
  mainCpu: number;
  writerCpu: number;
  /** Every thread of the process (adds the libuv pool doing the file I/O, and V8's GC helpers). */
  processCpu: number;
  /** Threads that appeared when the writer started (1 expected). */
  writerThreads: number;
  segments: number;
  checkpoints: number;
  bytes: number;
}

export interface BaselineRound {
  events: number;
  seconds: number;
  perSecond: number;
  bytes: number;
}

export interface AppendResult {
  audit: AuditRound[];
  baseline: BaselineRound[];
  lineBytes: number;
  verified: { ok: boolean; records: number; checkpoints: number; problem?: string };
}

const cfg = JSON.parse(process.argv[2] ?? '{}') as Config;
const BATCH_BYTES = 128 * 1024; // AuditLog hands the writer a batch at this size
const FLUSH_EVERY = 10_000; // at most two such windows in flight: bounded memory, writer never starved

async function dirStats(dir: string): Promise<{ segments: number; checkpoints: number; bytes: number }> {
  const files = await readdir(join(dir, 'egress'));
  const segments = files.filter((f) => f.endsWith('.jsonl') && f !== 'checkpoints.jsonl');
  let bytes = 0;
  for (const f of segments) bytes += (await stat(join(dir, 'egress', f))).size;
  const cps = (await readFile(join(dir, 'egress', 'checkpoints.jsonl'), 'utf8').catch(() => '')).split('\n').filter((l) => l.length > 0).length;
  return { segments: segments.length, checkpoints: cps, bytes };
}

async function auditRound(dir: string, pool: readonly Record<string, unknown>[]): Promise<AuditRound> {
  await rm(dir, { recursive: true, force: true });
  await stat('.'); // the libuv pool is already running: the only thread that appears below is the writer's
  const before = new Set(threadIds());
  const log = await AuditLog.open({ dir, flushIntervalMs: 50, segmentMaxBytes: cfg.segmentMaxBytes, checkpointIntervalMs: cfg.checkpointIntervalMs, validate: validateEvent });
  const writers = threadIds().filter((t) => !before.has(t));
  const main = process.pid;
  const cpu = (): { main: number; writer: number; all: number } => {
    const all = process.cpuUsage();
    return { main: threadCpuSeconds(main), writer: writers.reduce((n, t) => n + threadCpuSeconds(t), 0), all: (all.user + all.system) / 1e6 };
  };
  const deadline = performance.now() + cfg.deadlineSeconds * 1000;
  const c0 = cpu();
  const t0 = performance.now();
  let appended = 0;
  let inflight: Promise<void> = Promise.resolve();
  while (appended < cfg.events && performance.now() < deadline) {
    const n = Math.min(FLUSH_EVERY, cfg.events - appended);
    for (let i = 0; i < n; i++) log.append('egress', pool[(appended + i) % pool.length] as Record<string, unknown>);
    appended += n;
    await inflight;
    inflight = log.flush();
  }
  await inflight;
  // Durable completion: checkpoint() writes what is queued, fsyncs the segment and signs the head, which is
  // the work close() does; close() itself (thread exit) is not timed, so the writer's CPU can still be read.
  await log.checkpoint();
  const seconds = (performance.now() - t0) / 1000;
  const c1 = cpu();
  await log.close();
  return { events: appended, seconds, perSecond: appended / seconds, mainCpu: c1.main - c0.main, writerCpu: c1.writer - c0.writer, processCpu: c1.all - c0.all, writerThreads: writers.length, ...(await dirStats(dir)) };
}

async function baselineRound(dir: string, lines: readonly string[]): Promise<BaselineRound> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const deadline = performance.now() + cfg.deadlineSeconds * 1000;
  const t0 = performance.now();
  let handle: FileHandle = await open(join(dir, segmentName(1)), 'a', 0o600);
  let segmentBytes = 0;
  let total = 0;
  let written = 0;
  while (written < cfg.events && performance.now() < deadline) {
    const batch: string[] = [];
    let size = 0;
    while (size < BATCH_BYTES && written + batch.length < cfg.events) {
      const line = lines[(written + batch.length) % lines.length] as string;
      batch.push(line);
      size += line.length + 1;
    }
    const buf = Buffer.from(`${batch.join('\n')}\n`);
    if (segmentBytes > 0 && segmentBytes + buf.length > cfg.segmentMaxBytes) {
      await handle.sync();
      await handle.close();
      handle = await open(join(dir, segmentName(written + 1)), 'a', 0o600);
      segmentBytes = 0;
    }
    let off = 0;
    while (off < buf.length) off += (await handle.write(buf, off)).bytesWritten;
    segmentBytes += buf.length;
    total += buf.length;
    written += batch.length;
  }
  await handle.sync();
  await handle.close();
  const seconds = (performance.now() - t0) / 1000;
  return { events: written, seconds, perSecond: written / seconds, bytes: total };
}

async function main(): Promise<AppendResult> {
  const pool = egressEventPool(2000);
  // Lines as long as the real records (a 64-hex prev, sequence numbers of the same width).
  const lines = pool.map((e, i) => composeLine('egress', 100_000 + i, GENESIS_HASH, JSON.stringify(e)));
  const lineBytes = lines.reduce((n, l) => n + l.length + 1, 0) / lines.length;
  const audit: AuditRound[] = [];
  const baseline: BaselineRound[] = [];
  let verified: AppendResult['verified'] = { ok: false, records: 0, checkpoints: 0 };
  // One untimed warm-up of each, so the first timed round does not pay for JIT compilation.
  await auditRound(join(cfg.dir, 'warm-audit'), pool);
  await baselineRound(join(cfg.dir, 'warm-base'), lines);
  for (let r = 0; r < cfg.rounds; r++) {
    // ABBA order: a linear drift over the run hits both sides equally.
    const auditFirst = r % 2 === 0;
    if (!auditFirst) baseline.push(await baselineRound(join(cfg.dir, `base-${r}`), lines));
    audit.push(await auditRound(join(cfg.dir, `audit-${r}`), pool));
    if (auditFirst) baseline.push(await baselineRound(join(cfg.dir, `base-${r}`), lines));
    if (r === 0) {
      // Not timed: the chain and the checkpoint signatures must verify, or the numbers are for a broken log.
      const report = await verifyAuditDir(join(cfg.dir, 'audit-0'));
      const egress = report.sources.find((s) => s.source === 'egress');
      verified = { ok: report.ok, records: egress?.records ?? 0, checkpoints: egress?.checkpoints ?? 0, ...(report.firstProblem ? { problem: report.firstProblem.problem } : {}) };
    }
    await rm(join(cfg.dir, `audit-${r}`), { recursive: true, force: true });
    await rm(join(cfg.dir, `base-${r}`), { recursive: true, force: true });
  }
  await rm(cfg.dir, { recursive: true, force: true });
  return { audit, baseline, lineBytes, verified };
}

process.stdout.write(`${JSON.stringify(await main())}\n`);
process.exit(0);
