import type { SignResult, SignVariant } from './broker-sign.js';
import { ratio } from './report.js';

/** Tables for the broker benchmark: every figure beside its same-run baseline, and the targets checked. */
export const THROUGHPUT_TARGET = 0.8;
/** "A 1 GiB upload must not grow the broker's RSS by more than 64 MB" (decimal MB, the stricter reading). */
export const RSS_GROWTH_TARGET_BYTES = 64e6;

export type Side = 'broker' | 'direct';
export type Direction = 'upload' | 'download';

export interface StreamRun {
  readonly direction: Direction;
  readonly side: Side;
  readonly bytes: number;
  readonly seconds: number;
  /** CPU seconds the Gatehouse process used during the run (every thread). */
  readonly brokerCpu: number;
  /** Peak RSS during the run minus RSS just before it (broker runs only; the peak is reset first when possible). */
  readonly rssGrowth?: number;
}

export interface StreamOutcome {
  readonly objectBytes: number;
  readonly partBytes: number;
  readonly runs: readonly StreamRun[];
  /** The 1 GiB transfers through the broker, when RGW's memstore and the machine's memory allowed them. */
  readonly large: readonly StreamRun[];
  /** SHA-256 of the warm-up object read back through the broker matched what was sent. */
  readonly verified: boolean;
  /** How the peak was taken: reset per run (clear_refs) or the process's peak since start. */
  readonly peakReset: boolean;
  readonly largeSkipped?: string;
}

export interface LatencyTable {
  /** Latencies in ms per target and operation. */
  readonly samples: Record<string, { get: number[]; stat: number[] }>;
  readonly errors: number;
  readonly timedOut: boolean;
}

const mean = (xs: readonly number[]): number => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
const spread = (xs: readonly number[]): number => (xs.length > 1 && mean(xs) > 0 ? (Math.max(...xs) - Math.min(...xs)) / mean(xs) : 0);
const noisy = (xs: readonly number[], limit: number): string => (spread(xs) > limit ? ` [NOISY: repeated runs differ by ${(spread(xs) * 100).toFixed(0)}%]` : '');
const mb = (bytes: number): string => (bytes / 1e6).toFixed(1);
const rate = (r: StreamRun): number => r.bytes / 1e6 / Math.max(1e-9, r.seconds);
const pad = (s: string, n: number): string => s.padStart(n);

/** The q-quantile (0..1) of `xs`, nearest rank. */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return 0;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
}

function rssVerdict(growth: number | undefined): string {
  if (growth === undefined) return '';
  return growth <= RSS_GROWTH_TARGET_BYTES ? `PASS<=${mb(RSS_GROWTH_TARGET_BYTES)}` : `MISS>${mb(RSS_GROWTH_TARGET_BYTES)}`;
}

export function formatStream(o: StreamOutcome): string {
  const lines = [
    `broker streaming: ${mb(o.objectBytes)} MB objects through the broker's S3 store (parts of ${mb(o.partBytes)} MB) vs the same client straight`,
    'to Ceph RGW (memstore) with SigV4-signed requests (multipart, the same part size, each part signed over its SHA-256);',
    'gatehouse pinned to core 1, the client and RGW to core 0; ABBA order. MB = 10^6 bytes.',
    `peak RSS growth: ${o.peakReset ? 'VmHWM after the run (reset through clear_refs just before) minus VmRSS before it' : 'VmHWM after minus VmHWM before (the peak could not be reset)'}.`,
    'direction  round  side      MB/s  x direct  broker CPU s/GB  broker RSS growth MB',
    '---------  -----  ------  -------  --------  ---------------  --------------------',
  ];
  const summary: string[] = [];
  for (const direction of ['upload', 'download'] as const) {
    const runs = o.runs.filter((r) => r.direction === direction);
    const direct = runs.filter((r) => r.side === 'direct');
    const broker = runs.filter((r) => r.side === 'broker');
    let round = 0;
    for (const r of runs) {
      if (r.side === 'broker') round++;
      const peer = r.side === 'broker' ? direct[round - 1] : undefined;
      lines.push(
        [
          direction.padEnd(9),
          pad(r.side === 'broker' ? String(round) : '', 5),
          r.side.padEnd(6),
          pad(rate(r).toFixed(1), 7),
          pad(peer ? ratio(rate(r), rate(peer)) : '', 8),
          pad(r.side === 'broker' ? (r.brokerCpu / (r.bytes / 1e9)).toFixed(2) : '', 15),
          pad(r.rssGrowth !== undefined ? mb(r.rssGrowth) : '', 20),
        ].join('  '),
      );
    }
    const b = mean(broker.map(rate));
    const d = mean(direct.map(rate));
    const verdict = d > 0 && b / d >= THROUGHPUT_TARGET ? `PASS>=${THROUGHPUT_TARGET}` : `MISS<${THROUGHPUT_TARGET}`;
    const growth = Math.max(...broker.map((r) => r.rssGrowth ?? 0));
    summary.push(
      `${direction}: broker ${b.toFixed(1)} MB/s, direct ${d.toFixed(1)} MB/s, x direct ${ratio(b, d)}: target >= ${THROUGHPUT_TARGET} ${verdict}` +
        noisy(broker.map(rate), 0.2) +
        noisy(direct.map(rate), 0.2),
      `  broker peak RSS growth over a ${mb(o.objectBytes)} MB ${direction}: at most ${mb(growth)} MB (${rssVerdict(growth)} for 1 GiB, checked below)`,
    );
  }
  lines.push(...summary);
  if (o.large.length > 0) {
    for (const r of o.large) {
      lines.push(`1 GiB ${r.direction} through the broker: ${rate(r).toFixed(1)} MB/s, peak RSS growth ${mb(r.rssGrowth ?? 0)} MB: target <= 64 MB ${rssVerdict(r.rssGrowth)}`);
    }
  } else {
    lines.push(`1 GiB transfers skipped: ${o.largeSkipped ?? 'not asked for'}`);
  }
  lines.push(`SHA-256 of the warm-up object read back through the broker: ${o.verified ? 'matches' : 'MISMATCH'}`);
  return `${lines.join('\n')}\n`;
}

