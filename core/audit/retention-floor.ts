import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AUDIT_SOURCES } from './record-format.js';

/**
 * Per source, the highest sequence number every sink has confirmed (from `<audit>/cursors/<sink>.json`): retention
 * may delete segments up to it and no further. Without sinks, nothing holds records back.
 *
 * With `sinkNames` (the sinks configured now): a configured sink with no cursor yet (it never started, or has not
 * delivered anything) has confirmed nothing, so everything is kept for it; a cursor of a sink no longer configured
 * holds nothing back, or removing a sink would stop retention for good. An unreadable cursor keeps everything.
 */
export async function retentionFloor(auditDir: string, sinkNames?: readonly string[]): Promise<Record<string, number>> {
  const dir = join(auditDir, 'cursors');
  const out: Record<string, number> = Object.fromEntries(AUDIT_SOURCES.map((s) => [s, Number.MAX_SAFE_INTEGER]));
  const keepAll = (): Record<string, number> => Object.fromEntries(AUDIT_SOURCES.map((s) => [s, 0]));
  const files = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.json'));
  const sinkOf = (file: string): string => file.slice(0, -'.json'.length);
  if (sinkNames?.some((n) => !files.includes(`${n}.json`))) return keepAll();
  for (const f of files.filter((n) => !sinkNames || sinkNames.includes(sinkOf(n)))) {
    try {
      const cursor = JSON.parse(await readFile(join(dir, f), 'utf8')) as { confirmed?: Record<string, number> };
      for (const source of AUDIT_SOURCES) out[source] = Math.min(out[source] as number, cursor.confirmed?.[source] ?? 0);
    } catch {
      return keepAll();
    }
  }
  return out;
}
