import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { join } from 'node:path';

/** A process the benchmark started; `stop` kills it and waits for the exit. */
export interface Peer {
  readonly name: string;
  readonly pid: number;
  readonly port: number;
  stop(): Promise<void>;
}

export const CORES = { load: '0', proxy: '1' } as const;

/** Run `cmd` pinned to one core (taskset), with a raised file-descriptor limit for the idle-tunnel test. */
export function pinned(core: string, cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
  const quoted = [cmd, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  return spawn('bash', ['-c', `ulimit -n 20000 2>/dev/null; exec taskset -c ${core} ${quoted}`], { env, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Resolves with `match`'s answer once the process's stdout has produced it; rejects when it exits or times out. */
export function firstLine(proc: ChildProcess, what: string, match: (text: string) => string | null, timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`${what} did not start: ${text.slice(-500)}`)), timeoutMs);
    const onData = (c: Buffer): void => {
      text += c.toString();
      const hit = match(text);
      if (hit !== null) {
        clearTimeout(timer);
        proc.stdout?.off('data', onData);
        resolve(hit);
      }
    };
    proc.stdout?.on('data', onData);
    proc.stderr?.on('data', (c: Buffer) => (text += c.toString()));
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code}): ${text.slice(-500)}`));
    });
  });
}

const stopper = (proc: ChildProcess) => (): Promise<void> =>
  new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    proc.once('exit', () => resolve());
    proc.kill('SIGTERM');
    setTimeout(() => proc.kill('SIGKILL'), 5000).unref();
  });

export async function startOrigin(distBench: string): Promise<Peer> {
  const proc = pinned(CORES.load, process.execPath, [join(distBench, 'origin-server.js')]);
  const port = Number(await firstLine(proc, 'origin', (t) => /^(\d+)\n/.exec(t)?.[1] ?? null));
  return { name: 'origin', pid: proc.pid as number, port, stop: stopper(proc) };
}

function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const s = createConnection({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve();
      });
      s.once('error', () => {
        s.destroy();
        if (Date.now() > deadline) reject(new Error(`nothing listens on ${port}`));
        else setTimeout(attempt, 100);
      });
    };
    attempt();
  });
}

/**
 * Squid from Debian, one worker, no cache. `accessLog` as Debian ships it (every request logged, through the
 * logfile daemon): the counterpart of Gatehouse's audit log. Without it: the leanest squid, for reference.
 */
export async function startSquid(dir: string, port: number, accessLog: boolean): Promise<Peer> {
  await mkdir(dir, { recursive: true });
  // Squid drops privileges to its own user: it must be able to reach and write its directory.
  await chmod(join(dir, '..'), 0o711);
  await chmod(dir, 0o777);
  const conf = join(dir, 'squid.conf');
  await writeFile(
    conf,
    [
      `http_port 127.0.0.1:${port}`,
      'acl localnet src 127.0.0.0/8',
      'http_access allow localnet',
      'http_access deny all',
      'cache deny all',
      'cache_mem 8 MB',
      accessLog ? `access_log daemon:${join(dir, 'access.log')} squid` : 'access_log none',
      `cache_log ${join(dir, 'cache.log')}`,
      `pid_filename ${join(dir, 'squid.pid')}`,
      `coredump_dir ${dir}`,
      'workers 1',
      'max_filedescriptors 20000',
      'shutdown_lifetime 0 seconds',
      'pinger_enable off',
      'client_persistent_connections on',
      'server_persistent_connections on',
      '',
    ].join('\n'),
  );
  // A service name per instance: two squids with the same name share (and fight over) their IPC names.
  const proc = pinned(CORES.proxy, '/usr/sbin/squid', ['-N', '-n', accessLog ? 'ghbenchlog' : 'ghbenchlean', '-f', conf]);
  await waitForPort(port, 20_000);
  return { name: accessLog ? 'squid' : 'squid-lean', pid: proc.pid as number, port, stop: stopper(proc) };
}

/**
 * The benchmark policy: one tenant allowed to reach the origin, which listens on loopback (hence the explicit
 * private-range exception), with connection limits above anything the load generators open.
 */
export const benchPolicy = (originPort: number): string => `version: 1
egress:
  unsafe_allow_private:
    - {host: origin.bench, cidr: 127.0.0.1/32}
  resolver: {hosts: {origin.bench: [127.0.0.1]}}
  limits:
    max_connections: 19000
    per_session: {max_connections: 19000, new_connections_per_second: 1000000, burst: 1000000}
tenants:
  - name: bench
    egress: {allow: ["origin.bench:${originPort}"]}
`;

/** Gatehouse as users run it (the built CLI), with token auth, policy and audit all on. */
export async function startGatehouse(cli: string, stateDir: string, policyFile: string): Promise<Peer> {
  const proc = pinned(CORES.proxy, process.execPath, [cli, 'up', '--state', stateDir, '--policy', policyFile, '--egress-listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--broker-listen', '127.0.0.1:0', '--log-level', 'warn', '--drain-timeout', '1s']);
  const port = Number(await firstLine(proc, 'gatehouse', (t) => /egress proxy\s+http:\/\/127\.0\.0\.1:(\d+)/.exec(t)?.[1] ?? null));
  return { name: 'gatehouse', pid: proc.pid as number, port, stop: stopper(proc) };
}
