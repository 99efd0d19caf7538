import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog } from '../core/audit/audit-log.js';
import { controlEvent } from '../core/audit/control-events.js';
import { validateEvent } from '../core/audit/event-schema.js';
import { AuditShipper } from '../core/audit/shipper.js';
import { silentLogger } from '../core/log/logger.js';
import { createMetricsRegistry } from '../core/metrics/registry.js';
import { compilePolicy } from '../core/policy/index.js';
import { startRsyslog, type Rsyslog } from './peers/rsyslog.js';
import { waitUntil } from './support/wait.js';

/**
 * Shipping the audit log to real rsyslog (Debian) over TCP and TLS: what arrives, how it is framed, its
 * structured data; and rsyslog stopped mid-stream and restarted, with every event arriving.
 */

let dir: string;
let rsyslog: Rsyslog;
let log: AuditLog;
let shipper: AuditShipper;

const event = (n: number): Record<string, unknown> =>
  controlEvent({
    operation: 'CreateSession',
    activity: 1,
    correlationId: randomUUID(),
    policyVersion: 'sha256:0123456789abcdef',
    time: Date.now(),
    actor: { kind: 'admin', ip: '127.0.0.1' },
    outcome: { allow: n % 3 !== 0, reason: n % 3 !== 0 ? 'allowed' : 'dest_not_allowed' },
    tenant: 'acme',
    details: { n, note: 'quote " backslash \\ bracket ] end' },
  });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-syslog-'));
  rsyslog = await startRsyslog(join(dir, 'rsyslog'));
  const { policy, problems } = compilePolicy(
    `version: 1
audit:
  sinks:
    - {name: siem-tcp, type: syslog, address: "127.0.0.1:${rsyslog.tcpPort}", facility: local4, resend_window: 2s}
    - {name: siem-tls, type: syslog, address: "127.0.0.1:${rsyslog.tlsPort}", tls: {ca: "file:${rsyslog.cert}", server_name: 127.0.0.1}, resend_window: 2s}
`,
    'p.yaml',
  );
  if (!policy) throw new Error(JSON.stringify(problems));
  log = await AuditLog.open({ dir: join(dir, 'audit'), flushIntervalMs: 10, validate: validateEvent, checkpointIntervalMs: 500 });
  shipper = await AuditShipper.start({ dir: join(dir, 'audit'), sinks: policy.audit.sinks, registry: createMetricsRegistry({ processMetrics: false }), logger: silentLogger() });
});

afterAll(async () => {
  await shipper?.close();
  await log?.close();
  await rsyslog?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('syslog sinks (RFC 5424, octet counting, TCP and TLS) into real rsyslog', () => {
  it('delivers every record over both sinks, byte for byte, with structured data', async () => {
    for (let n = 1; n <= 40; n++) log.append('control', event(n));
    await log.flush();
    // Each record arrives once per sink: 80 lines for 40 records.
    await waitUntil(async () => (await rsyslog.lines()).filter((l) => l.includes('gatehouse@32473')).length >= 80, 'rsyslog to receive 80 records');
    const lines = await readFile(join(dir, 'audit', 'control', '000000000001.jsonl'), 'utf8');
    const logged = lines.trim().split('\n');
    const all = (await rsyslog.lines()).filter((l) => l.includes('gatehouse@32473'));
    for (const original of logged) expect(all.filter((l) => l.endsWith(original))).toHaveLength(2);
    const first = all.find((l) => l.endsWith(logged[0] as string)) as string;
    // <PRI>: local4 (20) * 8 + notice (5, a denied decision) for n=3; informational (6) for n=1.
    expect(first).toMatch(/^<166>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z \S+ gatehouse \d+ control \[gatehouse@32473 source="control" seq="1" class="6003" decision="allow" reason="allowed" tenant="acme"/);
    const denied = all.find((l) => l.includes('seq="3"')) as string;
    expect(denied.startsWith('<165>1 ')).toBe(true);
  });

  it('loses nothing when rsyslog stops mid-stream and comes back', async () => {
    const before = (await rsyslog.lines()).length;
    for (let n = 41; n <= 60; n++) log.append('control', event(n));
    await log.flush();
    await rsyslog.stop();
    // Written while the receiver is down: they wait in the local log, not in memory.
    for (let n = 61; n <= 100; n++) log.append('control', event(n));
    await log.flush();
    await rsyslog.start();
    const seqs = async (): Promise<Set<number>> => {
      const out = new Set<number>();
      for (const l of (await rsyslog.lines()).slice(before)) {
        const seq = /seq="(\d+)"/.exec(l)?.[1];
        if (seq && l.includes('gatehouse@32473')) out.add(Number(seq));
      }
      return out;
    };
    const expected = Array.from({ length: 60 }, (_, i) => i + 41);
    await waitUntil(async () => {
      const got = await seqs();
      return expected.every((s) => got.has(s));
    }, 'every record 41-100 to reach rsyslog after its restart', 30_000);
  });

  it('ships signed checkpoints too', async () => {
    await log.checkpoint();
    await waitUntil(async () => (await rsyslog.lines()).some((l) => l.includes(' checkpoint [gatehouse-checkpoint@32473')), 'a checkpoint at rsyslog');
    const stats = shipper.stats();
    expect(stats.map((s) => s.name).sort()).toEqual(['siem-tcp', 'siem-tls']);
  });
});
