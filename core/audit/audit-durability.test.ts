import { createReadStream } from 'node:fs';
import { appendFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { createInterface } from 'node:readline';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { allRecords, bytesFor, fileLines, padEvent, records, segmentFiles, writeSegmentedLog } from '../../test/support/audit-fixture.js';
import { run } from '../../test/support/run.js';
import { waitUntil } from '../../test/support/wait.js';
import { AuditLog, hashLine } from './audit-log.js';
import { createAuditMetrics } from './audit-metrics.js';
import { validateEvent } from './event-schema.js';
import { verifyAuditDir } from './verify-chain.js';

/**
 * Strict durability and bad disks. The tests run as root, for whom permissions do not make a directory
 * unwritable, so failures are made in ways that hold for any user: a directory replaced by a regular file
 * (ENOTDIR), a segment that is a symlink to /dev/full (ENOSPC on write) or /dev/null (writes vanish, fsync
 * fails with EINVAL), and a directory where a file is expected (EISDIR).
 */
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-durable-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const seg = (first: number, source = 'egress'): string => join(dir, source, `${String(first).padStart(12, '0')}.jsonl`);
/** The source directory becomes a regular file: opening a segment in it fails with ENOTDIR. */
const breakDir = async (source = 'egress'): Promise<void> => {
  await rm(join(dir, source), { recursive: true, force: true });
  await writeFile(join(dir, source), 'not a directory');
};
const repairDir = async (source = 'egress'): Promise<void> => {
  await rm(join(dir, source), { force: true });
  await mkdir(join(dir, source), { mode: 0o700 });
};
/** A promise that must settle within `ms` (a hang is the failure being tested for). */
const within = <T>(p: Promise<T>, ms = 5000): Promise<T> =>
  Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`did not settle within ${ms} ms`)), ms).unref())]);

function auditMetrics(): { onStats: ReturnType<typeof createAuditMetrics>['update']; value: (name: string) => Promise<number> } {
  const registry = new Registry();
  const metrics = createAuditMetrics(registry);
  return {
    onStats: (stats) => metrics.update(stats),
    value: async (name) => (await registry.getSingleMetric(name)?.get())?.values[0]?.value ?? 0,
  };
}

describe('strict durability', () => {
  it('appendDurable resolves only once its record is in the file, after everything queued before it', async () => {
    const log = await AuditLog.open({ dir, flushIntervalMs: 60_000 });
    log.append('egress', { n: 1 });
    await log.appendDurable('egress', { n: 2 });
    // Read straight after it resolved: no flush, no close.
    expect((await records(seg(1))).map((r) => [r.seq, r.event['n']])).toEqual([[1, 1], [2, 2]]);
    await log.close();
  });

  it('appendDurable fsyncs: when fsync fails it rejects, and flush(true), checkpoint() and close() settle', async () => {
    await mkdir(join(dir, 'egress'));
    await symlink('/dev/null', seg(1)); // writes succeed, fsync fails (EINVAL)
    const log = await AuditLog.open({ dir, flushIntervalMs: 60_000 });
    await expect(log.appendDurable('egress', { n: 1 })).rejects.toMatchObject({ code: 'GH_ERR_AUDIT_WRITE', params: { detail: 'EINVAL' } });
    await expect(within(log.flush(true))).rejects.toMatchObject({ code: 'GH_ERR_AUDIT_WRITE' });
    await expect(within(log.checkpoint())).rejects.toMatchObject({ code: 'GH_ERR_AUDIT_WRITE' });
    await expect(within(log.close())).rejects.toMatchObject({ code: 'GH_ERR_AUDIT_WRITE' });
  });

  it('when only the fsync fails, the written record keeps its seq: the chain goes on from it instead of forking', async () => {
    // A FIFO as the segment: what is written can be read back, and fsync on it fails (EINVAL).
    await mkdir(join(dir, 'egress'));
    expect((await run('mkfifo', [seg(1)])).code).toBe(0);
    const log = await AuditLog.open({ dir, flushIntervalMs: 60_000 });
    const reader = createInterface({ input: createReadStream(seg(1)) });
    const lines = reader[Symbol.asyncIterator]();
    await expect(log.appendDurable('egress', { n: 1 })).rejects.toMatchObject({ code: 'GH_ERR_AUDIT_WRITE', params: { detail: 'EINVAL' } });
    const first = (await within(lines.next())).value as string;
    log.append('egress', { n: 2 });
    await log.flush();
    const second = (await within(lines.next())).value as string;
    // Reusing seq 1 here would put two different records 1 in the file, and no later checkpoint could match.
    expect(JSON.parse(second)).toMatchObject({ seq: 2, prev: hashLine(first), event: { n: 2 } });
    reader.close();
    await expect(within(log.close())).rejects.toMatchObject({ code: 'GH_ERR_AUDIT_WRITE' });
  });

  it('a write the disk refuses rejects, leaves no trace in the chain, and keeps the batched events queued before it', async () => {
    const errors: string[] = [];
    const log = await AuditLog.open({ dir, flushIntervalMs: 60_000, onError: (m) => errors.push(m) });
    await breakDir();
    log.append('egress', { n: 'batched-before' }); // acted on already: it must not be lost
    await expect(log.appendDurable('egress', { n: 'refused' })).rejects.toMatchObject({ code: 'GH_ERR_AUDIT_WRITE', params: { detail: 'ENOTDIR' } });
    expect(errors).toContainEqual(expect.stringMatching(/egress.*ENOTDIR/));
    await repairDir();
    await log.appendDurable('egress', { n: 'after' });
    await log.close();
    expect((await allRecords(dir)).map((r) => [r.seq, r.event['n']])).toEqual([[1, 'batched-before'], [2, 'after']]);
    expect((await verifyAuditDir(dir)).firstProblem).toBeUndefined();
  });

  it('a full disk (ENOSPC) rejects the durable write with its errno', async () => {
    await mkdir(join(dir, 'egress'));
    await symlink('/dev/full', seg(1));
    const log = await AuditLog.open({ dir, flushIntervalMs: 60_000 });
    await expect(log.appendDurable('egress', { n: 1 })).rejects.toMatchObject({ code: 'GH_ERR_AUDIT_WRITE', params: { detail: 'ENOSPC' } });
    await expect(within(log.close())).rejects.toMatchObject({ code: 'GH_ERR_AUDIT_WRITE' });
  });
});

