import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The package root (this file is dist/cli/package-paths.js once built, cli/package-paths.ts in tests). */
export function packageRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return here.includes(`${join('dist', 'cli')}`) ? resolve(here, '..', '..') : resolve(here, '..');
}

/** The published policy JSON Schema, as a file URL editors can follow. */
export const schemaUrl = (): string => pathToFileURL(join(packageRoot(), 'policies', 'schema.json')).href;

/** How to run this CLI again, for copy-paste examples. */
export const cliCommand = (): string => `node ${join(packageRoot(), 'dist', 'cli', 'main.js')}`;
