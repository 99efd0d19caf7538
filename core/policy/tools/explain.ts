import type { Reason } from '../../errors/index.js';
import { canonicalizeHost, parseAuthority, type CanonicalHost } from '../../netguard/canonical-host.js';
import { formatIp, parseIp, type IpAddress } from '../../netguard/ip-address.js';
import { SelfAddresses } from '../../netguard/self-addresses.js';
import { vetAddresses } from '../../netguard/vet-addresses.js';
import type { CompiledPolicy } from '../compiled-policy.js';
import { decide, type Decision } from '../decide.js';
import { indexGrants } from '../grants.js';
import { lookupDest } from '../rule-index.js';

export interface ExplainInput {
  readonly tenant: string;
  /** The session's grant (a token's egress claim). Absent: the destination itself, i.e. explain the policy alone. */
  readonly grant?: readonly string[];
  /** `host:port`, `host` (port 443) or a URL (`https://host/path`). */
  readonly destination: string;
  /** What DNS answers for the host, to run the address guard too. Absent: the guard is not evaluated for names. */
  readonly addresses?: readonly string[];
}

export interface RuleRef {
  readonly id: string;
  readonly text: string;
  /** `file:line:col`, for rules from the policy; absent for token grant entries. */
  readonly location?: string;
}

export interface Explanation {
  readonly destination: { readonly host: string; readonly port: number };
  readonly tenant: string;
  readonly decision: 'allow' | 'deny';
  readonly reason: Reason;
  readonly mode: 'enforce' | 'report';
  readonly enforceWouldDeny: boolean;
  /** The rule that decided, when one did. */
  readonly decidedBy?: RuleRef;
  /** The stage that decided when it was not a rule match: `address guard`, `tenant`, or `default` (deny by default). */
  readonly decidedByStage: string;
  /** Where the addresses the guard checked came from, when it ran. */
  readonly addressSource?: 'given' | 'literal' | 'policy resolver.hosts';
  /** What each stage saw, in the order the proxy evaluates them. */
  readonly steps: ReadonlyArray<{ readonly stage: string; readonly result: string; readonly rule?: RuleRef }>;
  readonly grantAssumed: boolean;
}

export class ExplainError extends Error {}

/** Parse an explain destination: `host:port`, `host`, or a URL with a scheme. */
export function parseDestination(text: string): { host: CanonicalHost; port: number } {
  const url = /^(https?|wss?):\/\/([^/?#]+)/i.exec(text);
  if (url) {
    const scheme = (url[1] as string).toLowerCase();
    const parsed = parseAuthority(url[2] as string, scheme === 'http' || scheme === 'ws' ? 80 : 443);
    if (parsed) return parsed;
  } else {
    const parsed = parseAuthority(text, 443);
    if (parsed) return parsed;
  }
  throw new ExplainError(`"${text}" is not host[:port] or a URL`);
}

/**
 * Explain one egress decision: the very `decide()` the proxy calls, then (when addresses are given) the same
 * address guard, with every stage's outcome and the rule that decided, located in the file.
 */
export function explainEgress(policy: CompiledPolicy, input: ExplainInput): Explanation {
  const { host, port } = parseDestination(input.destination);
  const destText = host.kind === 'ip' && host.ip.family === 6 ? `[${host.host}]:${port}` : `${host.host}:${port}`;
  const grantAssumed = input.grant === undefined;
  const grants = indexGrants(input.grant ?? [destText]);
  const ref = (id: string | undefined): RuleRef | undefined => {
    if (!id) return undefined;
    const rule = policy.rules.get(id);
    if (rule) return { id, text: rule.pattern.text, location: `${policy.file}:${rule.line}:${rule.col}` };
    const grant = grants.all.find((g) => g.id === id);
    return grant ? { id, text: grant.pattern.text } : { id, text: id };
  };
  const steps: Array<{ stage: string; result: string; rule?: RuleRef }> = [];
  const tenant = policy.tenants.get(input.tenant);
  if (tenant) {
    const deny = lookupDest(tenant.deny, host, port);
    steps.push(deny.match === 'full' ? { stage: 'deny rules', result: `match (${deny.item.mode})`, rule: ref(deny.item.id) as RuleRef } : { stage: 'deny rules', result: 'no match' });
    const granted = lookupDest(grants, host, port);
    steps.push({ stage: grantAssumed ? 'assumed grant*' : 'token grant', result: granted.match === 'full' ? 'match' : granted.match === 'host-only' ? 'host matches, port does not' : 'no match', ...(granted.match !== 'none' ? { rule: ref(granted.item.id) as RuleRef } : {}) });
    const ceiling = lookupDest(tenant.allow, host, port);
    steps.push({ stage: 'ceiling', result: ceiling.match === 'full' ? 'match' : ceiling.match === 'host-only' ? 'host matches, port does not' : 'no match', ...(ceiling.match !== 'none' ? { rule: ref(ceiling.item.id) as RuleRef } : {}) });
  } else {
    steps.push({ stage: 'tenant', result: `"${input.tenant}" is not defined in the policy` });
  }

  let decision: Decision = decide(policy, { tenant: input.tenant, grants, host, port });
  let decidedByStage = tenant ? (decision.ruleId ? 'rule' : decision.allow ? 'grant' : 'default') : 'tenant';
  let addressSource: Explanation['addressSource'];
  if (decision.allow && tenant) {
    // Without --address, the policy's own fixed answers are what the proxy would use for the name.
    const fixed = host.kind === 'name' && !input.addresses ? policy.egress.resolver.hosts.get(host.host) : undefined;
    addressSource = host.kind === 'ip' ? 'literal' : input.addresses ? 'given' : fixed ? 'policy resolver.hosts' : undefined;
    const addresses: IpAddress[] = host.kind === 'ip' ? [host.ip] : (input.addresses ?? fixed ?? []).map((a) => {
      const ip = parseIp(canonicalizeHost(a)?.host ?? a);
      if (!ip) throw new ExplainError(`"${a}" is not an IP address`);
      return ip;
    });
    if (addresses.length > 0) {
      const vet = vetAddresses(host, port, addresses, tenant.guard, new SelfAddresses());
      const shown = addresses.map(formatIp).join(', ');
      if (!vet.ok) {
        steps.push({ stage: 'address guard', result: `refuses ${formatIp(vet.address)} (${vet.reason})`, ...(vet.ruleId ? { rule: ref(vet.ruleId) as RuleRef } : {}) });
        decision = { allow: false, reason: vet.reason, mode: 'enforce', enforceWouldDeny: false, ...(vet.ruleId ? { ruleId: vet.ruleId } : {}) };
        decidedByStage = 'address guard';
      } else {
        steps.push({ stage: 'address guard', result: `allows ${shown}${vet.exceptionRuleId ? ` (via ${vet.exceptionRuleId})` : ''}` });
      }
    } else {
      steps.push({ stage: 'address guard', result: 'not evaluated (give --address to say what the name resolves to)' });
    }
  }
  const decidedBy = ref(decision.ruleId);
  return {
    destination: { host: host.host, port },
    tenant: input.tenant,
    decision: decision.allow ? 'allow' : 'deny',
    reason: decision.reason,
    mode: decision.mode,
    enforceWouldDeny: decision.enforceWouldDeny,
    ...(decidedBy ? { decidedBy } : {}),
    decidedByStage,
    ...(addressSource ? { addressSource } : {}),
    steps,
    grantAssumed,
  };
}
