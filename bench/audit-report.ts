import type { AppendResult } from './audit-append.js';
import type { ShipResult, Transport } from './audit-ship.js';
import { ratio } from './report.js';

/** Tables for the audit benchmarks; every figure beside its same-run baseline, and the issue's targets checked. */
export const APPEND_TARGET_PER_SECOND = 50_000;
export const PROXY_MAX_COST = 0.1;

/** on: the audit log as `gatehouse up` runs it; off: events dropped; serialize: validated and serialised, then dropped. */
export type AuditVariant = 'on' | 'serialize' | 'off';

export interface ProxyRun {
  readonly variant: AuditVariant;
  readonly value: number;
  readonly p50: number;
  readonly p99: number;
  readonly errors: number;
  /** CPU time of the whole proxy process (every thread) per request, in microseconds. */
  readonly cpuUsPerOp: number;
  /** The same for the main thread alone (the data plane) and for the audit writer thread. */
  readonly mainUsPerOp: number;
  readonly writerUsPerOp: number;
  /** Wall time inside the writer's append per event, measured around each call on the data plane. */
  readonly appendUsPerEvent: number;
  /** Proxy CPU time over wall time of the run: near 1 when the proxy's core was the bottleneck. */
  readonly coreShare: number;
}

export interface ProxyMode {
  readonly name: string;
  readonly unit: string;
  readonly concurrency: number;
  readonly runs: readonly ProxyRun[];
}

const mean = (xs: readonly number[]): number => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
/** (max - min) / mean of repeated measurements of the same thing: how much the machine moved during the run. */
const spread = (xs: readonly number[]): number => (xs.length > 1 && mean(xs) > 0 ? (Math.max(...xs) - Math.min(...xs)) / mean(xs) : 0);
const noisy = (xs: readonly number[], limit: number): string => (spread(xs) > limit ? ` [NOISY: repeated runs differ by ${(spread(xs) * 100).toFixed(0)}%]` : '');
const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const pad = (s: string, n: number): string => s.padStart(n);

export function formatAppend(r: AppendResult, settings: { segmentMaxBytes: number; checkpointIntervalMs: number }): string {
  const lines = [
    `audit append: AuditLog.append of real egress events (${r.lineBytes.toFixed(0)} B per record), validated, SHA-256 chained,`,
    `rotated every ${settings.segmentMaxBytes / 1024 / 1024} MiB, checkpoint every ${settings.checkpointIntervalMs} ms, timed until written + fsynced + signed;`,
    'the whole process (caller and writer thread) pinned to one core. baseline: the same bytes, plain appends, fsync per segment.',
    'round    events  seconds   events/s  baseline/s  x baseline  main us/ev  writer us/ev  other us/ev  segments  checkpoints',
    '-----  --------  -------  ---------  ----------  ----------  ----------  ------------  -----------  --------  -----------',
  ];
  r.audit.forEach((a, i) => {
    const b = r.baseline[i];
    const other = a.processCpu - a.mainCpu - a.writerCpu;
    lines.push(
      [
        pad(String(i + 1), 5),
        pad(int(a.events), 8),
        pad(a.seconds.toFixed(2), 7),
        pad(int(a.perSecond), 9),
        pad(b ? int(b.perSecond) : '', 10),
        pad(b ? ratio(a.perSecond, b.perSecond) : '', 10),
        pad(((a.mainCpu * 1e6) / a.events).toFixed(1), 10),
        pad(((a.writerCpu * 1e6) / a.events).toFixed(1), 12),
        pad(((other * 1e6) / a.events).toFixed(1), 11),
        pad(String(a.segments), 8),
        pad(String(a.checkpoints), 11),
      ].join('  '),
    );
  });
  const rate = mean(r.audit.map((a) => a.perSecond));
  const writerRate = mean(r.audit.map((a) => a.events / Math.max(1e-9, a.writerCpu)));
  const pipelineRate = mean(r.audit.map((a) => a.events / Math.max(1e-9, a.processCpu)));
  const verdict = (v: number): string => (v >= APPEND_TARGET_PER_SECOND ? 'PASS' : 'MISS');
  lines.push(
    `mean ${int(rate)} events/s on one core (x baseline ${ratio(rate, mean(r.baseline.map((b) => b.perSecond)))}): target >= ${int(APPEND_TARGET_PER_SECOND)}/s ${verdict(rate)}` +
      noisy(r.audit.map((a) => a.perSecond), 0.1),
    `  per CPU-second of the process (what one whole core gives, whatever else the machine runs): ${int(pipelineRate)} events, ${verdict(pipelineRate)}`,
    `  per CPU-second of the writer thread alone (the caller on another core): ${int(writerRate)} events`,
    `  chain check of round 1: ${r.verified.ok ? 'ok' : `BROKEN (${r.verified.problem ?? '?'})`}, ${int(r.verified.records)} records, ${r.verified.checkpoints} signed checkpoints`,
  );
  if (r.audit.some((a) => a.writerThreads !== 1)) lines.push('  note: the writer thread could not be told apart from other new threads; writer us/ev includes them');
  return `${lines.join('\n')}\n`;
}

