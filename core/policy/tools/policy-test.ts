import { readdir, readFile, stat } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { z } from 'zod';
import { REASONS, type Reason } from '../../errors/index.js';
import type { CompiledPolicy } from '../compiled-policy.js';
import { compilePolicy } from '../compile-policy.js';
import { schemaProblems } from '../schema-problems.js';
import { locate, parseYamlSource, type Problem } from '../yaml-source.js';
import { explainBroker } from './broker-explain.js';
import { explainEgress, ExplainError } from './explain.js';

/** What a case expects; every field but the decision is optional (unchecked when absent). */
const expectSchema = z.strictObject({
  decision: z.enum(['allow', 'deny']).describe('allow or deny.'),
  reason: z
    .enum(Object.keys(REASONS) as [Reason, ...Reason[]])
    .optional()
    .describe('The reason code, one of docs/reference/deny-reasons.md. Absent: not checked.'),
  rule: z.string().min(1).optional().describe('The id of the rule that decides, e.g. tenants[acme].egress.allow[2]. Absent: not checked.'),
  enforce_would_deny: z.boolean().optional().describe('Whether report mode let a would-be deny through. Absent: not checked.'),
});

const egressCase = z.strictObject({
  name: z.string().min(1),
  kind: z.literal('egress').optional().describe('What is decided. Absent: egress.'),
  tenant: z.string().min(1),
  grant: z.array(z.string().min(1)).optional().describe("The token's egress claim. Absent: the destination itself (tests the policy alone)."),
  destination: z.string().min(1).describe('host:port, host (port 443) or a URL.'),
  addresses: z.array(z.string().min(1)).optional().describe('What the name resolves to, to run the address guard. Absent: guard not run for names.'),
  expect: expectSchema,
});

const brokerCase = z.strictObject({
  name: z.string().min(1),
  kind: z.literal('broker').optional().describe('What is decided. Absent: broker, when the case has a broker key.'),
  tenant: z.string().min(1),
  grant: z
    .strictObject({
      mounts: z.record(z.string().min(1), z.enum(['ro', 'rw'])).optional().describe('Mount path -> ro or rw, as in the mounts claim. Absent: no mount.'),
      upstreams: z.array(z.string().min(1)).optional().describe('Upstream names, as in the upstreams claim. Absent: no upstream.'),
    })
    .optional()
    .describe("The broker token's grant. Absent: the tenant's whole ceiling (tests the policy alone)."),
  broker: z
    .union([
      z.strictObject({
        file: z.string().min(1).describe('A logical path, e.g. /outputs/report.txt (for list, a prefix such as /outputs).'),
        op: z.enum(['read', 'write', 'delete', 'list']).optional().describe('read (GET, HEAD, stat), write (PUT, either end of a move), delete or list. Absent: read.'),
      }),
      z.strictObject({ upstream: z.string().min(1).describe('An upstream name, as in /v1/upstreams/<name>/...') }),
    ])
    .describe('What the session asks the broker for: a file operation or an upstream call.'),
  expect: expectSchema,
});

export const testFileSchema = z.strictObject({
  policy: z.string().min(1).describe('The policy under test, relative to this file.'),
  cases: z.array(z.union([egressCase, brokerCase])).min(1),
});

type EgressCase = z.infer<typeof egressCase>;
type BrokerCase = z.infer<typeof brokerCase>;
type TestCase = EgressCase | BrokerCase;

export interface Actual {
  readonly decision: 'allow' | 'deny';
  readonly reason: string;
  readonly rule?: string;
  readonly enforce_would_deny: boolean;
}

export interface CaseResult {
  readonly name: string;
  readonly line: number;
  readonly passed: boolean;
  /** Lines of `- expected` / `+ actual` for the fields that differ. */
  readonly diff: readonly string[];
  readonly error?: string;
}

export interface FileResult {
  readonly file: string;
  readonly policyFile: string | null;
  /** Problems that kept the file from running at all (the test file or its policy does not load). */
  readonly problems: readonly Problem[];
  readonly cases: readonly CaseResult[];
}

/** Evaluators per case kind. A new policy section adds its kind (and its case schema) here; the runner and reports stay as they are. */
const EVALUATORS: { readonly [K in 'egress' | 'broker']: (policy: CompiledPolicy, c: K extends 'egress' ? EgressCase : BrokerCase) => Actual } = {
  egress: (policy, c) => {
    const e = explainEgress(policy, { tenant: c.tenant, destination: c.destination, ...(c.grant ? { grant: c.grant } : {}), ...(c.addresses ? { addresses: c.addresses } : {}) });
    return { decision: e.decision, reason: e.reason, ...(e.decidedBy ? { rule: e.decidedBy.id } : {}), enforce_would_deny: e.enforceWouldDeny };
  },
  broker: (policy, c) => {
    const subject = 'file' in c.broker ? { file: { path: c.broker.file, op: c.broker.op ?? 'read' } } : { upstream: c.broker.upstream };
    const e = explainBroker(policy, { tenant: c.tenant, ...subject, ...(c.grant ? { grant: c.grant } : {}) });
    // The broker has no report mode: nothing it refuses is let through.
    return { decision: e.decision, reason: e.reason, ...(e.decidedBy ? { rule: e.decidedBy.id } : {}), enforce_would_deny: false };
  },
};

