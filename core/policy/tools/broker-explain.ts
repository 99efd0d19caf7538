import type { Reason } from '../../errors/index.js';
import type { BrokerGrant, MountMode } from '../../tokens/issue-broker.js';
import { formatSize } from '../../util/size.js';
import { ceilingGrant, decideFileOp, decideUpstream, FILE_OPS, narrowBrokerGrant, type FileOp } from '../broker-decide.js';
import { resolveMount } from '../broker-path.js';
import type { BrokerRuleRef, TenantBrokerSettings } from '../compile-broker.js';
import type { CompiledPolicy } from '../compiled-policy.js';
import type { RuleRef } from './explain.js';

/** A broker token's grant as its claims carry it; either part absent means none. */
export interface BrokerGrantInput {
  readonly mounts?: Readonly<Record<string, MountMode>>;
  readonly upstreams?: readonly string[];
}

export interface BrokerExplainInput {
  readonly tenant: string;
  /** The token's grant (its `mounts` and `upstreams` claims). Absent: the tenant's whole ceiling, i.e. the policy alone. */
  readonly grant?: BrokerGrantInput;
  /** A file operation on a logical path (`/outputs/report.txt`), or an upstream by name: exactly one. */
  readonly file?: { readonly path: string; readonly op: FileOp };
  readonly upstream?: string;
}

export interface BrokerExplanation {
  readonly kind: 'file' | 'upstream';
  readonly tenant: string;
  /** The path or the upstream name. */
  readonly subject: string;
  readonly op?: FileOp;
  readonly decision: 'allow' | 'deny';
  readonly reason: Reason;
  /** What the broker would say in its refusal (or, when allowed, what is allowed). */
  readonly detail: string;
  readonly decidedBy?: RuleRef;
  /** What decided when no policy rule did: `tenant`, `path`, `grant` (the token's own grant) or `default`. */
  readonly decidedByStage: 'rule' | 'tenant' | 'path' | 'grant' | 'default';
  readonly steps: ReadonlyArray<{ readonly stage: string; readonly result: string; readonly rule?: RuleRef }>;
  readonly grantAssumed: boolean;
}

const toGrant = (input: BrokerGrantInput): BrokerGrant => ({ fs: 'explain', mounts: input.mounts ?? {}, upstreams: input.upstreams ?? [] });

const refOf = (policy: CompiledPolicy, rule: BrokerRuleRef | undefined, text: string): RuleRef | undefined =>
  rule ? { id: rule.id, text, location: `${policy.file}:${rule.line}:${rule.col}` } : undefined;

/** The mount segment of a path as the broker reads it (`/outputs/a/b` -> `/outputs`). */
const mountOf = (path: string): string => {
  const second = path.indexOf('/', 1);
  return second === -1 ? path : path.slice(0, second);
};

function explainFile(policy: CompiledPolicy, ceiling: TenantBrokerSettings, grant: BrokerGrant, given: boolean, input: BrokerExplainInput & { file: { path: string; op: FileOp } }): Omit<BrokerExplanation, 'tenant' | 'grantAssumed'> {
  const { path, op } = input.file;
  const steps: Array<{ stage: string; result: string; rule?: RuleRef }> = [];
  const mount = mountOf(path);
  const ceilingMount = ceiling.mounts.get(mount);
  const ceilingRule = refOf(policy, ceiling.rules.mounts.get(mount), ceilingMount ? `${ceilingMount.path} ${ceilingMount.mode}` : mount);
  const asked = Object.hasOwn(grant.mounts, mount) ? grant.mounts[mount] : undefined;
  // The very decision the broker makes: the grant narrowed to the ceiling, then the path and the mount.
  const narrowed = narrowBrokerGrant(grant, ceiling);
  const d = decideFileOp(narrowed, path, op);
  steps.push({ stage: 'path', result: d.reason === 'path_invalid' ? `refused: ${d.detail}` : `valid, under ${mount}` });
  steps.push({ stage: given ? 'token grant' : 'assumed grant*', result: asked ? `${mount} ${asked}` : `no mount ${mount}` });
  steps.push({ stage: 'ceiling', result: ceilingMount ? `${mount} ${ceilingMount.mode}` : `no mount ${mount}`, ...(ceilingRule ? { rule: ceilingRule } : {}) });
  const effective = resolveMount(narrowed, path, FILE_OPS[op].kind);
  steps.push({ stage: 'session may', result: effective ? `${effective.mount} ${effective.mode}` : 'no mount for this path' });
  const base = { kind: 'file' as const, subject: path, op, steps };
  if (d.allow) {
    const limit = FILE_OPS[op].need === 'write' && ceilingMount ? `, files up to ${formatSize(ceilingMount.maxObjectBytes)}` : '';
    return { ...base, decision: 'allow', reason: 'allowed', detail: `${op} under ${d.resolved.mount} (${d.resolved.mode})${limit}`, ...(ceilingRule ? { decidedBy: ceilingRule } : {}), decidedByStage: 'rule' };
  }
  if (d.reason === 'path_invalid') return { ...base, decision: 'deny', reason: d.reason, detail: d.detail, decidedByStage: 'path' };
  if (d.reason === 'mount_read_only' && ceilingMount?.mode === 'ro') return { ...base, decision: 'deny', reason: d.reason, detail: d.detail, ...(ceilingRule ? { decidedBy: ceilingRule } : {}), decidedByStage: 'rule' };
  // Read-only by the token's own grant, or a mount the ceiling has but the token does not grant.
  const byGrant = d.reason === 'mount_read_only' || (ceilingMount !== undefined && given);
  return { ...base, decision: 'deny', reason: d.reason, detail: d.detail, decidedByStage: byGrant ? 'grant' : 'default' };
}

