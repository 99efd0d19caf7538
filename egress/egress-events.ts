import { OCSF_CLASS, ocsfEvent, type Activity } from '../core/audit/ocsf.js';
import type { Reason } from '../core/errors/index.js';
import { formatIp } from '../core/netguard/index.js';
import type { AdmissionFacts } from './admission.js';

const AUTH_REASONS: ReadonlySet<Reason> = new Set(['auth_missing', 'auth_invalid', 'token_expired', 'token_not_yet_valid', 'session_revoked']);

// OCSF 1.4.0 HTTP Activity: activity_id is the request method; others (PATCH included) are 99 with the method
// as activity_name.
const HTTP_ACTIVITY: Readonly<Record<string, number>> = { CONNECT: 1, DELETE: 2, GET: 3, HEAD: 4, OPTIONS: 5, POST: 6, PUT: 7, TRACE: 8 };
const httpActivity = (method: string): Activity => {
  const id = HTTP_ACTIVITY[method];
  const name = method.charAt(0) + method.slice(1).toLowerCase();
  return { id: id ?? 99, name };
};

export interface EgressEventInput {
  /** What the client asked for; `refused` is traffic that never became a request (malformed, timed out, over capacity). */
  readonly kind: 'http' | 'connect' | 'upgrade' | 'refused';
  readonly correlationId: string;
  readonly startTime: number;
  readonly endTime: number;
  readonly facts: AdmissionFacts;
  readonly allow: boolean;
  readonly reason: Reason;
  readonly client: { readonly ip: string | undefined; readonly port: number | undefined };
  readonly http?: { readonly method: string; readonly path?: string; readonly status?: number };
  readonly bytesUp?: number;
  readonly bytesDown?: number;
  /** How an allowed connection ended: completed, client_closed, upstream_error, idle_timeout, session_revoked, token_expired, shutdown. */
  readonly endReason?: string;
}

const endpoint = (ip: string | undefined, port: number | undefined): Record<string, unknown> => ({
  ...(ip !== undefined ? { ip: ip.startsWith('::ffff:') ? ip.slice(7) : ip } : {}),
  ...(port !== undefined ? { port } : {}),
});

/**
 * The one audit event for one egress decision. Never a header value, a body, a query string or a token: the
 * session is identified by its id and the token by its `jti`.
 */
export function egressEvent(input: EgressEventInput): Record<string, unknown> {
  const { facts } = input;
  const claims = facts.claims;
  const target = facts.target;
  const decision = facts.decision;
  const header = {
    component: 'egress',
    correlationId: input.correlationId,
    policyVersion: facts.policy.version,
    time: input.startTime,
    ...(claims ? { tenant: claims.tenant } : {}),
  };
  const outcome = {
    allow: input.allow,
    reason: input.reason,
    ...(decision?.ruleId ? { ruleId: decision.ruleId } : {}),
    ...(decision ? { mode: decision.mode } : {}),
    ...(decision?.enforceWouldDeny ? { enforceWouldDeny: true } : {}),
  };
  const gatehouse: Record<string, unknown> = { kind: input.kind };
  if (claims) Object.assign(gatehouse, { session: claims.sub, tenant: claims.tenant, jti: claims.jti });
  if (facts.authDetail) gatehouse['auth_detail'] = facts.authDetail;
  if (input.endReason) gatehouse['end_reason'] = input.endReason;

  const src = endpoint(input.client.ip, input.client.port);
  const dst: Record<string, unknown> = {};
  if (target) {
    if (target.host.kind === 'name') dst['hostname'] = target.host.host;
    else dst['ip'] = target.host.host;
    dst['port'] = target.port;
  }
  if (facts.address) dst['ip'] = formatIp(facts.address);
  const actor = claims
    ? { actor: { session: { uid: claims.sub, credential_uid: claims.jti, expiration_time: claims.exp * 1000, issuer: claims.iss }, user: { uid: claims.sub, type_id: 99, type: 'Sandbox session' } } }
    : {};
  const timing = { start_time: input.startTime, end_time: input.endTime, duration: Math.max(0, input.endTime - input.startTime) };
  const traffic =
    input.bytesUp !== undefined || input.bytesDown !== undefined
      ? { traffic: { bytes_out: input.bytesUp ?? 0, bytes_in: input.bytesDown ?? 0, bytes: (input.bytesUp ?? 0) + (input.bytesDown ?? 0) } }
      : {};

  if (AUTH_REASONS.has(input.reason)) {
    return ocsfEvent(OCSF_CLASS.authentication, { id: 1, name: 'Logon' }, header, outcome, {
      user: claims ? { uid: claims.sub, type_id: 99, type: 'Sandbox session' } : { name: 'unknown', type_id: 0, type: 'Unknown' },
      service: { name: 'gatehouse-egress' },
      auth_protocol_id: 99,
      auth_protocol: 'Gatehouse session token (EdDSA JWT)',
      src_endpoint: src,
      dst_endpoint: dst,
      ...actor,
      ...timing,
      unmapped: { gatehouse },
    });
  }
  if (input.kind === 'upgrade') gatehouse['upgrade'] = true;
  if (input.kind === 'http' || input.kind === 'upgrade') {
    const method = input.http?.method ?? 'GET';
    const url: Record<string, unknown> = { scheme: 'http' };
    if (target) Object.assign(url, { hostname: target.host.host, port: target.port });
    // The path without its query: query strings carry API keys often enough that they are never recorded.
    url['path'] = input.http?.path ? input.http.path.split('?')[0] : '/';
    return ocsfEvent(OCSF_CLASS.http_activity, httpActivity(method), header, outcome, {
      http_request: { http_method: method, url, version: '1.1' },
      ...(input.http?.status ? { http_response: { code: input.http.status } } : {}),
      src_endpoint: src,
      dst_endpoint: dst,
      connection_info: { protocol_name: 'tcp', direction_id: 2, direction: 'Outbound' },
      ...actor,
      ...traffic,
      ...timing,
      unmapped: { gatehouse },
    });
  }
  // CONNECT tunnels and traffic refused before it became a request.
  const activity: Activity = input.allow ? { id: 2, name: 'Close' } : { id: 5, name: 'Refuse' };
  return ocsfEvent(OCSF_CLASS.network_activity, activity, header, outcome, {
    src_endpoint: src,
    dst_endpoint: dst,
    connection_info: { protocol_name: 'tcp', direction_id: 2, direction: 'Outbound' },
    ...actor,
    ...traffic,
    ...timing,
    unmapped: { gatehouse },
  });
}
