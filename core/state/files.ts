import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { GatehouseError } from '../errors/index.js';

/**
 * Replace a file atomically: write a temp file beside it, fsync, rename over. A reader sees the old file or the
 * new one, never half of either, and a crash leaves one of the two.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const tmp = join(dirname(file), `.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(tmp, 'wx', mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  // fsync the directory so the rename itself survives a crash.
  const dir = await open(dirname(file), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

export async function readFileIfExists(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/**
 * Create (mode 0700) or check the state directory. It holds the signing key and the admin token, so a directory
 * that others can write to is refused rather than silently trusted.
 */
export async function ensureStateDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const info = await stat(dir);
    if (!info.isDirectory()) throw new GatehouseError('GH_ERR_STATE_UNUSABLE', { dir, detail: 'not a directory' });
    if (typeof process.getuid === 'function' && info.uid === process.getuid() && (info.mode & 0o077) !== 0) {
      await chmod(dir, 0o700);
    } else if ((info.mode & 0o022) !== 0) {
      throw new GatehouseError('GH_ERR_STATE_UNUSABLE', { dir, detail: 'writable by group or others and not owned by this user' });
    }
  } catch (err) {
    if (err instanceof GatehouseError) throw err;
    throw new GatehouseError('GH_ERR_STATE_UNUSABLE', { dir, detail: (err as NodeJS.ErrnoException).code ?? 'error' }, { cause: err });
  }
}

/** Parse a JSON state file, with a clear error naming the file (never its contents) when it is damaged. */
export function parseStateJson<T>(file: string, text: string, check: (value: unknown) => value is T): T {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new GatehouseError('GH_ERR_STATE_CORRUPT', { file, detail: 'not valid JSON' });
  }
  if (!check(value)) throw new GatehouseError('GH_ERR_STATE_CORRUPT', { file, detail: 'unexpected structure' });
  return value;
}
