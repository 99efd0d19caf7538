import { join, resolve } from 'node:path';
import { verifyAuditDir } from '../core/audit/verify-chain.js';
import type { RuntimeConfig } from './runtime-config.js';

/** `gatehouse audit verify [DIR]`: exit 0 when every chain is intact, 1 naming the first bad record. */
export async function auditVerify(dirArg: string | undefined, json: boolean, config: RuntimeConfig, out: (s: string) => void): Promise<number> {
  const dir = dirArg ? resolve(dirArg) : join(config.stateDir, 'audit');
  const report = await verifyAuditDir(dir);
  if (json) {
    out(JSON.stringify(report, null, 2));
    return report.ok ? 0 : 1;
  }
  for (const s of report.sources) out(`${s.source.padEnd(8)} ${String(s.records).padStart(8)} records  ok   last seq ${s.lastSeq}`);
  if (report.firstProblem) {
    const p = report.firstProblem;
    out(`${p.source.padEnd(8)} TAMPERED: ${p.file}:${p.line} (seq ${p.seq ?? '?'}): ${p.problem}`);
    return 1;
  }
  out(`audit log ${dir}: every chain verifies`);
  return 0;
}
