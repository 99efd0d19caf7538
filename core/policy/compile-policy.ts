import { createHash } from 'node:crypto';
import { canonicalizeHost } from '../netguard/canonical-host.js';
import { parseCidr } from '../netguard/ip-address.js';
import type { AddressDenyRule, PrivateException } from '../netguard/vet-addresses.js';
import { parseDuration } from '../util/duration.js';
import { compileAudit } from './compile-audit.js';
import { brokerLimits, compileBroker, compileTenantBroker, DEFAULT_BROKER_LIMITS } from './compile-broker.js';
import { brokerSectionSchema } from './broker-schema.js';
import type { CompiledPolicy, CompiledRule, CompiledTenant, Mode, SessionLimits } from './compiled-policy.js';
import { POLICY_BOUNDS, POLICY_DEFAULTS as D } from './defaults.js';
import { parseDestPattern } from './dest-pattern.js';
import { portInSet } from './port-set.js';
import { buildIndex } from './rule-index.js';
import { auditSectionSchema } from './audit-schema.js';
import { egressSectionSchema, policySchema, tenantSchema, tokensSectionSchema, type DestRuleInput, type PolicyDocument } from './schema.js';
import { schemaProblems } from './schema-problems.js';
import { locate, parseYamlSource, type PathItem, type Problem, type YamlSource } from './yaml-source.js';

export interface CompileResult {
  /** Null when any error was found. */
  readonly policy: CompiledPolicy | null;
  /** Every error and warning, in file order. */
  readonly problems: readonly Problem[];
  /**
   * What compiled of a policy with errors (invalid rules and sections left out), so lint can still report its
   * semantic warnings in the same run. Never used to enforce anything.
   */
  readonly partial?: CompiledPolicy;
}

export const policyVersion = (text: string): string => `sha256:${createHash('sha256').update(text).digest('hex').slice(0, 16)}`;

class Compiler {
  readonly problems: Problem[] = [];
  readonly rules = new Map<string, CompiledRule>();
  /** Ids of rules that set their own mode (they keep it whatever the tenant's mode is). */
  readonly explicitMode = new Set<string>();

  constructor(private readonly source: YamlSource) {}

  report(path: readonly PathItem[], severity: Problem['severity'], code: string, message: string, which: 'key' | 'value' = 'value'): void {
    const { line, col } = locate(this.source, path, which);
    this.problems.push({ file: this.source.file, line, col, severity, code, message });
  }

  duration(path: readonly PathItem[], text: string | undefined, fallback: string, max?: number): number {
    const ms = parseDuration(text ?? fallback) ?? (parseDuration(fallback) as number);
    if (max !== undefined && ms > max) this.report(path, 'error', path[path.length - 1] === 'max_ttl' ? 'ttl-too-long' : 'out-of-range', `"${text}" is above the hard limit of ${max / 60_000} minutes`);
    return ms;
  }

  rule(path: readonly PathItem[], id: string, input: DestRuleInput, purpose: 'grant' | 'deny', defaultMode: Mode): CompiledRule | null {
    const text = typeof input === 'string' ? input : input.host;
    const ports = typeof input === 'string' ? undefined : input.ports;
    const result = parseDestPattern(text, ports === undefined ? { purpose } : { purpose, ports });
    if (!result.ok) {
      this.report(typeof input === 'string' ? path : [...path, 'host'], 'error', result.code, result.message);
      return null;
    }
    if (typeof input !== 'string' && input.mode !== undefined && purpose === 'grant') {
      this.report([...path, 'mode'], 'error', 'mode-not-applicable', 'mode applies to deny rules; set report mode on the tenant to trial a narrower ceiling', 'key');
    }
    const { line, col } = locate(this.source, path);
    const mode = typeof input === 'string' ? defaultMode : (input.mode ?? defaultMode);
    if (typeof input !== 'string' && input.mode !== undefined) this.explicitMode.add(id);
    const rule: CompiledRule = { id, pattern: result.pattern, mode, line, col };
    this.rules.set(id, rule);
    return rule;
  }

