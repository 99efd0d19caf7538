import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AuditLog, type AuditLogOptions } from '../../core/audit/audit-log.js';
import type { Checkpoint } from '../../core/audit/checkpoint.js';
import { composeLine, GENESIS_HASH } from '../../core/audit/record-format.js';

/** A fixed-size test event: every record line is the same length give or take a digit of `n`. */
export const padEvent = (n: number): Record<string, unknown> => ({ n, pad: 'x'.repeat(60) });

/** A segment size that holds exactly `perSegment` records of padEvent (lines grow by a byte per seq digit). */
export function bytesFor(perSegment: number): number {
  const line = composeLine('egress', 100, GENESIS_HASH, JSON.stringify(padEvent(100))).length + 1;
  return Math.floor(line * (perSegment + 0.5));
}

/**
 * Write `count` egress events one write at a time (a flush after each, so rotation happens between records)
 * into segments of `perSegment` records, and close: rotation checkpoints plus one at close.
 */
export async function writeSegmentedLog(dir: string, count: number, perSegment: number, extra: Partial<AuditLogOptions> = {}): Promise<void> {
  const log = await AuditLog.open({ dir, flushIntervalMs: 5, segmentMaxBytes: bytesFor(perSegment), checkpointIntervalMs: 3_600_000, ...extra });
  for (let i = 1; i <= count; i++) {
    log.append('egress', padEvent(i));
    await log.flush();
  }
  await log.close();
}

export const segmentFiles = async (dir: string, source = 'egress'): Promise<string[]> => (await readdir(join(dir, source))).filter((f) => f.endsWith('.jsonl') && f !== 'checkpoints.jsonl').sort();

/** The whole lines of a file: a fragment after the last newline (a write in progress) is left out. */
export const fileLines = async (file: string): Promise<string[]> => (await readFile(file, 'utf8').catch(() => '')).split('\n').slice(0, -1).filter((l) => l.length > 0);

export const records = async (file: string): Promise<Array<{ seq: number; prev: string; event: Record<string, unknown> }>> =>
  (await fileLines(file)).map((l) => JSON.parse(l) as { seq: number; prev: string; event: Record<string, unknown> });

export const checkpoints = async (dir: string, source = 'egress'): Promise<Checkpoint[]> => (await fileLines(join(dir, source, 'checkpoints.jsonl'))).map((l) => JSON.parse(l) as Checkpoint);

/** Every egress record in segment order. */
export async function allRecords(dir: string, source = 'egress'): Promise<Array<{ seq: number; prev: string; event: Record<string, unknown> }>> {
  const out = [];
  for (const f of await segmentFiles(dir, source)) out.push(...(await records(join(dir, source, f))));
  return out;
}
