import { parseAuthority } from '../netguard/canonical-host.js';
import { parseDuration } from '../util/duration.js';
import type { AuditSectionInput, SinkInput } from './audit-schema.js';
import { POLICY_DEFAULTS as D } from './defaults.js';
import type { PathItem, Problem } from './yaml-source.js';

export type SinkSettings = SinkInput & { readonly batchMax: number; readonly timeoutMs: number; readonly resendWindowMs: number };

/** The audit section, validated, with defaults applied and durations in milliseconds. */
export interface AuditSettings {
  readonly durability: 'batched' | 'strict';
  readonly flushIntervalMs: number;
  readonly segmentMaxBytes: number;
  readonly segmentMaxAgeMs: number;
  readonly checkpointIntervalMs: number;
  readonly retentionMs: number;
  readonly maxPendingBytes: number;
  readonly sinks: readonly SinkSettings[];
}

type Report = (path: readonly PathItem[], severity: Problem['severity'], code: string, message: string) => void;

const ms = (text: string | undefined, fallback: string): number => parseDuration(text ?? fallback) ?? (parseDuration(fallback) as number);

export function compileAudit(input: AuditSectionInput | undefined, report: Report): AuditSettings {
  const flushIntervalMs = ms(input?.flush_interval, D.audit.flushInterval);
  // The promise: batched events reach the disk at least every 100 ms.
  if (flushIntervalMs > 100) report(['audit', 'flush_interval'], 'error', 'out-of-range', `flush_interval ${input?.flush_interval} is above 100ms`);
  const names = new Set<string>();
  const sinks = (input?.sinks ?? []).map((sink, i): SinkSettings => {
    if (names.has(sink.name)) report(['audit', 'sinks', i, 'name'], 'error', 'duplicate-sink', `sink "${sink.name}" is defined more than once`);
    names.add(sink.name);
    if (sink.type === 'syslog' && !parseAuthority(sink.address, null)) {
      report(['audit', 'sinks', i, 'address'], 'error', 'invalid-address', `"${sink.address}" is not host:port`);
    }
    if (sink.type !== 'syslog' && sink.url.startsWith('http://') && !/^http:\/\/(127\.|\[::1\]|localhost[:/])/.test(sink.url)) {
      report(['audit', 'sinks', i, 'url'], 'warning', 'plaintext-sink', `${sink.name} sends audit events and its credential over plain http`);
    }
    if (sink.type === 'elasticsearch' && (sink.username === undefined) !== (sink.password === undefined)) {
      report(['audit', 'sinks', i], 'error', 'missing-key', 'username and password go together');
    }
    return {
      ...sink,
      batchMax: sink.batch_max ?? D.audit.sinks.batchMax,
      timeoutMs: ms(sink.timeout, D.audit.sinks.timeout),
      resendWindowMs: ms(sink.type === 'syslog' ? sink.resend_window : undefined, D.audit.sinks.resendWindow),
    };
  });
  return {
    durability: input?.durability ?? D.audit.durability,
    flushIntervalMs,
    segmentMaxBytes: input?.segment_max_bytes ?? D.audit.segmentMaxBytes,
    segmentMaxAgeMs: ms(input?.segment_max_age, D.audit.segmentMaxAge),
    checkpointIntervalMs: ms(input?.checkpoint_interval, D.audit.checkpointInterval),
    retentionMs: ms(input?.retention, D.audit.retention),
    maxPendingBytes: input?.max_pending_bytes ?? D.audit.maxPendingBytes,
    sinks,
  };
}
