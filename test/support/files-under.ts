import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

/** Every regular file below `dir`, recursively: for sweeping a state directory for secrets. */
export async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.isDirectory()) out.push(...(await filesUnder(join(dir, e.name))));
    else if (e.isFile()) out.push(join(dir, e.name));
  }
  return out;
}
