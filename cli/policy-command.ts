import { readFile } from 'node:fs/promises';
import { relative, resolve } from 'node:path';
import { decodeJwt } from 'jose';
import { GatehouseError } from '../core/errors/index.js';
import { compilePolicy, formatProblem, type Problem } from '../core/policy/index.js';
import { policyJsonSchemaText, testFileJsonSchemaText } from '../core/policy/json-schema.js';
import { SECTIONS } from '../core/policy/tools/sections.js';
import type { FileOp } from '../core/policy/broker-decide.js';
import { explainBroker, type BrokerExplanation, type BrokerGrantInput } from '../core/policy/tools/broker-explain.js';
import { explainEgress, ExplainError, type Explanation, type RuleRef } from '../core/policy/tools/explain.js';
import { parseMountArg, type MountMode } from '../core/tokens/index.js';
import { lintCodes, lintPolicy } from '../core/policy/tools/lint-policy.js';
import { findTestFiles, runTestFile, toJunit, type FileResult } from '../core/policy/tools/policy-test.js';
import { policyFileSetting } from './runtime-config.js';
import type { DiffEntry } from '../core/policy/tools/section.js';

type Flags = Readonly<Record<string, string | boolean | string[] | undefined>>;
type Out = (s: string) => void;

const usage = (detail: string): GatehouseError => new GatehouseError('GH_ERR_USAGE', { detail });


function format(flags: Flags, allowed: readonly string[]): string {
  const f = typeof flags['format'] === 'string' ? flags['format'] : 'text';
  if (!allowed.includes(f)) throw usage(`--format must be one of ${allowed.join(', ')}`);
  return f;
}

async function readText(file: string): Promise<string | Problem> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    return { file, line: 1, col: 1, severity: 'error', code: 'unreadable', message: `cannot read the file (${(err as NodeJS.ErrnoException).code ?? 'error'})` };
  }
}

/** `gatehouse policy lint FILE...`: exit 0 clean (warnings allowed unless --strict), 1 errors, 2 usage. */
export async function policyLint(files: readonly string[], flags: Flags, out: Out): Promise<number> {
  if (flags['list'] === true) {
    const codes = Object.entries(lintCodes());
    const width = Math.max(...codes.map(([c]) => c.length));
    for (const [code, { severity, meaning }] of codes) out(`${code.padEnd(width)}  ${severity.padEnd(7)}  ${meaning}`);
    return 0;
  }
  if (files.length === 0) throw usage('policy lint needs at least one FILE');
  const fmt = format(flags, ['text', 'json']);
  const all: Problem[] = [];
  // A glob over a policy directory also matches its test files; those are checked by `policy test`.
  const skipped = files.filter((f) => /\.test\.ya?ml$/.test(f));
  for (const file of files.filter((f) => !skipped.includes(f))) {
    const text = await readText(file);
    if (typeof text !== 'string') all.push(text);
    else all.push(...lintPolicy(text, file).problems);
  }
  const errors = all.filter((p) => p.severity === 'error').length;
  const warnings = all.length - errors;
  const linted = files.length - skipped.length;
  if (fmt === 'json') out(JSON.stringify({ files: linted, skipped, errors, warnings, problems: all }, null, 2));
  else {
    for (const p of all) out(formatProblem(p));
    for (const f of skipped) out(`${f}: skipped (a policy test file; run it with gatehouse policy test)`);
    out(`${linted} file(s): ${errors} error(s), ${warnings} warning(s)`);
  }
  return errors > 0 || (flags['strict'] === true && warnings > 0) ? 1 : 0;
}

async function loadPolicy(file: string) {
  const text = await readText(file);
  if (typeof text !== 'string') throw new GatehouseError('GH_ERR_POLICY_INVALID', { count: 1 }, { details: [text] });
  const { policy, problems } = compilePolicy(text, file);
  if (!policy) {
    const errors = problems.filter((p) => p.severity === 'error');
    throw new GatehouseError('GH_ERR_POLICY_INVALID', { count: errors.length }, { details: errors });
  }
  return policy;
}

