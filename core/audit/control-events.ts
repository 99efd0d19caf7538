import { OCSF_CLASS, ocsfEvent, type DecisionOutcome } from './ocsf.js';

/** Who asked for a control-plane operation. */
export type ControlActor =
  | { readonly kind: 'admin'; readonly ip?: string; readonly port?: number }
  | { readonly kind: 'system'; readonly name: string };

export interface ControlEventInput {
  /** API operation name, e.g. CreateSession, RevokeSession, ReloadPolicy, RotateSigningKey. */
  readonly operation: string;
  /** OCSF API Activity: 1 Create, 2 Read, 3 Update, 4 Delete. */
  readonly activity: 1 | 2 | 3 | 4;
  readonly correlationId: string;
  readonly policyVersion: string;
  readonly time: number;
  readonly actor: ControlActor;
  readonly outcome: DecisionOutcome;
  readonly status?: number;
  readonly tenant?: string;
  /** Ids and versions only: never a token, key or credential. */
  readonly details?: Readonly<Record<string, unknown>>;
}

const ACTIVITY_NAMES = { 1: 'Create', 2: 'Read', 3: 'Update', 4: 'Delete' } as const;

/** An API Activity event for an admin API call or a system action such as a policy reload. */
export function controlEvent(input: ControlEventInput): Record<string, unknown> {
  const actor =
    input.actor.kind === 'admin'
      ? { user: { name: 'admin', type_id: 2, type: 'Admin' } }
      : { app_name: input.actor.name };
  const src = input.actor.kind === 'admin' ? { ...(input.actor.ip ? { ip: input.actor.ip } : {}), ...(input.actor.port ? { port: input.actor.port } : {}) } : { name: 'gatehouse' };
  return ocsfEvent(
    OCSF_CLASS.api_activity,
    { id: input.activity, name: ACTIVITY_NAMES[input.activity] },
    { component: 'control', correlationId: input.correlationId, policyVersion: input.policyVersion, time: input.time, ...(input.tenant ? { tenant: input.tenant } : {}) },
    input.outcome,
    {
      actor,
      api: { operation: input.operation, request: { uid: input.correlationId }, service: { name: 'gatehouse-admin' }, ...(input.status ? { response: { code: input.status } } : {}) },
      src_endpoint: src,
      unmapped: { gatehouse: { ...input.details } },
    },
  );
}

/** An Authentication event for a refused admin API credential. */
export function adminAuthFailureEvent(input: { correlationId: string; policyVersion: string; time: number; ip?: string; port?: number; reason: string }): Record<string, unknown> {
  return ocsfEvent(
    OCSF_CLASS.authentication,
    { id: 1, name: 'Logon' },
    { component: 'control', correlationId: input.correlationId, policyVersion: input.policyVersion, time: input.time },
    { allow: false, reason: input.reason },
    {
      user: { name: 'admin', type_id: 2, type: 'Admin' },
      service: { name: 'gatehouse-admin' },
      auth_protocol_id: 99,
      auth_protocol: 'Bearer admin token',
      src_endpoint: { ...(input.ip ? { ip: input.ip } : {}), ...(input.port ? { port: input.port } : {}) },
    },
  );
}
