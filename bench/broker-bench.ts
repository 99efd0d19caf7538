import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { freemem, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startCephRgw, type CephRgw } from '../test/peers/ceph-rgw.js';
import type { BrokerFile, ClientJob, DirectTarget, LatencyResult, LatencyTarget, TransferResult } from './broker-client.js';
import { formatLatency, formatSign, formatStream, type Direction, type Side, type StreamOutcome, type StreamRun } from './broker-report.js';
import type { SignJob, SignResult } from './broker-sign.js';
import { CORES, firstLine, pinned, type Peer } from './peers.js';
import { processCpuSeconds } from './thread-cpu.js';

/**
 * `npm run bench -- broker`: the credential broker against a real Ceph RADOS Gateway on loopback, each figure
 * beside a baseline measured in the same run, in ABBA order so a drift linear in time costs both sides the same.
 * Gatehouse runs as users run it (the built CLI, `gatehouse up`, audit on) pinned to the proxy core; RGW's
 * daemons and the client processes (bench/broker-client.ts) to the load core. Parts:
 * - stream: 256 MiB uploads and downloads through the broker vs the same client straight to RGW, and the broker's
 *   peak RSS growth (and 1 GiB through the broker when the machine has the memory for RGW's memstore);
 * - latency: 1 KiB GET and stat through the broker (S3 store, local store) vs a signed GET/HEAD straight to RGW;
 * - sign: SigV4 signing per request as the broker configures @smithy/signature-v4, vs plain HMAC (broker-sign.ts).
 * Every loop is bounded by a count and a deadline; only 127.0.0.1 is used.
 */
export interface BrokerBenchOptions {
  readonly distBench: string;
  readonly cli: string;
  readonly keep: boolean;
}

export const BROKER_PARTS = ['stream', 'latency', 'sign'] as const;
export type BrokerPart = (typeof BROKER_PARTS)[number];

const MiB = 1024 * 1024;
const env = (name: string, fallback: number): number => Number(process.env[name] ?? fallback) || fallback;
const OBJECT_BYTES = env('BENCH_BROKER_MIB', 256) * MiB;
const ROUNDS = env('BENCH_BROKER_ROUNDS', 2);
const LATENCY_PER_BLOCK = env('BENCH_BROKER_REQUESTS', 250);
const SIGN_OPS = env('BENCH_BROKER_SIGN_OPS', 20_000);
const LARGE_BYTES = 1024 * MiB;
// The broker store's part size: the default (core/policy/defaults.ts), so the benchmark measures what users get.
const PART_BYTES = 8 * MiB;
const WARM_BYTES = 3 * PART_BYTES;
const BUCKET = 'gh-bench';
const FS = 'fs-bench';
const ENV_ACCESS = 'GH_BENCH_S3_ACCESS_KEY';
const ENV_SECRET = 'GH_BENCH_S3_SECRET_KEY';
const run = promisify(execFile);

/** One bench script in its own process pinned to `core`, one JSON argument in, one JSON line out. */
async function child<T>(o: BrokerBenchOptions, core: string, script: string, config: object, deadlineMs: number): Promise<T> {
  const proc = pinned(core, process.execPath, [join(o.distBench, script), JSON.stringify(config)]);
  let out = '';
  let err = '';
  proc.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr?.on('data', (c: Buffer) => (err += c.toString()));
  const timer = setTimeout(() => proc.kill('SIGKILL'), deadlineMs);
  // 'close', not 'exit': it fires once stdout has been read to the end.
  const code = await new Promise<number | null>((resolve) => proc.once('close', (c) => resolve(c)));
  clearTimeout(timer);
  if (code !== 0) throw new Error(`${script} exited with ${code}: ${err.slice(-1000)}`);
  if (err.trim()) process.stderr.write(err);
  return JSON.parse(out.trim().split('\n').pop() ?? '{}') as T;
}

interface BrokerPeer extends Peer {
  readonly brokerUrl: string;
  /** A broker token for a session of `tenant`, through the admin API as an orchestrator gets one. */
  session(tenant: string): Promise<string>;
}

