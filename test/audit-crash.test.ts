import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AuditLog } from '../core/audit/audit-log.js';
import { verifyAuditDir } from '../core/audit/verify-chain.js';
import { startAuditChild } from './support/audit-child.js';
import { allRecords, segmentFiles } from './support/audit-fixture.js';
import { CLI, startGatehouse } from './support/gatehouse-process.js';
import { startOrigin, type Origin } from './support/origin.js';
import { proxyGet } from './support/proxy-get.js';
import { cleanEnv, run } from './support/run.js';
import { waitUntil } from './support/wait.js';
import { ORIGIN_EGRESS } from './support/origin-policy.js';

/**
 * What a crash can lose, per durability mode, shown by killing a real writer process with SIGKILL mid-stream
 * (docs/reference/audit-events.md, "what a crash can lose"): strict loses nothing that was acknowledged; batched
 * loses at most the events appended during the last flush interval; either way the log verifies after the
 * restart, which cuts a torn last line and continues the sequence.
 */
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-crash-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The restart a crashed Gatehouse does: open (recovery), write one more event, close. Returns its seq. */
async function restartAndAppend(auditDir = dir): Promise<number> {
  const log = await AuditLog.open({ dir: auditDir, flushIntervalMs: 5 });
  const before = log.heads()['egress']?.seq ?? 0;
  await log.appendDurable('egress', { n: 'after-restart' });
  await log.close();
  return before + 1;
}

const tornTail = async (): Promise<boolean> => {
  const files = await segmentFiles(dir);
  const text = await readFile(join(dir, 'egress', files[files.length - 1] as string), 'utf8');
  return text.length > 0 && !text.endsWith('\n');
};

describe('audit log: a writer killed with SIGKILL', () => {
  it('strict: every event whose appendDurable resolved is on disk after the kill', async () => {
    const child = await startAuditChild({ dir, mode: 'strict', count: 1_000_000, concurrency: 4, pad: 300, segmentMaxBytes: 256 * 1024 });
    const acked = (): number[] => child.lines().flatMap((l) => (l.startsWith('acked ') ? [Number(l.slice(6))] : []));
    await waitUntil(() => acked().length >= 400, '400 durable acknowledgements');
    child.proc.kill('SIGKILL');
    expect(await child.exited).toBe('SIGKILL');
    expect(child.lines().some((l) => l.startsWith('failed '))).toBe(false);

    const seq = await restartAndAppend();
    const recs = await allRecords(dir);
    const onDisk = new Set(recs.map((r) => r.event['n']));
    const lost = acked().filter((n) => !onDisk.has(n));
    expect(lost).toEqual([]);
    // One chain, no holes, continued by the restart.
    expect(recs.map((r) => r.seq)).toEqual(recs.map((_, i) => i + 1));
    expect(recs[recs.length - 1]).toMatchObject({ seq, event: { n: 'after-restart' } });
    expect((await verifyAuditDir(dir)).firstProblem).toBeUndefined();
  });

  it('batched: only events of the last flush interval are lost; the torn tail is cut and the seq continues', async () => {
    const flushIntervalMs = 50;
    // About one event a millisecond, 300 bytes each: far below the 128 KiB that forces an early write, so the
    // flush timer alone bounds what is in flight.
    const child = await startAuditChild({ dir, mode: 'batched', count: 10_000_000, flushIntervalMs, pad: 200, burst: 1, segmentMaxBytes: 128 * 1024 });
    const appended = (): Map<number, number> => new Map(child.lines().flatMap((l) => (l.startsWith('appended ') ? [l.slice(9).split(' ').map(Number) as [number, number]] : [])));
    await waitUntil(() => appended().size >= 1500, '1500 appended events');
    const killedAt = Date.now();
    child.proc.kill('SIGKILL');
    await child.exited;

    const seq = await restartAndAppend();
    const recs = await allRecords(dir);
    const written = recs.slice(0, -1).map((r) => r.event['n'] as number);
    // What reached the disk is an unbroken prefix of what was appended, in order.
    expect(written).toEqual(written.map((_, i) => i + 1));
    // Everything appended well before the kill is there. The margin covers the writer thread's own latency on a
    // loaded machine; without it the bound would be exactly the flush interval.
    const margin = 250;
    const lostTooEarly = [...appended()].filter(([n, t]) => n > written.length && t < killedAt - flushIntervalMs - margin);
    expect(lostTooEarly).toEqual([]);
    expect(written.length).toBeGreaterThan(0);
    expect(recs[recs.length - 1]).toMatchObject({ seq, event: { n: 'after-restart' } });
    expect(recs.map((r) => r.seq)).toEqual(recs.map((_, i) => i + 1));
    expect((await verifyAuditDir(dir)).firstProblem).toBeUndefined();
    // Whether this kill tore a line is up to timing; if it did, the restart cut it before writing on.
    expect(await tornTail()).toBe(false);
  });
});

