import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { AppendResult } from './audit-append.js';
import { formatAppend, formatProxy, formatShip, type AuditVariant, type ProxyMode, type ProxyRun } from './audit-report.js';
import type { ShipResult } from './audit-ship.js';
import { formatDiff, formatSummary, summariseDir, type ProfiledRun } from './cpu-profile.js';
import { loadgen, wrk, type LoadTarget, type Measure } from './load.js';
import { benchPolicy, CORES, firstLine, pinned, startOrigin, type Peer } from './peers.js';
import { processCpuSeconds, threadCpuSeconds } from './thread-cpu.js';

/**
 * `npm run bench -- audit`: the three audit benchmarks of issue 5, each against a baseline measured in the same
 * run, in ABBA order so drift cancels. Every process under test is pinned to the proxy core (CORES.proxy);
 * rsyslog, the origin and the load generators to the other. Loops are bounded and only 127.0.0.1 is used.
 */
export interface AuditBenchOptions {
  readonly distBench: string;
  readonly cli: string;
  /** Length of each timed proxy run. */
  readonly seconds: number;
  /** Run the processes under test with --cpu-prof and print where their time goes. */
  readonly profile: boolean;
  readonly keep: boolean;
}

const env = (name: string, fallback: number): number => Number(process.env[name] ?? fallback) || fallback;
const EVENTS = env('BENCH_AUDIT_EVENTS', 100_000);
const RECORDS = env('BENCH_AUDIT_RECORDS', 50_000);
const ROUNDS = env('BENCH_AUDIT_ROUNDS', 2);
const CONCURRENCY = 32;
const run = promisify(execFile);

/** Node flags for a process under test: quiet about the IP-as-SNI deprecation, profiled when asked. */
const nodeFlags = (o: AuditBenchOptions, profileDir: string): string[] => ['--disable-warning=DEP0123', ...(o.profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [])];

/** A bench script in its own pinned process, one JSON argument in, one JSON line out. */
async function child<T>(o: AuditBenchOptions, script: string, config: object, profileDir: string): Promise<T> {
  const proc = pinned(CORES.proxy, process.execPath, [...nodeFlags(o, profileDir), join(o.distBench, script), JSON.stringify(config)]);
  let out = '';
  let err = '';
  proc.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr?.on('data', (c: Buffer) => (err += c.toString()));
  // 'close', not 'exit': it fires once stdout has been read to the end.
  const code = await new Promise<number | null>((resolve) => proc.once('close', (c) => resolve(c)));
  if (code !== 0) throw new Error(`${script} exited with ${code}: ${err.slice(-1000)}`);
  if (err.trim()) process.stderr.write(err);
  return JSON.parse(out.trim().split('\n').pop() ?? '{}') as T;
}

async function printProfiles(o: AuditBenchOptions, title: string, dir: string): Promise<void> {
  if (!o.profile) return;
  for (const s of await summariseDir(dir)) if (s.busyMs > 50) process.stdout.write(`\n${formatSummary(title, s)}`);
}

interface BenchProxy extends Peer {
  /** OS thread ids of the audit writer and shipper threads (none when auditing is off). */
  readonly threads: Readonly<Record<string, readonly number[]>>;
  /** Events appended so far and the time spent inside append (measured around each call in the proxy). */
  stats(): Promise<{ events: number; appendMs: number }>;
}

/** The bench proxy (audit-proxy.ts) pinned to the proxy core; `stop` sends SIGTERM and waits for its profiles. */
async function startBenchProxy(o: AuditBenchOptions, config: object, profileDir: string): Promise<BenchProxy> {
  const proc = pinned(CORES.proxy, process.execPath, [...nodeFlags(o, profileDir), join(o.distBench, 'audit-proxy.js'), JSON.stringify(config)]);
  const threadsLine = firstLine(proc, 'bench proxy', (t) => /^threads (.*)\n/m.exec(t)?.[1] ?? null);
  const port = Number(await firstLine(proc, 'bench proxy', (t) => /^port (\d+)\n/m.exec(t)?.[1] ?? null));
  const threads = JSON.parse(await threadsLine) as Record<string, number[]>;
  let pending: ((line: string) => void) | null = null;
  let buffered = '';
  proc.stdout?.on('data', (c: Buffer) => {
    buffered += c.toString();
    let nl: number;
    while ((nl = buffered.indexOf('\n')) !== -1) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (line.startsWith('stats ') && pending) pending(line.slice(6));
    }
  });
  const stats = (): Promise<{ events: number; appendMs: number }> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('bench proxy did not report its stats')), 10_000);
      pending = (line) => {
        clearTimeout(timer);
        pending = null;
        resolve(JSON.parse(line) as { events: number; appendMs: number });
      };
      proc.kill('SIGUSR2');
    });
  const stop = (): Promise<void> =>
    new Promise((resolve) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
      proc.once('exit', () => resolve());
      proc.kill('SIGTERM');
      setTimeout(() => proc.kill('SIGKILL'), 15_000).unref();
    });
  return { name: 'bench-proxy', pid: proc.pid as number, port, threads, stats, stop };
}

