import { OCSF_CLASS, ocsfEvent } from '../core/audit/ocsf.js';
import type { Reason } from '../core/errors/index.js';
import type { SessionClaims } from '../core/tokens/index.js';

/** Broker operations, as written in `api.operation`, with their OCSF API Activity activity_id. */
export const OPERATIONS = {
  ListFiles: 2,
  StatFile: 2,
  GetFile: 2,
  PutFile: 1,
  DeleteFile: 4,
  MoveFile: 3,
  CallUpstream: 99,
} as const;
export type Operation = keyof typeof OPERATIONS;

const ACTIVITY_NAMES: Readonly<Record<number, string>> = { 1: 'Create', 2: 'Read', 3: 'Update', 4: 'Delete', 99: 'Other' };

export interface BrokerEventInput {
  readonly operation: Operation;
  readonly correlationId: string;
  readonly policyVersion: string;
  readonly time: number;
  readonly endTime: number;
  readonly claims?: SessionClaims | undefined;
  readonly allow: boolean;
  readonly reason: Reason;
  readonly status: number;
  readonly client: { readonly ip?: string | undefined; readonly port?: number | undefined };
  /** Logical paths (never physical keys, never bodies). For a move: [from, to]. */
  readonly paths?: readonly string[];
  readonly store?: string;
  readonly upstream?: string;
  /** The upstream path without its query (query strings carry keys). */
  readonly upstreamPath?: string;
  readonly bytesIn?: number;
  readonly bytesOut?: number;
  /** Why a token was refused (an auth failure), e.g. bad_signature. */
  readonly authDetail?: string;
  /** Strict durability: `decision` is on disk before the operation runs; `end` follows with status and bytes. */
  readonly phase?: 'decision' | 'end';
  /** An allowed operation whose client went away before the response ended. */
  readonly endReason?: string;
}

const endpoint = (ip: string | undefined, port: number | undefined): Record<string, unknown> => {
  const e: Record<string, unknown> = { name: 'broker-client' };
  if (ip !== undefined) e['ip'] = ip.startsWith('::ffff:') ? ip.slice(7) : ip;
  if (port !== undefined) e['port'] = port;
  return e;
};

/**
 * One audit event per broker operation (OCSF API Activity), or an Authentication event when the broker token
 * itself is refused. Session, tenant and filesystem come from the signed token; the paths are logical ones; no
 * body, header value, query string or credential value is ever recorded (a credential is named by its store or
 * upstream).
 */
export function brokerEvent(input: BrokerEventInput): Record<string, unknown> {
  const claims = input.claims;
  const header = { component: 'broker', correlationId: input.correlationId, policyVersion: input.policyVersion, time: input.time, tenant: claims?.tenant };
  const outcome = { allow: input.allow, reason: input.reason };
  const gatehouse: Record<string, unknown> = {};
  if (claims && typeof claims['filesystem_id'] === 'string') gatehouse['filesystem'] = claims['filesystem_id'];
  if (input.store) gatehouse['store'] = input.store;
  if (input.upstream) gatehouse['upstream'] = input.upstream;
  if (input.authDetail) gatehouse['auth_detail'] = input.authDetail;
  if (input.phase) gatehouse['phase'] = input.phase;
  if (input.endReason) gatehouse['end_reason'] = input.endReason;
  const body: Record<string, unknown> = { src_endpoint: endpoint(input.client.ip, input.client.port), end_time: input.endTime, duration: Math.max(0, input.endTime - input.time) };
  if (input.bytesIn !== undefined || input.bytesOut !== undefined) {
    const up = input.bytesIn ?? 0;
    const down = input.bytesOut ?? 0;
    // From the session's side, as in egress events: out = sent by the sandbox, in = received by it.
    body['traffic'] = { bytes_out: up, bytes_in: down, bytes: up + down };
  }
  body['unmapped'] = { gatehouse };

  if (input.reason === 'auth_missing' || input.reason === 'auth_invalid' || input.reason === 'token_expired' || input.reason === 'token_not_yet_valid' || input.reason === 'session_revoked') {
    body['user'] = claims ? { uid: claims.sub, type_id: 99, type: 'Sandbox session' } : { name: 'unknown', type_id: 0, type: 'Unknown' };
    body['service'] = { name: 'gatehouse-broker' };
    body['auth_protocol_id'] = 99;
    body['auth_protocol'] = 'gatehouse-token';
    return ocsfEvent(OCSF_CLASS.authentication, { id: 1, name: 'Logon' }, header, outcome, body);
  }
  const activity = OPERATIONS[input.operation];
  body['actor'] = claims ? { session: { uid: claims.sub, credential_uid: claims.jti, expiration_time: claims.exp * 1000, issuer: claims.iss } } : { app_name: 'unknown' };
  body['api'] = { operation: input.operation, request: { uid: input.correlationId }, service: { name: 'gatehouse-broker' }, ...(input.status > 0 ? { response: { code: input.status } } : {}) };
  if (input.paths && input.paths.length > 0) body['resources'] = input.paths.map((p) => ({ type: 'file', name: p }));
  if (input.upstreamPath !== undefined) body['http_request'] = { url: { path: input.upstreamPath } };
  return ocsfEvent(OCSF_CLASS.api_activity, { id: activity, name: ACTIVITY_NAMES[activity] as string }, header, outcome, body);
}
