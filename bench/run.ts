import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { AUDIT_PARTS, runAuditBench, type AuditPart } from './audit-bench.js';
import { BROKER_PARTS, runBrokerBench, type BrokerPart } from './broker-bench.js';
import { loadgen, wrk, type LoadTarget } from './load.js';
import { benchPolicy, CORES, pinned, startGatehouse, startOrigin, startSquid, type Peer } from './peers.js';
import { formatTable, ratio, type Row } from './report.js';

/**
 * `npm run bench [-- proxies|audit|broker] [--profile]`: with no argument, every suite.
 * - proxies: direct (no proxy), Gatehouse and squid side by side in one run on loopback, each proxy pinned to
 *   its own core and the load generator and origin to the other. Every figure is also printed as a ratio to
 *   direct and to squid from this same run, because absolute numbers on a shared machine mean little.
 * - audit: the audit log's append rate, shipping to rsyslog, and the proxy with auditing on versus off
 *   (bench/audit-bench.ts); `--profile` (or BENCH_PROFILE=1) adds CPU profiles of its processes.
 * - broker: the credential broker's S3 store against Ceph RGW (streaming throughput and RSS, small-request
 *   latency) and the SigV4 signing cost, each beside a direct-to-RGW or plain-HMAC baseline (bench/broker-bench.ts).
 */
const distBench = dirname(fileURLToPath(import.meta.url));
const cli = join(distBench, '..', 'cli', 'main.js');
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 5);
const run = promisify(execFile);
const SUITES = ['proxies', 'audit', ...AUDIT_PARTS.map((p) => `audit:${p}`), 'broker', ...BROKER_PARTS.map((p) => `broker:${p}`)] as const;

type Target = LoadTarget & { name: Row['target'] };

async function rssKb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
}

async function idleTunnels(target: Target, peer: Peer, originPort: number, count: number): Promise<{ before: number; after: number; open: number }> {
  const before = await rssKb(peer.pid);
  const proc = pinned(CORES.load, process.execPath, [join(distBench, 'loadgen.js'), JSON.stringify({ mode: 'idle', proxyPort: target.proxyPort, originHost: target.host, originPort, auth: target.auth, count })]);
  const line = await new Promise<string>((resolve) => {
    let out = '';
    proc.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('\n')) resolve(out.split('\n')[0] as string);
    });
    proc.once('exit', () => resolve(out));
  });
  const after = await rssKb(peer.pid);
  proc.stdin?.end();
  await new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  return { before, after, open: (JSON.parse(line || '{"open":0}') as { open: number }).open };
}

async function proxiesBench(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'gatehouse-bench-'));
  const origin = await startOrigin(distBench);
  const policyFile = join(work, 'policy.yaml');
  await writeFile(policyFile, benchPolicy(origin.port));
  const gatehouse = await startGatehouse(cli, join(work, 'state'), policyFile);
  const squid = await startSquid(join(work, 'squid'), 13900 + Math.floor(Math.random() * 40), true);
  const squidLean = await startSquid(join(work, 'squid-lean'), 13950 + Math.floor(Math.random() * 40), false);
  const { stdout: token } = await run(process.execPath, [cli, 'token', 'issue', '--state', join(work, 'state'), '--policy', policyFile, '--tenant', 'bench', '--session', 'bench', '--allow', `origin.bench:${origin.port}`, '--ttl', '15m']);
  const targets: Target[] = [
    { name: 'direct', proxyPort: null, auth: null, host: '127.0.0.1' },
    { name: 'gatehouse', proxyPort: gatehouse.port, auth: `Basic ${Buffer.from(`gatehouse:${token.trim()}`).toString('base64')}`, host: 'origin.bench' },
    { name: 'squid', proxyPort: squid.port, auth: null, host: '127.0.0.1' },
    { name: 'squid-lean', proxyPort: squidLean.port, auth: null, host: '127.0.0.1' },
  ];
  const rows: Row[] = [];
  try {
    for (const c of [1, 32]) {
      for (const t of targets) rows.push({ mode: 'plain HTTP keep-alive (req/s)', concurrency: c, target: t.name, unit: 'req/s', ...(await wrk(t, origin.port, c, SECONDS)) });
      for (const t of targets) {
        const m = await loadgen(distBench, { mode: 'connect', proxyPort: t.proxyPort, originHost: t.host, originPort: origin.port, auth: t.auth, concurrency: c, seconds: SECONDS });
        rows.push({ mode: 'CONNECT setup + 1 request (setups/s)', concurrency: c, target: t.name, unit: 'setups/s', ...m });
      }
      for (const t of targets) {
        const m = await loadgen(distBench, { mode: 'bulk', proxyPort: t.proxyPort, originHost: t.host, originPort: origin.port, auth: t.auth, concurrency: c, seconds: SECONDS, bulkBytes: 16 * 1024 * 1024 });
        rows.push({ mode: 'bulk through tunnels (MB/s)', concurrency: c, target: t.name, unit: 'MB/s', ...m });
      }
    }
    process.stdout.write(formatTable(rows));
    const gIdle = await idleTunnels(targets[1] as Target, gatehouse, origin.port, 5000);
    const sIdle = await idleTunnels(targets[2] as Target, squid, origin.port, 5000);
    process.stdout.write(
      `\nRSS with ${gIdle.open} idle tunnels: gatehouse ${Math.round(gIdle.before / 1024)} MB -> ${Math.round(gIdle.after / 1024)} MB ` +
        `(${((gIdle.after - gIdle.before) / Math.max(1, gIdle.open)).toFixed(1)} KB per tunnel); ` +
        `squid (${sIdle.open}) ${Math.round(sIdle.before / 1024)} MB -> ${Math.round(sIdle.after / 1024)} MB; ratio gatehouse/squid after: ${ratio(gIdle.after, sIdle.after)}\n`,
    );
  } finally {
    await Promise.all([gatehouse.stop(), squid.stop(), squidLean.stop(), origin.stop()]);
    if (process.env['BENCH_KEEP'] === '1') process.stderr.write(`kept ${work}\n`);
    else await rm(work, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const profile = args.includes('--profile') || process.env['BENCH_PROFILE'] === '1';
  const named = args.filter((a) => !a.startsWith('--'));
  const unknown = named.filter((a) => !(SUITES as readonly string[]).includes(a));
  if (unknown.length > 0) throw new Error(`unknown benchmark suite ${unknown.join(', ')}: expected one of ${SUITES.join(", ")}`);
  const suites = named.length > 0 ? named : ['proxies', 'audit', 'broker'];
  if (suites.includes('proxies')) await proxiesBench();
  // `audit` runs all three audit benchmarks; `audit:append`, `audit:ship`, `audit:proxy` one each.
  const parts = new Set<AuditPart>(AUDIT_PARTS.filter((p) => suites.includes('audit') || suites.includes(`audit:${p}`)));
  if (parts.size > 0) await runAuditBench({ distBench, cli, seconds: SECONDS, profile, keep: process.env['BENCH_KEEP'] === '1' }, parts);
  // `broker` runs all three broker benchmarks; `broker:stream`, `broker:latency`, `broker:sign` one each.
  const brokerParts = new Set<BrokerPart>(BROKER_PARTS.filter((p) => suites.includes('broker') || suites.includes(`broker:${p}`)));
  if (brokerParts.size > 0) await runBrokerBench({ distBench, cli, keep: process.env['BENCH_KEEP'] === '1' }, brokerParts);
}

await main();
