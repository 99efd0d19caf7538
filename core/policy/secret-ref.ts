import { z } from 'zod';

/**
 * A reference to a secret: `env:NAME` (an environment variable of the Gatehouse process) or `file:PATH` (a
 * file, e.g. a mounted Kubernetes Secret). Policies live in git and are read by many: a credential is never
 * written inline, and the schema refuses anything that is not a reference.
 */
export const secretRefSchema = (what: string) =>
  z
    .string()
    .regex(/^(env:[A-Za-z_][A-Za-z0-9_]*|file:\S.*)$/, 'must reference the secret as env:NAME or file:PATH, never the value itself')
    .describe(`${what} As env:NAME or file:PATH; an inline value is an error.`);

export type SecretRef = string;