function printExplanation(e: Explanation, out: Out): void {
  out(`${e.decision.toUpperCase()}  ${e.reason}${e.enforceWouldDeny ? '  (report mode: allowed, would be denied when enforced)' : ''}`);
  out(`  destination   ${e.destination.host}:${e.destination.port}   tenant ${e.tenant}   mode ${e.mode}`);
  const width = Math.max(13, ...e.steps.map((s) => s.stage.length));
  for (const s of e.steps) out(`  ${s.stage.padEnd(width)} ${s.result}${s.rule ? `   ${s.rule.id} ${s.rule.text}${s.rule.location ? `  (${s.rule.location})` : ''}` : ''}`);
  const stage = e.decidedByStage === 'address guard' ? 'the address guard' : e.decidedByStage === 'tenant' ? 'no such tenant (deny)' : e.decidedByStage === 'grant' ? 'the grant, within the ceiling' : 'no rule matched (deny by default)';
  const rule = e.decidedBy ? `${e.decidedBy.id} ${e.decidedBy.text}${e.decidedBy.location ? `  (${e.decidedBy.location})` : ''}` : '';
  out(`  ${'decided by'.padEnd(width)} ${e.decidedByStage === 'address guard' ? `${stage}${rule ? `, ${rule}` : ''}` : rule || stage}`);
  if (e.addressSource === 'policy resolver.hosts') out('  addresses from the policy\'s egress.resolver.hosts (give --address to check others)');
  if (e.grantAssumed) out('  * no --grant or --token: the grant is assumed to be the destination itself, so this explains the policy alone');
}

/** The token's claims, read and not verified: explain answers "what would this token be allowed", offline. */
function tokenClaims(flags: Flags): Record<string, unknown> | undefined {
  if (typeof flags['token'] !== 'string') return undefined;
  try {
    return decodeJwt(flags['token']) as Record<string, unknown>;
  } catch {
    throw usage('--token is not a JWT');
  }
}

function printBrokerExplanation(e: BrokerExplanation, out: Out): void {
  const width = Math.max(13, ...e.steps.map((s) => s.stage.length));
  out(`${e.decision.toUpperCase()}  ${e.reason}`);
  out(`  ${e.kind.padEnd(width)} ${e.subject}${e.kind === 'file' ? `   op ${e.op ?? 'read'}` : ''}   tenant ${e.tenant}`);
  const rule = (r: RuleRef): string => `${r.id} ${r.text}${r.location ? `  (${r.location})` : ''}`;
  for (const s of e.steps) out(`  ${s.stage.padEnd(width)} ${s.result}${s.rule ? `   ${rule(s.rule)}` : ''}`);
  const stage = { tenant: 'the tenant (no broker section)', path: 'the path rules', grant: "the token's own grant", default: 'no ceiling entry matched (deny by default)', rule: '' }[e.decidedByStage];
  out(`  ${'decided by'.padEnd(width)} ${e.decidedBy ? rule(e.decidedBy) : stage}`);
  out(`  ${'broker says'.padEnd(width)} ${e.detail}`);
  if (e.grantAssumed) out("  * no --mount, --grant-upstream or --token: the grant is assumed to be the tenant's whole ceiling, so this explains the policy alone");
}

const FILE_OPS_LIST = ['read', 'write', 'delete', 'list'] as const;