  rules_(path: readonly PathItem[], idPrefix: string, list: readonly DestRuleInput[] | undefined, purpose: 'grant' | 'deny', mode: Mode): CompiledRule[] {
    const out: CompiledRule[] = [];
    (list ?? []).forEach((input, i) => {
      const rule = this.rule([...path, i], `${idPrefix}[${i}]`, input, purpose, mode);
      if (rule) out.push(rule);
    });
    return out;
  }

  exceptions(doc: PolicyDocument): PrivateException[] {
    const out: PrivateException[] = [];
    (doc.egress?.unsafe_allow_private ?? []).forEach((entry, i) => {
      const path = ['egress', 'unsafe_allow_private', i];
      const host = canonicalizeHost(entry.host);
      if (!host) this.report([...path, 'host'], 'error', 'invalid-host', `"${entry.host}" is not a host name or address (exceptions name one exact host)`);
      const range = parseCidr(entry.cidr);
      if (!range) this.report([...path, 'cidr'], 'error', 'invalid-cidr', `"${entry.cidr}" is not a CIDR (address/prefix with the host bits zero)`);
      else if (range.prefix < (range.family === 4 ? POLICY_BOUNDS.minGrantPrefixV4 : POLICY_BOUNDS.minGrantPrefixV6)) {
        this.report([...path, 'cidr'], 'error', 'over-broad', `"${entry.cidr}" is too wide for an exception; name the narrow range the host lives in`);
      }
      if (host && range) {
        // A stated reason is a reviewed exception; an unexplained one is flagged for review.
        if (!entry.reason) this.report(path, 'warning', 'unsafe-exception', `${host.host} may reach private range ${range.text}, and no reason says why`);
        out.push({ host: host.host, cidr: range, ruleId: `egress.unsafe_allow_private[${i}]` });
      }
    });
    return out;
  }

  resolverSettings(doc: PolicyDocument): CompiledPolicy['egress']['resolver'] {
    const r = doc.egress?.resolver;
    const hosts = new Map<string, string[]>();
    for (const [name, addresses] of Object.entries(r?.hosts ?? {})) {
      const host = canonicalizeHost(name);
      if (host?.kind !== 'name') this.report(['egress', 'resolver', 'hosts', name], 'error', 'invalid-host', `"${name}" is not a host name`, 'key');
      addresses.forEach((a, i) => {
        if (canonicalizeHost(a)?.kind !== 'ip') this.report(['egress', 'resolver', 'hosts', name, i], 'error', 'invalid-address', `"${a}" is not an IP address`);
      });
      if (host) hosts.set(host.host, addresses);
    }
    (r?.servers ?? []).forEach((s, i) => {
      const ok = /^\d{1,3}(\.\d{1,3}){3}(:\d{1,5})?$/.test(s) || /^\[[0-9a-fA-F:.]+\](:\d{1,5})?$/.test(s) || /^[0-9a-fA-F:]+$/.test(s);
      if (!ok) this.report(['egress', 'resolver', 'servers', i], 'error', 'invalid-address', `"${s}" is not "ip" or "ip:port"`);
    });
    return { mode: r?.mode ?? D.egress.resolver.mode, servers: r?.servers ?? [], hosts };
  }
}

const denyGuardRules = (rules: readonly CompiledRule[]): AddressDenyRule[] =>
  rules.flatMap((rule) =>
    rule.pattern.kind === 'cidr'
      ? [{ cidr: rule.pattern.cidr, ruleId: rule.id, report: rule.mode === 'report', matchesPort: (port: number) => portInSet(rule.pattern.ports, port) }]
      : [],
  );

