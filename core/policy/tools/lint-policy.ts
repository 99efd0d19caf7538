import type { CompiledPolicy } from '../compiled-policy.js';
import { LOAD_PROBLEM_CODES } from '../problem-codes.js';
import { compilePolicy } from '../compile-policy.js';
import { locate, parseYamlSource, type Problem } from '../yaml-source.js';
import type { LintContext } from './section.js';
import { SECTIONS } from './sections.js';

export interface LintResult {
  readonly file: string;
  readonly problems: readonly Problem[];
  readonly policy: CompiledPolicy | null;
}

/**
 * Lint one policy: every problem the loader reports (errors make the policy unusable) plus every section's
 * lint rules (warnings about policies that load but are probably not what the author meant). All of them, in
 * file order, never just the first.
 */
export function lintPolicy(text: string, file: string): LintResult {
  const { policy, problems, partial } = compilePolicy(text, file);
  // Lint rules run on what compiled even when the file has errors: every problem in one run.
  const target = policy ?? partial;
  if (!target) return { file, problems, policy: null };
  const { source } = parseYamlSource(text, file);
  if (!source) return { file, problems, policy };
  const ctx: LintContext = {
    policy: target,
    source,
    at: (rule, severity, code, message) => ({ file, line: rule.line, col: rule.col, severity, code, message }),
    atPath: (path, severity, code, message) => ({ file, ...locate(source, path), severity, code, message }),
  };
  const found = [...problems, ...SECTIONS.flatMap((section) => section.lint(ctx))];
  const seen = new Set<string>();
  const unique = found.filter((p) => {
    const key = `${p.line}:${p.col}:${p.code}:${p.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  return { file, problems: unique.sort((a, b) => a.line - b.line || a.col - b.col), policy };
}

/** Every lint and load code with its severity and what it means, for `gatehouse policy lint --list` and the docs. */
export function lintCodes(): Record<string, { severity: 'error' | 'warning'; meaning: string }> {
  const out: Record<string, { severity: 'error' | 'warning'; meaning: string }> = {};
  // Load problems are errors unless marked; section lint rules are warnings (the policy loads, but look again).
  for (const [code, meaning] of Object.entries(LOAD_PROBLEM_CODES)) {
    out[code] = meaning.startsWith('Warning: ') ? { severity: 'warning', meaning: meaning.slice('Warning: '.length) } : { severity: 'error', meaning };
  }
  for (const section of SECTIONS) for (const [code, meaning] of Object.entries(section.lintCodes)) out[code] = { severity: 'warning', meaning };
  return out;
}