/** `policy explain ... (--file PATH [--op OP] | --upstream NAME)`: a broker decision. */
async function explainBrokerCommand(positionals: readonly string[], flags: Flags, out: Out): Promise<number> {
  if (positionals.length > 0) throw usage('policy explain takes a DESTINATION, or --file or --upstream, not both');
  if (typeof flags['file'] === 'string' && typeof flags['upstream'] === 'string') throw usage('policy explain takes --file or --upstream, not both');
  if (flags['grant'] !== undefined || flags['address'] !== undefined) throw usage('--grant and --address are for egress destinations; a broker grant is --mount PATH[:ro|rw] and --grant-upstream NAME');
  const op = typeof flags['op'] === 'string' ? flags['op'] : 'read';
  if (!(FILE_OPS_LIST as readonly string[]).includes(op)) throw usage(`--op must be one of ${FILE_OPS_LIST.join(', ')}`);
  if (flags['op'] !== undefined && typeof flags['file'] !== 'string') throw usage('--op goes with --file');
  const file = policyFileSetting(flags);
  if (!file) throw usage('policy explain needs --policy FILE (or GATEHOUSE_POLICY)');
  const policy = await loadPolicy(file);
  const claims = tokenClaims(flags);
  const tenant = typeof flags['tenant'] === 'string' ? flags['tenant'] : typeof claims?.['tenant'] === 'string' ? claims['tenant'] : undefined;
  if (!tenant) throw usage('policy explain needs --tenant T or --token JWT');
  let grant: BrokerGrantInput | undefined;
  if (Array.isArray(flags['mount']) || Array.isArray(flags['grant-upstream'])) {
    grant = { mounts: Object.fromEntries(((flags['mount'] as string[] | undefined) ?? []).map(parseMountArg)), upstreams: (flags['grant-upstream'] as string[] | undefined) ?? [] };
  } else if (claims) {
    const mounts = claims['mounts'];
    const upstreams = claims['upstreams'];
    const modes = mounts && typeof mounts === 'object' && !Array.isArray(mounts) ? Object.values(mounts) : [];
    if (mounts !== undefined && (modes.length !== Object.keys(mounts as object).length || modes.some((m) => m !== 'ro' && m !== 'rw'))) throw usage('--token: the mounts claim is not {PATH: ro|rw}');
    if (upstreams !== undefined && !(Array.isArray(upstreams) && upstreams.every((u) => typeof u === 'string'))) throw usage('--token: the upstreams claim is not a list of names');
    // A token without broker claims (an egress token) grants the broker nothing.
    grant = { mounts: (mounts ?? {}) as Record<string, MountMode>, upstreams: (upstreams ?? []) as string[] };
  }
  const subject = typeof flags['file'] === 'string' ? { file: { path: flags['file'], op: op as FileOp } } : { upstream: flags['upstream'] as string };
  const explanation = explainBroker(policy, { tenant, ...subject, ...(grant ? { grant } : {}) });
  if (format(flags, ['text', 'json']) === 'json') out(JSON.stringify(explanation, null, 2));
  else printBrokerExplanation(explanation, out);
  return 0;
}

/**
 * `gatehouse policy explain --policy FILE (--tenant T [--grant P]... | --token JWT) DESTINATION [--address IP]...`:
 * the decision the proxy would make, why, and the rule (with file:line) that decided. With `--file PATH [--op OP]`
 * or `--upstream NAME` instead of a DESTINATION, the broker's decision.
 */
export async function policyExplain(positionals: readonly string[], flags: Flags, out: Out): Promise<number> {
  if (typeof flags['file'] === 'string' || typeof flags['upstream'] === 'string' || flags['op'] !== undefined) return explainBrokerCommand(positionals, flags, out);
  if (flags['mount'] !== undefined || flags['grant-upstream'] !== undefined) throw usage('--mount and --grant-upstream go with --file or --upstream');
  const destination = positionals[0];
  if (!destination || positionals.length > 1) throw usage('policy explain needs exactly one DESTINATION (host:port, host or URL), or --file or --upstream');
  const file = policyFileSetting(flags);
  if (!file) throw usage('policy explain needs --policy FILE (or GATEHOUSE_POLICY)');
  const policy = await loadPolicy(file);
  let tenant = typeof flags['tenant'] === 'string' ? flags['tenant'] : undefined;
  let grant = Array.isArray(flags['grant']) ? flags['grant'] : undefined;
  const claims = tokenClaims(flags);
  if (claims) {
    tenant ??= typeof claims['tenant'] === 'string' ? claims['tenant'] : undefined;
    grant ??= Array.isArray(claims['egress']) ? (claims['egress'] as string[]) : [];
  }
  if (!tenant) throw usage('policy explain needs --tenant T or --token JWT');
  const addresses = Array.isArray(flags['address']) ? flags['address'] : undefined;
  let explanation: Explanation;
  try {
    explanation = explainEgress(policy, { tenant, destination, ...(grant ? { grant } : {}), ...(addresses ? { addresses } : {}) });
  } catch (err) {
    if (err instanceof ExplainError) throw usage(err.message);
    throw err;
  }
  if (format(flags, ['text', 'json']) === 'json') out(JSON.stringify(explanation, null, 2));
  else printExplanation(explanation, out);
  return 0;
}