const evaluate = (policy: CompiledPolicy, c: TestCase): Actual => ('broker' in c ? EVALUATORS.broker(policy, c) : EVALUATORS.egress(policy, c));

function compare(expected: TestCase['expect'], actual: Actual): string[] {
  const diff: string[] = [];
  const check = (field: string, want: unknown, got: unknown): void => {
    if (want !== undefined && want !== got) diff.push(`- ${field}: ${String(want)}`, `+ ${field}: ${String(got ?? '(none)')}`);
  };
  check('decision', expected.decision, actual.decision);
  check('reason', expected.reason, actual.reason);
  check('rule', expected.rule, actual.rule);
  check('enforce_would_deny', expected.enforce_would_deny, actual.enforce_would_deny);
  return diff;
}

/** Run one test file. Never throws on bad input: problems come back located. */
export async function runTestFile(file: string): Promise<FileResult> {
  const text = await readFile(file, 'utf8');
  const { source, problems } = parseYamlSource(text, file);
  if (!source) return { file, policyFile: null, problems, cases: [] };
  const parsed = testFileSchema.safeParse(source.data);
  if (!parsed.success) return { file, policyFile: null, problems: schemaProblems(testFileSchema as never, parsed.error.issues, source), cases: [] };
  const policyFile = resolve(dirname(file), parsed.data.policy);
  let policyText: string;
  try {
    policyText = await readFile(policyFile, 'utf8');
  } catch {
    const { line, col } = locate(source, ['policy']);
    return { file, policyFile, problems: [{ file, line, col, severity: 'error', code: 'policy-not-found', message: `cannot read ${parsed.data.policy}` }], cases: [] };
  }
  const compiled = compilePolicy(policyText, policyFile);
  if (!compiled.policy) return { file, policyFile, problems: compiled.problems.filter((p) => p.severity === 'error'), cases: [] };
  const policy = compiled.policy;
  const cases = parsed.data.cases.map((c, i): CaseResult => {
    const line = locate(source, ['cases', i]).line;
    try {
      const actual = evaluate(policy, c);
      const diff = compare(c.expect, actual);
      return { name: c.name, line, passed: diff.length === 0, diff };
    } catch (err) {
      if (err instanceof ExplainError) return { name: c.name, line, passed: false, diff: [], error: err.message };
      throw err;
    }
  });
  return { file, policyFile, problems: [], cases };
}

/** Test files under a directory (or the files given): `*.test.yaml` and `*.test.yml`, recursively, sorted. */
export async function findTestFiles(paths: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  const walk = async (path: string): Promise<void> => {
    const info = await stat(path);
    if (info.isDirectory()) {
      for (const entry of (await readdir(path)).sort()) {
        if (entry === 'node_modules' || entry.startsWith('.')) continue;
        await walk(join(path, entry));
      }
    } else if (/\.test\.ya?ml$/.test(path) || paths.includes(path)) out.push(path);
  };
  for (const p of paths) await walk(p);
  return out;
}

const xml = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** JUnit XML, the format CI systems (GitLab, Jenkins, GitHub test reporters) read. */
export function toJunit(results: readonly FileResult[], base: string = process.cwd()): string {
  // Paths relative to where the run started, as CI test reporters link them to the repository.
  const rel = (file: string): string => relative(base, file) || file;
  const suites = results.map((r0) => {
    const r = { ...r0, file: rel(r0.file) };
    const failures = r.cases.filter((c) => !c.passed).length + (r.problems.length > 0 ? 1 : 0);
    const cases = r.cases.map((c) => {
      const body = c.passed ? '' : `<failure message="${xml(c.error ?? 'decision differs')}">${xml(c.error ?? c.diff.join('\n'))}</failure>`;
      return `    <testcase classname="${xml(r.file)}" name="${xml(c.name)}" file="${xml(r.file)}" line="${c.line}">${body}</testcase>`;
    });
    if (r.problems.length > 0) {
      const detail = r.problems.map((p) => `${rel(p.file)}:${p.line}:${p.col}: ${p.code} ${p.message}`).join('\n');
      cases.push(`    <testcase classname="${xml(r.file)}" name="load"><error message="the test file or its policy does not load">${xml(detail)}</error></testcase>`);
    }
    return `  <testsuite name="${xml(r.file)}" tests="${cases.length}" failures="${failures}">\n${cases.join('\n')}\n  </testsuite>`;
  });
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites>\n${suites.join('\n')}\n</testsuites>\n`;
}
