import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditLog, hashLine } from './audit-log.js';
import { verifyAuditDir } from './verify-chain.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-audit-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const segment = () => join(dir, 'egress', '000000000001.jsonl');

async function writeEvents(n: number): Promise<void> {
  const log = await AuditLog.open({ dir, flushIntervalMs: 5 });
  for (let i = 1; i <= n; i++) log.append('egress', { n: i, status_detail: 'allowed' });
  await log.close();
}

const lines = async (): Promise<string[]> => (await readFile(segment(), 'utf8')).split('\n').filter((l) => l.length > 0);

describe('audit log hash chain', () => {
  it('chains records per source and verifies clean', async () => {
    await writeEvents(5);
    const recs = (await lines()).map((l) => JSON.parse(l) as { seq: number; prev: string });
    expect(recs.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
    const raw = await lines();
    expect(recs[1]?.prev).toBe(hashLine(raw[0] as string));
    const report = await verifyAuditDir(dir);
    expect(report.ok).toBe(true);
    expect(report.sources.find((s) => s.source === 'egress')?.records).toBe(5);
  });

  it('continues the chain and the sequence across a restart', async () => {
    await writeEvents(3);
    await writeEvents(2);
    expect((await lines()).map((l) => (JSON.parse(l) as { seq: number }).seq)).toEqual([1, 2, 3, 4, 5]);
    expect((await verifyAuditDir(dir)).ok).toBe(true);
  });

  it('cuts a torn last line left by a crash and continues from the last whole record', async () => {
    await writeEvents(3);
    await appendFile(segment(), '{"v":1,"source":"egress","seq":4,"prev":"ab');
    await writeEvents(1);
    expect((await lines()).map((l) => (JSON.parse(l) as { seq: number }).seq)).toEqual([1, 2, 3, 4]);
    expect((await verifyAuditDir(dir)).ok).toBe(true);
  });

  // [what was done to the file, edit, the line verify must name]
  const tampering: ReadonlyArray<readonly [string, (l: string[]) => string[], number]> = [
    ['a field edited', (l) => l.map((x, i) => (i === 2 ? x.replace('"n":3', '"n":30') : x)), 4],
    ['a record deleted', (l) => l.filter((_, i) => i !== 2), 3],
    ['a record inserted', (l) => [...l.slice(0, 2), l[1] as string, ...l.slice(2)], 3],
    ['two records swapped', (l) => [l[0], l[2], l[1], l[3], l[4]] as string[], 2],
    ['the first record removed', (l) => l.slice(1), 1],
    ['a line made invalid JSON', (l) => l.map((x, i) => (i === 1 ? x.slice(0, -5) : x)), 2],
    ['a record re-chained after an edit (prev fixed up, next not)', (l) => {
      const edited = (l[1] as string).replace('"n":2', '"n":20');
      return [l[0], edited, l[2], l[3], l[4]] as string[];
    }, 3],
  ];
  it.each(tampering)('detects %s', async (_what, edit, badLine) => {
    await writeEvents(5);
    await writeFile(segment(), `${edit(await lines()).join('\n')}\n`);
    const report = await verifyAuditDir(dir);
    expect(report.ok).toBe(false);
    expect(report.firstProblem?.source).toBe('egress');
    expect(report.firstProblem?.line).toBe(badLine);
  });

  it('refuses an event that fails validation and writes nothing for it', async () => {
    const log = await AuditLog.open({
      dir,
      validate: (e) => {
        if (e['bad']) throw new Error('invalid');
      },
    });
    expect(() => log.append('egress', { bad: true })).toThrow('invalid');
    log.append('egress', { ok: true });
    await log.close();
    expect((await lines()).map((l) => (JSON.parse(l) as { seq: number }).seq)).toEqual([1]);
  });
});
