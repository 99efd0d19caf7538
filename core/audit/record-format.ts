import { hash } from 'node:crypto';

/** The components that write audit events. Each has its own sequence and hash chain. */
export const AUDIT_SOURCES = ['egress', 'broker', 'gateway', 'sds', 'control'] as const;
export type AuditSource = (typeof AUDIT_SOURCES)[number];

export const GENESIS_HASH = '0'.repeat(64);

/** One line of the audit log. `prev` is the SHA-256 (hex) of the previous line's exact bytes in this source. */
export interface AuditRecord<E = Record<string, unknown>> {
  readonly v: 1;
  readonly source: AuditSource;
  readonly seq: number;
  readonly prev: string;
  readonly event: E;
}

// One-shot hashing (crypto.hash): no Hash object per record.
export const hashLine = (line: string | Buffer): string => hash('sha256', line, 'hex');

export const segmentName = (firstSeq: number): string => `${String(firstSeq).padStart(12, '0')}.jsonl`;
export const SEGMENT_FILE = /^(\d{12})\.jsonl$/;

/**
 * A record line from an event already serialised as JSON. Byte-identical to JSON.stringify of the AuditRecord
 * (same key order), so readers can JSON.parse it and verifiers hash exactly what was written.
 */
export const composeLine = (source: AuditSource, seq: number, prev: string, eventJson: string): string => `${linePrefix(source, seq, prev)}${eventJson}}`;

/** What precedes the event's JSON in a record line (ASCII). The line is this, the event JSON, then `}`. */
export const linePrefix = (source: AuditSource, seq: number, prev: string): string => `{"v":1,"source":"${source}","seq":${seq},"prev":"${prev}","event":`;
