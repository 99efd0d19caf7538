import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { listSegments } from './segment-store.js';
import { AUDIT_SOURCES, type AuditRecord, type AuditSource } from './record-format.js';

/** What `gatehouse audit tail` and `gatehouse audit query` select. Every field given must match. */
export interface AuditFilter {
  readonly sources?: readonly AuditSource[];
  readonly session?: string;
  readonly tenant?: string;
  readonly decision?: 'allow' | 'deny';
  /** Any of these reason codes (status_detail). */
  readonly reasons?: readonly string[];
  /** Event time bounds, epoch ms, inclusive. */
  readonly since?: number;
  readonly until?: number;
}

export interface FoundRecord {
  readonly source: AuditSource;
  readonly seq: number;
  readonly line: string;
  readonly record: AuditRecord;
}

type Event = Record<string, unknown>;
const obj = (v: unknown): Event | undefined => (v !== null && typeof v === 'object' ? (v as Event) : undefined);

/** The facts people filter by, read from where each event class keeps them (docs/reference/audit-events.md). */
export function eventFacts(event: Event): { time: number; session?: string; tenant?: string; allow: boolean; reason: string } {
  const actorSession = obj(obj(event['actor'])?.['session'])?.['uid'];
  const user = obj(event['user']);
  const gatehouse = obj(obj(event['unmapped'])?.['gatehouse']);
  // Egress events carry the session as actor.session; authentication failures as user.uid; admin operations on a
  // session (CreateSession, RevokeSession) in their details.
  const session = typeof actorSession === 'string' ? actorSession : user?.['type_id'] === 99 && typeof user['uid'] === 'string' ? user['uid'] : typeof gatehouse?.['session'] === 'string' ? gatehouse['session'] : undefined;
  const tenant = obj(event['metadata'])?.['tenant_uid'];
  return {
    time: typeof event['time'] === 'number' ? event['time'] : 0,
    ...(session !== undefined ? { session } : {}),
    ...(typeof tenant === 'string' ? { tenant } : {}),
    allow: event['disposition_id'] === 1,
    reason: typeof event['status_detail'] === 'string' ? event['status_detail'] : '',
  };
}

export function matches(record: AuditRecord, filter: AuditFilter): boolean {
  const f = eventFacts(record.event);
  if (filter.session !== undefined && f.session !== filter.session) return false;
  if (filter.tenant !== undefined && f.tenant !== filter.tenant) return false;
  if (filter.decision !== undefined && f.allow !== (filter.decision === 'allow')) return false;
  if (filter.reasons && filter.reasons.length > 0 && !filter.reasons.includes(f.reason)) return false;
  if (filter.since !== undefined && f.time < filter.since) return false;
  if (filter.until !== undefined && f.time > filter.until) return false;
  return true;
}

/** Cheap test on the raw line before parsing it: a session, tenant or reason filter must appear as a JSON string. */
function mayMatch(line: string, filter: AuditFilter): boolean {
  if (filter.session !== undefined && !line.includes(JSON.stringify(filter.session))) return false;
  if (filter.tenant !== undefined && !line.includes(JSON.stringify(filter.tenant))) return false;
  if (filter.reasons && filter.reasons.length > 0 && !filter.reasons.some((r) => line.includes(`"status_detail":${JSON.stringify(r)}`))) return false;
  return true;
}

/** Whole lines of one segment, with the ones that do not parse skipped (`audit verify` is what reports them). */
async function* segmentRecords(file: string, source: AuditSource, filter: AuditFilter): AsyncGenerator<FoundRecord> {
  const lines = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.length === 0 || !mayMatch(line, filter)) continue;
    let record: AuditRecord;
    try {
      record = JSON.parse(line) as AuditRecord;
    } catch {
      continue;
    }
    if (record.source !== source || obj(record.event) === undefined) continue;
    if (matches(record, filter)) yield { source, seq: record.seq, line, record };
  }
}

/**
 * One source's matching records in sequence order. A segment last written before `since` holds only earlier
 * events (an event's time is never after it was written), so it is skipped unread.
 */
export async function* sourceRecords(dir: string, source: AuditSource, filter: AuditFilter): AsyncGenerator<FoundRecord> {
  const sourceDir = join(dir, source);
  for (const name of await listSegments(sourceDir)) {
    const file = join(sourceDir, name);
    if (filter.since !== undefined) {
      const info = await stat(file).catch(() => null);
      if (!info || info.mtimeMs < filter.since) continue;
    }
    yield* segmentRecords(file, source, filter);
  }
}

const sourcesOf = (filter: AuditFilter): readonly AuditSource[] => filter.sources ?? AUDIT_SOURCES;
const order = (a: FoundRecord, b: FoundRecord): number =>
  eventFacts(a.record.event).time - eventFacts(b.record.event).time || AUDIT_SOURCES.indexOf(a.source) - AUDIT_SOURCES.indexOf(b.source) || a.seq - b.seq;

/**
 * Every matching record across sources, merged by event time (within a source, sequence order is kept: a
 * tunnel's event is written when it ends but carries the time it started). Streams: memory stays one record
 * per source whatever the log's size.
 */
export async function* queryLog(dir: string, filter: AuditFilter): AsyncGenerator<FoundRecord> {
  const streams = sourcesOf(filter).map((s) => sourceRecords(dir, s, filter));
  const heads: Array<FoundRecord | null> = await Promise.all(streams.map(async (s) => (await s.next()).value ?? null));
  for (;;) {
    let best = -1;
    for (let i = 0; i < heads.length; i++) {
      const h = heads[i];
      if (h && (best === -1 || order(h, heads[best] as FoundRecord) < 0)) best = i;
    }
    if (best === -1) return;
    yield heads[best] as FoundRecord;
    heads[best] = (await (streams[best] as AsyncGenerator<FoundRecord>).next()).value ?? null;
  }
}

/** The last `n` matching records across sources, oldest first. Reads newest segments first and stops early. */
export async function tailLog(dir: string, filter: AuditFilter, n: number): Promise<FoundRecord[]> {
  const found: FoundRecord[] = [];
  for (const source of sourcesOf(filter)) {
    const sourceDir = join(dir, source);
    const kept: FoundRecord[] = [];
    const segments = await listSegments(sourceDir);
    for (let i = segments.length - 1; i >= 0 && kept.length < n; i--) {
      const inSegment: FoundRecord[] = [];
      for await (const r of segmentRecords(join(sourceDir, segments[i] as string), source, filter)) {
        inSegment.push(r);
        if (inSegment.length >= 2 * n) inSegment.splice(0, inSegment.length - n); // amortised: keep the last n
      }
      kept.unshift(...inSegment.slice(Math.max(0, inSegment.length - (n - kept.length))));
    }
    found.push(...kept);
  }
  return found.sort(order).slice(-n);
}
