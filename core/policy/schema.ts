import { z } from 'zod';
import { DURATION_PATTERN } from '../util/duration.js';
import { auditSectionSchema } from './audit-schema.js';
import { brokerSectionSchema, tenantBrokerSchema } from './broker-schema.js';
import { POLICY_BOUNDS, POLICY_DEFAULTS as D } from './defaults.js';

/**
 * The policy file's schema (version 1). This is the single source: the loader validates with it and
 * `policies/schema.json` is generated from it (`gatehouse policy schema`), with a test that the two never drift.
 *
 * Each section is its own schema so later components (broker, MCP gateway, audit sinks) add a section without
 * touching the others. Every field says what absent and empty mean.
 */

const duration = (what: string) =>
  z.string().regex(new RegExp(DURATION_PATTERN), 'expected a duration such as 500ms, 30s, 15m, 2h').describe(what);

const positiveInt = (what: string) => z.number().int().min(1).max(1_000_000_000).describe(what);

const mode = z
  .enum(['enforce', 'report'])
  .describe(
    '`enforce` refuses what the rules deny. `report` lets a would-be deny through and audits it with enforce_would_deny: true and the reason, for rolling out stricter rules safely. The address guard, authentication, revocation and limits are always enforced.',
  );

const portItem = z
  .union([z.number().int().min(1).max(65535), z.string().regex(/^(\*|\d{1,5}(-\d{1,5})?)$/)])
  .describe('A port (443), a range ("8000-8100") or "*" for every port.');

export const destRuleSchema = z
  .union([
    z
      .string()
      .min(1)
      .describe(
        'host[:ports]: "api.example.com" (ports 80 and 443), "*.example.com:443" (subdomains only, never the apex), "db.internal:5432,6432", "203.0.113.7", "[2001:db8::1]:443", "10.0.0.0/8:443", "host:*" (every port).',
      ),
    z
      .strictObject({
        host: z.string().min(1).describe('Host, "*.domain", IP address or CIDR, without a port.'),
        ports: z
          .array(portItem)
          .min(1)
          .optional()
          .describe('Ports this rule covers. Absent: 80 and 443. Empty is an error (a rule that can never match).'),
        mode: mode.optional().describe('Per-rule mode, for deny rules. Absent: the tenant\'s (or egress default) mode.'),
        note: z.string().max(500).optional().describe('Free text for reviewers; not used by Gatehouse. Absent: none.'),
      })
      .describe('A destination with an explicit port list.'),
  ])
  .describe('A destination rule.');

const sessionLimits = z
  .strictObject({
    max_connections: positiveInt(
      `Concurrent connections (requests in flight plus open tunnels) one session may hold. Absent: ${D.egress.limits.perSession.maxConnections}.`,
    ).optional(),
    new_connections_per_second: z
      .number()
      .positive()
      .max(1_000_000)
      .optional()
      .describe(`New connections per second one session may open, refilling a token bucket of size burst; fractions allowed (0.5 = one every 2 s). Absent: ${D.egress.limits.perSession.newConnectionsPerSecond}.`),
    burst: positiveInt(`Bucket size for new_connections_per_second. Absent: ${D.egress.limits.perSession.burst}.`).optional(),
  })
  .describe('Per-session limits. Absent: the defaults listed on each key.');

const egressLimits = z
  .strictObject({
    max_connections: positiveInt(
      `Global cap on concurrent client connections; beyond it new ones are refused with 503. Absent: ${D.egress.limits.maxConnections}.`,
    ).optional(),
    per_session: sessionLimits.optional(),
    max_header_bytes: z
      .number()
      .int()
      .min(1024)
      .max(1024 * 1024)
      .optional()
      .describe(`Largest request head (request line plus headers) in bytes; larger gets 431. Absent: ${D.egress.limits.maxHeaderBytes}. Takes effect on restart.`),
    header_timeout: duration(`Time a client has to send a complete request head; slower gets 408. Absent: ${D.egress.limits.headerTimeout}.`).optional(),
    client_idle_timeout: duration(`Idle keep-alive connections from clients are closed after this. Absent: ${D.egress.limits.clientIdleTimeout}.`).optional(),
    tunnel_idle_timeout: duration(`A tunnel or upgraded connection with no bytes either way for this long is closed. Absent: ${D.egress.limits.tunnelIdleTimeout}.`).optional(),
    connect_timeout: duration(`Time to connect to the vetted upstream address. Absent: ${D.egress.limits.connectTimeout}.`).optional(),
    response_timeout: duration(`Time an upstream has to start its response to a proxied request (model APIs can think for minutes). Absent: ${D.egress.limits.responseTimeout}.`).optional(),
    end_tunnels_at_token_expiry: z
      .boolean()
      .optional()
      .describe(`Close a session's tunnels when its token expires. Absent: ${String(D.egress.limits.endTunnelsAtTokenExpiry)}.`),
  })
  .describe('Connection limits and timeouts. Absent: the defaults listed on each key.');