function compileDocument(doc: PolicyDocument, source: YamlSource): CompileResult {
  const c = new Compiler(source);
  const maxTtlMs = c.duration(['tokens', 'max_ttl'], doc.tokens?.max_ttl, D.tokens.maxTtl, POLICY_BOUNDS.maxTtlMs);
  const defaultTtlMs = c.duration(['tokens', 'default_ttl'], doc.tokens?.default_ttl, D.tokens.defaultTtl);
  const clockSkewMs = c.duration(['tokens', 'clock_skew'], doc.tokens?.clock_skew, D.tokens.clockSkew, POLICY_BOUNDS.maxClockSkewMs);
  if (doc.tokens?.default_ttl !== undefined && defaultTtlMs > maxTtlMs) {
    c.report(['tokens', 'default_ttl'], 'error', 'ttl-too-long', `default_ttl ${doc.tokens.default_ttl} is above max_ttl`);
  }

  const egressMode: Mode = doc.egress?.mode ?? D.egress.mode;
  const L = doc.egress?.limits;
  const limits = {
    maxConnections: L?.max_connections ?? D.egress.limits.maxConnections,
    maxHeaderBytes: L?.max_header_bytes ?? D.egress.limits.maxHeaderBytes,
    headerTimeoutMs: c.duration(['egress', 'limits', 'header_timeout'], L?.header_timeout, D.egress.limits.headerTimeout),
    clientIdleTimeoutMs: c.duration(['egress', 'limits', 'client_idle_timeout'], L?.client_idle_timeout, D.egress.limits.clientIdleTimeout),
    tunnelIdleTimeoutMs: c.duration(['egress', 'limits', 'tunnel_idle_timeout'], L?.tunnel_idle_timeout, D.egress.limits.tunnelIdleTimeout),
    connectTimeoutMs: c.duration(['egress', 'limits', 'connect_timeout'], L?.connect_timeout, D.egress.limits.connectTimeout),
    responseTimeoutMs: c.duration(['egress', 'limits', 'response_timeout'], L?.response_timeout, D.egress.limits.responseTimeout),
    endTunnelsAtTokenExpiry: L?.end_tunnels_at_token_expiry ?? D.egress.limits.endTunnelsAtTokenExpiry,
  };
  const baseSession: SessionLimits = {
    maxConnections: L?.per_session?.max_connections ?? D.egress.limits.perSession.maxConnections,
    newConnectionsPerSecond: L?.per_session?.new_connections_per_second ?? D.egress.limits.perSession.newConnectionsPerSecond,
    burst: L?.per_session?.burst ?? D.egress.limits.perSession.burst,
  };
  const globalDeny = c.rules_(['egress', 'deny'], 'egress.deny', doc.egress?.deny, 'deny', egressMode);
  const exceptions = c.exceptions(doc);
  const resolver = c.resolverSettings(doc);

  const reportTo = (path: readonly PathItem[], severity: Problem['severity'], code: string, message: string): void => c.report(path, severity, code, message);
  const broker = compileBroker(doc.broker, reportTo);
  const brokerBase = brokerLimits(DEFAULT_BROKER_LIMITS, doc.broker?.limits);

  const tenants = new Map<string, CompiledTenant>();
  (doc.tenants ?? []).forEach((t, i) => {
    if (!t) return; // a tenant that failed the schema (reported there); its neighbours are still checked
    const path = ['tenants', i];
    if (tenants.has(t.name)) {
      c.report([...path, 'name'], 'error', 'duplicate-tenant', `tenant "${t.name}" is defined more than once`);
      return;
    }
    const mode: Mode = t.mode ?? egressMode;
    const id = `tenants[${t.name}].egress`;
    const allow = c.rules_([...path, 'egress', 'allow'], `${id}.allow`, t.egress?.allow, 'grant', mode);
    const ownDeny = c.rules_([...path, 'egress', 'deny'], `${id}.deny`, t.egress?.deny, 'deny', mode);
    // A global deny rule follows the tenant's mode unless the rule sets its own.
    const inheritedDeny = globalDeny.map((r) => (c.explicitMode.has(r.id) ? r : { ...r, mode }));
    const deny = [...inheritedDeny, ...ownDeny];
    const s = t.egress?.limits?.per_session;
    tenants.set(t.name, {
      name: t.name,
      mode,
      allow: buildIndex(allow),
      deny: buildIndex(deny),
      guard: { exceptions, denyRules: denyGuardRules(deny) },
      sessionLimits: {
        maxConnections: s?.max_connections ?? baseSession.maxConnections,
        newConnectionsPerSecond: s?.new_connections_per_second ?? baseSession.newConnectionsPerSecond,
        burst: s?.burst ?? baseSession.burst,
      },
      broker: compileTenantBroker(path, t.broker, broker, brokerBase, reportTo, { tenant: t.name, locate: (p) => locate(source, p) }),
      line: locate(source, path).line,
    });
  });

  const audit = compileAudit(doc.audit, reportTo);
  const problems = [...c.problems].sort((a, b) => a.line - b.line || a.col - b.col);
  const policy: CompiledPolicy = {
    version: policyVersion(source.text),
    file: source.file,
    tokens: { maxTtlMs, defaultTtlMs: Math.min(defaultTtlMs, maxTtlMs), clockSkewMs },
    egress: { mode: egressMode, limits, resolver, exceptions },
    tenants,
    broker,
    audit,
    rules: c.rules,
    warnings: problems,
  };
  if (problems.some((p) => p.severity === 'error')) return { policy: null, problems, partial: policy };
  return { policy: Object.freeze(policy), problems };
}

