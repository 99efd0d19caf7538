import { randomBytes } from 'node:crypto';
import { GatehouseError } from '../errors/index.js';
import { checkGrant, type CompiledPolicy } from '../policy/index.js';
import { formatDuration, parseDuration } from '../util/duration.js';
import type { Keystore } from './keystore.js';
import { AUDIENCE, issueSessionToken, SESSION_ID } from './session-token.js';

export interface EgressIssueRequest {
  readonly tenant: string;
  /** Absent: a fresh random id. */
  readonly session?: string;
  readonly destinations: readonly string[];
  /** `10m`, `90s`; absent: the policy's default TTL. */
  readonly ttl?: string;
}

export interface EgressIssueResult {
  readonly token: string;
  readonly session: string;
  readonly tenant: string;
  readonly jti: string;
  readonly expiresAt: number;
  readonly egress: readonly string[];
  readonly warnings: readonly string[];
}

export const newSessionId = (): string => `sess-${randomBytes(9).toString('base64url')}`;

/** The checks every token type shares: a valid session id that is not revoked, and a TTL within the policy maximum. */
export function sessionAndTtl(
  deps: { readonly policy: CompiledPolicy; readonly isRevoked: (session: string) => boolean },
  request: { readonly session?: string | undefined; readonly ttl?: string | undefined },
): { session: string; ttlMs: number } {
  const session = request.session ?? newSessionId();
  if (!SESSION_ID.test(session)) throw new GatehouseError('GH_ERR_TOKEN_SESSION_INVALID', { session: session.slice(0, 64) });
  if (deps.isRevoked(session)) throw new GatehouseError('GH_ERR_TOKEN_SESSION_REVOKED', { session });
  let ttlMs = deps.policy.tokens.defaultTtlMs;
  if (request.ttl !== undefined) {
    const parsed = parseDuration(request.ttl);
    if (parsed === null || parsed <= 0) throw new GatehouseError('GH_ERR_TOKEN_TTL_INVALID', { ttl: request.ttl.slice(0, 32) });
    if (parsed > deps.policy.tokens.maxTtlMs) throw new GatehouseError('GH_ERR_TOKEN_TTL_TOO_LONG', { ttl: request.ttl, max: formatDuration(deps.policy.tokens.maxTtlMs) });
    ttlMs = parsed;
  }
  return { session, ttlMs };
}

/**
 * Everything `gatehouse token issue` and `POST /v1/sessions` check before signing an egress token: a valid
 * session id that is not revoked, a TTL within the policy maximum, and destinations inside the tenant's ceiling.
 */
export async function issueEgressToken(
  deps: { readonly policy: CompiledPolicy; readonly keys: Keystore; readonly isRevoked: (session: string) => boolean; readonly issuer: string },
  request: EgressIssueRequest,
): Promise<EgressIssueResult> {
  const { policy } = deps;
  const { session, ttlMs } = sessionAndTtl(deps, request);
  const { egress, warnings } = checkGrant(policy, request.tenant, request.destinations);
  const issued = await issueSessionToken(deps.keys, {
    issuer: deps.issuer,
    audience: AUDIENCE.egress,
    session,
    tenant: request.tenant,
    ttlMs,
    claims: { egress },
  });
  return { token: issued.token, session, tenant: request.tenant, jti: issued.jti, expiresAt: issued.expiresAt, egress, warnings };
}