/** Broker targets and the direct baseline they are compared with. */
export function formatLatency(t: LatencyTable, direct: string, s3: string, local: string): string {
  const lines = [
    'broker small-request latency: 1 KiB file, one request at a time over a kept-alive connection, blocks in ABBA order;',
    `"${direct}" signs each request with SigV4 in the client as the broker does. ms from sending to the last byte.`,
    'operation  target              n   p50 ms   p90 ms   p99 ms  added p50  added p99  (added: vs direct)',
    '---------  ----------------  ----  -------  -------  -------  ---------  ---------',
  ];
  for (const op of ['get', 'stat'] as const) {
    const base = t.samples[direct]?.[op] ?? [];
    for (const name of [direct, s3, local]) {
      const xs = t.samples[name]?.[op] ?? [];
      const added = (q: number): string => (name === direct ? '' : (quantile(xs, q) - quantile(base, q)).toFixed(2));
      lines.push(
        [
          (op === 'get' ? 'GET' : direct === name ? 'HEAD' : 'stat').padEnd(9),
          name.padEnd(16),
          pad(String(xs.length), 4),
          pad(quantile(xs, 0.5).toFixed(2), 7),
          pad(quantile(xs, 0.9).toFixed(2), 7),
          pad(quantile(xs, 0.99).toFixed(2), 7),
          pad(added(0.5), 9),
          pad(added(0.99), 9),
        ].join('  '),
      );
    }
    const s3x = t.samples[s3]?.[op] ?? [];
    const localx = t.samples[local]?.[op] ?? [];
    lines.push(`  ${op}: the S3 store adds ${(quantile(s3x, 0.5) - quantile(localx, 0.5)).toFixed(2)} ms at p50 over the local store (the broker's own path being the same)`);
  }
  lines.push(`errors: ${t.errors}${t.timedOut ? '; stopped at the deadline (fewer samples than asked)' : ''}. No target in the issue: the figures show what the hop costs.`);
  return `${lines.join('\n')}\n`;
}

export function formatSign(r: SignResult, baseline: SignVariant): string {
  const lines = [
    'SigV4 signing cost per request (1 KiB GET as the broker signs it), pinned to core 1, ABBA order; baseline: one HMAC-SHA256',
    'of the same string-to-sign with a precomputed key.',
    'variant                   round       ops    us/op       ops/s  x baseline cost',
    '------------------------  -----  --------  -------  ----------  ---------------',
  ];
  const usPerOp = (x: { ops: number; seconds: number }): number => (x.ops > 0 ? (x.seconds * 1e6) / x.ops : 0);
  const base = mean(r.runs.filter((x) => x.variant === baseline).map(usPerOp));
  const rounds = new Map<string, number>();
  for (const x of r.runs) {
    rounds.set(x.variant, (rounds.get(x.variant) ?? 0) + 1);
    lines.push([x.variant.padEnd(24), pad(String(rounds.get(x.variant)), 5), pad(String(x.ops), 8), pad(usPerOp(x).toFixed(2), 7), pad(Math.round(x.ops / Math.max(1e-9, x.seconds)).toLocaleString('en-US'), 10), pad(ratio(usPerOp(x), base), 15)].join('  '));
  }
  for (const v of new Set(r.runs.map((x) => x.variant))) {
    const us = r.runs.filter((x) => x.variant === v).map(usPerOp);
    lines.push(`${v}: mean ${mean(us).toFixed(2)} us/op (${Math.round(1e6 / Math.max(1e-9, mean(us))).toLocaleString('en-US')} ops/s), x baseline ${ratio(mean(us), base)}${noisy(us, 0.2)}`);
  }
  lines.push(`hand-written node:crypto signature equals smithy's: ${r.handMatchesSmithy ? 'yes' : 'NO'}${r.timedOut ? '; stopped at the deadline' : ''}`);
  return `${lines.join('\n')}\n`;
}
