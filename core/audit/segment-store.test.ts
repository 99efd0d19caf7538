import { mkdtemp, readFile, rm, stat, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { allRecords, bytesFor, checkpoints, fileLines, padEvent, segmentFiles, writeSegmentedLog } from '../../test/support/audit-fixture.js';
import { waitUntil } from '../../test/support/wait.js';
import { AuditLog } from './audit-log.js';
import { loadOrCreateCheckpointKey, verifyCheckpoint } from './checkpoint.js';
import { hashLine } from './record-format.js';
import { SegmentStore } from './segment-store.js';
import { verifyAuditDir } from './verify-chain.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-segments-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const egress = (f: string): string => join(dir, 'egress', f);
const pub = (): Promise<string> => readFile(join(dir, 'checkpoint-key.pub.pem'), 'utf8');

describe('segments: rotation', () => {
  it('rotates by size, names each segment after its first record and continues the chain across them', async () => {
    await writeSegmentedLog(dir, 7, 3);
    const files = await segmentFiles(dir);
    expect(files).toEqual(['000000000001.jsonl', '000000000004.jsonl', '000000000007.jsonl']);
    for (const f of files) expect((await stat(egress(f))).size).toBeLessThanOrEqual(bytesFor(3));
    // The first record of each segment links to the last line of the one before.
    const [first, second] = [await fileLines(egress(files[0] as string)), await fileLines(egress(files[1] as string))];
    expect((JSON.parse(second[0] as string) as { prev: string }).prev).toBe(hashLine(first[2] as string));
    expect((await allRecords(dir)).map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect((await verifyAuditDir(dir)).ok).toBe(true);
  });

  it('never splits one write across segments: a batch larger than the limit goes whole into a fresh segment', async () => {
    const log = await AuditLog.open({ dir, flushIntervalMs: 60_000, segmentMaxBytes: bytesFor(2) });
    log.append('egress', padEvent(1));
    await log.flush();
    for (let i = 2; i <= 6; i++) log.append('egress', padEvent(i));
    await log.flush(); // five records in one write
    await log.close();
    expect(await segmentFiles(dir)).toEqual(['000000000001.jsonl', '000000000002.jsonl']);
    expect((await fileLines(egress('000000000002.jsonl'))).length).toBe(5);
    expect((await verifyAuditDir(dir)).ok).toBe(true);
  });

  it('rotates by age, and configure() changes the age limit of a running writer', async () => {
    const log = await AuditLog.open({ dir, flushIntervalMs: 5, segmentMaxAgeMs: 3_600_000, checkpointIntervalMs: 3_600_000 });
    log.append('egress', padEvent(1));
    await log.flush();
    const maxAgeMs = 100;
    log.configure({ rotation: { segmentMaxBytes: 64 * 1024 * 1024, segmentMaxAgeMs: maxAgeMs } });
    // Age is measured from when the segment was opened, which is no later than its last write.
    const written = (await stat(egress('000000000001.jsonl'))).mtimeMs;
    await waitUntil(() => Date.now() - written > maxAgeMs + 20, 'the segment to be older than its age limit');
    log.append('egress', padEvent(2));
    await log.flush();
    await log.close();
    expect(await segmentFiles(dir)).toEqual(['000000000001.jsonl', '000000000002.jsonl']);
    const cps = await checkpoints(dir);
    expect(cps[0]).toMatchObject({ source: 'egress', segment: '000000000001.jsonl', seq: 1, hash: hashLine((await fileLines(egress('000000000001.jsonl')))[0] as string) });
    expect((await verifyAuditDir(dir)).ok).toBe(true);
  });
});

describe('segments: checkpoints', () => {
  it('signs a checkpoint at each rotation naming the segment it closes, with its last seq and hash', async () => {
    await writeSegmentedLog(dir, 7, 3);
    const key = await pub();
    const cps = await checkpoints(dir);
    expect(cps.map((c) => [c.segment, c.seq])).toEqual([
      ['000000000001.jsonl', 3],
      ['000000000004.jsonl', 6],
      ['000000000007.jsonl', 7], // at close
    ]);
    const lines = await fileLines(egress('000000000004.jsonl'));
    expect(cps[1]?.hash).toBe(hashLine(lines[2] as string));
    for (const c of cps) expect(verifyCheckpoint(key, c)).toBe(true);
    expect(verifyCheckpoint(key, { ...(cps[1] as (typeof cps)[number]), seq: 5 })).toBe(false);
  });

  it('signs on the timer, and again only once the chain has moved on', async () => {
    const log = await AuditLog.open({ dir, flushIntervalMs: 5, checkpointIntervalMs: 50 });
    log.append('egress', padEvent(1));
    await log.flush();
    await waitUntil(async () => (await checkpoints(dir)).some((c) => c.seq === 1), 'a timer checkpoint at seq 1');
    log.append('egress', padEvent(2));
    await log.flush();
    await waitUntil(async () => (await checkpoints(dir)).some((c) => c.seq === 2), 'a timer checkpoint at seq 2');
    await log.close();
    // One per chain position: the timer does not sign the same head twice.
    const seqs = (await checkpoints(dir)).map((c) => c.seq);
    expect(seqs.filter((s) => s === 1)).toHaveLength(1);
    expect((await verifyAuditDir(dir)).ok).toBe(true);
  });

  it('signs on an explicit checkpoint(), for every source that has records', async () => {
    const log = await AuditLog.open({ dir, flushIntervalMs: 5, checkpointIntervalMs: 3_600_000 });
    log.append('egress', padEvent(1));
    log.append('control', padEvent(2));
    await log.checkpoint();
    expect((await checkpoints(dir)).map((c) => c.seq)).toEqual([1]);
    expect((await checkpoints(dir, 'control')).map((c) => [c.source, c.seq])).toEqual([['control', 1]]);
    expect(await checkpoints(dir, 'broker')).toEqual([]);
    await log.close();
  });
});

describe('segments: retention', () => {
  async function oldStore(): Promise<SegmentStore> {
    await writeSegmentedLog(dir, 12, 3);
    const old = new Date(Date.now() - 3_600_000);
    for (const f of await segmentFiles(dir)) await utimes(egress(f), old, old);
    const key = await loadOrCreateCheckpointKey(dir);
    return (await SegmentStore.open(dir, 'egress', { segmentMaxBytes: bytesFor(3), segmentMaxAgeMs: 3_600_000 }, key)).store;
  }

  it('removes whole old segments only up to what every sink confirmed, and what is left verifies as pruned', async () => {
    const store = await oldStore();
    // Sinks have seq 7: segments 1-3 and 4-6 may go; 7-9 holds seq 8 and 9, which a sink still needs.
    expect(await store.prune(60_000, 7)).toEqual(['000000000001.jsonl', '000000000004.jsonl']);
    await store.close();
    expect(await segmentFiles(dir)).toEqual(['000000000007.jsonl', '000000000010.jsonl']);
    const report = await verifyAuditDir(dir);
    expect(report.firstProblem).toBeUndefined();
    expect(report.sources.find((s) => s.source === 'egress')).toMatchObject({ firstSeq: 7, lastSeq: 12, pruned: true });
  });

  it('keeps segments younger than the retention, and always the segment being written', async () => {
    const store = await oldStore();
    expect(await store.prune(2 * 3_600_000, Number.MAX_SAFE_INTEGER)).toEqual([]);
    expect(await store.prune(60_000, Number.MAX_SAFE_INTEGER)).toEqual(['000000000001.jsonl', '000000000004.jsonl', '000000000007.jsonl']);
    await store.close();
    expect(await segmentFiles(dir)).toEqual(['000000000010.jsonl']);
    expect((await verifyAuditDir(dir)).ok).toBe(true);
  });
});
