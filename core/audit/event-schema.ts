import { z } from 'zod';
import { GatehouseError } from '../errors/index.js';
import { isReason } from '../errors/reasons.js';
import { OCSF_CLASS, OCSF_VERSION } from './ocsf.js';

/**
 * What every event Gatehouse writes must satisfy: the OCSF 1.4.0 requirements for the classes it emits (base
 * event, metadata, class-required objects, at_least_one constraints, nested required fields) plus Gatehouse's
 * own invariants (a known reason code, the policy version). Checked before each event is written.
 */

const int = z.number().int();
const str = z.string().min(1);
const endpoint = z.looseObject({ ip: z.string().optional(), port: int.min(0).max(65535).optional(), hostname: z.string().optional(), name: z.string().optional() }).refine((e) => e.ip !== undefined || e.hostname !== undefined || e.name !== undefined, 'an endpoint needs ip, hostname or name');

const base = z.looseObject({
  class_uid: int,
  category_uid: int,
  activity_id: int,
  type_uid: int,
  severity_id: int.min(0).max(99),
  time: int.positive(),
  status_detail: str.refine(isReason, 'status_detail must be a Gatehouse reason code'),
  action_id: z.union([z.literal(1), z.literal(2)]),
  disposition_id: z.union([z.literal(1), z.literal(2)]),
  metadata: z.looseObject({
    version: z.literal(OCSF_VERSION),
    product: z.looseObject({ name: str, vendor_name: str, version: str }),
    uid: str,
  }),
  policy: z.looseObject({ name: str, version: z.string().regex(/^sha256:[0-9a-f]{16}$/) }),
  unmapped: z.looseObject({ gatehouse: z.looseObject({ reason: str }) }),
});

const user = z.looseObject({ name: z.string().optional(), uid: z.string().optional() }).refine((u) => u.name !== undefined || u.uid !== undefined, 'user needs name or uid');

const byClass: Readonly<Record<number, z.ZodType>> = {
  [OCSF_CLASS.network_activity.class_uid]: z
    .looseObject({ src_endpoint: endpoint.optional(), dst_endpoint: endpoint.optional(), connection_info: z.looseObject({ direction_id: int }).optional() })
    .refine((e) => e.src_endpoint !== undefined || e.dst_endpoint !== undefined, 'at_least_one of src_endpoint, dst_endpoint'),
  [OCSF_CLASS.http_activity.class_uid]: z
    .looseObject({
      src_endpoint: endpoint.optional(),
      dst_endpoint: endpoint.optional(),
      http_request: z.looseObject({ http_method: str, url: z.looseObject({ path: z.string() }) }).optional(),
      http_response: z.looseObject({ code: int }).optional(),
    })
    .refine((e) => e.src_endpoint !== undefined || e.dst_endpoint !== undefined, 'at_least_one of src_endpoint, dst_endpoint')
    .refine((e) => e.http_request !== undefined || e.http_response !== undefined, 'at_least_one of http_request, http_response'),
  [OCSF_CLASS.authentication.class_uid]: z
    .looseObject({ user, service: z.looseObject({ name: str }).optional(), dst_endpoint: z.looseObject({}).optional() })
    .refine((e) => e.service !== undefined || e.dst_endpoint !== undefined, 'at_least_one of service, dst_endpoint'),
  [OCSF_CLASS.api_activity.class_uid]: z.looseObject({
    actor: z.looseObject({ user: user.optional(), app_name: z.string().optional(), session: z.looseObject({}).optional() }).refine((a) => a.user !== undefined || a.app_name !== undefined || a.session !== undefined, 'actor needs user, session or app_name'),
    api: z.looseObject({ operation: str, request: z.looseObject({ uid: str }).optional() }),
    src_endpoint: endpoint,
  }),
};

/** Throws GH_ERR_AUDIT_INVALID_EVENT naming the first problem. An invalid event is a Gatehouse bug. */
export function validateEvent(event: Record<string, unknown>): void {
  const head = base.safeParse(event);
  const problem = (issues: readonly z.core.$ZodIssue[]): string => {
    const i = issues[0];
    return i ? `${i.path.join('.') || 'event'}: ${i.message}` : 'invalid';
  };
  if (!head.success) throw new GatehouseError('GH_ERR_AUDIT_INVALID_EVENT', { detail: problem(head.error.issues) });
  const e = head.data;
  if (e.class_uid !== e.category_uid * 1000 + (e.class_uid % 1000)) throw new GatehouseError('GH_ERR_AUDIT_INVALID_EVENT', { detail: 'class_uid does not match category_uid' });
  if (e.type_uid !== e.class_uid * 100 + e.activity_id) throw new GatehouseError('GH_ERR_AUDIT_INVALID_EVENT', { detail: 'type_uid is not class_uid * 100 + activity_id' });
  if ((e.action_id === 1) !== (e.disposition_id === 1)) throw new GatehouseError('GH_ERR_AUDIT_INVALID_EVENT', { detail: 'action and disposition disagree' });
  const schema = byClass[e.class_uid];
  if (!schema) throw new GatehouseError('GH_ERR_AUDIT_INVALID_EVENT', { detail: `class ${e.class_uid} is not one Gatehouse emits` });
  const body = schema.safeParse(event);
  if (!body.success) throw new GatehouseError('GH_ERR_AUDIT_INVALID_EVENT', { detail: problem(body.error.issues) });
}
