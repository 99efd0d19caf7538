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
  /**
   * Strict durability splits an allowed connection in two: the `decision` event, on disk before anything is
   * relayed, and the `end` event with bytes and duration. Absent (batched mode): one event, at the end.
   */
  readonly phase?: 'decision' | 'end';
}

const endpoint = (ip: string | undefined, port: number | undefined): Record<string, unknown> => {
  const e: Record<string, unknown> = {};
  if (ip !== undefined) e['ip'] = ip.startsWith('::ffff:') ? ip.slice(7) : ip;
  if (port !== undefined) e['port'] = port;
  return e;
};

const SESSION_USER_TYPE = { type_id: 99, type: 'Sandbox session' } as const;

/**
 * The one audit event for one egress decision. Never a header value, a body, a query string or a token: the
 * session is identified by its id and the token by its `jti`. Plain assignments: this runs per request.
 */
export function egressEvent(input: EgressEventInput): Record<string, unknown> {
  const { facts } = input;
  const claims = facts.claims;
  const target = facts.target;
  const decision = facts.decision;
  const header = { component: 'egress', correlationId: input.correlationId, policyVersion: facts.policy.version, time: input.startTime, tenant: claims?.tenant };
  const outcome = { allow: input.allow, reason: input.reason, ruleId: decision?.ruleId, mode: decision?.mode, enforceWouldDeny: decision?.enforceWouldDeny };

  // Session, tenant and token id live in their OCSF places (actor.session, metadata.tenant_uid); only what OCSF
  // has no place for goes here.
  const gatehouse: Record<string, unknown> = { kind: input.kind };
  if (facts.authDetail) gatehouse['auth_detail'] = facts.authDetail;
  if (input.endReason) gatehouse['end_reason'] = input.endReason;
  if (input.phase) gatehouse['phase'] = input.phase;
  // Report mode let a would-be deny through and then something else refused it (the address guard, a limit):
  // keep the reason the rules would have given, which status_detail no longer carries.
  if (decision?.enforceWouldDeny && decision.reason !== input.reason) gatehouse['would_deny_reason'] = decision.reason;
  if (input.kind === 'upgrade') gatehouse['upgrade'] = true;

  const body: Record<string, unknown> = { src_endpoint: endpoint(input.client.ip, input.client.port) };
  const dst: Record<string, unknown> = {};
  if (target) {
    if (target.host.kind === 'name') dst['hostname'] = target.host.host;
    else dst['ip'] = target.host.host;
    dst['port'] = target.port;
  }
  if (facts.address) dst['ip'] = formatIp(facts.address);
  body['dst_endpoint'] = dst;
  if (claims) {
    body['actor'] = { session: { uid: claims.sub, credential_uid: claims.jti, expiration_time: claims.exp * 1000, issuer: claims.iss } };
  }
  body['end_time'] = input.endTime;
  body['duration'] = Math.max(0, input.endTime - input.startTime);
  if (input.bytesUp !== undefined || input.bytesDown !== undefined) {
    const up = input.bytesUp ?? 0;
    const down = input.bytesDown ?? 0;
    body['traffic'] = { bytes_out: up, bytes_in: down, bytes: up + down };
  }
  body['unmapped'] = { gatehouse };

  if (AUTH_REASONS.has(input.reason)) {
    body['user'] = claims ? { uid: claims.sub, ...SESSION_USER_TYPE } : { name: 'unknown', type_id: 0, type: 'Unknown' };
    body['service'] = { name: 'gatehouse-egress' };
    body['auth_protocol_id'] = 99;
    body['auth_protocol'] = 'gatehouse-token';
    return ocsfEvent(OCSF_CLASS.authentication, LOGON, header, outcome, body);
  }
  if (input.kind === 'http' || input.kind === 'upgrade') {
    const method = input.http?.method ?? 'GET';
    // The path without its query: query strings carry API keys often enough that they are never recorded.
    const path = input.http?.path;
    const url: Record<string, unknown> = { scheme: 'http', path: path ? (path.includes('?') ? path.slice(0, path.indexOf('?')) : path) : '/' };
    if (target) {
      url['hostname'] = target.host.host;
      url['port'] = target.port;
    }
    body['http_request'] = { http_method: method, url };
    if (input.http?.status) body['http_response'] = { code: input.http.status };
    return ocsfEvent(OCSF_CLASS.http_activity, httpActivity(method), header, outcome, body);
  }
  // CONNECT tunnels and traffic refused before it became a request.
  return ocsfEvent(OCSF_CLASS.network_activity, input.allow ? CLOSE : REFUSE, header, outcome, body);
}

const LOGON: Activity = { id: 1, name: 'Logon' };
const CLOSE: Activity = { id: 2, name: 'Close' };
const REFUSE: Activity = { id: 5, name: 'Refuse' };
