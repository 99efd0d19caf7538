import type { Reason } from '../errors/index.js';
import type { CanonicalHost } from '../netguard/canonical-host.js';
import type { CompiledPolicy, Mode } from './compiled-policy.js';
import type { DestPattern } from './dest-pattern.js';
import { lookupDest, type RuleIndex } from './rule-index.js';

/** One entry of a token's `egress` claim. */
export interface Grant {
  readonly pattern: DestPattern;
  /** `token.egress[i]`, so explain and audit can say which entry matched. */
  readonly id: string;
}

export interface DecisionInput {
  readonly tenant: string;
  /** The session's grant (its token's egress claim), indexed. */
  readonly grants: RuleIndex<Grant>;
  readonly host: CanonicalHost;
  readonly port: number;
}

export interface Decision {
  readonly allow: boolean;
  /** `allowed`, or why it was (or, in report mode, would have been) refused. */
  readonly reason: Reason;
  /** The rule or grant entry that decided. Absent when nothing matched at all. */
  readonly ruleId?: string;
  readonly mode: Mode;
  /** True when report mode let through what enforce mode would refuse; `reason` says why. */
  readonly enforceWouldDeny: boolean;
}

const deny = (reason: Reason, ruleId?: string): Decision => ({
  allow: false,
  reason,
  mode: 'enforce',
  enforceWouldDeny: false,
  ...(ruleId ? { ruleId } : {}),
});

/**
 * The egress decision, a pure function of the policy, the session's grant and the canonical destination. The
 * proxy, `gatehouse token issue` and `gatehouse policy explain` all call this one function.
 *
 * Allowed only when the destination matches the token's grant AND the tenant's ceiling AND no deny rule.
 * Deny rules are checked first and win. The address guard (resolved addresses) runs after this, in netguard.
 */
export function decide(policy: CompiledPolicy, input: DecisionInput): Decision {
  const tenant = policy.tenants.get(input.tenant);
  if (!tenant) return deny('tenant_unknown');

  let wouldDeny: { reason: Reason; ruleId?: string } | null = null;
  const refuse = (reason: Reason, ruleId: string | undefined, mode: Mode): Decision | null => {
    if (mode === 'enforce') return deny(reason, ruleId);
    wouldDeny ??= ruleId ? { reason, ruleId } : { reason };
    return null;
  };

  const denied = lookupDest(tenant.deny, input.host, input.port);
  if (denied.match === 'full') {
    const d = refuse('dest_denied', denied.item.id, denied.item.mode);
    if (d) return d;
  }

  const granted = lookupDest(input.grants, input.host, input.port);
  if (granted.match !== 'full') {
    const d =
      granted.match === 'host-only'
        ? refuse('port_not_allowed', granted.item.id, tenant.mode)
        : refuse('dest_not_allowed', undefined, tenant.mode);
    if (d) return d;
  }

  const ceiling = lookupDest(tenant.allow, input.host, input.port);
  if (ceiling.match !== 'full') {
    const d =
      ceiling.match === 'host-only'
        ? refuse('port_not_allowed', ceiling.item.id, tenant.mode)
        : refuse('dest_not_allowed', undefined, tenant.mode);
    if (d) return d;
  }

  const settled = wouldDeny as { reason: Reason; ruleId?: string } | null;
  if (settled) {
    return { allow: true, reason: settled.reason, mode: 'report', enforceWouldDeny: true, ...(settled.ruleId ? { ruleId: settled.ruleId } : {}) };
  }
  const ruleId = ceiling.match === 'full' ? ceiling.item.id : undefined;
  return { allow: true, reason: 'allowed', mode: tenant.mode, enforceWouldDeny: false, ...(ruleId ? { ruleId } : {}) };
}
