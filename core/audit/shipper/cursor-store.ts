import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../state/files.js';
import { AUDIT_SOURCES, type AuditSource } from '../record-format.js';

/** A sink's position in each chain: every record up to `confirmed[source]` is known to have arrived. */
export interface Cursor {
  confirmed: Record<AuditSource, number>;
  /** Checkpoint lines already delivered, per source. */
  checkpoints: Record<AuditSource, number>;
}

const zero = (): Record<AuditSource, number> => Object.fromEntries(AUDIT_SOURCES.map((s) => [s, 0])) as Record<AuditSource, number>;

/**
 * `audit/cursors/<sink>.json`: persisted after each delivery (at most once a second, and at shutdown), so a
 * restart resumes where the sink had confirmed, and retention never deletes what a sink has not received.
 * A new sink starts from the beginning of the retained log.
 */
export class CursorStore {
  private dirty = false;
  private lastWrite = 0;
  private writing: Promise<void> = Promise.resolve();

  private constructor(
    private readonly file: string,
    readonly cursor: Cursor,
  ) {}

  static async open(auditDir: string, sink: string): Promise<CursorStore> {
    const dir = join(auditDir, 'cursors');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const file = join(dir, `${sink}.json`);
    const cursor: Cursor = { confirmed: zero(), checkpoints: zero() };
    try {
      const saved = JSON.parse(await readFile(file, 'utf8')) as Partial<Cursor>;
      for (const s of AUDIT_SOURCES) {
        cursor.confirmed[s] = Number(saved.confirmed?.[s] ?? 0) || 0;
        cursor.checkpoints[s] = Number(saved.checkpoints?.[s] ?? 0) || 0;
      }
    } catch {
      // no cursor yet (or an unreadable one): start from the beginning; duplicates beat loss
    }
    return new CursorStore(file, cursor);
  }

  confirm(source: AuditSource, seq: number): void {
    if (seq > this.cursor.confirmed[source]) {
      this.cursor.confirmed[source] = seq;
      this.dirty = true;
    }
  }

  confirmCheckpoints(source: AuditSource, count: number): void {
    this.cursor.checkpoints[source] = count;
    this.dirty = true;
  }

  /** Persist if anything changed (throttled to once a second unless forced). */
  save(force = false): Promise<void> {
    if (!this.dirty || (!force && Date.now() - this.lastWrite < 1000)) return this.writing;
    this.dirty = false;
    this.lastWrite = Date.now();
    const body = `${JSON.stringify({ version: 1, ...this.cursor, updated_at: new Date().toISOString() })}\n`;
    this.writing = this.writing.then(() => writeFileAtomic(this.file, body)).catch(() => {
      this.dirty = true; // retried on the next save
    });
    return this.writing;
  }
}