function explainUpstream(policy: CompiledPolicy, ceiling: TenantBrokerSettings, grant: BrokerGrant, given: boolean, name: string): Omit<BrokerExplanation, 'tenant' | 'grantAssumed'> {
  const steps: Array<{ stage: string; result: string; rule?: RuleRef }> = [];
  const defined = policy.broker.upstreams.get(name);
  const ceilingRule = refOf(policy, ceiling.rules.upstreams.get(name), name);
  steps.push({ stage: 'defined as', result: defined ? defined.url : `"${name}" is not defined in broker.upstreams` });
  steps.push({ stage: given ? 'token grant' : 'assumed grant*', result: grant.upstreams.includes(name) ? 'grants it' : 'does not grant it' });
  steps.push({ stage: 'ceiling', result: ceiling.upstreams.has(name) ? 'lists it' : 'does not list it', ...(ceilingRule ? { rule: ceilingRule } : {}) });
  const d = decideUpstream(policy.broker.upstreams, narrowBrokerGrant(grant, ceiling), name);
  const base = { kind: 'upstream' as const, subject: name, steps };
  if (d.allow) return { ...base, decision: 'allow', reason: 'allowed', detail: `calls to ${d.upstream.url} with the broker's credential`, ...(ceilingRule ? { decidedBy: ceilingRule } : {}), decidedByStage: 'rule' };
  return { ...base, decision: 'deny', reason: d.reason, detail: d.detail, decidedByStage: ceiling.upstreams.has(name) && given ? 'grant' : 'default' };
}

/**
 * Explain one broker decision: the grant narrowed to the tenant's ceiling and the path or upstream check, with the
 * very functions the broker calls on each request (core/policy/broker-decide.ts), and the ceiling entry that
 * decided, located in the file.
 */
export function explainBroker(policy: CompiledPolicy, input: BrokerExplainInput): BrokerExplanation {
  const grantAssumed = input.grant === undefined;
  const ceiling = policy.tenants.get(input.tenant)?.broker;
  if (!ceiling) {
    // The broker refuses every token of a tenant without a broker section (auth_detail tenant_without_broker).
    const defined = policy.tenants.has(input.tenant);
    return {
      kind: input.file ? 'file' : 'upstream',
      tenant: input.tenant,
      subject: input.file?.path ?? input.upstream ?? '',
      ...(input.file ? { op: input.file.op } : {}),
      decision: 'deny',
      reason: 'auth_invalid',
      detail: defined ? `tenant ${input.tenant} has no broker section: no broker token is accepted for it` : `"${input.tenant}" is not defined in the policy`,
      decidedByStage: 'tenant',
      steps: [{ stage: 'tenant', result: defined ? 'has no broker section' : 'not defined in the policy' }],
      grantAssumed,
    };
  }
  const grant = input.grant ? toGrant(input.grant) : ceilingGrant(ceiling);
  const given = !grantAssumed;
  const body = input.file ? explainFile(policy, ceiling, grant, given, input as BrokerExplainInput & { file: { path: string; op: FileOp } }) : explainUpstream(policy, ceiling, grant, given, input.upstream ?? '');
  return { ...body, tenant: input.tenant, grantAssumed };
}
