import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/**
 * CPU time per OS thread and per process, from /proc (Linux). Node 20 has no per-thread CPU clock for worker
 * threads, so the benchmarks find the thread a worker runs on by the set of tasks that appeared when it started.
 * Resolution is one clock tick (usually 10 ms): read it over runs of seconds, not milliseconds.
 */
const TICK_SECONDS = 1 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim() || 100);

/** utime + stime in seconds from a /proc stat line (fields 14 and 15; the command name may contain spaces). */
function statCpuSeconds(text: string): number {
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_SECONDS;
}

/** The thread ids of this process (or of `pid`). */
export const threadIds = (pid: number | 'self' = 'self'): number[] => readdirSync(`/proc/${pid}/task`).map(Number);

/** CPU seconds a thread of this process has used (0 once it has exited). */
export function threadCpuSeconds(tid: number, pid: number | 'self' = 'self'): number {
  try {
    return statCpuSeconds(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8'));
  } catch {
    return 0;
  }
}

/** CPU seconds a whole process (every thread) has used; 0 once it has exited. */
export function processCpuSeconds(pid: number): number {
  try {
    return statCpuSeconds(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return 0;
  }
}
