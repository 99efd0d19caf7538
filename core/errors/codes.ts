/**
 * One registry of stable error codes (`GH_ERR_<AREA>_<WHAT>`). Code branches on `err.code`, never on message text.
 * `docs/reference/error-codes.md` documents each one; a test keeps the two in step.
 *
 * `message` is a template: `{name}` placeholders are filled from the error's params. Params must never carry a
 * secret (tokens, keys, credentials): callers pass names and ids only.
 */
export interface ErrorCodeInfo {
  readonly status: number;
  readonly message: string;
}

const code = (status: number, message: string): ErrorCodeInfo => ({ status, message });

export const ERROR_CODES = {
  // Policy and configuration
  GH_ERR_POLICY_INVALID: code(400, 'The policy is invalid: {count} problem(s) found.'),
  GH_ERR_POLICY_READ: code(500, 'The policy file could not be read: {detail}.'),
  GH_ERR_CONFIG_INVALID: code(400, 'Invalid configuration: {detail}.'),

  // Tokens and issuing
  GH_ERR_TOKEN_TENANT_UNKNOWN: code(400, 'Tenant "{tenant}" is not defined in the policy.'),
  GH_ERR_TOKEN_DEST_OUTSIDE_CEILING: code(
    403,
    'Destination "{destination}" is outside the egress ceiling of tenant "{tenant}".',
  ),
  GH_ERR_TOKEN_DEST_DENIED: code(403, 'Destination "{destination}" is refused by deny rule {rule} for tenant "{tenant}".'),
  GH_ERR_TOKEN_DEST_INVALID: code(400, 'Destination "{destination}" is not a valid host pattern: {detail}.'),
  GH_ERR_TOKEN_TTL_TOO_LONG: code(400, 'TTL {ttl} is above the policy maximum of {max}.'),
  GH_ERR_TOKEN_TTL_INVALID: code(400, 'TTL "{ttl}" is not a valid duration (for example 10m, 90s, 1h).'),
  GH_ERR_TOKEN_SESSION_INVALID: code(
    400,
    'Session id "{session}" is invalid: use 1-128 characters from A-Z a-z 0-9 . _ : -',
  ),
  GH_ERR_TOKEN_SESSION_REVOKED: code(409, 'Session "{session}" was revoked; issue a token for a new session id.'),
  GH_ERR_TOKEN_NO_GRANT: code(400, 'A token needs at least one --allow destination.'),
  GH_ERR_TOKEN_NO_BROKER: code(403, 'Tenant "{tenant}" has no broker access in the policy.'),
  GH_ERR_TOKEN_FILESYSTEM_INVALID: code(400, 'Filesystem id "{filesystem}" is invalid: use 1-64 characters from A-Z a-z 0-9 _ -'),
  GH_ERR_TOKEN_MOUNT_OUTSIDE_CEILING: code(403, 'Mount "{mount}" ({mode}) is outside the broker ceiling of tenant "{tenant}".'),
  GH_ERR_TOKEN_UPSTREAM_OUTSIDE_CEILING: code(403, 'Upstream "{upstream}" is not granted to tenant "{tenant}".'),

  // Admin API
  GH_ERR_ADMIN_UNAUTHORIZED: code(401, 'Missing or invalid admin token.'),
  GH_ERR_ADMIN_BAD_REQUEST: code(400, 'Invalid request: {detail}.'),
  GH_ERR_ADMIN_NOT_FOUND: code(404, 'Not found.'),
  GH_ERR_ADMIN_UNREACHABLE: code(503, 'The admin API at {url} could not be reached: {detail}.'),

  // State directory
  GH_ERR_STATE_UNUSABLE: code(500, 'The state directory {dir} cannot be used: {detail}.'),
  GH_ERR_STATE_CORRUPT: code(500, 'State file {file} is corrupt: {detail}.'),
  GH_ERR_STATE_LOCKED: code(409, 'The state directory {dir} is in use by another Gatehouse (pid {pid}); stop it or use another --state.'),

  // Audit
  GH_ERR_AUDIT_WRITE: code(500, 'The audit log could not be written: {detail}.'),
  GH_ERR_AUDIT_INVALID_EVENT: code(500, 'An audit event failed validation: {detail}.'),

  // Credential broker (the wire error of each refusal also carries its reason code)
  GH_ERR_BROKER_DENIED: code(403, 'Refused: {detail}.'),
  GH_ERR_BROKER_BAD_REQUEST: code(400, 'Invalid request: {detail}.'),
  GH_ERR_BROKER_NOT_FOUND: code(404, 'Not found: {detail}.'),
  GH_ERR_BROKER_TOO_LARGE: code(413, 'Too large: {detail}.'),
  GH_ERR_BROKER_RANGE: code(416, 'Range not satisfiable: {detail}.'),
  GH_ERR_BROKER_LIMITED: code(429, 'Too many requests for this session: {detail}.'),
  GH_ERR_BROKER_UNAUTHORIZED: code(401, 'Missing, invalid or expired broker token: {detail}.'),
  GH_ERR_BROKER_BACKEND: code(502, 'The file store or upstream failed: {detail}.'),
  GH_ERR_BROKER_UNAVAILABLE: code(503, 'Unavailable: {detail}.'),

  // Listeners and process
  GH_ERR_LISTEN: code(500, 'Could not listen on {address}: {detail}.'),
  GH_ERR_USAGE: code(2, '{detail}'),
  GH_ERR_INTERNAL: code(500, 'Internal error.'),
} as const satisfies Record<string, ErrorCodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;