const privateException = z
  .strictObject({
    host: z.string().min(1).describe('The exact destination host (a name or an IP literal) that may reach the range.'),
    cidr: z.string().min(1).describe('The private range it may reach, e.g. 10.1.2.0/24 or 127.0.0.1/32. At most /8 (IPv4) or /16 (IPv6) wide.'),
    reason: z.string().max(500).optional().describe('Why the exception exists, for reviewers (lint asks for one). Absent: none given.'),
  })
  .describe('One narrow exception to the address guard.');

const resolver = z
  .strictObject({
    mode: z
      .enum(['dns', 'system'])
      .optional()
      .describe(`"dns": query DNS servers directly and honour TTLs. "system": the OS resolver (getaddrinfo, /etc/hosts). Absent: "${D.egress.resolver.mode}".`),
    servers: z
      .array(z.string().min(1))
      .optional()
      .describe('DNS servers ("ip" or "ip:port") for mode dns. Absent or empty: the servers in /etc/resolv.conf.'),
    hosts: z
      .record(z.string(), z.array(z.string().min(1)).min(1))
      .optional()
      .describe('Fixed answers: host name to list of addresses, checked before DNS. Answers are still classified by the address guard. Absent or empty: none.'),
  })
  .describe('How Gatehouse resolves destination names. Absent: DNS with TTL caching.');

export const egressSectionSchema = z
  .strictObject({
    mode: mode.optional().describe(`Default mode for tenants that do not set one. Absent: "${D.egress.mode}".`),
    deny: z
      .array(destRuleSchema)
      .optional()
      .describe('Deny rules for every tenant; a match refuses the destination even when a grant allows it. CIDRs also apply to resolved addresses. Absent or empty: no global deny rules.'),
    unsafe_allow_private: z
      .array(privateException)
      .optional()
      .describe('Exceptions that let a named host reach a named private range (loopback, RFC 1918, link-local, ...). The proxy\'s own listeners stay unreachable. Absent or empty: every non-public address is refused.'),
    limits: egressLimits.optional(),
    resolver: resolver.optional(),
  })
  .describe('Egress proxy settings shared by all tenants. Absent: defaults, no deny rules, no exceptions.');

const tenantEgress = z
  .strictObject({
    allow: z
      .array(destRuleSchema)
      .optional()
      .describe("The tenant's egress ceiling: tokens may grant only destinations inside it, and a request must match both. Absent or empty: this tenant can reach nothing."),
    deny: z
      .array(destRuleSchema)
      .optional()
      .describe('Deny rules for this tenant only, checked with the global ones. Absent or empty: none.'),
    limits: z
      .strictObject({ per_session: sessionLimits.optional() })
      .optional()
      .describe('Per-session limits for this tenant, overriding egress.limits.per_session key by key. Absent: the global ones.'),
  })
  .describe("The tenant's egress rules. Absent: the tenant can reach nothing.");

export const tenantSchema = z
  .strictObject({
    name: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'tenant names are 1-63 characters: a-z 0-9 _ -, starting with a letter or digit')
      .describe('Unique tenant name; tokens carry it in the `tenant` claim.'),
    mode: mode.optional().describe('Enforce or report for this tenant. Absent: egress.mode.'),
    egress: tenantEgress.optional(),
    broker: tenantBrokerSchema.optional(),
  })
  .describe('A tenant: a team, product or customer whose sessions share one ceiling.');

export const tokensSectionSchema = z
  .strictObject({
    max_ttl: duration(`Longest lifetime a session token may be issued with (hard limit 24h). Absent: ${D.tokens.maxTtl}.`).optional(),
    default_ttl: duration(`Lifetime when the issuer asks for none; capped at max_ttl. Absent: ${D.tokens.defaultTtl}.`).optional(),
    clock_skew: duration(`Clock difference tolerated when checking iat, nbf and exp (at most 5m). Absent: ${D.tokens.clockSkew}.`).optional(),
  })
  .describe('Session token lifetimes. Absent: the defaults listed on each key.');

export const policySchema = z
  .strictObject({
    version: z.literal(1).describe('Policy format version. Always 1 for this schema.'),
    tokens: tokensSectionSchema.optional(),
    egress: egressSectionSchema.optional(),
    tenants: z
      .array(tenantSchema)
      .optional()
      .describe('Tenants. Absent or empty: no tenant exists, so no token can be issued and every request is refused.'),
    broker: brokerSectionSchema.optional(),
    audit: auditSectionSchema.optional(),
  })
  .describe(`A Gatehouse policy (at most ${POLICY_BOUNDS.maxPolicyBytes} bytes of YAML).`);

export type PolicyDocument = z.infer<typeof policySchema>;
export type DestRuleInput = z.infer<typeof destRuleSchema>;
export type TenantInput = z.infer<typeof tenantSchema>;
