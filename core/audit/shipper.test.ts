import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../../test/support/wait.js';
import { createLogger } from '../log/logger.js';
import { createMetricsRegistry } from '../metrics/registry.js';
import { compilePolicy } from '../policy/index.js';
import { AuditLog } from './audit-log.js';
import { controlEvent } from './control-events.js';
import { validateEvent } from './event-schema.js';
import { AuditShipper } from './shipper.js';

/**
 * A sink that cannot start (its secret is not there yet) must show as failing wherever operators look, be
 * retried on its own, and deliver everything once the secret appears. The receiver is a plain loopback HTTP
 * server that accepts every POST: the webhook's own format is tested in sinks/webhook.test.ts.
 */
// A file: reference, as a mounted secret would be: an env var set later never reaches a running process.
const SECRET = randomBytes(24).toString('hex');
let dir: string;
let receiver: Server;
let received = 0;
let log: AuditLog;
let shipper: AuditShipper;
const logLines: string[] = [];
const registry = createMetricsRegistry({ processMetrics: false });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-shipper-'));
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      received += (JSON.parse(body) as { records?: unknown[] }).records?.length ?? 0;
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const { policy, problems } = compilePolicy(
    `version: 1
audit:
  sinks:
    - {name: hook, type: webhook, url: "http://127.0.0.1:${(receiver.address() as AddressInfo).port}/audit", secret: "file:${join(dir, 'hook-secret')}"}
`,
    'p.yaml',
  );
  if (!policy) throw new Error(JSON.stringify(problems));
  log = await AuditLog.open({ dir: join(dir, 'audit'), flushIntervalMs: 10, validate: validateEvent });
  for (let n = 1; n <= 3; n++) {
    log.append('control', controlEvent({ operation: 'ListSessions', activity: 2, correlationId: randomUUID(), policyVersion: 'sha256:0123456789abcdef', time: Date.now(), actor: { kind: 'admin', ip: '127.0.0.1' }, outcome: { allow: true, reason: 'allowed' } }));
  }
  await log.flush();
  const logger = createLogger({ level: 'info', destination: { write: (line: string) => logLines.push(line) } });
  shipper = await AuditShipper.start({ dir: join(dir, 'audit'), sinks: policy.audit.sinks, registry, logger });
});

afterAll(async () => {
  await shipper?.close();
  await log?.close();
  await new Promise((resolve) => receiver?.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

describe('a sink that cannot start', () => {
  it('is listed as failing with its cause, counted in the metrics, and logged once', async () => {
    const row = await waitUntil(() => shipper.stats().find((s) => s.name === 'hook'), 'the failing sink in the stats');
    expect(row).toMatchObject({ type: 'webhook', state: 'backoff', delivered: 0, lastError: expect.stringMatching(/^cannot start: .*hook-secret/) });
    expect(row.nextAttemptAt).not.toBeNull();
    const metrics = await registry.metrics();
    expect(metrics).toMatch(/gatehouse_audit_sink_up\{sink="hook"\} 0/);
    expect(logLines.filter((l) => l.includes('audit sink cannot start'))).toHaveLength(1);
    expect(received).toBe(0);
  });

  it('starts on its own once the secret is there, and delivers every record', async () => {
    await writeFile(join(dir, 'hook-secret'), `${SECRET}\n`, { mode: 0o600 });
    await waitUntil(() => received >= 3 && shipper.stats().find((s) => s.name === 'hook')?.lastError === null, 'the sink to start and deliver', 90_000);
    expect(await registry.metrics()).toMatch(/gatehouse_audit_sink_up\{sink="hook"\} 1/);
    expect(logLines.join('\n')).not.toContain(SECRET);
  }, 100_000);
});
