import { once } from 'node:events';
import { readdir, readFile, rm } from 'node:fs/promises';
import { connect as netConnect, type Socket } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { AuditLog } from '../core/audit/audit-log.js';
import { validateEvent } from '../core/audit/event-schema.js';
import type { AuditRecord } from '../core/audit/record-format.js';
import { AuditShipper } from '../core/audit/shipper.js';
import { FACILITY, formatRecord, frame, type SyslogHeader } from '../core/audit/sinks/syslog-format.js';
import { silentLogger } from '../core/log/logger.js';
import { createMetricsRegistry } from '../core/metrics/registry.js';
import type { SinkSettings } from '../core/policy/compile-audit.js';
import { POLICY_DEFAULTS } from '../core/policy/index.js';
import { egressEventPool } from './audit-events.js';
import { startRsyslog, type RsyslogPeer } from './rsyslog-peer.js';
import { threadCpuSeconds, threadIds } from './thread-cpu.js';

/**
 * Shipping benchmark (its own process; the runner pins it to the proxy core, rsyslog runs on the load core).
 * A log of `records` real egress events is written once; then, per transport (TCP, TLS) and in ABBA order:
 *
 * - shipper: `AuditShipper` with one syslog sink (default batch size) ships the whole log from a fresh cursor;
 *   timed from `start()` until rsyslog's output file holds every record.
 * - raw: the same RFC 5424 frames, formatted beforehand, written over one socket as fast as it drains; timed
 *   from connect until the file holds every record. The receiver's own ceiling, measured in the same run.
 *
 * Input: one JSON argument. Output: one JSON line. Every wait is bounded by `deadlineSeconds`.
 */
interface Config {
  dir: string;
  records: number;
  rounds: number;
  tls: boolean;
  deadlineSeconds: number;
}

export interface ShipRound {
  records: number;
  seconds: number;
  perSecond: number;
  /** CPU seconds of the shipper thread (including its start-up); null for the raw writer. */
  shipperCpu: number | null;
  complete: boolean;
}

export type Transport = 'tcp' | 'tls';
export type ShipResult = { records: number; frameBytes: number } & Partial<Record<Transport, { shipper: ShipRound[]; raw: ShipRound[] }>>;

const cfg = JSON.parse(process.argv[2] ?? '{}') as Config;
const BATCH = POLICY_DEFAULTS.audit.sinks.batchMax;

async function writeLog(dir: string): Promise<void> {
  const pool = egressEventPool(2000);
  const log = await AuditLog.open({ dir, segmentMaxBytes: 16 * 1024 * 1024, validate: validateEvent });
  for (let i = 0; i < cfg.records; i++) {
    log.append('egress', pool[i % pool.length] as Record<string, unknown>);
    if (i % 10_000 === 9_999) await log.flush();
  }
  await log.close();
}

/** The frames the syslog sink would send for every record, in batches of the sink's default size. */
async function frames(dir: string): Promise<{ batches: string[]; frameBytes: number }> {
  const header: SyslogHeader = { facility: FACILITY['local0'] as number, hostname: hostname(), procid: String(process.pid) };
  const files = (await readdir(join(dir, 'egress'))).filter((f) => /^\d{12}\.jsonl$/.test(f)).sort();
  const batches: string[] = [];
  let current: string[] = [];
  let bytes = 0;
  for (const f of files) {
    for (const line of (await readFile(join(dir, 'egress', f), 'utf8')).split('\n')) {
      if (line.length === 0) continue;
      const record = JSON.parse(line) as AuditRecord;
      const framed = frame(formatRecord({ source: 'egress', seq: record.seq, line, record }, header));
      bytes += framed.length;
      current.push(framed);
      if (current.length === BATCH) {
        batches.push(current.join(''));
        current = [];
      }
    }
  }
  if (current.length > 0) batches.push(current.join(''));
  return { batches, frameBytes: bytes / cfg.records };
}

