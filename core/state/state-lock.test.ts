import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lockStateDir } from './state-lock.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-lock-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A real process that stays alive until killed, to hold a lock in another pid. */
async function otherProcess(): Promise<{ pid: number; stop(): Promise<void> }> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  await new Promise<void>((resolve) => child.once('spawn', () => resolve()));
  return {
    pid: child.pid as number,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}

describe('state directory lock', () => {
  it('is held by one process: a live holder refuses the next with GH_ERR_STATE_LOCKED', async () => {
    const other = await otherProcess();
    const started = (await readFile(`/proc/${other.pid}/stat`, 'utf8').catch(() => '')).split(') ')[1]?.split(' ')[19] ?? '';
    await writeFile(join(dir, 'gatehouse.pid'), `${other.pid} ${started}\n`);
    await expect(lockStateDir(dir)).rejects.toMatchObject({ code: 'GH_ERR_STATE_LOCKED' });
    await other.stop();
  });

  it('takes over a stale lock whose process is gone', async () => {
    const other = await otherProcess();
    await other.stop();
    await writeFile(join(dir, 'gatehouse.pid'), `${other.pid}\n`);
    const unlock = await lockStateDir(dir);
    expect((await readFile(join(dir, 'gatehouse.pid'), 'utf8')).split(' ')[0]).toBe(String(process.pid));
    await unlock();
  });

  it('takes over a lock whose pid now belongs to another process (recycled after a restart)', async () => {
    const other = await otherProcess();
    await writeFile(join(dir, 'gatehouse.pid'), `${other.pid} 1\n`); // a start time that is not this process's
    const unlock = await lockStateDir(dir);
    await unlock();
    await other.stop();
  });

  it('releases on unlock, so the next start succeeds', async () => {
    const unlock = await lockStateDir(dir);
    await unlock();
    const again = await lockStateDir(dir);
    await again();
  });
});
