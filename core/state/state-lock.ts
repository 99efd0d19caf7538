import { open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { GatehouseError } from '../errors/index.js';

/** A process's start time (clock ticks since boot, /proc/PID/stat field 22), or null where /proc is absent. */
async function startTime(pid: number): Promise<string | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after its closing ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else, which still means "in use".
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** Is the lock's owner still the process that wrote it? A recycled pid (container restart) is not. */
async function holderRunning(text: string): Promise<number | null> {
  const [pidText, started] = text.trim().split(/\s+/);
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || !alive(pid)) return null;
  if (started !== undefined) {
    const now = await startTime(pid);
    if (now !== null && now !== started) return null;
  }
  return pid;
}

/**
 * One running Gatehouse per state directory: two would interleave one hash chain from two writers and
 * disagree about revocations. The lock is `gatehouse.pid` (pid and process start time), created exclusively;
 * a stale one (its process is gone, or the pid now belongs to another process) is taken over.
 */
export async function lockStateDir(dir: string): Promise<() => Promise<void>> {
  const file = join(dir, 'gatehouse.pid');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(file, 'wx', 0o600);
      await handle.writeFile(`${process.pid} ${(await startTime(process.pid)) ?? ''}\n`);
      await handle.close();
      return async () => {
        await unlink(file).catch(() => undefined);
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = await holderRunning(await readFile(file, 'utf8').catch(() => ''));
      if (holder !== null) throw new GatehouseError('GH_ERR_STATE_LOCKED', { dir, pid: holder });
      await unlink(file).catch(() => undefined);
    }
  }
  throw new GatehouseError('GH_ERR_STATE_LOCKED', { dir, pid: 'unknown' });
}
