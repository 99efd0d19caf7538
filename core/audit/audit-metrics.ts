import { Counter, Gauge, type Registry } from 'prom-client';
import type { WriterStats } from './writer-protocol.js';

/** The audit writer's health on /metrics: events written, write errors, events dropped, bytes waiting. */
export function createAuditMetrics(registry: Registry) {
  const written = new Counter({ name: 'gatehouse_audit_events_written_total', help: 'Audit records written to the local log.', registers: [registry] });
  const bytes = new Counter({ name: 'gatehouse_audit_bytes_written_total', help: 'Bytes written to the local audit log.', registers: [registry] });
  const errors = new Counter({ name: 'gatehouse_audit_write_errors_total', help: 'Failed writes to the local audit log (events are kept and retried).', registers: [registry] });
  const dropped = new Counter({ name: 'gatehouse_audit_events_dropped_total', help: 'Events dropped because the disk refused writes past max_pending_bytes (batched mode).', registers: [registry] });
  const pending = new Gauge({ name: 'gatehouse_audit_pending_bytes', help: 'Audit bytes waiting for the disk.', registers: [registry] });
  const corrupt = new Gauge({ name: 'gatehouse_audit_corrupt_segments', help: 'Damaged audit segments found at start-up (left as evidence; run gatehouse audit verify).', registers: [registry] });
  const syncs = new Counter({ name: 'gatehouse_audit_fsyncs_total', help: 'fsyncs of audit segments (batched group commit and strict writes).', registers: [registry] });
  const head = new Gauge({ name: 'gatehouse_audit_chain_seq', help: 'Last sequence number per source chain.', labelNames: ['source'] as const, registers: [registry] });
  let last = { written: 0, bytes: 0, errors: 0, dropped: 0, syncs: 0 };
  return {
    update(stats: WriterStats): void {
      written.inc(stats.written - last.written);
      bytes.inc(stats.bytes - last.bytes);
      errors.inc(stats.errors - last.errors);
      dropped.inc(stats.dropped - last.dropped);
      syncs.inc(stats.syncs - last.syncs);
      last = { written: stats.written, bytes: stats.bytes, errors: stats.errors, dropped: stats.dropped, syncs: stats.syncs };
      pending.set(stats.pendingBytes);
      corrupt.set(stats.corruptSegments);
      for (const [source, h] of Object.entries(stats.heads)) head.labels(source).set(h.seq);
    },
  };
}