export function formatShip(r: ShipResult): string {
  const lines = [
    `audit shipping to rsyslog: ${int(r.records)} records (${r.frameBytes.toFixed(0)} B RFC 5424 frames) from a written log until rsyslog's file has them all;`,
    'raw: the same frames, formatted beforehand, written over one socket to the same rsyslog (the receiver\'s ceiling in this run).',
    'transport  round  shipper rec/s  raw rec/s  x raw  shipper CPU us/rec  complete',
    '---------  -----  -------------  ---------  -----  ------------------  --------',
  ];
  for (const t of ['tcp', 'tls'] as Transport[]) {
    const result = r[t];
    if (!result) continue;
    result.shipper.forEach((s, i) => {
      const raw = result.raw[i];
      lines.push(
        [
          t.padEnd(9),
          pad(String(i + 1), 5),
          pad(int(s.perSecond), 13),
          pad(raw ? int(raw.perSecond) : '', 9),
          pad(raw ? ratio(s.perSecond, raw.perSecond) : '', 5),
          pad(s.shipperCpu === null ? '' : ((s.shipperCpu * 1e6) / Math.max(1, s.records)).toFixed(1), 18),
          pad(s.complete && (raw?.complete ?? true) ? 'yes' : 'NO', 8),
        ].join('  '),
      );
    });
    const s = mean(result.shipper.map((x) => x.perSecond));
    const raw = mean(result.raw.map((x) => x.perSecond));
    lines.push(`${t}: mean ${int(s)} records/s shipped, x raw ${ratio(s, raw)}`);
  }
  return `${lines.join('\n')}\n`;
}

export function formatProxy(modes: readonly ProxyMode[], seconds: number): string {
  const lines = [
    `egress proxy with auditing on vs off (same wiring as gatehouse up; off: a writer that drops events; serialize: validate and`,
    `JSON.stringify each event as AuditLog.append does, then drop it), ${seconds} s per run, ABBA order, proxy pinned to one core.`,
    'core: proxy CPU / wall time (below ~0.9 the proxy was not the bottleneck). us/op: CPU per request of the whole proxy,',
    'its main thread and the audit writer thread. append: time inside append per event, measured on the data plane.',
    'mode                         c  run  audit          value   p50 ms   p99 ms  errors  core  us/op   main  writer  append',
    '---------------------------  --  ---  ---------  ---------  -------  -------  ------  ----  -----  -----  ------  ------',
  ];
  const summary: string[] = [];
  for (const m of modes) {
    m.runs.forEach((r, i) =>
      lines.push(
        [
          m.name.padEnd(27),
          pad(String(m.concurrency), 2),
          pad(String(i + 1), 3),
          r.variant.padEnd(9),
          pad(int(r.value), 9),
          pad(r.p50.toFixed(2), 7),
          pad(r.p99.toFixed(2), 7),
          pad(String(r.errors), 6),
          pad(r.coreShare.toFixed(2), 4),
          pad(r.cpuUsPerOp.toFixed(1), 5),
          pad(r.mainUsPerOp.toFixed(1), 5),
          pad(r.variant === 'on' ? r.writerUsPerOp.toFixed(1) : '', 6),
          pad(r.appendUsPerEvent.toFixed(2), 6),
        ].join('  '),
      ),
    );
    const of = (v: AuditVariant, f: (r: ProxyRun) => number): number => mean(m.runs.filter((r) => r.variant === v).map(f));
    const [vOn, vOff] = [of('on', (r) => r.value), of('off', (r) => r.value)];
    const cost = vOff > 0 ? 1 - vOn / vOff : 0;
    const [cOn, cSer, cOff] = [of('on', (r) => r.cpuUsPerOp), of('serialize', (r) => r.cpuUsPerOp), of('off', (r) => r.cpuUsPerOp)];
    const [mOn, mOff] = [of('on', (r) => r.mainUsPerOp), of('off', (r) => r.mainUsPerOp)];
    const [aOn, aSer, aOff] = [of('on', (r) => r.appendUsPerEvent), of('serialize', (r) => r.appendUsPerEvent), of('off', (r) => r.appendUsPerEvent)];
    const cpuCost = cOn > 0 ? 1 - cOff / cOn : 0;
    const share = (us: number): string => `${us >= 0 ? '+' : ''}${us.toFixed(1)} us (${cOff > 0 ? ((100 * us) / cOff).toFixed(1) : '?'}%)`;
    summary.push(
      `${m.name} (c=${m.concurrency}): on ${int(vOn)} ${m.unit}, off ${int(vOff)} ${m.unit}, x off ${ratio(vOn, vOff)}: ` +
        `throughput cost ${(cost * 100).toFixed(1)}% (target <= ${PROXY_MAX_COST * 100}%: ${cost <= PROXY_MAX_COST ? 'PASS' : 'MISS'})` +
        noisy([...m.runs.filter((r) => r.variant === 'on').map((r) => r.value / vOn), ...m.runs.filter((r) => r.variant === 'off').map((r) => r.value / vOff)], PROXY_MAX_COST),
      `  cost implied by CPU per request (throughput on one busy core is 1/CPU): ${(cpuCost * 100).toFixed(1)}% (${cpuCost <= PROXY_MAX_COST ? 'PASS' : 'MISS'})`,
      `  CPU per request: off ${cOff.toFixed(1)} us, on ${share(cOn - cOff)} [main thread ${share(mOn - mOff)}, other threads ${share(cOn - mOn - (cOff - mOff))}];` +
        ` validate + serialise alone ${share(cSer - cOff)}, hand-off + writer ${share(cOn - cSer)}`,
      `  inside append, per event on the data plane (wall time): on ${aOn.toFixed(2)} us, serialize ${aSer.toFixed(2)} us, off ${aOff.toFixed(2)} us (the clock reads themselves);` +
        ` writer thread ${of('on', (r) => r.writerUsPerOp).toFixed(1)} us per request`,
    );
  }
  return `${[...lines, ...summary].join('\n')}\n`;
}
