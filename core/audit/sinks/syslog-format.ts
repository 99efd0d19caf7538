import type { Checkpoint } from '../checkpoint.js';
import type { ShippedRecord } from './sink.js';

// RFC 5424 §6.2.1 facility codes. `security` is 13, "log audit".
export const FACILITY: Readonly<Record<string, number>> = {
  auth: 4,
  authpriv: 10,
  security: 13,
  local0: 16,
  local1: 17,
  local2: 18,
  local3: 19,
  local4: 20,
  local5: 21,
  local6: 22,
  local7: 23,
};

/** SD-ID for Gatehouse's structured data. 32473 is the enterprise number reserved for documentation (RFC 5612). */
export const SD_ID = 'gatehouse@32473';

// OCSF severity_id to syslog severity (RFC 5424 §6.2.1): allowed is informational, denied is notice, and the
// denials that look like attacks are warnings.
const SEVERITY: Readonly<Record<number, number>> = { 1: 6, 2: 5, 3: 4, 4: 3, 5: 2, 6: 1 };

/** RFC 5424 §6.3.3: inside PARAM-VALUE, '"', '\' and ']' are escaped with a backslash. */
const escapeParam = (value: string): string => value.replace(/[\\"\]]/g, (c) => `\\${c}`);

/** RFC 5424 §6.2: header fields are printable US-ASCII with length limits; anything else becomes NILVALUE. */
const headerField = (value: string, max: number): string => (/^[\x21-\x7e]+$/.test(value) ? value.slice(0, max) : '-');

function structuredData(id: string, params: ReadonlyArray<readonly [string, unknown]>): string {
  const parts = params.filter(([, v]) => v !== undefined && v !== null && v !== '').map(([k, v]) => `${k}="${escapeParam(String(v))}"`);
  return `[${[id, ...parts].join(' ')}]`;
}

type Obj = Record<string, unknown>;
const get = (o: unknown, ...path: string[]): unknown => path.reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Obj)[k] : undefined), o);

export interface SyslogHeader {
  readonly facility: number;
  readonly hostname: string;
  readonly procid: string;
}

/** One audit record as an RFC 5424 message: the key decision fields as structured data, the record as MSG. */
export function formatRecord(r: ShippedRecord, h: SyslogHeader): string {
  const e = r.record.event;
  const severity = SEVERITY[Number(get(e, 'severity_id'))] ?? 6;
  const time = typeof e['time'] === 'number' ? new Date(e['time']).toISOString() : '-';
  const sd = structuredData(SD_ID, [
    ['source', r.source],
    ['seq', r.seq],
    ['class', get(e, 'class_uid')],
    ['decision', get(e, 'action_id') === 1 ? 'allow' : 'deny'],
    ['reason', get(e, 'status_detail')],
    ['tenant', get(e, 'metadata', 'tenant_uid')],
    ['session', get(e, 'actor', 'session', 'uid')],
    ['rule', get(e, 'policy', 'uid')],
    ['policy', get(e, 'policy', 'version')],
  ]);
  return `<${h.facility * 8 + severity}>1 ${time} ${headerField(h.hostname, 255)} gatehouse ${headerField(h.procid, 128)} ${headerField(r.source, 32)} ${sd} ${r.line}`;
}

/** A signed checkpoint as an RFC 5424 message (MSGID "checkpoint"). */
export function formatCheckpoint(c: Checkpoint, h: SyslogHeader): string {
  const sd = structuredData('gatehouse-checkpoint@32473', [
    ['source', c.source],
    ['seq', c.seq],
    ['segment', c.segment],
    ['hash', c.hash],
  ]);
  return `<${h.facility * 8 + 6}>1 ${c.time} ${headerField(h.hostname, 255)} gatehouse ${headerField(h.procid, 128)} checkpoint ${sd} ${JSON.stringify(c)}`;
}

/** RFC 6587 §3.4.1 octet counting: MSG-LEN SP SYSLOG-MSG, where MSG-LEN counts the message's octets only. */
export const frame = (message: string): string => `${Buffer.byteLength(message)} ${message}`;
