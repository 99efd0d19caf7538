import { generateKeyPairSync } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkpoints, fileLines, segmentFiles, writeSegmentedLog } from '../../test/support/audit-fixture.js';
import { signCheckpoint, type Checkpoint } from './checkpoint.js';
import { verifyAuditDir } from './verify-chain.js';

/**
 * Tampering across segments and checkpoints. The fixture is 12 egress records in four segments of three
 * (000000000001, 4, 7, 10) with signed checkpoints at seq 3, 6 and 9 (rotations) and 12 (close), one per line of
 * checkpoints.jsonl in that order.
 */
let dir: string;
const seg = (first: number): string => join(dir, 'egress', `${String(first).padStart(12, '0')}.jsonl`);
const cpFile = (): string => join(dir, 'egress', 'checkpoints.jsonl');
const writeLines = (file: string, lines: readonly string[]): Promise<void> => writeFile(file, lines.map((l) => `${l}\n`).join(''));

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-verify-'));
  await writeSegmentedLog(dir, 12, 3);
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Re-sign checkpoint line `index` of checkpoints.jsonl with `edit` applied, using a key that is not the log's. */
async function resignWithForeignKey(index: number, edit: (c: Checkpoint) => Partial<Checkpoint> = () => ({})): Promise<void> {
  const { privateKey } = generateKeyPairSync('ed25519');
  const list = await checkpoints(dir);
  const old = list[index] as Checkpoint;
  const forged = signCheckpoint({ kid: old.kid, privateKey, publicKeyPem: '' }, { ...old, ...edit(old) });
  await writeLines(cpFile(), list.map((c, i) => JSON.stringify(i === index ? forged : c)));
}

describe('verify: the fixture', () => {
  it('has the layout the tampering table assumes, and verifies clean', async () => {
    expect(await segmentFiles(dir)).toEqual(['000000000001.jsonl', '000000000004.jsonl', '000000000007.jsonl', '000000000010.jsonl']);
    expect((await checkpoints(dir)).map((c) => [c.seq, c.segment])).toEqual([
      [3, '000000000001.jsonl'],
      [6, '000000000004.jsonl'],
      [9, '000000000007.jsonl'],
      [12, '000000000010.jsonl'],
    ]);
    const report = await verifyAuditDir(dir);
    expect(report.firstProblem).toBeUndefined();
    expect(report.sources.find((s) => s.source === 'egress')).toMatchObject({ records: 12, firstSeq: 1, lastSeq: 12, checkpoints: 4, pruned: false });
  });
});

// [what was done, the edit, the file verify must name, its 1-based line, the seq it reports]
type Row = readonly [string, () => Promise<void>, string, number, number | null];
const tampering: readonly Row[] = [
  // Records cut off the end below a signed checkpoint: the chain alone cannot see it, the checkpoint can.
  ['the tail cut below the last checkpoint', async () => writeLines(seg(10), (await fileLines(seg(10))).slice(0, 1)), 'checkpoints.jsonl', 4, 12],
  ['the last segment deleted', () => unlink(seg(10)), 'checkpoints.jsonl', 4, 12],
  ['the last record torn mid-line', async () => writeFile(seg(10), (await readFile(seg(10), 'utf8')).slice(0, -20)), '000000000010.jsonl', 3, null],
  ['a middle segment deleted', () => unlink(seg(4)), '000000000007.jsonl', 1, 7],
  ['two segments swapped by name', async () => {
    await rename(seg(4), join(dir, 'swap'));
    await rename(seg(7), seg(4));
    await rename(join(dir, 'swap'), seg(7));
  }, '000000000004.jsonl', 1, 7],
  // The records stay in order, only the name lies: it no longer says where the segment starts.
  ['a segment renamed, order kept', () => rename(seg(7), seg(8)), '000000000008.jsonl', 1, 7],
  ['a record duplicated into the next segment', async () => writeLines(seg(4), [(await fileLines(seg(1)))[2] as string, ...(await fileLines(seg(4)))]), '000000000004.jsonl', 1, 3],
  ['a whole segment duplicated under another name', () => copyFile(seg(4), seg(5)), '000000000005.jsonl', 1, 4],
  ['the last record of a segment edited (its checkpoint names it)', async () => writeLines(seg(4), (await fileLines(seg(4))).map((l, i) => (i === 2 ? l.replace('"n":6', '"n":66') : l))), '000000000004.jsonl', 3, 6],
  ['a record removed at a segment boundary', async () => writeLines(seg(7), (await fileLines(seg(7))).slice(1)), '000000000007.jsonl', 1, 8],
  ['a checkpoint edited (its seq)', async () => writeLines(cpFile(), (await fileLines(cpFile())).map((l, i) => (i === 1 ? l.replace('"seq":6', '"seq":5') : l))), 'checkpoints.jsonl', 2, 5],
  ['a checkpoint forged with another key over the same fields', () => resignWithForeignKey(1), 'checkpoints.jsonl', 2, 6],
  ['a checkpoint forged to vouch for a shorter log', () => resignWithForeignKey(3, () => ({ seq: 10 })), 'checkpoints.jsonl', 4, 10],
  ['checkpoints.jsonl torn mid-line', async () => writeFile(cpFile(), (await readFile(cpFile(), 'utf8')).slice(0, -30)), 'checkpoints.jsonl', 4, null],
  ['checkpoint-key.pub.pem replaced by another key', () => writeFile(join(dir, 'checkpoint-key.pub.pem'), generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' })), 'checkpoints.jsonl', 1, 3],
  // Every rotation signs the segment it closes, so a closed segment without its checkpoint was tampered with.
  ['checkpoints.jsonl deleted', () => unlink(cpFile()), '000000000001.jsonl', 3, 3],
  ['checkpoints.jsonl cut to its first line', async () => writeLines(cpFile(), (await fileLines(cpFile())).slice(0, 1)), '000000000004.jsonl', 3, 6],
  // Retention removes a prefix; a gap after it is still a deletion.
  ['a pruned prefix and a middle segment deleted', async () => {
    await unlink(seg(1));
    await unlink(seg(7));
  }, '000000000010.jsonl', 1, 10],
  // A prefix whose anchoring checkpoint is gone too is not a retention prune.
  ['the first segment and its checkpoint deleted', async () => {
    await unlink(seg(1));
    await writeLines(cpFile(), (await fileLines(cpFile())).slice(1));
  }, '000000000004.jsonl', 1, 4],
];

describe('verify: tampering across segments and checkpoints', () => {
  it.each(tampering)('detects %s and names the first bad record', async (_what, edit, file, line, seq) => {
    await edit();
    const report = await verifyAuditDir(dir);
    expect(report.ok).toBe(false);
    const p = report.firstProblem;
    expect(p && { source: p.source, file: basename(p.file), line: p.line, seq: p.seq }).toEqual({ source: 'egress', file, line, seq });
  });

  it('accepts a prefix removed by retention: the first remaining record links to a signed checkpoint', async () => {
    await unlink(seg(1));
    await unlink(seg(4));
    const report = await verifyAuditDir(dir);
    expect(report.firstProblem).toBeUndefined();
    expect(report.sources.find((s) => s.source === 'egress')).toMatchObject({ records: 6, firstSeq: 7, lastSeq: 12, pruned: true });
  });
});
