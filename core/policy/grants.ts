import { GatehouseError } from '../errors/index.js';
import type { CompiledPolicy } from './compiled-policy.js';
import type { Grant } from './decide.js';
import { hostCovers, parseDestPattern } from './dest-pattern.js';
import { portSetCovered } from './port-set.js';
import { buildIndex, type RuleIndex } from './rule-index.js';

/**
 * Index a verified token's `egress` claim. Entries that do not parse are skipped (they can only narrow a
 * grant, never widen it); the issuer never writes such entries.
 */
export function indexGrants(claim: readonly string[]): RuleIndex<Grant> {
  const grants: Grant[] = [];
  claim.forEach((text, i) => {
    const parsed = parseDestPattern(text, { purpose: 'grant' });
    if (parsed.ok) grants.push({ pattern: parsed.pattern, id: `token.egress[${i}]` });
  });
  return buildIndex(grants);
}

export interface GrantCheck {
  /** Canonical pattern texts, as the token will carry them. */
  readonly egress: readonly string[];
  /** Things a reviewer should know (report-mode tenants get warnings instead of refusals). */
  readonly warnings: readonly string[];
}

/**
 * Check requested destinations against the tenant's ceiling and deny rules, as `gatehouse token issue` and
 * `POST /v1/sessions` do before signing. Each destination must be covered by the ceiling: its hosts by one
 * rule, its ports by the union of the rules that cover its hosts.
 */
export function checkGrant(policy: CompiledPolicy, tenantName: string, requested: readonly string[]): GrantCheck {
  const tenant = policy.tenants.get(tenantName);
  if (!tenant) throw new GatehouseError('GH_ERR_TOKEN_TENANT_UNKNOWN', { tenant: tenantName });
  if (requested.length === 0) throw new GatehouseError('GH_ERR_TOKEN_NO_GRANT');
  const egress: string[] = [];
  const warnings: string[] = [];
  for (const destination of requested) {
    const parsed = parseDestPattern(destination, { purpose: 'grant' });
    if (!parsed.ok) throw new GatehouseError('GH_ERR_TOKEN_DEST_INVALID', { destination, detail: parsed.message });
    const pattern = parsed.pattern;
    const covering = tenant.allow.all.filter((rule) => hostCovers(rule.pattern, pattern));
    if (!portSetCovered(pattern.ports, covering.map((r) => r.pattern.ports))) {
      if (tenant.mode === 'enforce') throw new GatehouseError('GH_ERR_TOKEN_DEST_OUTSIDE_CEILING', { destination, tenant: tenantName });
      warnings.push(`${pattern.text} is outside the ceiling of tenant ${tenantName} (report mode: issued anyway)`);
    }
    const denying = tenant.deny.all.find((rule) => hostCovers(rule.pattern, pattern) && portSetCovered(pattern.ports, [rule.pattern.ports]));
    if (denying) {
      if (denying.mode === 'enforce') throw new GatehouseError('GH_ERR_TOKEN_DEST_DENIED', { destination, tenant: tenantName, rule: denying.id });
      warnings.push(`${pattern.text} is refused by ${denying.id} (report mode: issued anyway)`);
    }
    if (!egress.includes(pattern.text)) egress.push(pattern.text);
  }
  return { egress, warnings };
}