const policy = (rgw: CephRgw): string => `version: 1
tokens:
  max_ttl: 1h
broker:
  stores:
    - name: ceph
      type: s3
      endpoint: ${rgw.endpoint}
      region: ${rgw.region}
      bucket: ${BUCKET}
      prefix: gatehouse/
      access_key_id: env:${ENV_ACCESS}
      secret_access_key: env:${ENV_SECRET}
    - name: local
      type: local
  # Far above what one client at a time sends: the limits are not what is measured.
  limits:
    per_session: {requests_per_second: 100000, burst: 100000, max_concurrent: 256}
tenants:
  - name: bench-s3
    broker:
      store: ceph
      mounts: [{path: /data, mode: rw, max_object_bytes: 2GiB}]
  - name: bench-local
    broker:
      store: local
      mounts: [{path: /data, mode: rw}]
`;

/** `gatehouse up` with the broker on 127.0.0.1, pinned to the proxy core, S3 credentials as env: references. */
async function startBroker(o: BrokerBenchOptions, work: string, rgw: CephRgw): Promise<BrokerPeer> {
  const state = join(work, 'state');
  const policyFile = join(work, 'policy.yaml');
  await writeFile(policyFile, policy(rgw));
  const childEnv: NodeJS.ProcessEnv = { ...process.env, [ENV_ACCESS]: rgw.accessKeyId, [ENV_SECRET]: rgw.secretAccessKey };
  for (const k of Object.keys(childEnv)) if (/_proxy$/i.test(k)) delete childEnv[k];
  const args = [o.cli, 'up', '--state', state, '--policy', policyFile, '--egress-listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--broker-listen', '127.0.0.1:0', '--log-level', 'warn', '--drain-timeout', '1s'];
  const proc = pinned(CORES.proxy, process.execPath, args, childEnv);
  const banner = await firstLine(proc, 'gatehouse', (t) => (t.includes('Stop with Ctrl-C') ? t : null));
  const brokerUrl = /broker\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(banner)?.[1] ?? '';
  const adminPort = Number(/admin API\s+http:\/\/127\.0\.0\.1:(\d+)/.exec(banner)?.[1]);
  const adminToken = (await readFile(join(state, 'admin-token'), 'utf8')).trim();
  const stop = (): Promise<void> =>
    new Promise((resolve) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
      proc.once('exit', () => resolve());
      proc.kill('SIGTERM');
      setTimeout(() => proc.kill('SIGKILL'), 10_000).unref();
    });
  return {
    name: 'gatehouse',
    pid: proc.pid as number,
    port: Number(new URL(brokerUrl).port),
    brokerUrl,
    stop,
    async session(tenant) {
      const res = await fetch(`http://127.0.0.1:${adminPort}/v1/sessions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ tenant, broker: { filesystem: FS }, ttl: '1h' }),
      });
      const body = (await res.json()) as { tokens?: { broker?: string } };
      if (res.status !== 201 || !body.tokens?.broker) throw new Error(`create session for ${tenant}: HTTP ${res.status}`);
      return body.tokens.broker;
    },
  };
}

/** RGW's daemons (listed by the peer in its `pids` file) onto the load core, every thread of each. */
async function pinRgw(rgw: CephRgw): Promise<void> {
  const pids = (await readFile(join(rgw.dir, 'pids'), 'utf8')).split('\n').filter((p) => /^\d+$/.test(p));
  for (const pid of pids) await run('taskset', ['-a', '-c', '-p', CORES.load, pid]);
}

async function memory(pid: number): Promise<{ rss: number; hwm: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** Reset the process's peak RSS to its current RSS (Linux >= 4.0, clear_refs "5"); false when not permitted. */
async function resetPeak(pid: number): Promise<boolean> {
  return writeFile(`/proc/${pid}/clear_refs`, '5').then(
    () => true,
    () => false,
  );
}

/** SHA-256 of `bytes` bytes of what broker-client.ts sends (0x5a repeated), computed here in 1 MiB steps. */
function generatedDigest(bytes: number): string {
  const h = createHash('sha256');
  const block = Buffer.alloc(MiB, 0x5a);
  for (let left = bytes; left > 0; left -= MiB) h.update(left >= MiB ? block : block.subarray(0, left));
  return h.digest('hex');
}

interface StreamContext {
  readonly o: BrokerBenchOptions;
  readonly gh: BrokerPeer;
  readonly direct: DirectTarget;
  readonly token: string;
  peakReset: boolean;
}

/** One timed transfer in a fresh client process, with the broker's CPU time and (broker side) its peak RSS growth. */
async function transfer(c: StreamContext, direction: Direction, side: Side, job: ClientJob, bytes: number): Promise<StreamRun> {
  const reset = side === 'broker' && (await resetPeak(c.gh.pid));
  if (side === 'broker') c.peakReset &&= reset;
  const [m0, cpu0] = [await memory(c.gh.pid), processCpuSeconds(c.gh.pid)];
  const r = await child<TransferResult>(c.o, CORES.load, 'broker-client.js', job, 10 * 60_000);
  const [m1, cpu1] = [await memory(c.gh.pid), processCpuSeconds(c.gh.pid)];
  if (r.bytes !== bytes) throw new Error(`${side} ${direction}: ${r.bytes} bytes of ${bytes}`);
  const run: StreamRun = { direction, side, bytes, seconds: r.seconds, brokerCpu: cpu1 - cpu0 };
  return side === 'broker' ? { ...run, rssGrowth: reset ? m1.hwm - m0.rss : m1.hwm - m0.hwm } : run;
}

/** `largeSkipped`: why the 1 GiB transfers are not run, or null to run them. */
async function streamBench(c: StreamContext, largeSkipped: string | null): Promise<StreamOutcome> {
  const file = (path: string): BrokerFile => ({ url: c.gh.brokerUrl, token: c.token, path });
  const key = (path: string): string => `gatehouse/bench-s3/${FS}${path}`;
  // Untimed warm-up through the broker (3 parts, so multipart), read back and checked byte for byte by hash.
  await transfer(c, 'upload', 'broker', { mode: 'upload', via: 'broker', file: file('/data/warm.bin'), bytes: WARM_BYTES }, WARM_BYTES);
  const warm = await child<TransferResult>(c.o, CORES.load, 'broker-client.js', { mode: 'download', via: 'broker', file: file('/data/warm.bin'), hash: true }, 60_000);
  const verified = warm.sha256 === generatedDigest(WARM_BYTES);
  await child<TransferResult>(c.o, CORES.load, 'broker-client.js', { mode: 'upload', via: 'direct', target: c.direct, key: 'direct/warm.bin', bytes: WARM_BYTES, partSize: PART_BYTES }, 60_000);
  const runs: StreamRun[] = [];
  const up = (side: Side, r: number): Promise<StreamRun> =>
    side === 'broker'
      ? transfer(c, 'upload', side, { mode: 'upload', via: 'broker', file: file(`/data/up-${r}.bin`), bytes: OBJECT_BYTES }, OBJECT_BYTES)
      : transfer(c, 'upload', side, { mode: 'upload', via: 'direct', target: c.direct, key: `direct/up-${r}.bin`, bytes: OBJECT_BYTES, partSize: PART_BYTES }, OBJECT_BYTES);
  // Both sides read the same object (the broker's first upload).
  const down = (side: Side): Promise<StreamRun> =>
    side === 'broker'
      ? transfer(c, 'download', side, { mode: 'download', via: 'broker', file: file('/data/up-0.bin') }, OBJECT_BYTES)
      : transfer(c, 'download', side, { mode: 'download', via: 'direct', target: c.direct, key: key('/data/up-0.bin') }, OBJECT_BYTES);
  const abba = (r: number): Side[] => (r % 2 === 0 ? ['broker', 'direct'] : ['direct', 'broker']);
  for (let r = 0; r < ROUNDS; r++) for (const side of abba(r)) runs.push(await up(side, r));
  for (let r = 0; r < ROUNDS; r++) for (const side of abba(r)) runs.push(await down(side));
  const largeRuns: StreamRun[] = [];
  if (largeSkipped === null) {
    largeRuns.push(await transfer(c, 'upload', 'broker', { mode: 'upload', via: 'broker', file: file('/data/large.bin'), bytes: LARGE_BYTES }, LARGE_BYTES));
    largeRuns.push(await transfer(c, 'download', 'broker', { mode: 'download', via: 'broker', file: file('/data/large.bin') }, LARGE_BYTES));
  }
  return { objectBytes: OBJECT_BYTES, partBytes: PART_BYTES, runs, large: largeRuns, verified, peakReset: c.peakReset, ...(largeSkipped === null ? {} : { largeSkipped }) };
}

async function latencyBench(o: BrokerBenchOptions, gh: BrokerPeer, direct: DirectTarget, s3Token: string): Promise<string> {
  const localToken = await gh.session('bench-local');
  const body = Buffer.alloc(1024, 0x41);
  for (const token of [s3Token, localToken]) {
    const res = await fetch(`${gh.brokerUrl}/v1/files/data/small.bin`, { method: 'PUT', headers: { authorization: `Bearer ${token}` }, body });
    if (res.status !== 200) throw new Error(`PUT small.bin: HTTP ${res.status} ${await res.text()}`);
  }
  const names = { direct: 'direct (RGW)', s3: 'broker (S3)', local: 'broker (local)' };
  const targets: LatencyTarget[] = [
    { name: names.direct, via: 'direct', target: direct, key: `gatehouse/bench-s3/${FS}/data/small.bin` },
    { name: names.s3, via: 'broker', file: { url: gh.brokerUrl, token: s3Token, path: '/data/small.bin' } },
    { name: names.local, via: 'broker', file: { url: gh.brokerUrl, token: localToken, path: '/data/small.bin' } },
  ];
  const result = await child<LatencyResult>(o, CORES.load, 'broker-client.js', { mode: 'latency', targets, perBlock: LATENCY_PER_BLOCK, rounds: 4, deadlineSeconds: 120 }, 180_000);
  return formatLatency(result, names.direct, names.s3, names.local);
}

/** Room for every object the stream part writes: RGW's garbage collection is off, so overwritten data stays. */
function memstorePlan(parts: ReadonlySet<BrokerPart>): { bytes: number; large: string | null } {
  const base = (parts.has('stream') ? 2 * ROUNDS * OBJECT_BYTES + 2 * WARM_BYTES : 0) + 64 * MiB;
  const withLarge = Math.ceil((base + LARGE_BYTES) / 0.85) + 256 * MiB;
  if (!parts.has('stream')) return { bytes: Math.ceil(base / 0.85) + 256 * MiB, large: 'stream part not run' };
  if (process.env['BENCH_BROKER_GIB'] === '0') return { bytes: Math.ceil(base / 0.85) + 256 * MiB, large: 'BENCH_BROKER_GIB=0' };
  // The OSD holds the memstore in RAM; keep 2 GiB for everything else.
  if (freemem() < withLarge + 2 * 1024 * MiB) return { bytes: Math.ceil(base / 0.85) + 256 * MiB, large: `${Math.round(freemem() / MiB)} MiB free, ${Math.round((withLarge + 2048 * MiB) / MiB)} MiB needed` };
  return { bytes: withLarge, large: null };
}

export async function runBrokerBench(o: BrokerBenchOptions, parts: ReadonlySet<BrokerPart> = new Set(BROKER_PARTS)): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'gatehouse-broker-bench-'));
  let rgw: CephRgw | undefined;
  let gh: BrokerPeer | undefined;
  try {
    process.stdout.write('\n');
    if (parts.has('sign')) {
      const sign = await child<SignResult>(o, CORES.proxy, 'broker-sign.js', { iterations: SIGN_OPS, rounds: 4, deadlineSeconds: 90 } satisfies SignJob, 120_000);
      process.stdout.write(formatSign(sign, 'HMAC of string-to-sign'));
    }
    if (!parts.has('stream') && !parts.has('latency')) return;
    const plan = memstorePlan(parts);
    // Nagle off on RGW's sockets, as a production RGW should run: with RGW's default, a 1 KiB GET often stalls
    // ~40 ms on the client's delayed ACK (measured here: half of direct GETs, nearly every GET through the broker).
    rgw = await startCephRgw({ memstoreBytes: plan.bytes, tcpNoDelay: true });
    await pinRgw(rgw);
    await rgw.createBucket(BUCKET);
    gh = await startBroker(o, work, rgw);
    const direct: DirectTarget = { endpoint: rgw.endpoint, region: rgw.region, accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey, bucket: BUCKET };
    const token = await gh.session('bench-s3');
    if (parts.has('stream')) process.stdout.write(`\n${formatStream(await streamBench({ o, gh, direct, token, peakReset: true }, plan.large))}`);
    if (parts.has('latency')) process.stdout.write(`\n${await latencyBench(o, gh, direct, token)}`);
  } finally {
    await gh?.stop();
    await rgw?.stop();
    if (o.keep) process.stderr.write(`kept ${work}\n`);
    else await rm(work, { recursive: true, force: true });
  }
}
