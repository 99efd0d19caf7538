import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AuditLog } from '../../core/audit/audit-log.js';

export type AuditEvent = Record<string, unknown> & {
  status_detail: string;
  unmapped: { gatehouse: Record<string, unknown> };
};

/** Every event one source has written so far (flushing first). */
export async function auditEvents(audit: AuditLog, dir: string, source = 'egress'): Promise<AuditEvent[]> {
  await audit.flush();
  let text: string;
  try {
    text = await readFile(join(dir, 'audit', source, '000000000001.jsonl'), 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => (JSON.parse(l) as { event: AuditEvent }).event);
}