/** Parse, validate and compile a policy. Never throws on bad input: every problem comes back located. */
export function compilePolicy(text: string, file: string): CompileResult {
  const { source, problems } = parseYamlSource(text, file);
  if (!source) return { policy: null, problems };
  if (source.data === null || typeof source.data !== 'object' || Array.isArray(source.data)) {
    return { policy: null, problems: [{ file, line: 1, col: 1, severity: 'error', code: 'not-a-mapping', message: 'a policy is a YAML mapping starting with "version: 1"' }] };
  }
  const parsed = policySchema.safeParse(source.data);
  if (!parsed.success) {
    const found = schemaProblems(policySchema as never, parsed.error.issues, source);
    // Report every problem, not one phase at a time: sections that are themselves valid are compiled too, so
    // an over-broad pattern shows up in the same run as a typo elsewhere in the file.
    const partial = compileDocument(validSections(source.data as Record<string, unknown>), source);
    const seen = new Set(found.map((p) => `${p.line}:${p.col}`));
    const all = [...found, ...partial.problems.filter((p) => !seen.has(`${p.line}:${p.col}`))];
    return { policy: null, problems: all.sort((a, b) => a.line - b.line || a.col - b.col), ...(partial.partial ?? partial.policy ? { partial: (partial.partial ?? partial.policy) as CompiledPolicy } : {}) };
  }
  return compileDocument(parsed.data, source);
}

/** The parts of an invalid policy that pass the schema on their own, at their original positions. */
function validSections(data: Record<string, unknown>): PolicyDocument {
  const doc: PolicyDocument = { version: 1 };
  const tokens = tokensSectionSchema.safeParse(data['tokens']);
  if (tokens.success && tokens.data) doc.tokens = tokens.data;
  const egress = egressSectionSchema.safeParse(data['egress']);
  if (egress.success && egress.data) doc.egress = egress.data;
  const broker = brokerSectionSchema.safeParse(data['broker']);
  if (broker.success && broker.data) doc.broker = broker.data;
  const audit = auditSectionSchema.safeParse(data['audit']);
  if (audit.success && audit.data) doc.audit = audit.data;
  if (Array.isArray(data['tenants'])) {
    // Invalid tenants become holes so every valid one keeps its index (locations are computed from it).
    doc.tenants = (data['tenants'] as unknown[]).map((t) => {
      const tenant = tenantSchema.safeParse(t);
      return tenant.success ? tenant.data : (undefined as never);
    });
  }
  return doc;
}
