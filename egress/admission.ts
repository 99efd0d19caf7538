import type { Reason } from '../core/errors/index.js';
import type { GuardResult, IpAddress, Netguard } from '../core/netguard/index.js';
import { decide, type CompiledPolicy, type Decision, type Grant, type RuleIndex, type SessionLimits } from '../core/policy/index.js';
import { TokenError, type CachedVerifier, type SessionClaims, type Verified } from '../core/tokens/index.js';
import { tokenFromProxyAuthorization } from './proxy-credentials.js';
import type { BoundedCache } from '../core/util/bounded-cache.js';
import type { ProxyTarget, TargetResult } from './request-target.js';
import type { SessionTracker } from './session-tracker.js';

export interface AdmissionDeps {
  /** Proxy-Authorization header value to the token it carries (decoding is per distinct header, not per request). */
  readonly credentials: BoundedCache<string, string | null>;
  readonly policy: () => CompiledPolicy;
  readonly verifier: CachedVerifier<RuleIndex<Grant>>;
  readonly isRevoked: (session: string) => boolean;
  readonly tracker: SessionTracker;
  readonly netguard: Netguard;
}

/** Everything known about a request when it was decided; the audit event is built from this. */
export interface AdmissionFacts {
  readonly policy: CompiledPolicy;
  readonly claims?: SessionClaims;
  readonly target?: ProxyTarget;
  readonly decision?: Decision;
  /** Detail for token failures (bad_signature, unknown_kid, ...), audit only. */
  readonly authDetail?: string;
  /** The address that was refused by the guard, or the one dialled. */
  readonly address?: IpAddress;
}

export type Admission =
  | ({ readonly ok: true; readonly target: ProxyTarget; readonly claims: SessionClaims; readonly decision: Decision; readonly addresses: readonly IpAddress[]; readonly limits: SessionLimits } & AdmissionFacts)
  | ({ readonly ok: false; readonly reason: Reason } & AdmissionFacts);

type Authenticated = { ok: true; verified: Verified<RuleIndex<Grant>> } | { ok: false; reason: Reason; detail: string };

function authenticate(deps: AdmissionDeps, header: string | undefined): Authenticated | Promise<Authenticated> {
  const token = header === undefined ? null : deps.credentials.getOrCompute(header, tokenFromProxyAuthorization);
  if (token === null) return { ok: false, reason: header === undefined ? 'auth_missing' : 'auth_invalid', detail: header === undefined ? 'no_credentials' : 'unrecognised_scheme' };
  const fail = (err: unknown): Authenticated => {
    if (err instanceof TokenError) return { ok: false, reason: err.reason, detail: err.detail };
    return { ok: false, reason: 'auth_invalid', detail: 'verification_error' };
  };
  try {
    // Fast path: a token seen before is not verified again (until it expires).
    const hit = deps.verifier.peek(token);
    if (hit) return { ok: true, verified: hit };
  } catch (err) {
    return fail(err);
  }
  return deps.verifier.verify(token).then((verified): Authenticated => ({ ok: true, verified }), fail);
}

/**
 * Decide one proxy request: authenticate, check revocation, parse the target, apply the policy decision, take a
 * session slot, resolve and vet the addresses. The order matters: nothing about the destination is revealed
 * (or resolved) before the client has authenticated, and nothing is resolved for a destination policy refuses.
 *
 * Synchronous when the token and the name's addresses are already cached (most requests), so the data plane
 * pays no promise round trips for them. On success the caller owns one session slot and must release it.
 */
export function admit(deps: AdmissionDeps, proxyAuthorization: string | undefined, targetResult: TargetResult): Admission | Promise<Admission> {
  const policy = deps.policy();
  const auth = authenticate(deps, proxyAuthorization);
  return auth instanceof Promise ? auth.then((a) => afterAuthentication(deps, policy, a, targetResult)) : afterAuthentication(deps, policy, auth, targetResult);
}

function afterAuthentication(deps: AdmissionDeps, policy: CompiledPolicy, auth: Authenticated, targetResult: TargetResult): Admission | Promise<Admission> {
  if (!auth.ok) return { ok: false, reason: auth.reason, policy, authDetail: auth.detail };
  const { claims, derived: grants } = auth.verified;
  if (deps.isRevoked(claims.sub)) return { ok: false, reason: 'session_revoked', policy, claims };
  if (!targetResult.ok) return { ok: false, reason: targetResult.reason, policy, claims };
  const target = targetResult.target;

  const decision = decide(policy, { tenant: claims.tenant, grants, host: target.host, port: target.port });
  if (!decision.allow) return { ok: false, reason: decision.reason, policy, claims, target, decision };
  const tenant = policy.tenants.get(claims.tenant);
  if (!tenant) return { ok: false, reason: 'tenant_unknown', policy, claims, target, decision };

  const slot = deps.tracker.acquire(claims.sub, claims.tenant, tenant.sessionLimits);
  if (!slot.ok) return { ok: false, reason: slot.reason, policy, claims, target, decision };

  const settle = (guarded: GuardResult): Admission => {
    if (!guarded.ok) {
      deps.tracker.release(claims.sub);
      return { ok: false, reason: guarded.reason, policy, claims, target, decision, ...('address' in guarded ? { address: guarded.address } : {}) };
    }
    // A report-mode CIDR deny rule matched a resolved address: let it through, on the record.
    const final: Decision =
      guarded.wouldDeny && !decision.enforceWouldDeny
        ? { ...decision, reason: guarded.wouldDeny.reason, enforceWouldDeny: true, mode: 'report', ...(guarded.wouldDeny.ruleId ? { ruleId: guarded.wouldDeny.ruleId } : {}) }
        : decision;
    const address = guarded.addresses[0];
    return { ok: true, policy, claims, target, decision: final, addresses: guarded.addresses, limits: tenant.sessionLimits, ...(address ? { address } : {}) };
  };
  const guarded = deps.netguard.resolveAndVet(target.host, target.port, tenant.guard);
  return guarded instanceof Promise ? guarded.then(settle) : settle(guarded);
}
