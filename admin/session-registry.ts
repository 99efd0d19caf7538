import { join } from 'node:path';
import { parseStateJson, readFileIfExists, writeFileAtomic } from '../core/state/files.js';

export interface SessionRecord {
  readonly session: string;
  readonly tenant: string;
  readonly egress: readonly string[];
  readonly created_at: string;
  readonly expires_at: string;
  /** Token ids issued for this session (the tokens themselves are never stored). */
  readonly jtis: readonly string[];
}

interface RegistryFile {
  version: 1;
  sessions: SessionRecord[];
}

const isRegistryFile = (v: unknown): v is RegistryFile =>
  typeof v === 'object' && v !== null && (v as RegistryFile).version === 1 && Array.isArray((v as RegistryFile).sessions);

/**
 * Sessions created through the admin API (`sessions.json`), so `GET /v1/sessions` can list them across restarts.
 * Records are dropped an hour after their token expires.
 */
export class SessionRegistry {
  private readonly sessions = new Map<string, SessionRecord>();
  private writes: Promise<void> = Promise.resolve();

  private constructor(private readonly file: string) {}

  static async open(stateDir: string): Promise<SessionRegistry> {
    const registry = new SessionRegistry(join(stateDir, 'sessions.json'));
    const text = await readFileIfExists(registry.file);
    if (text !== null) for (const s of parseStateJson(registry.file, text, isRegistryFile).sessions) registry.sessions.set(s.session, s);
    return registry;
  }

  get(session: string): SessionRecord | undefined {
    return this.sessions.get(session);
  }

  list(now = Date.now()): SessionRecord[] {
    return [...this.sessions.values()].filter((s) => Date.parse(s.expires_at) + 3_600_000 > now);
  }

  async record(entry: Omit<SessionRecord, 'jtis' | 'created_at'> & { jti: string }, now = new Date()): Promise<SessionRecord> {
    const previous = this.sessions.get(entry.session);
    const record: SessionRecord = {
      session: entry.session,
      tenant: entry.tenant,
      egress: entry.egress,
      created_at: previous?.created_at ?? now.toISOString(),
      expires_at: entry.expires_at,
      jtis: [...(previous?.jtis ?? []), entry.jti].slice(-20),
    };
    this.sessions.set(entry.session, record);
    for (const [id, s] of this.sessions) if (Date.parse(s.expires_at) + 3_600_000 < now.getTime()) this.sessions.delete(id);
    await this.persist();
    return record;
  }

  private persist(): Promise<void> {
    const run = async (): Promise<void> => {
      const body: RegistryFile = { version: 1, sessions: [...this.sessions.values()] };
      await writeFileAtomic(this.file, `${JSON.stringify(body, null, 2)}\n`);
    };
    this.writes = this.writes.then(run, run);
    return this.writes;
  }
}
