import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ERROR_CODES } from '../core/errors/codes.js';
import { REASONS } from '../core/errors/reasons.js';
import { policySchema } from '../core/policy/schema.js';
import { lintCodes } from '../core/policy/tools/lint-policy.js';
import { REPO } from './support/gatehouse-process.js';

/** The reference docs and the registries in code must agree both ways: nothing undocumented, nothing stale. */

const doc = (name: string): Promise<string> => readFile(join(REPO, 'docs', 'reference', name), 'utf8');

function tableRows(text: string, pattern: RegExp): Map<string, number> {
  const rows = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = pattern.exec(line);
    if (m) rows.set(m[1] as string, Number(m[2]));
  }
  return rows;
}

interface ZodNode {
  readonly _zod: { readonly def: { readonly type: string } & Record<string, unknown> };
}

/** Every object key path in the policy schema: `egress.limits.per_session.burst`, `tenants[].egress.allow`. */
function schemaPaths(node: ZodNode, prefix: string, out: Set<string>): void {
  const def = node._zod.def;
  if (def.type === 'optional' || def.type === 'default') return schemaPaths(def['innerType'] as ZodNode, prefix, out);
  if (def.type === 'array') {
    const element = def['element'] as ZodNode;
    if (element._zod.def.type === 'object') schemaPaths(element, `${prefix}[]`, out);
    return;
  }
  if (def.type !== 'object') return;
  for (const [key, child] of Object.entries(def['shape'] as Record<string, ZodNode>)) {
    const path = prefix ? `${prefix}.${key}` : key;
    out.add(path);
    schemaPaths(child, path, out);
  }
}

describe('reference docs stay in step with the code', () => {
  it('documents every deny reason, with its status, and nothing else', async () => {
    const rows = tableRows(await doc('deny-reasons.md'), /^\| `([a-z0-9_]+)` \| (\d{3}) \|/);
    expect([...rows.keys()].sort()).toEqual(Object.keys(REASONS).sort());
    for (const [reason, info] of Object.entries(REASONS)) expect(rows.get(reason), reason).toBe(info.status);
  });

  it('documents every error code, with its status, and nothing else', async () => {
    const rows = tableRows(await doc('error-codes.md'), /^\| `(GH_ERR_[A-Z_]+)` \| (\d+) \|/);
    expect([...rows.keys()].sort()).toEqual(Object.keys(ERROR_CODES).sort());
    for (const [code, info] of Object.entries(ERROR_CODES)) expect(rows.get(code), code).toBe(info.status);
  });

  it('documents every problem code the loader and lint can report, and nothing else', async () => {
    const rows = new Set([...(await doc('policy.md')).matchAll(/^\| `([a-z-]+)` \| (?:error|warning) \|/gm)].map((m) => m[1] as string));
    expect([...rows].sort()).toEqual(Object.keys(lintCodes()).sort());
  });

  it('describes every broker route in the OpenAPI file, and no other', async () => {
    const source = await readFile(join(REPO, 'broker', 'broker-server.ts'), 'utf8');
    const routes = new Set<string>();
    for (const m of source.matchAll(/app\.(get|head|put|post|delete|all)\('([^']+)'/g)) {
      const path = (m[2] as string).replace(/\/\*$/, '/{path}').replace(/:(\w+)/g, '{$1}');
      // /v1/upstreams/{name} alone is the same operation as with a path.
      if (path !== '/v1/upstreams/{name}') routes.add(path);
    }
    const spec = parse(await readFile(join(REPO, 'docs', 'reference', 'broker-openapi.yaml'), 'utf8')) as { paths: Record<string, unknown> };
    expect(Object.keys(spec.paths).sort()).toEqual([...routes].sort());
  });

  it('documents every policy key', async () => {
    const text = await doc('policy.md');
    const paths = new Set<string>();
    schemaPaths(policySchema as unknown as ZodNode, '', paths);
    const missing = [...paths].filter((p) => !text.includes(`\`${p}\``));
    expect(missing).toEqual([]);
  });
});
