import { GatehouseError, REASONS, type ErrorCode, type Reason } from '../core/errors/index.js';

/** The error code clients branch on for each broker reason. */
const CODE_FOR: Partial<Record<Reason, ErrorCode>> = {
  auth_missing: 'GH_ERR_BROKER_UNAUTHORIZED',
  auth_invalid: 'GH_ERR_BROKER_UNAUTHORIZED',
  token_expired: 'GH_ERR_BROKER_UNAUTHORIZED',
  token_not_yet_valid: 'GH_ERR_BROKER_UNAUTHORIZED',
  path_invalid: 'GH_ERR_BROKER_BAD_REQUEST',
  malformed_request: 'GH_ERR_BROKER_BAD_REQUEST',
  body_incomplete: 'GH_ERR_BROKER_BAD_REQUEST',
  file_not_found: 'GH_ERR_BROKER_NOT_FOUND',
  object_too_large: 'GH_ERR_BROKER_TOO_LARGE',
  range_not_satisfiable: 'GH_ERR_BROKER_RANGE',
  rate_limited: 'GH_ERR_BROKER_LIMITED',
  too_many_requests: 'GH_ERR_BROKER_LIMITED',
  backend_rejected: 'GH_ERR_BROKER_BACKEND',
  upstream_connect_failed: 'GH_ERR_BROKER_BACKEND',
  upstream_error: 'GH_ERR_BROKER_BACKEND',
  backend_unavailable: 'GH_ERR_BROKER_UNAVAILABLE',
  credential_unavailable: 'GH_ERR_BROKER_UNAVAILABLE',
  audit_unavailable: 'GH_ERR_BROKER_UNAVAILABLE',
  upstream_timeout: 'GH_ERR_BROKER_UNAVAILABLE',
  proxy_shutting_down: 'GH_ERR_BROKER_UNAVAILABLE',
};

/**
 * A refused broker request: the reason code (audit, metrics, the client) and the wire error. `detail` is safe to
 * show the client: it names paths, mounts, limits and backend error codes, never a credential.
 */
export class Refusal extends Error {
  readonly status: number;
  readonly error: GatehouseError;
  /** Extra response headers (Retry-After, Content-Range for a 416, the Bearer challenge of a 401). */
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    readonly reason: Reason,
    detail: string,
    headers: Readonly<Record<string, string>> = {},
  ) {
    super(detail);
    this.name = 'Refusal';
    this.headers = headers;
    this.error = new GatehouseError(CODE_FOR[reason] ?? 'GH_ERR_BROKER_DENIED', { detail });
    // The reason decides the status, so the same refusal reads the same in the audit log and on the wire. Except
    // 407: the broker is an origin server, not a proxy, so a missing or bad token is 401 with a Bearer challenge
    // (RFC 9110 §15.5.2, RFC 6750 §3); fetch-based SDKs also treat a 407 as a network error, not a readable answer.
    const status = REASONS[reason].status;
    this.status = status === 407 ? 401 : status >= 400 ? status : this.error.status;
    if (status === 407) this.headers = { 'www-authenticate': `Bearer realm="gatehouse-broker"${reason === 'auth_missing' ? '' : ', error="invalid_token"'}`, ...headers };
  }

  body(correlationId: string): Record<string, unknown> {
    return { error: { code: this.error.code, reason: this.reason, message: this.error.message, correlation_id: correlationId } };
  }
}