/** Poll the receiver's file until it holds `base + records` records or the deadline passes. */
async function arrived(rsyslog: RsyslogPeer, base: number, deadline: number): Promise<boolean> {
  while ((await rsyslog.records()) - base < cfg.records) {
    if (performance.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

async function shipperRound(auditDir: string, rsyslog: RsyslogPeer, transport: Transport, name: string): Promise<ShipRound> {
  const base = await rsyslog.records();
  const sink: SinkSettings = {
    name,
    type: 'syslog',
    address: `127.0.0.1:${transport === 'tls' ? rsyslog.tlsPort : rsyslog.tcpPort}`,
    // server_name: without it the sink verifies an IP address against "localhost" (see bench/README.md).
    ...(transport === 'tls' ? { tls: { ca: `file:${rsyslog.cert}`, server_name: '127.0.0.1' } } : {}),
    batchMax: BATCH,
    timeoutMs: 10_000,
    resendWindowMs: 10_000,
  };
  const before = new Set(threadIds());
  const t0 = performance.now();
  const shipper = await AuditShipper.start({ dir: auditDir, sinks: [sink], registry: createMetricsRegistry({ processMetrics: false }), logger: silentLogger() });
  const threads = threadIds().filter((t) => !before.has(t));
  const complete = await arrived(rsyslog, base, t0 + cfg.deadlineSeconds * 1000);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = threads.reduce((n, t) => n + threadCpuSeconds(t), 0);
  await shipper.close();
  const records = (await rsyslog.records()) - base;
  return { records, seconds, perSecond: Math.min(records, cfg.records) / seconds, shipperCpu: cpu, complete };
}

async function rawRound(batches: readonly string[], rsyslog: RsyslogPeer, transport: Transport, ca: string): Promise<ShipRound> {
  const base = await rsyslog.records();
  const t0 = performance.now();
  const deadline = t0 + cfg.deadlineSeconds * 1000;
  const socket: Socket =
    transport === 'tls' ? tlsConnect({ host: '127.0.0.1', port: rsyslog.tlsPort, ca, rejectUnauthorized: true }) : netConnect({ host: '127.0.0.1', port: rsyslog.tcpPort, noDelay: true });
  await once(socket, transport === 'tls' ? 'secureConnect' : 'connect');
  for (const batch of batches) {
    if (performance.now() > deadline) break;
    if (!socket.write(batch)) await once(socket, 'drain');
  }
  const complete = await arrived(rsyslog, base, deadline);
  const seconds = (performance.now() - t0) / 1000;
  socket.end();
  socket.destroy();
  const records = (await rsyslog.records()) - base;
  return { records, seconds, perSecond: Math.min(records, cfg.records) / seconds, shipperCpu: null, complete };
}

async function main(): Promise<ShipResult> {
  const auditDir = join(cfg.dir, 'audit');
  const rsyslog = await startRsyslog(join(cfg.dir, 'rsyslog'));
  try {
    await writeLog(auditDir);
    const { batches, frameBytes } = await frames(auditDir);
    const ca = await readFile(rsyslog.cert, 'utf8');
    const result: ShipResult = { records: cfg.records, frameBytes };
    const transports: Transport[] = cfg.tls ? ['tcp', 'tls'] : ['tcp'];
    let n = 0;
    for (const transport of transports) {
      const shipper: ShipRound[] = [];
      const raw: ShipRound[] = [];
      // Untimed warm-up of both paths (JIT, rsyslog's first session).
      await shipperRound(auditDir, rsyslog, transport, `warm-${transport}`);
      await rawRound(batches, rsyslog, transport, ca);
      for (let r = 0; r < cfg.rounds; r++) {
        // ABBA order, as in the other audit benchmarks.
        if (r % 2 === 1) raw.push(await rawRound(batches, rsyslog, transport, ca));
        shipper.push(await shipperRound(auditDir, rsyslog, transport, `bench-${transport}-${n++}`));
        if (r % 2 === 0) raw.push(await rawRound(batches, rsyslog, transport, ca));
      }
      result[transport] = { shipper, raw };
    }
    return result;
  } finally {
    await rsyslog.stop();
    await rm(cfg.dir, { recursive: true, force: true });
  }
}

process.stdout.write(`${JSON.stringify(await main())}\n`);
process.exit(0);
