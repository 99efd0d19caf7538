import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type Node } from 'yaml';
import { POLICY_BOUNDS } from './defaults.js';

/** One finding about a policy file, located to the character, as `file:line:col: severity code message`. */
export interface Problem {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  readonly severity: 'error' | 'warning';
  readonly code: string;
  readonly message: string;
}

export const formatProblem = (p: Problem): string => `${p.file}:${p.line}:${p.col}: ${p.severity} ${p.code} ${p.message}`;

export interface YamlSource {
  readonly file: string;
  readonly text: string;
  readonly doc: Document;
  readonly lineCounter: LineCounter;
  /** The plain data, or undefined when the YAML did not parse. */
  readonly data: unknown;
}

export type PathItem = string | number;

const YAML_CODES: Readonly<Record<string, string>> = {
  DUPLICATE_KEY: 'duplicate-key',
  TAB_AS_INDENT: 'yaml-tab',
  MULTIPLE_DOCS: 'yaml-multiple-documents',
  RESOURCE_EXHAUSTION: 'yaml-too-complex',
};

/**
 * Parse policy YAML defensively: bounded size, bounded alias expansion (billion laughs), no duplicate keys, no
 * tabs, no merge keys, no custom tags, one document. Every YAML problem is returned with its location; nothing
 * here throws on bad input.
 */
export function parseYamlSource(text: string, file: string): { source: YamlSource | null; problems: Problem[] } {
  const problems: Problem[] = [];
  const at = (line: number, col: number, code: string, message: string): void => {
    problems.push({ file, line, col, severity: 'error', code, message });
  };
  if (Buffer.byteLength(text, 'utf8') > POLICY_BOUNDS.maxPolicyBytes) {
    at(1, 1, 'policy-too-large', `the policy is larger than ${POLICY_BOUNDS.maxPolicyBytes} bytes`);
    return { source: null, problems };
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, {
    lineCounter,
    prettyErrors: true,
    uniqueKeys: true,
    merge: false,
    schema: 'core',
  });
  const seen = new Set<string>();
  for (const err of [...doc.errors, ...doc.warnings]) {
    const code = err.code === 'TAG_RESOLVE_FAILED' ? 'yaml-tag' : (YAML_CODES[err.code] ?? 'yaml-syntax');
    // Deeply nested input reports the same exhaustion at every level; once is enough.
    if (code === 'yaml-too-complex' && seen.has(code)) continue;
    seen.add(code);
    const pos = err.linePos?.[0] ?? { line: 1, col: 1 };
    const message =
      code === 'yaml-tag' ? 'YAML tags are not allowed in a policy' : (err.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
    at(pos.line, pos.col, code, message);
    // After resource exhaustion the rest is noise; otherwise cap the list so hostile input cannot flood it.
    if (code === 'yaml-too-complex' || problems.length >= 50) break;
  }
  if (problems.length === 0) {
    // Tags (`!!binary`, `!custom`) never belong in a policy: they change how a value is read.
    visit(doc, {
      Node(_key, node) {
        if (node.tag) {
          const pos = lineCounter.linePos(node.range?.[0] ?? 0);
          at(pos.line, pos.col, 'yaml-tag', 'YAML tags are not allowed in a policy');
        }
      },
    });
  }
  if (problems.length > 0) return { source: null, problems };
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: POLICY_BOUNDS.maxYamlAliases });
  } catch {
    at(1, 1, 'yaml-too-complex', `aliases expand beyond the limit (${POLICY_BOUNDS.maxYamlAliases}); write the values out`);
    return { source: null, problems };
  }
  return { source: { file, text, doc, lineCounter, data }, problems };
}

/**
 * The line and column of the node at `path` (the key's position when `which` is 'key'). When the path does not
 * exist completely (a missing required key), the deepest node that does exist is used.
 */
export function locate(source: YamlSource, path: readonly PathItem[], which: 'key' | 'value' = 'value'): { line: number; col: number } {
  let node: unknown = source.doc.contents;
  let offset = (node as Node | null)?.range?.[0] ?? 0;
  for (let i = 0; i < path.length; i++) {
    const item = path[i];
    const last = i === path.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === item);
      if (!pair) break;
      const keyNode = pair.key as Node;
      if (last && which === 'key') {
        offset = keyNode.range?.[0] ?? offset;
        break;
      }
      node = pair.value;
      offset = (pair.value as Node | null)?.range?.[0] ?? keyNode.range?.[0] ?? offset;
    } else if (isSeq(node) && typeof item === 'number') {
      const child = node.items[item] as Node | undefined;
      if (!child) break;
      node = child;
      offset = child.range?.[0] ?? offset;
    } else break;
  }
  return source.lineCounter.linePos(offset);
}
