import { readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { matches, queryLog, tailLog, type AuditFilter, type FoundRecord } from '../core/audit/log-query.js';
import { AUDIT_SOURCES, type AuditSource } from '../core/audit/record-format.js';
import { LogReader } from '../core/audit/shipper/log-reader.js';
import type { SinkStats } from '../core/audit/shipper.js';
import { verifyAuditDir } from '../core/audit/verify-chain.js';
import { GatehouseError, isGatehouseError, isReason } from '../core/errors/index.js';
import { parseDuration } from '../core/util/duration.js';
import { callAdmin } from './admin-client.js';
import { REPORT_MODE_NOTE, row, Table } from './audit-format.js';
import type { RuntimeConfig } from './runtime-config.js';

type Flags = Readonly<Record<string, string | boolean | string[] | undefined>>;
type Out = (s: string) => void;

const usage = (detail: string): GatehouseError => new GatehouseError('GH_ERR_USAGE', { detail });
const auditDir = (dirArg: string | undefined, config: RuntimeConfig): string => (dirArg ? resolve(dirArg) : join(config.stateDir, 'audit'));
const list = (v: string | boolean | string[] | undefined): string[] => (Array.isArray(v) ? v : typeof v === 'string' ? [v] : []);

/** `gatehouse audit verify [DIR]`: exit 0 when every chain is intact, 1 naming the first bad record. */
export async function auditVerify(dirArg: string | undefined, json: boolean, config: RuntimeConfig, out: Out): Promise<number> {
  const dir = auditDir(dirArg, config);
  const report = await verifyAuditDir(dir);
  if (json) {
    out(JSON.stringify(report, null, 2));
    return report.ok ? 0 : 1;
  }
  for (const s of report.sources) {
    const range = s.records > 0 ? `seq ${s.firstSeq}-${s.lastSeq}` : 'empty';
    const pruned = s.pruned ? ', older records removed by retention' : '';
    out(`${s.source.padEnd(8)} ${String(s.records).padStart(8)} records  ${range}  ${s.checkpoints} checkpoint(s)${pruned}`);
  }
  if (report.firstProblem) {
    const p = report.firstProblem;
    out(`${p.source.padEnd(8)} TAMPERED: ${p.file}:${p.line} (seq ${p.seq ?? '?'}): ${p.problem}`);
    return 1;
  }
  out(`audit log ${dir}: every chain verifies`);
  return 0;
}

/** `--since`/`--until`: an RFC 3339 time, or a duration meaning that long ago (`15m`, `2h`, `7d`). */
function parseTime(text: string, flag: string, now: number): number {
  const ago = parseDuration(text);
  if (ago !== null) return now - ago;
  // A date alone is midnight UTC; anything else must name its zone, so the same command means the same everywhere.
  if (/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?$/.test(text)) {
    const t = Date.parse(text);
    if (!Number.isNaN(t)) return t;
  }
  throw usage(`${flag} must be an RFC 3339 time (2026-11-26T09:00:00Z) or a duration ago (15m, 2h, 7d), got "${text}"`);
}

/** The filter flags shared by `audit tail` and `audit query`, validated. */
export function filterFromFlags(flags: Flags, now: number = Date.now()): AuditFilter {
  const sources = list(flags['source']);
  for (const s of sources) if (!(AUDIT_SOURCES as readonly string[]).includes(s)) throw usage(`--source must be one of ${AUDIT_SOURCES.join(', ')}, got "${s}"`);
  const reasons = list(flags['reason']);
  for (const r of reasons) if (!isReason(r)) throw usage(`--reason "${r}" is not a reason code (see docs/reference/deny-reasons.md)`);
  const decision = flags['decision'];
  if (decision !== undefined && decision !== 'allow' && decision !== 'deny') throw usage('--decision must be allow or deny');
  const since = typeof flags['since'] === 'string' ? parseTime(flags['since'], '--since', now) : undefined;
  const until = typeof flags['until'] === 'string' ? parseTime(flags['until'], '--until', now) : undefined;
  if (since !== undefined && until !== undefined && since > until) throw usage('--since is after --until');
  return {
    ...(sources.length > 0 ? { sources: sources as AuditSource[] } : {}),
    ...(typeof flags['session'] === 'string' ? { session: flags['session'] } : {}),
    ...(typeof flags['tenant'] === 'string' ? { tenant: flags['tenant'] } : {}),
    ...(decision ? { decision } : {}),
    ...(reasons.length > 0 ? { reasons } : {}),
    ...(since !== undefined ? { since } : {}),
    ...(until !== undefined ? { until } : {}),
  };
}

function count(flags: Flags, flag: string, fallback: number): number {
  const v = flags[flag];
  if (v === undefined) return fallback;
  const n = typeof v === 'string' && /^\d{1,9}$/.test(v) ? Number(v) : NaN;
  if (!(n >= 1)) throw usage(`--${flag} must be a whole number of at least 1`);
  return n;
}

/** JSON lines carry the record as written (seq, prev, event), so a script sees what `audit verify` hashes. */
const jsonLine = (r: FoundRecord): string => r.line;

function printTable(records: readonly FoundRecord[], out: Out): Table {
  const rows = records.map(row);
  const table = new Table(rows);
  out(table.header());
  for (const r of rows) out(table.format(r));
  if (rows.some((r) => r[3] === 'ALLOW*')) out(REPORT_MODE_NOTE);
  return table;
}

/**
 * `gatehouse audit tail [DIR] [-n N] [--follow] [filters] [--json]`: the last N matching events, oldest first;
 * with --follow, then every new one as the writer appends it, until interrupted.
 */
export async function auditTail(dirArg: string | undefined, flags: Flags, config: RuntimeConfig, out: Out, signal?: AbortSignal): Promise<number> {
  const dir = auditDir(dirArg, config);
  const filter = filterFromFlags(flags);
  const n = count(flags, 'lines', 20);
  const json = flags['json'] === true;
  const heads = await Promise.all(AUDIT_SOURCES.map(async (s) => [s, await new LogReader(dir, s).headSeq()] as const));
  const last = await tailLog(dir, filter, n);
  let render: (r: FoundRecord) => string = jsonLine;
  if (json) for (const r of last) out(jsonLine(r));
  else {
    const table = printTable(last, out);
    render = (r) => table.format(row(r));
  }
  if (flags['follow'] !== true) return 0;
  await follow(dir, filter, new Map(heads), render, out, signal);
  return 0;
}

/** Poll each chain for records after the last one seen (file watching is unreliable across filesystems). */
async function follow(dir: string, filter: AuditFilter, after: Map<AuditSource, number>, render: (r: FoundRecord) => string, out: Out, signal?: AbortSignal): Promise<void> {
  const sources = filter.sources ?? AUDIT_SOURCES;
  const readers = new Map(sources.map((s) => [s, new LogReader(dir, s)]));
  try {
    while (!signal?.aborted) {
      let any = false;
      for (const [source, reader] of readers) {
        const batch = await reader.readAfter(after.get(source) ?? 0, 1000, 4 * 1024 * 1024);
        for (const r of batch) {
          after.set(source, r.seq);
          if (matches(r.record, filter)) out(render({ source, seq: r.seq, line: r.line, record: r.record }));
        }
        any ||= batch.length > 0;
      }
      if (!any) await new Promise<void>((done) => {
        const timer = setTimeout(done, 250);
        signal?.addEventListener('abort', () => (clearTimeout(timer), done()), { once: true });
      });
    }
  } finally {
    for (const r of readers.values()) await r.close();
  }
}

/** `gatehouse audit query [DIR] [filters] [--limit N] [--json]`: every matching event, in time order. */
export async function auditQuery(dirArg: string | undefined, flags: Flags, config: RuntimeConfig, out: Out): Promise<number> {
  const dir = auditDir(dirArg, config);
  const filter = filterFromFlags(flags);
  const limit = count(flags, 'limit', Number.MAX_SAFE_INTEGER);
  const json = flags['json'] === true;
  const found: FoundRecord[] = [];
  let n = 0;
  for await (const r of queryLog(dir, filter)) {
    if (json) out(jsonLine(r));
    else found.push(r);
    if (++n >= limit) break;
  }
  if (!json) {
    printTable(found, out);
    out(`${n} event(s)${n >= limit ? ` (stopped at --limit ${limit})` : ''}`);
  }
  return 0;
}

/** What the cursor files say when Gatehouse is not running: how far each sink had confirmed. */
async function sinksFromCursors(dir: string): Promise<Array<Pick<SinkStats, 'name' | 'lag'>>> {
  const cursorDir = join(dir, 'cursors');
  const files = (await readdir(cursorDir).catch(() => [] as string[])).filter((f) => f.endsWith('.json')).sort();
  const heads = new Map<AuditSource, number>();
  for (const s of AUDIT_SOURCES) heads.set(s, await new LogReader(dir, s).headSeq());
  const out: Array<Pick<SinkStats, 'name' | 'lag'>> = [];
  for (const f of files) {
    let confirmed: Record<string, number> = {};
    try {
      confirmed = (JSON.parse(await readFile(join(cursorDir, f), 'utf8')) as { confirmed?: Record<string, number> }).confirmed ?? {};
    } catch {
      // an unreadable cursor: shown as nothing confirmed, which is what the shipper will assume too
    }
    const lag: Record<string, number> = {};
    for (const s of AUDIT_SOURCES) lag[s] = Math.max(0, (heads.get(s) ?? 0) - (Number(confirmed[s]) || 0));
    out.push({ name: f.slice(0, -'.json'.length), lag });
  }
  return out;
}

const totalLag = (lag: Record<string, number>): number => Object.values(lag).reduce((a, b) => a + b, 0);

/**
 * `gatehouse audit sinks [--json]`: each sink's state from the running Gatehouse (GET /v1/audit/sinks); when it
 * is not running, what the cursor files on disk say.
 */
export async function auditSinks(flags: Flags, config: RuntimeConfig, out: Out, err: Out): Promise<number> {
  let sinks: readonly SinkStats[];
  try {
    sinks = ((await callAdmin(flags as Record<string, string | boolean | undefined>, config, 'GET', '/v1/audit/sinks')) as { sinks: SinkStats[] }).sinks;
  } catch (e) {
    if (!isGatehouseError(e) || e.code !== 'GH_ERR_ADMIN_UNREACHABLE') throw e;
    const offline = await sinksFromCursors(join(config.stateDir, 'audit'));
    if (flags['json'] === true) out(JSON.stringify({ running: false, sinks: offline }, null, 2));
    else {
      err(`gatehouse is not running (${e.message}); showing the delivery cursors in ${join(config.stateDir, 'audit', 'cursors')}`);
      const t = new SimpleTable(['SINK', 'LAG', ...AUDIT_SOURCES.map((s) => s.toUpperCase())]);
      for (const s of offline) t.add([s.name, String(totalLag(s.lag)), ...AUDIT_SOURCES.map((src) => String(s.lag[src] ?? 0))]);
      t.print(out);
    }
    return 0;
  }
  if (flags['json'] === true) {
    out(JSON.stringify({ running: true, sinks }, null, 2));
    return 0;
  }
  if (sinks.length === 0) {
    out('no audit sinks configured (the policy\'s audit.sinks is empty): events stay in the local log');
    return 0;
  }
  const t = new SimpleTable(['SINK', 'TYPE', 'STATE', 'LAG', 'DELIVERED', 'ERRORS', 'DEAD-LETTERED', 'LAST DELIVERY', 'LAST ERROR']);
  for (const s of sinks) {
    const state = s.state === 'backoff' && s.nextAttemptAt ? `backoff until ${s.nextAttemptAt}` : s.state;
    t.add([s.name, s.type, state, String(totalLag(s.lag)), String(s.delivered), String(s.errors), String(s.deadLettered), s.lastDeliveryAt ?? '-', s.lastError ?? '-']);
  }
  t.print(out);
  return sinks.some((s) => s.lastError !== null) ? 1 : 0;
}

class SimpleTable {
  private readonly rows: string[][] = [];
  constructor(private readonly headers: readonly string[]) {}
  add(cells: string[]): void {
    this.rows.push(cells);
  }
  print(out: Out): void {
    const all = [[...this.headers], ...this.rows];
    const widths = this.headers.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
    for (const r of all) out(r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] as number))).join('  '));
  }
}
