import type { CompiledPolicy, CompiledRule, CompiledTenant } from '../compiled-policy.js';
import { hostCovers } from '../dest-pattern.js';
import { portSetCovered } from '../port-set.js';
import { formatDuration } from '../../util/duration.js';
import type { DiffEntry } from './section.js';

/** Rules of `next` whose destinations `prev` did not cover (hosts by one rule, ports by their union). */
function uncovered(next: readonly CompiledRule[], prev: readonly CompiledRule[]): CompiledRule[] {
  return next.filter((rule) => {
    const hosts = prev.filter((p) => hostCovers(p.pattern, rule.pattern));
    return !portSetCovered(rule.pattern.ports, hosts.map((p) => p.pattern.ports));
  });
}

const enforced = (rules: readonly CompiledRule[]): CompiledRule[] => rules.filter((r) => r.mode === 'enforce');

function tenantDiff(name: string, before: CompiledTenant | undefined, after: CompiledTenant | undefined): DiffEntry[] {
  const out: DiffEntry[] = [];
  const entry = (change: DiffEntry['change'], subject: string, extra: Partial<DiffEntry> = {}): void => {
    out.push({ section: 'egress', tenant: name, change, subject, ...extra });
  };
  if (!before && after) entry('added', 'tenant', { after: `${after.allow.all.length} allow rule(s), mode ${after.mode}` });
  if (before && !after) entry('removed', 'tenant', { before: `${before.allow.all.length} allow rule(s)` });
  const prevAllow = before?.allow.all ?? [];
  const nextAllow = after?.allow.all ?? [];
  for (const r of uncovered(nextAllow, prevAllow)) entry('newly-allowed', r.pattern.text, { after: r.id });
  for (const r of uncovered(prevAllow, nextAllow)) entry('no-longer-allowed', r.pattern.text, { before: r.id });
  // Deny rules matter for tenants that exist on both sides; an added or removed tenant is its ceiling.
  if (before && after) {
    const prevDeny = enforced(before.deny.all);
    const nextDeny = enforced(after.deny.all);
    for (const r of uncovered(nextDeny, prevDeny)) entry('newly-denied', r.pattern.text, { after: r.id });
    for (const r of uncovered(prevDeny, nextDeny)) entry('no-longer-denied', r.pattern.text, { before: r.id });
  }
  if (before && after) {
    if (before.mode !== after.mode) entry('changed', 'mode', { before: before.mode, after: after.mode });
    for (const [key, label] of [['maxConnections', 'max_connections'], ['newConnectionsPerSecond', 'new_connections_per_second'], ['burst', 'burst']] as const) {
      if (before.sessionLimits[key] !== after.sessionLimits[key]) entry('changed', `per_session.${label}`, { before: String(before.sessionLimits[key]), after: String(after.sessionLimits[key]) });
    }
  }
  return out;
}

const LIMIT_NAMES: Readonly<Record<string, string>> = {
  maxConnections: 'max_connections',
  maxHeaderBytes: 'max_header_bytes',
  headerTimeoutMs: 'header_timeout',
  clientIdleTimeoutMs: 'client_idle_timeout',
  tunnelIdleTimeoutMs: 'tunnel_idle_timeout',
  connectTimeoutMs: 'connect_timeout',
  responseTimeoutMs: 'response_timeout',
  endTunnelsAtTokenExpiry: 'end_tunnels_at_token_expiry',
};

const show = (key: string, value: unknown): string => (key.endsWith('Ms') && typeof value === 'number' ? formatDuration(value) : String(value));