describe('batched group commit', () => {
  it('fsyncs what it wrote within the flush interval, without waiting for a checkpoint, not on every write', async () => {
    const m = auditMetrics();
    const log = await AuditLog.open({ dir, flushIntervalMs: 20, checkpointIntervalMs: 3_600_000, onStats: m.onStats });
    expect(await m.value('gatehouse_audit_fsyncs_total')).toBe(0);
    for (let i = 1; i <= 200; i++) log.append('egress', padEvent(i));
    await log.flush();
    // Stats reach the main thread once a second: the fsync shows up there without any other call.
    await waitUntil(async () => (await m.value('gatehouse_audit_fsyncs_total')) >= 1, 'the group fsync');
    await log.close();
  });

  it('an fsync that fails in batched mode is reported and counted; the lines stay written and the data plane goes on', async () => {
    await mkdir(join(dir, 'egress'));
    await symlink('/dev/null', seg(1)); // writes succeed, fsync fails (EINVAL)
    const errors: string[] = [];
    const m = auditMetrics();
    const log = await AuditLog.open({ dir, flushIntervalMs: 10, checkpointIntervalMs: 3_600_000, onError: (e) => errors.push(e), onStats: m.onStats });
    log.append('egress', padEvent(1));
    await log.flush();
    await waitUntil(() => errors.some((e) => /fsync failed for egress: EINVAL/.test(e)), 'the fsync error');
    await waitUntil(async () => (await m.value('gatehouse_audit_write_errors_total')) >= 1, 'the error metric');
    log.append('egress', padEvent(2)); // never blocks, never throws
    await log.flush();
    await expect(within(log.close())).rejects.toMatchObject({ code: 'GH_ERR_AUDIT_WRITE' });
  });
});

