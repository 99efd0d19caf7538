import { eventFacts, type FoundRecord } from '../core/audit/log-query.js';
import { OCSF_NAMES } from '../core/audit/ocsf.js';

type Event = Record<string, unknown>;
const obj = (v: unknown): Event => (v !== null && typeof v === 'object' ? (v as Event) : {});
const str = (v: unknown): string => (typeof v === 'string' || typeof v === 'number' ? String(v) : '');

const endpoint = (e: Event): string => {
  const host = str(e['hostname']) || str(e['ip']);
  const port = str(e['port']);
  const shown = host.includes(':') ? `[${host}]` : host;
  return port ? `${shown}:${port}` : shown;
};

/** One line saying what happened, in the words of the event's OCSF class. Ids only, never a secret (none is in the event). */
export function summarize(event: Event): string {
  const gatehouse = obj(obj(event['unmapped'])['gatehouse']);
  const dst = obj(event['dst_endpoint']);
  const ip = str(dst['ip']);
  const dialled = ip && str(dst['hostname']) ? ` (${ip})` : '';
  switch (event['class_uid']) {
    case 4002: {
      const req = obj(event['http_request']);
      const url = obj(req['url']);
      const code = str(obj(event['http_response'])['code']);
      const host = str(url['hostname']);
      const target = host ? `${host.includes(':') ? `[${host}]` : host}${url['port'] ? `:${str(url['port'])}` : ''}` : '';
      return `${str(req['http_method'])} ${target}${str(url['path'])}${code ? ` -> ${code}` : ''}${dialled}${gatehouse['upgrade'] ? ' upgrade' : ''}${traffic(event)}`;
    }
    case 4001: {
      const kind = str(gatehouse['kind']);
      const what = kind === 'connect' ? 'CONNECT' : kind === 'refused' ? 'refused' : kind;
      return `${what} ${endpoint(dst)}${dialled}${traffic(event)}${gatehouse['end_reason'] ? ` ${str(gatehouse['end_reason'])}` : ''}`.trim();
    }
    case 3002: {
      const who = obj(event['user']);
      const service = str(obj(event['service'])['name']);
      return `${service} logon${who['uid'] ? ` as session ${str(who['uid'])}` : ''}${gatehouse['auth_detail'] ? ` (${str(gatehouse['auth_detail'])})` : ''}${endpoint(dst) ? ` to ${endpoint(dst)}` : ''}`;
    }
    case 6003: {
      const api = obj(event['api']);
      const code = str(obj(api['response'])['code']);
      const src = obj(event['src_endpoint']);
      const by = str(obj(obj(event['actor'])['user'])['name']) || str(obj(event['actor'])['app_name']);
      const details = Object.entries(gatehouse)
        .filter(([k, v]) => k !== 'mode' && k !== 'upstream' && (typeof v === 'string' || typeof v === 'number'))
        .map(([k, v]) => `${k}=${String(v)}`)
        .join(' ');
      const files = Array.isArray(event['resources']) ? (event['resources'] as Event[]).map((r) => str(r['name'])).join(' -> ') : '';
      const upstream = str(gatehouse['upstream']) ? `${str(gatehouse['upstream'])}${str(obj(obj(event['http_request'])['url'])['path'])}` : '';
      const target = [files, upstream].filter((t) => t).join(' ');
      return `${str(api['operation'])}${target ? ` ${target}` : ''}${code ? ` -> ${code}` : ''}${by ? ` by ${by}${str(src['ip']) ? ` ${str(src['ip'])}` : ''}` : ''}${traffic(event)}${details ? `  ${details}` : ''}`;
    }
    default:
      return OCSF_NAMES.class[event['class_uid'] as number] ?? `class ${str(event['class_uid'])}`;
  }
}

function traffic(event: Event): string {
  const t = obj(event['traffic']);
  if (t['bytes_out'] === undefined) return '';
  return `  out ${str(t['bytes_out'])} B, in ${str(t['bytes_in'])} B, ${str(event['duration'])} ms`;
}

const HEADERS = ['TIME', 'SOURCE', 'SEQ', 'DECISION', 'REASON', 'TENANT', 'SESSION', 'WHAT'] as const;

export function row(r: FoundRecord): string[] {
  const event = r.record.event;
  const f = eventFacts(event);
  const report = obj(obj(event['unmapped'])['gatehouse'])['enforce_would_deny'] === true;
  return [
    new Date(f.time).toISOString(),
    r.source,
    String(r.seq),
    // Report mode: allowed, but enforcing would have denied it. Marked so a reviewer does not miss it.
    f.allow ? (report ? 'ALLOW*' : 'ALLOW') : 'DENY',
    f.reason,
    f.tenant ?? '-',
    f.session ?? '-',
    summarize(event),
  ];
}

/** A table whose columns fit what it holds; rows printed later (--follow) reuse its widths. */
export class Table {
  private readonly widths: number[];

  constructor(rows: readonly string[][]) {
    // Room for a typical follow-up row too, so a followed stream stays roughly aligned with the tail above it.
    const floor = [24, 7, 6, 8, 16, 8, 8];
    this.widths = HEADERS.map((h, i) => Math.max(h.length, floor[i] ?? 0, ...rows.map((r) => (r[i] ?? '').length)));
  }

  header(): string {
    return this.format([...HEADERS]);
  }

  format(cells: readonly string[]): string {
    // The last column is free text: not padded.
    return cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(this.widths[i] as number))).join('  ');
  }
}

export const REPORT_MODE_NOTE = '* report mode: allowed, but enforcing the policy would have denied it';
