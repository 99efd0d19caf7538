import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from './gatehouse-process.js';

const SCRIPT = join(REPO, 'test', 'support', 'audit-child.mjs');

export interface AuditChildOptions {
  readonly dir: string;
  readonly mode: 'batched' | 'strict';
  readonly count: number;
  readonly flushIntervalMs?: number;
  readonly segmentMaxBytes?: number;
  readonly pad?: number;
  readonly concurrency?: number;
  readonly burst?: number;
}

export interface AuditChild {
  readonly proc: ChildProcess;
  readonly pid: number;
  /** Every stdout line so far. */
  lines(): readonly string[];
  /** Resolves with the first line (already printed or later) matching; rejects after timeoutMs or on exit. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
  send(line: string): void;
  /** Resolves with the exit code or signal once the process has exited. */
  readonly exited: Promise<number | NodeJS.Signals | null>;
}

/**
 * Run test/support/audit-child.mjs: a process writing the audit log through the built AuditLog. With
 * `fileSizeLimit` it runs under `prlimit --fsize` (soft limit only, so the test can lift it later with
 * `prlimit --pid`): a write past the limit is cut short and the next one fails with EFBIG, as on a full disk.
 */
export async function startAuditChild(options: AuditChildOptions, fileSizeLimit?: number): Promise<AuditChild> {
  if (!existsSync(join(REPO, 'dist', 'core', 'audit', 'audit-log.js'))) throw new Error('dist/ is missing: run "npm run build" first');
  const node = [process.execPath, SCRIPT, JSON.stringify(options)];
  const proc = fileSizeLimit === undefined ? spawn(node[0] as string, node.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] }) : spawn('prlimit', [`--fsize=${fileSizeLimit}:unlimited`, ...node], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: string[] = [];
  let partial = '';
  const listeners = new Set<() => void>();
  proc.stdout?.on('data', (chunk: Buffer) => {
    const parts = (partial + chunk.toString()).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
    for (const l of listeners) l();
  });
  const exited = new Promise<number | NodeJS.Signals | null>((resolve) => proc.once('close', (code, signal) => resolve(code ?? signal)));
  const waitFor = (pattern: RegExp, timeoutMs = 10_000): Promise<string> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const hit = lines.find((l) => pattern.test(l));
        if (hit === undefined) return;
        done();
        resolve(hit);
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`audit child: no line matching ${String(pattern)} within ${timeoutMs} ms; last lines: ${lines.slice(-5).join(' | ')}`));
      }, timeoutMs);
      const onExit = (): void => {
        done();
        reject(new Error(`audit child exited while waiting for ${String(pattern)}; last lines: ${lines.slice(-5).join(' | ')}`));
      };
      const done = (): void => {
        clearTimeout(timer);
        listeners.delete(check);
        proc.off('close', onExit);
      };
      listeners.add(check);
      proc.once('close', onExit);
      check();
    });
  const child: AuditChild = { proc, pid: proc.pid as number, lines: () => lines, waitFor, send: (line) => proc.stdin?.write(`${line}\n`), exited };
  await waitFor(/^ready$/, 20_000);
  return child;
}
