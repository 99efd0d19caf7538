import { randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { GatehouseError } from '../errors/index.js';
import { readFileIfExists } from './files.js';

export const adminTokenFile = (stateDir: string): string => join(stateDir, 'admin-token');

/** The admin API credential (`admin-token`, mode 0600), created on first run. */
export async function loadOrCreateAdminToken(stateDir: string): Promise<string> {
  const file = adminTokenFile(stateDir);
  const existing = await readFileIfExists(file);
  if (existing !== null) return checked(file, existing);
  const token = `gha_${randomBytes(32).toString('base64url')}`;
  try {
    const handle = await open(file, 'wx', 0o600);
    try {
      await handle.writeFile(`${token}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    return token;
  } catch (err) {
    // Another process created it first: use theirs.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return checked(file, (await readFileIfExists(file)) ?? '');
    throw err;
  }
}

export async function readAdminToken(stateDir: string): Promise<string | null> {
  const file = adminTokenFile(stateDir);
  const text = await readFileIfExists(file);
  return text === null ? null : checked(file, text);
}

function checked(file: string, text: string): string {
  const token = text.trim();
  if (token.length < 16) throw new GatehouseError('GH_ERR_STATE_CORRUPT', { file, detail: 'admin token is too short' });
  return token;
}
