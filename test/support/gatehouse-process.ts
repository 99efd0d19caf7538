import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const REPO = resolve(import.meta.dirname, '..', '..');
export const CLI = join(REPO, 'dist', 'cli', 'main.js');

export interface GatehouseProcess {
  readonly proc: ChildProcess;
  readonly egressPort: number;
  readonly adminPort: number;
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** A position in the log; pass it to waitForLog to ignore what was logged before. */
  mark(): number;
  /** Resolves when a stderr log line after `since` matches; rejects after timeoutMs. */
  waitForLog(pattern: RegExp, options?: { timeoutMs?: number; since?: number }): Promise<string>;
  /** Send a signal and resolve with the exit code. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
}

/** Run the built CLI (`gatehouse up ...`) as a user would and wait for its banner. */
export async function startGatehouse(args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<GatehouseProcess> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm test does)`);
  // Every listener on a free port unless the test names one, so test files can run side by side (the broker's
  // default 127.0.0.1:9112 would collide).
  const broker = args.includes('--broker-listen') || env['GATEHOUSE_BROKER_LISTEN'] ? [] : ['--broker-listen', '127.0.0.1:0'];
  const proc = spawn(process.execPath, [CLI, 'up', ...args, ...broker], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const listeners = new Set<() => void>();
  proc.stdout?.on('data', (c: Buffer) => {
    out += c.toString();
    for (const l of listeners) l();
  });
  proc.stderr?.on('data', (c: Buffer) => {
    err += c.toString();
    for (const l of listeners) l();
  });
  const waitFor = (check: () => string | null, what: string, timeoutMs: number): Promise<string> =>
    new Promise((resolvePromise, reject) => {
      const attempt = (): boolean => {
        const hit = check();
        if (hit === null) return false;
        cleanup();
        resolvePromise(hit);
        return true;
      };
      const onExit = (): void => {
        cleanup();
        reject(new Error(`gatehouse exited while waiting for ${what}\nstdout:\n${out}\nstderr:\n${err}`));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out waiting for ${what}\nstderr:\n${err.slice(-2000)}`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        listeners.delete(listener);
        proc.off('exit', onExit);
      };
      const listener = (): void => void attempt();
      if (attempt()) return;
      listeners.add(listener);
      proc.once('exit', onExit);
    });
  const banner = await waitFor(() => (out.includes('Stop with Ctrl-C') ? out : null), 'the banner', 20_000);
  const port = (label: string): number => Number(new RegExp(`${label}\\s+http://[^:]+:(\\d+)`).exec(banner)?.[1]);
  return {
    proc,
    egressPort: port('egress proxy'),
    adminPort: port('admin API'),
    stdout: () => out,
    stderr: () => err,
    mark: () => err.length,
    waitForLog: (pattern, options = {}) =>
      waitFor(() => err.slice(options.since ?? 0).split('\n').find((l) => pattern.test(l)) ?? null, String(pattern), options.timeoutMs ?? 5000),
    stop: (signal = 'SIGTERM', timeoutMs = 15_000) =>
      new Promise((resolvePromise, reject) => {
        if (proc.exitCode !== null) {
          resolvePromise(proc.exitCode);
          return;
        }
        const timer = setTimeout(() => reject(new Error('gatehouse did not exit')), timeoutMs);
        proc.once('exit', (code) => {
          clearTimeout(timer);
          resolvePromise(code);
        });
        proc.kill(signal);
      }),
  };
}
