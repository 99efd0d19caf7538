import { getDomain } from 'tldts';
import { canonicalizeHost } from '../../netguard/canonical-host.js';
import { classifyAddress } from '../../netguard/classify-address.js';
import { cidrContains, type Cidr, type IpAddress } from '../../netguard/ip-address.js';
import type { CompiledRule, CompiledTenant } from '../compiled-policy.js';
import { hostCovers, matchHost } from '../dest-pattern.js';
import { portSetCovered } from '../port-set.js';
import type { Problem } from '../yaml-source.js';
import type { LintContext } from './section.js';

export const EGRESS_LINT_CODES = {
  'shadowed-rule': 'A rule that another rule of the same list already covers (hosts and ports): one of them can go.',
  'never-matches': 'A rule that can never take effect: an allow rule fully covered by an enforced deny rule, or a grant of private addresses the address guard always refuses.',
  'empty-ceiling': 'A tenant whose egress ceiling is empty and that has no broker access, so its sessions can reach nothing.',
  'broad-wildcard': 'A wildcard over a shared hosting suffix (public suffix list, private section) such as *.github.io: it admits every customer of that host.',
  'unused-exception': 'An unsafe_allow_private exception for a host no tenant may reach: it never applies.',
} as const;

const covers = (outer: CompiledRule, inner: CompiledRule): boolean => hostCovers(outer.pattern, inner.pattern) && portSetCovered(inner.pattern.ports, [outer.pattern.ports]);

/** Rules in a list fully covered by another rule of that list (the later of two identical rules is reported). */
function shadowed(ctx: LintContext, rules: readonly CompiledRule[], scope: (rule: CompiledRule) => boolean): Problem[] {
  const out: Problem[] = [];
  rules.forEach((rule, i) => {
    if (!scope(rule)) return;
    const by = rules.find((other, j) => j !== i && covers(other, rule) && (!covers(rule, other) || j < i));
    if (by) out.push(ctx.at(rule, 'warning', 'shadowed-rule', `${rule.pattern.text} is already covered by ${by.pattern.text} (${by.id}, line ${by.line})`));
  });
  return out;
}

const lastAddress = (range: Cidr): IpAddress => {
  const bytes = Uint8Array.from(range.bytes);
  for (let bit = range.prefix; bit < bytes.length * 8; bit++) bytes[bit >> 3] = (bytes[bit >> 3] as number) | (0x80 >> (bit & 7));
  return { family: range.family, bytes };
};

/** A CIDR grant whose every address the guard refuses, with no exception naming an address inside it. */
function privateGrant(ctx: LintContext, rule: CompiledRule): boolean {
  if (rule.pattern.kind !== 'cidr') return false;
  const range = rule.pattern.cidr;
  const first = classifyAddress(range).class;
  const last = classifyAddress(lastAddress(range)).class;
  if (first === 'public' || last === 'public') return false;
  return !ctx.policy.egress.exceptions.some((e) => {
    const ip = parseHostIp(e.host);
    return ip !== null && cidrContains(range, ip);
  });
}

function parseHostIp(host: string): IpAddress | null {
  const canonical = canonicalizeHost(host);
  return canonical?.kind === 'ip' ? canonical.ip : null;
}

function lintTenant(ctx: LintContext, tenant: CompiledTenant): Problem[] {
  const out: Problem[] = [];
  const allow = tenant.allow.all;
  const deny = tenant.deny.all;
  // A tenant with broker access and no egress is a deliberate design (no internet, files and APIs through the broker).
  if (allow.length === 0 && !tenant.broker) {
    out.push(ctx.atPath(['tenants', tenantIndex(ctx, tenant.name)], 'warning', 'empty-ceiling', `tenant ${tenant.name} has no egress.allow rules: its sessions can reach nothing`));
  }
  out.push(...shadowed(ctx, allow, () => true));
  // Deny rules: a tenant's own rule covered by a global one (or by another of its own) adds nothing.
  out.push(...shadowed(ctx, deny, (r) => r.id.startsWith(`tenants[${tenant.name}]`)));
  for (const rule of allow) {
    const deniedBy = deny.find((d) => d.mode === 'enforce' && covers(d, rule));
    if (deniedBy) out.push(ctx.at(rule, 'warning', 'never-matches', `${rule.pattern.text} is always refused by ${deniedBy.id} (line ${deniedBy.line})`));
    else if (privateGrant(ctx, rule)) {
      out.push(ctx.at(rule, 'warning', 'never-matches', `${rule.pattern.text} holds only non-public addresses and no unsafe_allow_private exception names one of them: the address guard refuses it`));
    }
    if (rule.pattern.kind === 'wildcard' && getDomain(rule.pattern.suffix, { allowPrivateDomains: true }) === null) {
      out.push(ctx.at(rule, 'warning', 'broad-wildcard', `${rule.pattern.text} admits every site hosted under ${rule.pattern.suffix}, a shared hosting suffix; name the sites you need`));
    }
  }
  return out;
}

function tenantIndex(ctx: LintContext, name: string): number {
  const tenants = (ctx.source.data as { tenants?: Array<{ name?: string }> }).tenants ?? [];
  return Math.max(0, tenants.findIndex((t) => t.name === name));
}

/** Egress lint rules beyond what the schema and compiler already refuse. */
export function lintEgress(ctx: LintContext): Problem[] {
  const out: Problem[] = [];
  for (const tenant of ctx.policy.tenants.values()) out.push(...lintTenant(ctx, tenant));
  // Global deny rules covered by other global deny rules.
  const globalDeny = [...ctx.policy.rules.values()].filter((r) => r.id.startsWith('egress.deny['));
  out.push(...shadowed(ctx, globalDeny, () => true));
  ctx.policy.egress.exceptions.forEach((exception, i) => {
    const host = canonicalizeHost(exception.host);
    const reachable = host !== null && [...ctx.policy.tenants.values()].some((t) => t.allow.all.some((r) => matchHost(r.pattern, host)));
    if (!reachable) out.push(ctx.atPath(['egress', 'unsafe_allow_private', i, 'host'], 'warning', 'unused-exception', `no tenant may reach ${exception.host}, so this exception never applies`));
  });
  return out;
}