describe('gatehouse up killed with SIGKILL while proxying', () => {
  let origin: Origin;
  beforeAll(async () => {
    origin = await startOrigin();
  });
  afterAll(async () => {
    await origin.close();
  });

  const policy = (durability: string, flushMs: number): string => `version: 1
${ORIGIN_EGRESS}  limits:
    per_session: {new_connections_per_second: 100000, burst: 100000}
tenants:
  - name: acme
    egress:
      allow: ["origin.test:*"]
audit:
  durability: ${durability}
  flush_interval: ${flushMs}ms
`;

  // [durability, flush_interval, how long before the kill an answered request may still be missing from the log]
  const modes: ReadonlyArray<readonly ['strict' | 'batched', number, number]> = [
    // The decision is on disk before the request is relayed, so before it is answered: nothing may be missing.
    // The long flush interval keeps the batched end events from writing a decision the strict path forgot.
    ['strict', 100, 0],
    // flush_interval plus a margin for the writer thread on a loaded machine.
    ['batched', 50, 50 + 250],
  ];
  it.each(modes)('%s (flush %i ms): every request answered more than %i ms before the kill is in the log', async (durability, flushMs, windowMs) => {
    const state = join(dir, 'state');
    const policyFile = join(dir, 'policy.yaml');
    const authority = `origin.test:${origin.port}`;
    await writeFile(policyFile, policy(durability, flushMs));
    const gh = await startGatehouse(['--state', state, '--policy', policyFile, '--egress-listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0'], cleanEnv());
    const exited = new Promise<void>((resolve) => gh.proc.once('exit', () => resolve()));
    try {
      const issued = await run(process.execPath, [CLI, 'token', 'issue', '--tenant', 'acme', '--allow', authority, '--state', state, '--policy', policyFile], { env: cleanEnv() });
      expect(issued.code).toBe(0);
      const token = issued.stdout.trim();
      const answered = new Map<string, number>();
      let killedAt = 0;
      let next = 0;
      // Four clients; the kill comes the moment the 200th answer arrives, while others are in flight.
      const client = async (): Promise<void> => {
        while (killedAt === 0 && next < 10_000) {
          const path = `/${durability}/${next++}`;
          const res = await proxyGet(gh.egressPort, token, `http://${authority}${path}`).catch(() => null);
          if (res?.status !== 200 || killedAt !== 0) continue;
          answered.set(path, Date.now());
          if (answered.size >= 200) {
            killedAt = Date.now();
            gh.proc.kill('SIGKILL');
          }
        }
      };
      await Promise.all(Array.from({ length: 4 }, client));
      await exited;
      expect(answered.size).toBe(200);

      await restartAndAppend(join(state, 'audit'));
      const logged = new Set((await allRecords(join(state, 'audit'))).map((r) => (r.event['http_request'] as { url?: { path?: string } } | undefined)?.url?.path));
      const missing = [...answered].filter(([path, at]) => at <= killedAt - windowMs && !logged.has(path));
      expect(missing).toEqual([]);
      expect((await verifyAuditDir(join(state, 'audit'))).firstProblem).toBeUndefined();
    } finally {
      gh.proc.kill('SIGKILL');
    }
  });
});
