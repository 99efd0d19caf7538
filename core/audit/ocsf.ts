/**
 * OCSF event construction shared by every component. Gatehouse pins one OCSF release and fills the base event,
 * metadata and the security-control fields (allow/deny) the same way everywhere; components add their class's
 * own objects. See docs/reference/audit-events.md.
 */
// Pinned: 1.4.0 is the first release where the security_control profile (action, disposition, policy) is on
// every class, Authentication and API Activity included. See docs/reference/audit-events.md.
export const OCSF_VERSION = '1.4.0';
export const PRODUCT = { name: 'Gatehouse', vendor_name: 'Gatehouse', version: '0.1.0' } as const;

export const OCSF_CLASS = {
  authentication: { class_uid: 3002, class_name: 'Authentication', category_uid: 3, category_name: 'Identity & Access Management' },
  network_activity: { class_uid: 4001, class_name: 'Network Activity', category_uid: 4, category_name: 'Network Activity' },
  http_activity: { class_uid: 4002, class_name: 'HTTP Activity', category_uid: 4, category_name: 'Network Activity' },
  api_activity: { class_uid: 6003, class_name: 'API Activity', category_uid: 6, category_name: 'Application Activity' },
} as const;
export type OcsfClass = (typeof OCSF_CLASS)[keyof typeof OCSF_CLASS];

export interface Activity {
  readonly id: number;
  readonly name: string;
}

/** What every Gatehouse event records about the decision it documents. */
export interface DecisionOutcome {
  readonly allow: boolean;
  /** A reason code from the closed vocabulary (core/errors/reasons.ts). */
  readonly reason: string;
  readonly ruleId?: string;
  readonly mode?: 'enforce' | 'report';
  readonly enforceWouldDeny?: boolean;
}

export interface EventHeader {
  readonly component: string;
  /** Ties the event to the response the client saw (X-Gatehouse-Correlation-Id) and to log lines. */
  readonly correlationId: string;
  readonly policyVersion: string;
  /** When the decision was made (epoch ms). */
  readonly time: number;
  readonly tenant?: string;
}

// OCSF severity_id: 1 Informational, 2 Low, 3 Medium, 4 High.
const HIGH_SIGNAL = new Set(['ip_denied_metadata', 'ip_denied_self', 'session_revoked', 'host_mismatch']);
const severity = (o: DecisionOutcome): { severity_id: number; severity: string } =>
  o.allow ? { severity_id: 1, severity: 'Informational' } : HIGH_SIGNAL.has(o.reason) ? { severity_id: 3, severity: 'Medium' } : { severity_id: 2, severity: 'Low' };

/**
 * Build an OCSF event. `body` holds the class-specific objects (endpoints, http_request, api, ...); the base
 * attributes, metadata and security-control profile come from here so every component spells them the same.
 */
export function ocsfEvent(cls: OcsfClass, activity: Activity, header: EventHeader, outcome: DecisionOutcome, body: Record<string, unknown>): Record<string, unknown> {
  const gatehouse: Record<string, unknown> = { reason: outcome.reason };
  if (outcome.ruleId) gatehouse['rule_id'] = outcome.ruleId;
  if (outcome.mode) gatehouse['mode'] = outcome.mode;
  if (outcome.enforceWouldDeny) gatehouse['enforce_would_deny'] = true;
  const extra = body['unmapped'] as Record<string, unknown> | undefined;
  return {
    ...cls,
    activity_id: activity.id,
    activity_name: activity.name,
    type_uid: cls.class_uid * 100 + activity.id,
    type_name: `${cls.class_name}: ${activity.name}`,
    time: header.time,
    ...severity(outcome),
    // security_control profile: the decision lives here, not in activity_id.
    action_id: outcome.allow ? 1 : 2,
    action: outcome.allow ? 'Allowed' : 'Denied',
    disposition_id: outcome.allow ? 1 : 2,
    disposition: outcome.allow ? 'Allowed' : 'Blocked',
    status_id: outcome.allow ? 1 : 2,
    status: outcome.allow ? 'Success' : 'Failure',
    status_detail: outcome.reason,
    metadata: {
      version: OCSF_VERSION,
      profiles: ['security_control'],
      product: { ...PRODUCT, feature: { name: header.component } },
      uid: header.correlationId,
      correlation_uid: header.correlationId,
      log_name: 'gatehouse-audit',
      ...(header.tenant ? { tenant_uid: header.tenant } : {}),
    },
    policy: { name: 'gatehouse-policy', version: header.policyVersion, ...(outcome.ruleId ? { uid: outcome.ruleId } : {}) },
    ...body,
    unmapped: { ...extra, gatehouse: { ...(extra?.['gatehouse'] as object | undefined), ...gatehouse } },
  };
}
