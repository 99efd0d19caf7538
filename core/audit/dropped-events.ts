import { OCSF_CLASS, ocsfEvent } from './ocsf.js';

/**
 * The record the writer puts into a chain when it had to drop events (batched mode, disk refusing writes past
 * the memory bound): the loss is part of the trail, not only a metric.
 */
export function droppedEventsEvent(source: string, count: number, correlationId: string, policyVersion: string): Record<string, unknown> {
  return ocsfEvent(
    OCSF_CLASS.api_activity,
    { id: 99, name: 'Other' },
    { component: 'audit', correlationId, policyVersion, time: Date.now() },
    { allow: false, reason: 'audit_unavailable' },
    {
      actor: { app_name: 'gatehouse-audit-writer' },
      api: { operation: 'AuditEventsDropped', request: { uid: correlationId }, service: { name: 'gatehouse-audit' } },
      src_endpoint: { name: 'gatehouse' },
      unmapped: { gatehouse: { source, dropped: count } },
    },
  );
}
