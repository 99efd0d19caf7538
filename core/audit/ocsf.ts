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
  readonly ruleId?: string | undefined;
  readonly mode?: 'enforce' | 'report' | undefined;
  readonly enforceWouldDeny?: boolean | undefined;
}

export interface EventHeader {
  readonly component: string;
  /** Ties the event to the response the client saw (X-Gatehouse-Correlation-Id) and to log lines. */
  readonly correlationId: string;
  readonly policyVersion: string;
  /** When the decision was made (epoch ms). */
  readonly time: number;
  readonly tenant?: string | undefined;
}

// OCSF severity_id: 1 Informational (allowed), 2 Low (denied), 3 Medium (denied, and the shape of an attack).
const HIGH_SIGNAL = new Set(['ip_denied_metadata', 'ip_denied_self', 'session_revoked', 'host_mismatch']);

const products = new Map<string, Record<string, unknown>>();
const productFor = (component: string): Record<string, unknown> => {
  let product = products.get(component);
  if (!product) {
    product = Object.freeze({ ...PRODUCT, feature: Object.freeze({ name: component }) });
    products.set(component, product);
  }
  return product;
};
const PROFILES = Object.freeze(['security_control']);

/**
 * Build an OCSF event. `body` holds the class-specific objects (endpoints, http_request, api, ...); the base
 * attributes, metadata and security-control profile come from here so every component spells them the same.
 *
 * Compact on purpose: one of these is written per proxied request. Ids are written, their optional captions
 * (class_name, activity_name, ...) are not: every OCSF consumer maps ids, and `gatehouse audit` prints names.
 * Nothing is written twice (the rule id is policy.uid, the reason is status_detail).
 */
export function ocsfEvent(cls: OcsfClass, activity: Activity, header: EventHeader, outcome: DecisionOutcome, body: Record<string, unknown>): Record<string, unknown> {
  const allow = outcome.allow;
  const metadata: Record<string, unknown> = { version: OCSF_VERSION, profiles: PROFILES, product: productFor(header.component), uid: header.correlationId };
  if (header.tenant) metadata['tenant_uid'] = header.tenant;
  const policy: Record<string, unknown> = { name: 'gatehouse', version: header.policyVersion };
  if (outcome.ruleId) policy['uid'] = outcome.ruleId;
  const event: Record<string, unknown> = {
    class_uid: cls.class_uid,
    category_uid: cls.category_uid,
    activity_id: activity.id,
    type_uid: cls.class_uid * 100 + activity.id,
    time: header.time,
    severity_id: allow ? 1 : HIGH_SIGNAL.has(outcome.reason) ? 3 : 2,
    // security_control profile: the decision lives here, not in activity_id.
    action_id: allow ? 1 : 2,
    disposition_id: allow ? 1 : 2,
    status_id: allow ? 1 : 2,
    status_detail: outcome.reason,
    metadata,
    policy,
  };
  // OCSF carries other names for a few activities (HTTP methods outside its enum): keep those captions.
  if (activity.id === 99) event['activity_name'] = activity.name;
  for (const key in body) if (key !== 'unmapped') event[key] = body[key];
  const gatehouse = (body['unmapped'] as { gatehouse?: Record<string, unknown> } | undefined)?.gatehouse ?? {};
  if (outcome.mode) gatehouse['mode'] = outcome.mode;
  if (outcome.enforceWouldDeny) gatehouse['enforce_would_deny'] = true;
  event['unmapped'] = { gatehouse };
  return event;
}

/** Display names for the ids Gatehouse writes (for people reading events; not written to the log). */
export const OCSF_NAMES = {
  class: { 3002: 'Authentication', 4001: 'Network Activity', 4002: 'HTTP Activity', 6003: 'API Activity' } as Readonly<Record<number, string>>,
  disposition: { 1: 'Allowed', 2: 'Blocked' } as Readonly<Record<number, string>>,
  severity: { 1: 'Informational', 2: 'Low', 3: 'Medium', 4: 'High' } as Readonly<Record<number, string>>,
};
