import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { AUDIT_SOURCES, GENESIS_HASH, hashLine, type AuditRecord } from './audit-log.js';

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
  readonly lastSeq: number;
  readonly lastHash: string;
}

export interface VerifyReport {
  readonly ok: boolean;
  readonly sources: readonly SourceSummary[];
  /** The first record that breaks its chain, when any does. */
  readonly firstProblem?: ChainProblem;
}

/**
 * Walk every source's segments in order and check each record: it parses, names its source, its sequence is the
 * previous one plus one, and its `prev` is the hash of the previous line. An edit, deletion, insertion or
 * reordering breaks one of these at the first record affected, which is the one reported.
 */
export async function verifyAuditDir(dir: string): Promise<VerifyReport> {
  const sources: SourceSummary[] = [];
  for (const source of AUDIT_SOURCES) {
    let segments: string[];
    try {
      segments = (await readdir(join(dir, source))).filter((f) => /^\d{12}\.jsonl$/.test(f)).sort();
    } catch {
      continue;
    }
    let expectedSeq = 1;
    let prev = GENESIS_HASH;
    let records = 0;
    for (const name of segments) {
      const file = join(dir, source, name);
      let lineNo = 0;
      const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
      for await (const line of lines) {
        lineNo++;
        const fail = (problem: string, seq: number | null = null): VerifyReport => ({
          ok: false,
          sources,
          firstProblem: { source, file, line: lineNo, seq, problem },
        });
        let record: AuditRecord;
        try {
          record = JSON.parse(line) as AuditRecord;
        } catch {
          return fail('not valid JSON (edited or truncated)');
        }
        const seq = typeof record.seq === 'number' ? record.seq : null;
        if (record.v !== 1 || record.source !== source) return fail('not a record of this source', seq);
        if (seq !== expectedSeq) {
          return fail(seq !== null && seq > expectedSeq ? `sequence jumps from ${expectedSeq - 1} to ${seq}: records deleted` : `sequence ${String(seq)} where ${expectedSeq} was expected: records inserted or reordered`, seq);
        }
        if (record.prev !== prev) return fail('hash chain broken: this record or the one before it was altered', seq);
        prev = hashLine(line);
        expectedSeq++;
        records++;
      }
    }
    sources.push({ source, records, lastSeq: expectedSeq - 1, lastHash: prev });
  }
  return { ok: true, sources };
}
