import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { verifyCheckpoint, type Checkpoint } from './checkpoint.js';
import { AUDIT_SOURCES, GENESIS_HASH, hashLine, SEGMENT_FILE, type AuditRecord } from './record-format.js';
import { listSegments } from './segment-store.js';

export interface ChainProblem {
  readonly source: string;
  readonly file: string;
  /** 1-based line in that file. */
  readonly line: number;
  readonly seq: number | null;
  readonly problem: string;
}

export interface SourceSummary {
  readonly source: string;
  readonly records: number;
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly lastHash: string;
  readonly checkpoints: number;
  /** Sequence numbers before firstSeq were removed by retention (the chain links to a signed checkpoint). */
  readonly pruned: boolean;
}

export interface VerifyReport {
  readonly ok: boolean;
  readonly sources: readonly SourceSummary[];
  /** The first record (or checkpoint) that breaks its chain, when any does. */
  readonly firstProblem?: ChainProblem;
}

async function readCheckpoints(dir: string, source: string): Promise<{ list: Checkpoint[]; bad: ChainProblem | null }> {
  const file = join(dir, source, 'checkpoints.jsonl');
  const text = await readFile(file, 'utf8').catch(() => '');
  const list: Checkpoint[] = [];
  const key = await readFile(join(dir, 'checkpoint-key.pub.pem'), 'utf8').catch(() => null);
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line.length === 0) continue;
    let cp: Checkpoint;
    try {
      cp = JSON.parse(line) as Checkpoint;
    } catch {
      return { list, bad: { source, file, line: i + 1, seq: null, problem: 'checkpoint is not valid JSON' } };
    }
    if (key === null || !verifyCheckpoint(key, cp) || cp.source !== source) {
      return { list, bad: { source, file, line: i + 1, seq: cp.seq ?? null, problem: key === null ? 'checkpoint-key.pub.pem is missing: checkpoints cannot be verified' : 'checkpoint signature does not verify (forged or edited)' } };
    }
    list.push(cp);
  }
  return { list, bad: null };
}

/**
 * Walk every source's segments in order and check each record: it parses, names its source, its sequence is the
 * previous one plus one, and its `prev` is the hash of the previous line. An edit, deletion, insertion or
 * reordering breaks one of these at the first record affected, which is the one reported. Signed checkpoints
 * then catch what a chain alone cannot: records cut off the end, or a forged tail.
 */
export async function verifyAuditDir(dir: string): Promise<VerifyReport> {
  const sources: SourceSummary[] = [];
  for (const source of AUDIT_SOURCES) {
    const segments = await listSegments(join(dir, source));
    const { list: checkpoints, bad } = await readCheckpoints(dir, source);
    if (bad) return { ok: false, sources, firstProblem: bad };
    const bySeq = new Map(checkpoints.map((c) => [c.seq, c]));
    let expectedSeq = 0;
    let prev = GENESIS_HASH;
    let records = 0;
    let firstSeq = 0;
    let pruned = false;
    const hashes = new Map<number, string>();
    for (const [index, name] of segments.entries()) {
      const file = join(dir, source, name);
      let lineNo = 0;
      let segmentLastSeq = 0;
      const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
      for await (const line of lines) {
        lineNo++;
        const fail = (problem: string, seq: number | null = null): VerifyReport => ({ ok: false, sources, firstProblem: { source, file, line: lineNo, seq, problem } });
        let record: AuditRecord;
        try {
          record = JSON.parse(line) as AuditRecord;
        } catch {
          return fail('not valid JSON (edited or truncated)');
        }
        const seq = typeof record.seq === 'number' ? record.seq : null;
        if (record.v !== 1 || record.source !== source) return fail('not a record of this source', seq);
        if (records === 0) {
          // The first record on disk: seq 1 from genesis, or the first after a retention prune, which must link to
          // a signed checkpoint of the record before it.
          const anchor = seq !== null && seq > 1 ? bySeq.get(seq - 1) : undefined;
          if (seq === 1 && record.prev === GENESIS_HASH) expectedSeq = 1;
          else if (anchor && anchor.hash === record.prev) {
            expectedSeq = seq as number;
            prev = record.prev;
            pruned = true;
          } else return fail(seq === 1 ? 'hash chain broken: the first record does not start from the genesis hash' : `the log starts at seq ${String(seq)} and no signed checkpoint explains the missing records: deleted`, seq);
          firstSeq = expectedSeq;
        }
        if (seq !== expectedSeq) {
          return fail(seq !== null && seq > expectedSeq ? `sequence jumps from ${expectedSeq - 1} to ${seq}: records deleted` : `sequence ${String(seq)} where ${expectedSeq} was expected: records inserted or reordered`, seq);
        }
        if (record.prev !== prev) return fail('hash chain broken: this record or the one before it was altered', seq);
        // Every segment, not only the first: a renamed segment keeps its chain but no longer says where it starts.
        if (lineNo === 1 && Number(SEGMENT_FILE.exec(name)?.[1]) !== seq) return fail(`segment ${name} does not start with its first record`, seq);
        prev = hashLine(line);
        // A record a checkpoint signed is named itself when edited, not only the record after it.
        if (bySeq.has(seq) && bySeq.get(seq)?.hash !== prev) return fail(`the record at seq ${seq} is not the one the checkpoint signed`, seq);
        if (bySeq.has(seq)) hashes.set(seq, prev);
        segmentLastSeq = seq;
        expectedSeq++;
        records++;
      }
      // SECURITY: a rotation signs the segment it closes before the next one exists, so a closed segment whose last
      // record has no checkpoint means checkpoints were removed (which would hide a tail cut below them).
      if (index < segments.length - 1 && lineNo > 0 && !bySeq.has(segmentLastSeq)) {
        return { ok: false, sources, firstProblem: { source, file, line: lineNo, seq: segmentLastSeq, problem: `segment ${name} was closed without a signed checkpoint of its last record: checkpoints removed` } };
      }
    }
    const lastSeq = expectedSeq === 0 ? 0 : expectedSeq - 1;
    for (const cp of checkpoints) {
      const problem = (text: string): VerifyReport => ({ ok: false, sources, firstProblem: { source, file: join(dir, source, 'checkpoints.jsonl'), line: checkpoints.indexOf(cp) + 1, seq: cp.seq, problem: text } });
      if (cp.seq > lastSeq) return problem(`a signed checkpoint vouches for seq ${cp.seq} but the log ends at ${lastSeq}: records were cut off the end`);
      if (cp.seq >= firstSeq && hashes.get(cp.seq) !== cp.hash) return problem(`the record at seq ${cp.seq} is not the one the checkpoint signed`);
    }
    sources.push({ source, records, firstSeq, lastSeq, lastHash: prev, checkpoints: checkpoints.length, pruned });
  }
  return { ok: true, sources };
}
