import { isScalar, visit } from 'yaml';
import type { Problem } from '../yaml-source.js';
import type { LintContext } from './section.js';

export const SECRETS_LINT_CODES = {
  'inline-secret': 'A value that looks like a credential written into the policy. Policies live in git and are read by many: reference secrets as env:NAME or file:PATH.',
} as const;

// Well-known credential shapes (vendor prefixes and key formats), then a generic high-entropy check.
const KNOWN: ReadonlyArray<readonly [RegExp, string]> = [
  [/\bsk-ant-[A-Za-z0-9_-]{20,}/, 'an Anthropic API key'],
  [/\bsk-(proj-)?[A-Za-z0-9_-]{20,}/, 'an OpenAI-style API key'],
  [/\b(AKIA|ASIA)[A-Z0-9]{16}\b/, 'an AWS access key id'],
  [/\b(ghp|gho|ghs|ghu|ghr)_[A-Za-z0-9]{30,}/, 'a GitHub token'],
  [/\bgithub_pat_[A-Za-z0-9_]{40,}/, 'a GitHub token'],
  [/\bglpat-[A-Za-z0-9_-]{20,}/, 'a GitLab token'],
  [/\bxox[abpr]-[A-Za-z0-9-]{10,}/, 'a Slack token'],
  [/\bAIza[0-9A-Za-z_-]{35}\b/, 'a Google API key'],
  [/\bhf_[A-Za-z0-9]{30,}/, 'a Hugging Face token'],
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----/, 'a private key'],
  [/\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/, 'a JSON Web Token'],
  [/^(Bearer|Basic) [A-Za-z0-9+/=._-]{16,}$/, 'an Authorization header value'],
];

function entropy(text: string): number {
  const counts = new Map<string, number>();
  for (const c of text) counts.set(c, (counts.get(c) ?? 0) + 1);
  let h = 0;
  for (const n of counts.values()) {
    const p = n / text.length;
    h -= p * Math.log2(p);
  }
  return h;
}

/** Why a value looks like a secret, or null. References (env:, file:) never do. */
export function secretShape(value: string): string | null {
  if (/^(env|file):/.test(value)) return null;
  for (const [pattern, what] of KNOWN) if (pattern.test(value)) return what;
  // A long token of key-like characters with high entropy: hostnames, CIDRs and prose do not look like this.
  if (/^[A-Za-z0-9+/=_-]{32,}$/.test(value) && !/^[a-z0-9.-]+$/.test(value) && entropy(value) > 4.0) return 'a high-entropy token';
  return null;
}

/** The comment part of a YAML line (a '#' at the start or after a space, outside quotes), with its column. */
function commentOf(line: string): { text: string; col: number } | null {
  let quote: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as string;
    if (quote) {
      if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '#' && (i === 0 || line[i - 1] === ' ' || line[i - 1] === '\t')) return { text: line.slice(i + 1), col: i + 2 };
  }
  return null;
}

/** Scan every string in the policy, and every comment, for credential-shaped values. */
export function lintSecrets(ctx: LintContext): Problem[] {
  const out: Problem[] = [];
  // Comments are not data, but they are in git all the same.
  ctx.source.text.split('\n').forEach((line, i) => {
    const comment = commentOf(line);
    if (!comment) return;
    let offset = 0;
    for (const token of comment.text.split(/(\s+)/)) {
      const what = token.trim() ? secretShape(token) : null;
      if (what) out.push({ file: ctx.source.file, line: i + 1, col: comment.col + offset, severity: 'warning', code: 'inline-secret', message: `this comment holds what looks like ${what}; remove it (and rotate the credential)` });
      offset += token.length;
    }
  });
  visit(ctx.source.doc, {
    Scalar(_key, node) {
      if (!isScalar(node) || typeof node.value !== 'string') return;
      const what = secretShape(node.value);
      if (!what) return;
      const { line, col } = ctx.source.lineCounter.linePos(node.range?.[0] ?? 0);
      out.push({ file: ctx.source.file, line, col, severity: 'warning', code: 'inline-secret', message: `this looks like ${what} written inline; reference it as env:NAME or file:PATH instead` });
    },
  });
  return out;
}
