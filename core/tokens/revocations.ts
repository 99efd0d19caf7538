import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { parseStateJson, readFileIfExists, writeFileAtomic } from '../state/files.js';

export interface Revocation {
  readonly session: string;
  readonly revoked_at: string;
  readonly reason?: string;
}

interface RevocationFile {
  version: 1;
  revoked: Revocation[];
}

const isRevocationFile = (v: unknown): v is RevocationFile =>
  typeof v === 'object' &&
  v !== null &&
  (v as RevocationFile).version === 1 &&
  Array.isArray((v as RevocationFile).revoked) &&
  (v as RevocationFile).revoked.every((r) => typeof r.session === 'string' && typeof r.revoked_at === 'string');

/**
 * Revoked sessions (`revocations.json`, persisted before a revocation is acknowledged, so it survives a restart).
 * A revoked session id is refused for every token that names it. Records are kept until no token issued before
 * the revocation can still be valid, and the issuer refuses new tokens for a revoked id while its record exists.
 *
 * Emits `revoked` (session id) so edges in the same process cut live connections at once.
 */
export class RevocationList extends EventEmitter<{ revoked: [session: string] }> {
  private readonly revoked = new Map<string, Revocation>();
  private writes: Promise<void> = Promise.resolve();

  private constructor(readonly file: string) {
    super();
  }

  static async open(stateDir: string): Promise<RevocationList> {
    const list = new RevocationList(join(stateDir, 'revocations.json'));
    await list.reload();
    return list;
  }

  async reload(): Promise<void> {
    const text = await readFileIfExists(this.file);
    if (text === null) return;
    const parsed = parseStateJson(this.file, text, isRevocationFile);
    for (const r of parsed.revoked) {
      if (!this.revoked.has(r.session)) {
        this.revoked.set(r.session, r);
        this.emit('revoked', r.session);
      }
    }
  }

  isRevoked(session: string): boolean {
    return this.revoked.has(session);
  }

  list(): Revocation[] {
    return [...this.revoked.values()];
  }

  /** Persist, then announce. Revoking twice is not an error; the first record stands. */
  async revoke(session: string, reason?: string, now = new Date()): Promise<Revocation> {
    const existing = this.revoked.get(session);
    if (existing) return existing;
    const record: Revocation = { session, revoked_at: now.toISOString(), ...(reason ? { reason } : {}) };
    this.revoked.set(session, record);
    try {
      await this.persist();
    } catch (err) {
      this.revoked.delete(session);
      throw err;
    }
    this.emit('revoked', session);
    return record;
  }

  /** Forget records older than `retainMs`: every token issued before them has expired by then. */
  async prune(retainMs: number, now = Date.now()): Promise<number> {
    let removed = 0;
    for (const [session, r] of this.revoked) {
      if (Date.parse(r.revoked_at) + retainMs < now) {
        this.revoked.delete(session);
        removed++;
      }
    }
    if (removed > 0) await this.persist();
    return removed;
  }

  private persist(): Promise<void> {
    // Serialise writers: each write carries the full current list.
    const run = async (): Promise<void> => {
      const body: RevocationFile = { version: 1, revoked: [...this.revoked.values()] };
      await writeFileAtomic(this.file, `${JSON.stringify(body, null, 2)}\n`);
    };
    this.writes = this.writes.then(run, run);
    return this.writes;
  }
}
