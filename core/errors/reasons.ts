/**
 * The closed vocabulary of decision reasons. Every allow/deny that Gatehouse makes carries exactly one of these,
 * in the audit event, in metrics labels and (for denies) in the `X-Gatehouse-Deny` response header.
 *
 * Stable: a reason, once shipped, keeps its meaning. `docs/reference/deny-reasons.md` lists every one, and a test
 * keeps that table and this registry in step both ways.
 */
export interface ReasonInfo {
  /** HTTP status used when this reason refuses a request on an HTTP edge. */
  readonly status: number;
  /** One sentence for people and for the agent that got refused. Never interpolated with request data. */
  readonly summary: string;
}

const reason = (status: number, summary: string): ReasonInfo => ({ status, summary });

export const REASONS = {
  // --- allow ---
  allowed: reason(200, 'The destination matched the session grant and the tenant ceiling, and no deny rule.'),
  // In report mode a would-be deny is let through; its event carries the deny reason with enforce_would_deny: true.

  // --- authentication (HTTP 407 on the proxy) ---
  auth_missing: reason(407, 'No Proxy-Authorization credentials were sent.'),
  auth_invalid: reason(
    407,
    'The credentials are not a valid Gatehouse token (bad format, signature, algorithm, key id, issuer, audience or type).',
  ),
  token_expired: reason(407, 'The session token has expired.'),
  token_not_yet_valid: reason(407, 'The session token is not valid yet (nbf/iat in the future beyond the allowed clock skew).'),
  session_revoked: reason(403, 'The session was revoked by an administrator.'),
  tenant_unknown: reason(403, "The token's tenant is not defined in the current policy."),

  // --- destination policy ---
  dest_not_allowed: reason(403, "The destination host is not in both the session's grant and the tenant's ceiling."),
  port_not_allowed: reason(403, 'The destination host is allowed, but not on this port.'),
  dest_denied: reason(403, 'The destination matches a deny rule in the policy.'),
  invalid_host: reason(400, 'The destination host cannot be parsed or canonicalised.'),
  host_mismatch: reason(400, 'The Host header disagrees with the request target, or the target carries userinfo.'),
  unsupported_scheme: reason(400, 'Only http:// absolute-form requests and CONNECT are proxied.'),

  // --- resolved-address guard (netguard) ---
  ip_denied_loopback: reason(403, 'The destination resolves to a loopback address.'),
  ip_denied_unspecified: reason(403, 'The destination resolves to an unspecified address (0.0.0.0/8, ::).'),
  ip_denied_private: reason(403, 'The destination resolves to a private address (RFC 1918).'),
  ip_denied_cgnat: reason(403, 'The destination resolves to a carrier-grade NAT address (100.64.0.0/10).'),
  ip_denied_link_local: reason(403, 'The destination resolves to a link-local address.'),
  ip_denied_metadata: reason(403, 'The destination resolves to a cloud metadata service address.'),
  ip_denied_ula: reason(403, 'The destination resolves to an IPv6 unique local address (fc00::/7).'),
  ip_denied_multicast: reason(403, 'The destination resolves to a multicast address.'),
  ip_denied_broadcast: reason(403, 'The destination resolves to the broadcast address.'),
  ip_denied_reserved: reason(403, 'The destination resolves to a reserved, documentation or benchmarking range.'),
  ip_denied_ipv4_embedded: reason(
    403,
    'The destination resolves to an IPv6 address that embeds IPv4 (compatible, NAT64, 6to4, Teredo).',
  ),
  ip_denied_self: reason(403, "The destination is one of Gatehouse's own listening addresses."),
  ip_denied_rule: reason(403, 'A resolved address falls in a CIDR deny rule of the policy.'),
  dns_failed: reason(502, 'The destination name could not be resolved.'),

  // --- limits ---
  rate_limited: reason(429, 'The session opened new connections faster than its policy allows.'),
  too_many_connections: reason(429, 'The session has as many concurrent connections as its policy allows.'),
  proxy_at_capacity: reason(503, 'Gatehouse is at its global connection cap.'),
  proxy_shutting_down: reason(503, 'Gatehouse is shutting down and accepts no new work.'),

  // --- malformed traffic ---
  malformed_request: reason(400, 'The request is not a well-formed proxy request.'),
  header_too_large: reason(431, 'The request headers exceed the size limit.'),
  header_timeout: reason(408, 'The request headers did not arrive within the header timeout.'),

  // --- control plane (admin API, policy reloads) ---
  ttl_too_long: reason(400, 'The requested token lifetime is above the policy maximum.'),
  policy_invalid: reason(400, 'A policy change was rejected; the last good policy stays in force.'),

  audit_unavailable: reason(503, 'The audit log cannot be written, and durability is strict: nothing is done that cannot be recorded.'),

  // --- credential broker ---
  path_invalid: reason(400, 'The file path is not allowed: a .. or . segment, an encoded separator, a backslash, a control character, or too long.'),
  mount_not_granted: reason(403, "The path is outside every mount the session's broker token grants."),
  mount_read_only: reason(403, 'The path is on a mount the session may only read.'),
  upstream_not_granted: reason(403, "The upstream is not one the session's broker token grants."),
  file_not_found: reason(404, 'No file at that path.'),
  range_not_satisfiable: reason(416, 'The requested byte range is outside the file.'),
  object_too_large: reason(413, 'The upload or request body is larger than the mount or upstream allows.'),
  body_incomplete: reason(400, 'The client sent fewer body bytes than it declared, or went away mid-upload; nothing was stored.'),
  too_many_requests: reason(429, 'The session has as many requests in flight as its policy allows.'),
  backend_unavailable: reason(503, 'The file store could not be reached or did not answer in time.'),
  backend_rejected: reason(502, "The file store refused the broker's request (for example its credentials); nothing was changed."),
  credential_unavailable: reason(503, "The broker's credential for this store or upstream could not be loaded."),

  // --- upstream ---
  upstream_connect_failed: reason(502, 'The vetted upstream address refused or dropped the connection.'),
  upstream_timeout: reason(504, 'The upstream did not connect or answer within the timeout.'),
  upstream_error: reason(502, 'The upstream connection failed while the request was in flight.'),
} as const satisfies Record<string, ReasonInfo>;

export type Reason = keyof typeof REASONS;

export const isReason = (value: string): value is Reason => Object.hasOwn(REASONS, value);

/** Address classes that netguard refuses, each mapped to its `ip_denied_*` reason. */
export type DeniedAddressReason = Extract<Reason, `ip_denied_${string}`>;