async function countRecords(dir: string): Promise<number> {
  let n = 0;
  for (const f of (await readdir(dir).catch(() => [] as string[])).filter((x) => /^\d{12}\.jsonl$/.test(x))) {
    n += (await readFile(join(dir, f), 'utf8')).split('\n').filter((l) => l.length > 0).length;
  }
  return n;
}

/** The three proxies: auditing on, off, and serialise-only (to split the cost between the data plane and the rest). */
const VARIANTS: ReadonlyArray<{ readonly variant: AuditVariant; readonly audit: boolean | 'serialize' }> = [
  { variant: 'on', audit: true },
  { variant: 'serialize', audit: 'serialize' },
  { variant: 'off', audit: false },
];

interface ProxyOutcome {
  readonly modes: ProxyMode[];
  readonly auditRecords: number;
  /** Completed requests per variant, warm-ups included (what each proxy's profile covers). */
  readonly ops: Record<AuditVariant, number>;
  /** CPU seconds each proxy's main thread used over its life (to calibrate its profile). */
  readonly mainCpu: Record<AuditVariant, number>;
}

interface Load {
  readonly name: string;
  readonly unit: string;
  measure(target: LoadTarget, seconds: number): Promise<Measure>;
}

/** One timed run against one proxy: the load generator's figures plus the proxy's CPU split by thread. */
async function measureRun(peer: BenchProxy, variant: AuditVariant, load: Load, auth: string, seconds: number): Promise<{ run: ProxyRun; ops: number }> {
  // The main thread's id is the process id; the writer's was reported by the proxy; the rest is the libuv pool,
  // GC helpers and the shipper.
  const writerTids = peer.threads['writer'] ?? [];
  const cpu = (): { all: number; main: number; writer: number } => ({
    all: processCpuSeconds(peer.pid),
    main: threadCpuSeconds(peer.pid, peer.pid),
    writer: writerTids.reduce((n, t) => n + threadCpuSeconds(t, peer.pid), 0),
  });
  const [s0, c0, t0] = [await peer.stats(), cpu(), performance.now()];
  const m = await load.measure({ proxyPort: peer.port, auth, host: 'origin.bench' }, seconds);
  const [c1, t1, s1] = [cpu(), performance.now(), await peer.stats()];
  const ops = m.ops ?? (m.perSecond ?? 0) * seconds;
  const perOp = (cpuSeconds: number): number => (ops > 0 ? (cpuSeconds * 1e6) / ops : 0);
  const run: ProxyRun = {
    variant,
    value: m.perSecond ?? 0,
    p50: m.p50,
    p99: m.p99,
    errors: m.errors,
    coreShare: (c1.all - c0.all) / ((t1 - t0) / 1000),
    cpuUsPerOp: perOp(c1.all - c0.all),
    mainUsPerOp: perOp(c1.main - c0.main),
    writerUsPerOp: perOp(c1.writer - c0.writer),
    appendUsPerEvent: s1.events > s0.events ? ((s1.appendMs - s0.appendMs) * 1000) / (s1.events - s0.events) : 0,
  };
  return { run, ops };
}

async function proxyOnOff(o: AuditBenchOptions, work: string): Promise<ProxyOutcome> {
  const origin = await startOrigin(o.distBench);
  const policyFile = join(work, 'policy.yaml');
  const stateDir = join(work, 'proxy-state');
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  await writeFile(policyFile, benchPolicy(origin.port));
  const proxies = new Map<AuditVariant, BenchProxy>();
  const outcome: ProxyOutcome = { modes: [], auditRecords: 0, ops: { on: 0, serialize: 0, off: 0 }, mainCpu: { on: 0, serialize: 0, off: 0 } };
  try {
    // One after the other: the first creates the signing keys the others read.
    for (const v of VARIANTS) proxies.set(v.variant, await startBenchProxy(o, { stateDir, policyFile, auditDir: join(work, `proxy-audit-${v.variant}`), audit: v.audit }, join(work, 'profiles', `proxy-${v.variant}`)));
    const { stdout: token } = await run(process.execPath, [o.cli, 'token', 'issue', '--state', stateDir, '--policy', policyFile, '--tenant', 'bench', '--session', 'bench', '--allow', `origin.bench:${origin.port}`, '--ttl', '15m']);
    const auth = `Basic ${Buffer.from(`gatehouse:${token.trim()}`).toString('base64')}`;
    const loads: readonly Load[] = [
      { name: 'plain HTTP keep-alive', unit: 'req/s', measure: (t, s) => wrk(t, origin.port, CONCURRENCY, s) },
      { name: 'CONNECT setup + 1 request', unit: 'setups/s', measure: (t, s) => loadgen(o.distBench, { mode: 'connect', proxyPort: t.proxyPort, originHost: t.host, originPort: origin.port, auth: t.auth, concurrency: CONCURRENCY, seconds: s }) },
    ];
    for (const load of loads) {
      const measure = async (variant: AuditVariant, seconds: number): Promise<ProxyRun> => {
        const { run: result, ops } = await measureRun(proxies.get(variant) as BenchProxy, variant, load, auth, seconds);
        outcome.ops[variant] += ops;
        return result;
      };
      // Untimed warm-up of each (JIT, token cache, the origin's and the proxies' connection pools).
      for (const v of VARIANTS) await measure(v.variant, 2);
      const runs: ProxyRun[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        // ABBA: on, serialize, off, then off, serialize, on, ... so a drift linear in time costs each the same.
        const order = r % 2 === 0 ? VARIANTS : [...VARIANTS].reverse();
        for (const v of order) runs.push(await measure(v.variant, o.seconds));
      }
      outcome.modes.push({ name: load.name, unit: load.unit, concurrency: CONCURRENCY, runs });
    }
  } finally {
    for (const [v, p] of proxies) outcome.mainCpu[v] = threadCpuSeconds(p.pid, p.pid);
    await Promise.all([...[...proxies.values()].map((p) => p.stop()), origin.stop()]);
  }
  return { ...outcome, auditRecords: await countRecords(join(work, 'proxy-audit-on', 'egress')) };
}

