import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CORES, pinned } from './peers.js';

/** The two load generators every benchmark uses, pinned to the load core: wrk (plain HTTP) and bench/loadgen. */
const run = promisify(execFile);

/** Where the load goes: through a proxy (with its Proxy-Authorization) or, with no proxy port, to the origin. */
export interface LoadTarget {
  readonly proxyPort: number | null;
  readonly auth: string | null;
  /** The origin's host name as the client writes it. */
  readonly host: string;
}

export interface Measure {
  /** Completed operations (requests, tunnel setups) in the timed window. */
  ops?: number;
  perSecond?: number;
  mbPerSecond?: number;
  p50: number;
  p99: number;
  errors: number;
}

/** bench/loadgen.js in its own process with one JSON config; resolves with its JSON result line. */
export async function loadgen(distBench: string, config: Record<string, unknown>): Promise<Measure> {
  const proc = pinned(CORES.load, process.execPath, [join(distBench, 'loadgen.js'), JSON.stringify(config)]);
  let out = '';
  proc.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr?.on('data', (c: Buffer) => process.stderr.write(c));
  // 'close', not 'exit': it fires once stdout has been read to the end.
  await new Promise<void>((resolve) => proc.once('close', () => resolve()));
  return JSON.parse(out.trim().split('\n').pop() ?? '{}') as Measure;
}

/** wrk for `seconds` at `connections` connections: GET /small, absolute-form through the proxy when there is one. */
export async function wrk(target: LoadTarget, originPort: number, connections: number, seconds: number): Promise<Measure> {
  const dir = await mkdtemp(join(tmpdir(), 'gh-wrk-'));
  const script = join(dir, 'proxy.lua');
  const authority = `${target.host}:${originPort}`;
  await writeFile(
    script,
    target.proxyPort === null
      ? 'wrk.path = "/small"\n'
      : `wrk.path = "http://${authority}/small"\nwrk.headers["Host"] = "${authority}"\n${target.auth ? `wrk.headers["Proxy-Authorization"] = "${target.auth}"\n` : ''}`,
  );
  const port = target.proxyPort ?? originPort;
  const { stdout } = await run('taskset', ['-c', CORES.load, 'wrk', '-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '-s', script, `http://127.0.0.1:${port}`], { maxBuffer: 1 << 20 });
  await rm(dir, { recursive: true, force: true });
  const num = (re: RegExp): number => Number(re.exec(stdout)?.[1] ?? 0);
  const ms = (re: RegExp): number => {
    const m = re.exec(stdout);
    if (!m) return 0;
    const v = Number(m[1]);
    return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
  };
  const errors = num(/Non-2xx or 3xx responses: (\d+)/) + num(/Socket errors: connect (\d+)/);
  return { ops: num(/(\d+) requests in/), perSecond: num(/Requests\/sec:\s+([\d.]+)/), p50: ms(/50%\s+([\d.]+)(us|ms|s)/), p99: ms(/99%\s+([\d.]+)(us|ms|s)/), errors };
}