describe('batched writes on a failing disk', () => {
  it('keeps events in memory, reports the error and metrics, and writes them all once the directory works', async () => {
    const errors: string[] = [];
    const m = auditMetrics();
    const log = await AuditLog.open({ dir, flushIntervalMs: 5, onError: (e) => errors.push(e), onStats: m.onStats });
    await breakDir();
    for (let i = 1; i <= 5; i++) log.append('egress', padEvent(i));
    await expect(log.flush()).rejects.toMatchObject({ code: 'GH_ERR_AUDIT_WRITE' });
    expect(errors).toContainEqual(expect.stringMatching(/egress.*ENOTDIR/));
    await waitUntil(async () => (await m.value('gatehouse_audit_write_errors_total')) > 0 && (await m.value('gatehouse_audit_pending_bytes')) > 0, 'error and pending metrics');
    await repairDir();
    // The writer retries on its own (every second), without another append.
    await waitUntil(async () => (await allRecords(dir)).length === 5, 'the kept events to be written');
    await waitUntil(async () => (await m.value('gatehouse_audit_pending_bytes')) === 0 && (await m.value('gatehouse_audit_events_written_total')) === 5, 'metrics after recovery');
    await log.close();
    expect((await allRecords(dir)).map((r) => r.event['n'])).toEqual([1, 2, 3, 4, 5]);
    expect((await verifyAuditDir(dir)).firstProblem).toBeUndefined();
  });

  it('past max_pending_bytes drops new events, counts them, and records the loss in the chain', async () => {
    const m = auditMetrics();
    const log = await AuditLog.open({ dir, flushIntervalMs: 5, maxPendingBytes: 1000, onStats: m.onStats, policyVersion: 'sha256:0123456789abcdef' });
    await breakDir();
    const appended = 20;
    for (let i = 1; i <= appended; i++) {
      log.append('egress', padEvent(i));
      await log.flush().catch(() => undefined); // one batch each, all refused
    }
    await repairDir();
    await waitUntil(async () => (await allRecords(dir)).some((r) => r.event['api'] !== undefined), 'the AuditEventsDropped record');
    await log.close();
    const recs = await allRecords(dir);
    const kept = recs.slice(0, -1).map((r) => r.event['n']);
    const dropped = recs[recs.length - 1]?.event as Record<string, unknown> & { unmapped: { gatehouse: { dropped: number; source: string } } };
    // The first events are kept in order up to the bound; the rest are one counted record, not silence.
    expect(kept.length).toBeGreaterThan(0);
    expect(kept).toEqual(kept.map((_, i) => i + 1));
    expect(dropped).toMatchObject({ status_detail: 'audit_unavailable', api: { operation: 'AuditEventsDropped' }, unmapped: { gatehouse: { source: 'egress', dropped: appended - kept.length } } });
    expect(() => validateEvent(dropped)).not.toThrow();
    expect(await m.value('gatehouse_audit_events_dropped_total')).toBe(appended - kept.length);
    expect((await verifyAuditDir(dir)).firstProblem).toBeUndefined();
  });

  it('does not rotate without the checkpoint of the segment it closes; the records wait, none is lost', async () => {
    const log = await AuditLog.open({ dir, flushIntervalMs: 5, segmentMaxBytes: bytesFor(1), checkpointIntervalMs: 3_600_000 });
    log.append('egress', padEvent(1));
    await log.flush();
    await mkdir(join(dir, 'egress', 'checkpoints.jsonl')); // appending a checkpoint now fails (EISDIR)
    log.append('egress', padEvent(2));
    await expect(log.flush()).rejects.toMatchObject({ code: 'GH_ERR_AUDIT_WRITE' });
    await expect(within(log.checkpoint())).rejects.toMatchObject({ code: 'GH_ERR_AUDIT_WRITE' });
    expect(await segmentFiles(dir)).toEqual(['000000000001.jsonl']);
    await rm(join(dir, 'egress', 'checkpoints.jsonl'), { recursive: true });
    await log.flush();
    await log.close();
    expect(await segmentFiles(dir)).toEqual(['000000000001.jsonl', '000000000002.jsonl']);
    expect((await verifyAuditDir(dir)).firstProblem).toBeUndefined();
  });
});

describe('damage found at start-up', () => {
  it('a corrupt last segment is reported (error, metric), left as evidence, and the chain goes on in a new segment', async () => {
    await writeSegmentedLog(dir, 5, 100);
    await appendFile(seg(1), 'this line is not a record\n');
    const evidence = await readFile(seg(1), 'utf8');
    const errors: string[] = [];
    const m = auditMetrics();
    const log = await AuditLog.open({ dir, flushIntervalMs: 5, onError: (e) => errors.push(e), onStats: m.onStats });
    expect(errors).toContainEqual(expect.stringContaining('egress/000000000001.jsonl'));
    await waitUntil(async () => (await m.value('gatehouse_audit_corrupt_segments')) === 1, 'the corrupt-segment metric');
    log.append('egress', padEvent(6));
    await log.close();
    expect(await readFile(seg(1), 'utf8')).toBe(evidence);
    expect(await segmentFiles(dir)).toEqual(['000000000001.jsonl', '000000000006.jsonl']);
    const [next] = await records(seg(6));
    expect(next).toMatchObject({ seq: 6, prev: hashLine((await fileLines(seg(1)))[4] as string) });
    const report = await verifyAuditDir(dir);
    expect(report.firstProblem && [basename(report.firstProblem.file), report.firstProblem.line]).toEqual(['000000000001.jsonl', 6]);
  });

  it('garbage in the middle of the last segment: nothing written is lost, the chain continues, verify names it', async () => {
    await writeSegmentedLog(dir, 4, 100);
    const lines = await fileLines(seg(1));
    await writeFile(seg(1), [...lines.slice(0, 2), '\u0000\u0000garbage', ...lines.slice(2)].map((l) => `${l}\n`).join(''));
    const log = await AuditLog.open({ dir, flushIntervalMs: 5 });
    log.append('egress', padEvent(5));
    await log.close();
    // Start-up reads only the tail, so it continues after the last record; every record is still there.
    const parsed = (await fileLines(seg(1))).filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { seq: number });
    expect(parsed.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
    const report = await verifyAuditDir(dir);
    expect(report.firstProblem && [basename(report.firstProblem.file), report.firstProblem.line]).toEqual(['000000000001.jsonl', 3]);
  });

  it('an audit directory that cannot be created or used fails open() with GH_ERR_AUDIT_WRITE', async () => {
    await writeFile(join(dir, 'file'), '');
    await expect(AuditLog.open({ dir: join(dir, 'file', 'audit') })).rejects.toMatchObject({ code: 'GH_ERR_AUDIT_WRITE', params: { detail: 'ENOTDIR' } });
    await writeFile(join(dir, 'egress'), ''); // where the egress chain's directory belongs
    await expect(within(AuditLog.open({ dir }))).rejects.toMatchObject({ code: 'GH_ERR_AUDIT_WRITE', params: { detail: expect.stringContaining('egress') } });
  });
});
