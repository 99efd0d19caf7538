import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from '../../test/support/gatehouse-process.js';
import { policyJsonSchemaText, testFileJsonSchemaText } from './json-schema.js';

interface Node {
  readonly type?: string;
  readonly description?: string;
  readonly properties?: Record<string, Node>;
  readonly required?: readonly string[];
  readonly items?: Node;
  readonly anyOf?: readonly Node[];
  readonly additionalProperties?: Node | boolean;
}

/** Every property, with whether it is required, walked through arrays, unions and records. */
function properties(node: Node, path: string, out: Array<{ path: string; node: Node; required: boolean }>): void {
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    out.push({ path: `${path}.${key}`, node: child, required: node.required?.includes(key) ?? false });
    properties(child, `${path}.${key}`, out);
  }
  if (node.items) properties(node.items, `${path}[]`, out);
  for (const option of node.anyOf ?? []) properties(option, path, out);
  if (typeof node.additionalProperties === 'object') properties(node.additionalProperties, `${path}.*`, out);
}

describe('published JSON Schemas', () => {
  it('policies/schema.json is exactly what the code generates (regenerate: gatehouse policy schema > policies/schema.json)', async () => {
    expect(await readFile(join(REPO, 'policies', 'schema.json'), 'utf8')).toBe(policyJsonSchemaText());
  });

  it('policies/test-schema.json is exactly what the code generates (gatehouse policy schema --tests)', async () => {
    expect(await readFile(join(REPO, 'policies', 'test-schema.json'), 'utf8')).toBe(testFileJsonSchemaText());
  });

  it('describes every policy field, and says what absent (and, for lists, empty) means for optional ones', () => {
    const all: Array<{ path: string; node: Node; required: boolean }> = [];
    properties(JSON.parse(policyJsonSchemaText()) as Node, '', all);
    const undescribed = all.filter((p) => !p.node.description).map((p) => p.path);
    expect(undescribed).toEqual([]);
    const optional = all.filter((p) => !p.required && !/^Policy format/.test(p.node.description ?? ''));
    expect(optional.filter((p) => !/absent/i.test(p.node.description ?? '')).map((p) => p.path)).toEqual([]);
    expect(optional.filter((p) => p.node.type === 'array' && !/empty/i.test(p.node.description ?? '')).map((p) => p.path)).toEqual([]);
  });

  it('is what the default policy and the examples point editors at', async () => {
    for (const file of ['solo-developer.yaml', 'team.yaml', 'locked-down.yaml']) {
      expect(await readFile(join(REPO, 'policies', 'examples', file), 'utf8')).toMatch(/^# yaml-language-server: \$schema=\.\.\/schema\.json/);
    }
  });
});