/** What the egress section of a policy change does: per tenant, destinations gained and lost, limits, exceptions. */
export function diffEgress(before: CompiledPolicy, after: CompiledPolicy): DiffEntry[] {
  const out: DiffEntry[] = [];
  const names = new Set([...before.tenants.keys(), ...after.tenants.keys()]);
  for (const name of [...names].sort()) out.push(...tenantDiff(name, before.tenants.get(name), after.tenants.get(name)));
  for (const [key, label] of Object.entries(LIMIT_NAMES)) {
    const a = (before.egress.limits as unknown as Record<string, unknown>)[key];
    const b = (after.egress.limits as unknown as Record<string, unknown>)[key];
    if (a !== b) out.push({ section: 'egress', change: 'changed', subject: `limits.${label}`, before: show(key, a), after: show(key, b) });
  }
  const exceptionText = (e: { host: string; cidr: { text: string } }): string => `${e.host} -> ${e.cidr.text}`;
  const prev = new Set(before.egress.exceptions.map(exceptionText));
  const next = new Set(after.egress.exceptions.map(exceptionText));
  for (const e of next) if (!prev.has(e)) out.push({ section: 'egress', change: 'added', subject: `unsafe_allow_private ${e}` });
  for (const e of prev) if (!next.has(e)) out.push({ section: 'egress', change: 'removed', subject: `unsafe_allow_private ${e}` });
  if (before.egress.mode !== after.egress.mode) out.push({ section: 'egress', change: 'changed', subject: 'mode', before: before.egress.mode, after: after.egress.mode });
  // Fixed DNS answers decide where names go: a new one is as significant as a new grant.
  const answers = (p: CompiledPolicy): Map<string, string> => new Map([...p.egress.resolver.hosts].map(([h, a]) => [h, [...a].sort().join(', ')]));
  const [ra, rb] = [answers(before), answers(after)];
  for (const [host, a] of rb) if (ra.get(host) !== a) out.push({ section: 'egress', change: ra.has(host) ? 'changed' : 'added', subject: `resolver.hosts ${host}`, ...(ra.has(host) ? { before: ra.get(host) as string } : {}), after: a });
  for (const [host, a] of ra) if (!rb.has(host)) out.push({ section: 'egress', change: 'removed', subject: `resolver.hosts ${host}`, before: a });
  if (before.egress.resolver.mode !== after.egress.resolver.mode) out.push({ section: 'egress', change: 'changed', subject: 'resolver.mode', before: before.egress.resolver.mode, after: after.egress.resolver.mode });
  if (before.egress.resolver.servers.join(',') !== after.egress.resolver.servers.join(',')) out.push({ section: 'egress', change: 'changed', subject: 'resolver.servers', before: before.egress.resolver.servers.join(', ') || '(system)', after: after.egress.resolver.servers.join(', ') || '(system)' });
  return out;
}

/** The audit trail: durability, segments, retention, and where events are shipped. */
export function diffAudit(before: CompiledPolicy, after: CompiledPolicy): DiffEntry[] {
  const out: DiffEntry[] = [];
  const a = before.audit;
  const b = after.audit;
  if (a.durability !== b.durability) out.push({ section: 'audit', change: 'changed', subject: 'durability', before: a.durability, after: b.durability });
  for (const [key, label] of [['flushIntervalMs', 'flush_interval'], ['segmentMaxAgeMs', 'segment_max_age'], ['checkpointIntervalMs', 'checkpoint_interval'], ['retentionMs', 'retention']] as const) {
    if (a[key] !== b[key]) out.push({ section: 'audit', change: 'changed', subject: label, before: formatDuration(a[key]), after: formatDuration(b[key]) });
  }
  for (const key of ['segmentMaxBytes', 'maxPendingBytes'] as const) {
    if (a[key] !== b[key]) out.push({ section: 'audit', change: 'changed', subject: key === 'segmentMaxBytes' ? 'segment_max_bytes' : 'max_pending_bytes', before: String(a[key]), after: String(b[key]) });
  }
  const describe = (s: (typeof a.sinks)[number]): string => `${s.type} ${'address' in s ? s.address : s.url}`;
  const sa = new Map(a.sinks.map((s) => [s.name, s]));
  const sb = new Map(b.sinks.map((s) => [s.name, s]));
  for (const [name, s] of sb) {
    const old = sa.get(name);
    if (!old) out.push({ section: 'audit', change: 'added', subject: `sink ${name}`, after: describe(s) });
    else if (JSON.stringify(old) !== JSON.stringify(s)) out.push({ section: 'audit', change: 'changed', subject: `sink ${name}`, before: describe(old), after: describe(s) });
  }
  for (const [name, s] of sa) if (!sb.has(name)) out.push({ section: 'audit', change: 'removed', subject: `sink ${name}`, before: describe(s) });
  return out;
}

/** Token lifetime changes. */
export function diffTokens(before: CompiledPolicy, after: CompiledPolicy): DiffEntry[] {
  const out: DiffEntry[] = [];
  for (const [key, label] of [['maxTtlMs', 'max_ttl'], ['defaultTtlMs', 'default_ttl'], ['clockSkewMs', 'clock_skew']] as const) {
    if (before.tokens[key] !== after.tokens[key]) out.push({ section: 'tokens', change: 'changed', subject: label, before: formatDuration(before.tokens[key]), after: formatDuration(after.tokens[key]) });
  }
  return out;
}
