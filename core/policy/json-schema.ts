import { z } from 'zod';
import { policySchema } from './schema.js';
import { testFileSchema } from './tools/policy-test.js';

export const POLICY_SCHEMA_ID = 'https://gatehouse.dev/schemas/policy-v1.json';

/**
 * The published JSON Schema of the policy (`policies/schema.json`), generated from the same zod schema the
 * loader validates with. A test regenerates it and fails if the committed file differs.
 */
export function policyJsonSchema(): Record<string, unknown> {
  const generated = z.toJSONSchema(policySchema, { io: 'input', target: 'draft-2020-12' }) as Record<string, unknown>;
  const { $schema, ...rest } = generated;
  return { $schema, $id: POLICY_SCHEMA_ID, title: 'Gatehouse policy (version 1)', ...rest };
}

export const policyJsonSchemaText = (): string => `${JSON.stringify(policyJsonSchema(), null, 2)}\n`;

/** The JSON Schema of policy test files (`policies/test-schema.json`), for editors. */
export function testFileJsonSchema(): Record<string, unknown> {
  const generated = z.toJSONSchema(testFileSchema, { io: 'input', target: 'draft-2020-12' }) as Record<string, unknown>;
  const { $schema, ...rest } = generated;
  return { $schema, $id: 'https://gatehouse.dev/schemas/policy-test-v1.json', title: 'Gatehouse policy test file', ...rest };
}

export const testFileJsonSchemaText = (): string => `${JSON.stringify(testFileJsonSchema(), null, 2)}\n`;
