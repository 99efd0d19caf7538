import { open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { GatehouseError } from '../errors/index.js';

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else, which still means "in use".
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/**
 * One running Gatehouse per state directory: two would interleave one hash chain from two writers and
 * disagree about revocations. The lock is a pid file created exclusively; a stale one (its process is gone,
 * for instance after kill -9) is taken over.
 */
export async function lockStateDir(dir: string): Promise<() => Promise<void>> {
  const file = join(dir, 'gatehouse.pid');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(file, 'wx', 0o600);
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      return async () => {
        await unlink(file).catch(() => undefined);
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
        throw new GatehouseError('GH_ERR_STATE_LOCKED', { dir, pid });
      }
      await unlink(file).catch(() => undefined);
    }
  }
  throw new GatehouseError('GH_ERR_STATE_LOCKED', { dir, pid: 'unknown' });
}