function printTestResults(results: readonly FileResult[], out: Out): void {
  for (const r of results) {
    out(relative(process.cwd(), r.file) || r.file);
    for (const p of r.problems) out(`  ✗ ${formatProblem(p)}`);
    for (const c of r.cases) {
      out(`  ${c.passed ? '✓' : '✗'} ${c.name}${c.passed ? '' : `  (${relative(process.cwd(), r.file)}:${c.line})`}`);
      if (c.error) out(`      ${c.error}`);
      for (const line of c.diff) out(`      ${line}`);
    }
  }
}

/** `gatehouse policy test [DIR|FILE]...`: exit 0 when every case passes, 1 otherwise. */
export async function policyTest(paths: readonly string[], flags: Flags, out: Out): Promise<number> {
  const fmt = format(flags, ['text', 'json', 'junit']);
  const files = await findTestFiles(paths.length > 0 ? paths.map((p) => resolve(p)) : [process.cwd()]).catch((err: NodeJS.ErrnoException) => {
    throw usage(`cannot read ${err.path ?? 'the path given'}`);
  });
  if (files.length === 0) throw usage('no test files (*.test.yaml) found');
  const results: FileResult[] = [];
  for (const file of files) results.push(await runTestFile(file));
  const cases = results.flatMap((r) => r.cases);
  const failed = cases.filter((c) => !c.passed).length + results.filter((r) => r.problems.length > 0).length;
  if (fmt === 'junit') out(toJunit(results));
  else if (fmt === 'json') out(JSON.stringify({ files: results, passed: cases.length - cases.filter((c) => !c.passed).length, failed }, null, 2));
  else {
    printTestResults(results, out);
    out(`${cases.filter((c) => c.passed).length} passed, ${failed} failed`);
  }
  return failed > 0 ? 1 : 0;
}

function printDiff(entries: readonly DiffEntry[], out: Out): void {
  if (entries.length === 0) {
    out('no semantic changes');
    return;
  }
  const groups = new Map<string, DiffEntry[]>();
  for (const e of entries) {
    const key = e.tenant ? `tenant ${e.tenant}` : e.section;
    groups.set(key, [...(groups.get(key) ?? []), e]);
  }
  const sign: Record<DiffEntry['change'], string> = { added: '+', removed: '-', changed: '~', 'newly-allowed': '+ allow', 'no-longer-allowed': '- allow', 'newly-denied': '+ deny ', 'no-longer-denied': '- deny ' };
  for (const [group, list] of groups) {
    out(group);
    for (const e of list) out(`  ${sign[e.change].padEnd(7)} ${e.subject}${e.before !== undefined || e.after !== undefined ? `  ${e.before ?? ''}${e.before !== undefined && e.after !== undefined ? ' -> ' : ''}${e.after ?? ''}` : ''}`);
  }
}

/** `gatehouse policy diff OLD NEW`: what changes in effect. Exit 0 no change, 1 changes, 2 usage or invalid. */
export async function policyDiff(positionals: readonly string[], flags: Flags, out: Out, err: Out): Promise<number> {
  if (positionals.length !== 2) throw usage('policy diff needs OLD and NEW');
  let before;
  let after;
  try {
    [before, after] = await Promise.all([loadPolicy(positionals[0] as string), loadPolicy(positionals[1] as string)]);
  } catch (e) {
    // Exit 1 means "changes"; a policy that does not load is a different answer.
    if (!(e instanceof GatehouseError)) throw e;
    err(`gatehouse: ${e.code}: ${e.message}`);
    for (const d of e.details) err(`  ${formatProblem(d as Problem)}`);
    return 2;
  }
  const entries = SECTIONS.flatMap((s) => s.diff(before, after));
  if (format(flags, ['text', 'json']) === 'json') out(JSON.stringify({ changes: entries }, null, 2));
  else printDiff(entries, out);
  return entries.length > 0 ? 1 : 0;
}

/** `gatehouse policy schema`: the JSON Schema editors and CI validate policies with. */
export function policySchemaCommand(flags: Flags, out: (s: string) => void): number {
  out((flags['tests'] === true ? testFileJsonSchemaText() : policyJsonSchemaText()).trimEnd());
  return 0;
}
