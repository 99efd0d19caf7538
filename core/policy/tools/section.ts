import type { CompiledPolicy, CompiledRule } from '../compiled-policy.js';
import type { Problem, YamlSource } from '../yaml-source.js';

/** What a lint rule sees: the compiled policy and the YAML it came from (for locations and raw values). */
export interface LintContext {
  readonly policy: CompiledPolicy;
  readonly source: YamlSource;
  /** A problem located at a rule. */
  at(rule: Pick<CompiledRule, 'line' | 'col'>, severity: Problem['severity'], code: string, message: string): Problem;
  /** A problem located at a path in the YAML. */
  atPath(path: ReadonlyArray<string | number>, severity: Problem['severity'], code: string, message: string): Problem;
}

export type DiffChange = 'added' | 'removed' | 'changed' | 'newly-allowed' | 'no-longer-allowed' | 'newly-denied' | 'no-longer-denied';

/** One semantic difference between two policies. */
export interface DiffEntry {
  readonly section: string;
  /** The tenant it concerns; absent for policy-wide changes. */
  readonly tenant?: string;
  readonly change: DiffChange;
  /** What changed: a destination pattern, a limit name, a tenant. */
  readonly subject: string;
  readonly before?: string;
  readonly after?: string;
}

/**
 * One section of the policy (egress, tokens; later broker and MCP tools). `gatehouse policy lint` and
 * `gatehouse policy diff` run every registered section, so a new section plugs in by adding itself to the
 * registry (tools/sections.ts) without changes to the commands.
 */
export interface PolicySection {
  readonly name: string;
  /** Lint rule codes this section can report, with what each means (for `policy lint --list`). */
  readonly lintCodes: Readonly<Record<string, string>>;
  lint(ctx: LintContext): Problem[];
  diff(before: CompiledPolicy, after: CompiledPolicy): DiffEntry[];
}