/** With --profile: each proxy's main thread, and the difference per request between audit on and off. */
async function printProxyProfiles(o: AuditBenchOptions, work: string, outcome: ProxyOutcome): Promise<void> {
  if (!o.profile) return;
  const main = async (v: AuditVariant): Promise<ProfiledRun | undefined> => {
    const summary = (await summariseDir(join(work, 'profiles', `proxy-${v}`))).find((s) => s.thread === 'main');
    return summary && { summary, ops: Math.round(outcome.ops[v]), cpuSeconds: outcome.mainCpu[v] || null };
  };
  const [on, ser, off] = [await main('on'), await main('serialize'), await main('off')];
  for (const v of ['on', 'off'] as const) await printProfiles(o, `profile: proxy, audit ${v}`, join(work, 'profiles', `proxy-${v}`));
  process.stdout.write(
    '\nNote: the proxy and its threads share one core, so time the core spent on the writer thread while the main thread\n' +
      'was runnable shows up in the main thread\'s profile, under the call that woke the writer (postMessage).\n',
  );
  if (on && off) process.stdout.write(`\n${formatDiff('main thread, audit on minus off', on, off)}`);
  if (ser && off) process.stdout.write(`\n${formatDiff('main thread, serialise-only minus off', ser, off)}`);
}

export const AUDIT_PARTS = ['append', 'ship', 'proxy'] as const;
export type AuditPart = (typeof AUDIT_PARTS)[number];

export async function runAuditBench(o: AuditBenchOptions, parts: ReadonlySet<AuditPart> = new Set(AUDIT_PARTS)): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'gatehouse-audit-bench-'));
  const profiles = (name: string): string => join(work, 'profiles', name);
  try {
    process.stdout.write('\n');
    const segmentMaxBytes = 4 * 1024 * 1024;
    const checkpointIntervalMs = 250;
    if (parts.has('append')) {
      const append = await child<AppendResult>(o, 'audit-append.js', { dir: join(work, 'append'), events: EVENTS, rounds: ROUNDS, segmentMaxBytes, checkpointIntervalMs, deadlineSeconds: 20 }, profiles('append'));
      process.stdout.write(formatAppend(append, { segmentMaxBytes, checkpointIntervalMs }));
      await printProfiles(o, 'profile: audit append bench', profiles('append'));
    }
    if (parts.has('ship')) {
      const ship = await child<ShipResult>(o, 'audit-ship.js', { dir: join(work, 'ship'), records: RECORDS, rounds: ROUNDS, tls: process.env['BENCH_AUDIT_TLS'] !== '0', deadlineSeconds: 30 }, profiles('ship'));
      process.stdout.write(`\n${formatShip(ship)}`);
      await printProfiles(o, 'profile: shipping bench', profiles('ship'));
    }
    if (parts.has('proxy')) {
      const proxy = await proxyOnOff(o, work);
      process.stdout.write(`\n${formatProxy(proxy.modes, o.seconds)}`);
      // Every completed request has its event (requests in flight when a run ends add a few more).
      const done = Math.round(proxy.ops.on);
      process.stdout.write(`audit log of the "on" proxy: ${proxy.auditRecords} egress records for ${done} completed requests: ${proxy.auditRecords >= done ? 'ok' : 'EVENTS MISSING'}\n`);
      await printProxyProfiles(o, work, proxy);
    }
  } finally {
    if (o.keep) process.stderr.write(`kept ${work}\n`);
    else await rm(work, { recursive: true, force: true });
  }
}
