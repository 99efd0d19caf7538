import type { z } from 'zod';
import { locate, type PathItem, type Problem, type YamlSource } from './yaml-source.js';

type Issue = z.core.$ZodIssue;

interface SchemaNode {
  readonly _zod: { readonly def: { readonly type: string } & Record<string, unknown> };
}

/** Follow a data path through the schema to the object schema at its end, for "did you mean" hints. */
function objectKeysAt(schema: SchemaNode, path: readonly PathItem[]): string[] | null {
  let nodes: SchemaNode[] = [schema];
  const unwrap = (list: SchemaNode[]): SchemaNode[] =>
    list.flatMap((n) => {
      const def = n._zod.def;
      if (def.type === 'optional' || def.type === 'default' || def.type === 'nullable') return unwrap([def['innerType'] as SchemaNode]);
      if (def.type === 'union') return unwrap(def['options'] as SchemaNode[]);
      return [n];
    });
  for (const item of path) {
    nodes = unwrap(nodes).flatMap((n) => {
      const def = n._zod.def;
      if (def.type === 'object' && typeof item === 'string') {
        const child = (def['shape'] as Record<string, SchemaNode>)[item];
        return child ? [child] : [];
      }
      if (def.type === 'array' && typeof item === 'number') return [def['element'] as SchemaNode];
      if (def.type === 'record' && typeof item === 'string') return [def['valueType'] as SchemaNode];
      return [];
    });
  }
  const objects = unwrap(nodes).filter((n) => n._zod.def.type === 'object');
  if (objects.length === 0) return null;
  return objects.flatMap((n) => Object.keys(n._zod.def['shape'] as Record<string, unknown>));
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j] as number;
      row[j] = Math.min((row[j] as number) + 1, (row[j - 1] as number) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length] as number;
}

function unknownKeyMessage(key: string, allowed: string[] | null): string {
  if (!allowed || allowed.length === 0) return `unknown key "${key}"`;
  const near = allowed.map((k) => [k, distance(key, k)] as const).sort((x, y) => x[1] - y[1])[0];
  if (near && near[1] <= Math.max(1, Math.floor(key.length / 3))) return `unknown key "${key}"; did you mean "${near[0]}"?`;
  return `unknown key "${key}"; expected one of: ${allowed.join(', ')}`;
}

const valueAt = (data: unknown, path: readonly PathItem[]): unknown => {
  let node: unknown = data;
  for (const item of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<PathItem, unknown>)[item];
  }
  return node;
};

/** For a failed union, the branch whose value type matched (its issues are about the contents, not the type). */
function bestUnionBranch(branches: readonly (readonly Issue[])[]): readonly Issue[] {
  const typeMatched = branches.filter((issues) => !issues.some((i) => i.path.length === 0 && i.code === 'invalid_type'));
  const pool = typeMatched.length > 0 ? typeMatched : branches;
  return [...pool].sort((a, b) => a.length - b.length)[0] ?? [];
}

/** Map zod issues to located problems, one per unknown key, with a hint where one is likely. */
export function schemaProblems(schema: SchemaNode, issues: readonly Issue[], source: YamlSource, prefix: readonly PathItem[] = []): Problem[] {
  const out: Problem[] = [];
  const problem = (path: readonly PathItem[], which: 'key' | 'value', code: string, message: string): void => {
    const { line, col } = locate(source, path, which);
    out.push({ file: source.file, line, col, severity: 'error', code, message });
  };
  for (const issue of issues) {
    const path = [...prefix, ...(issue.path as PathItem[])];
    const name = path.length > 0 ? String(path[path.length - 1]) : 'policy';
    if (issue.code !== 'unrecognized_keys' && path.length > 0 && valueAt(source.data, path) === undefined) {
      problem(path, 'key', 'missing-key', `"${name}" is required`);
      continue;
    }
    switch (issue.code) {
      case 'unrecognized_keys':
        for (const key of issue.keys) problem([...path, key], 'key', 'unknown-key', unknownKeyMessage(key, objectKeysAt(schema, path)));
        break;
      case 'invalid_union':
        out.push(...schemaProblems(schema, bestUnionBranch(issue.errors), source, path));
        break;
      case 'invalid_type':
        problem(path, 'value', 'wrong-type', `"${name}": expected ${issue.expected}`);
        break;
      case 'invalid_value':
        problem(path, 'value', 'invalid-value', `"${name}": expected ${issue.values.map((v) => JSON.stringify(v)).join(' or ')}`);
        break;
      case 'invalid_format':
      case 'too_small':
      case 'too_big':
        problem(path, 'value', issue.code === 'invalid_format' ? 'invalid-value' : 'out-of-range', `"${name}": ${issue.message}`);
        break;
      default:
        problem(path, 'value', 'invalid-value', `"${name}": ${issue.message}`);
    }
  }
  return out;
}
