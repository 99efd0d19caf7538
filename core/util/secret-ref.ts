import { readFile } from 'node:fs/promises';

/**
 * Resolve a secret reference: `env:NAME` reads the process environment, `file:PATH` a file (a mounted
 * Kubernetes Secret, a Docker secret). Trailing whitespace and newlines are trimmed: a key saved with `echo`
 * ends in \n and would otherwise make an invalid header. Errors name the reference, never the value.
 */
export async function resolveSecret(ref: string): Promise<string> {
  if (ref.startsWith('env:')) {
    const name = ref.slice(4);
    const value = process.env[name];
    if (value === undefined || value.trim() === '') throw new Error(`environment variable ${name} is not set`);
    return value.trimEnd();
  }
  if (ref.startsWith('file:')) {
    const path = ref.slice(5);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw new Error(`cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    if (text.trim() === '') throw new Error(`${path} is empty`);
    return text.trimEnd();
  }
  throw new Error('a secret must be referenced as env:NAME or file:PATH');
}
