import type { SessionLimits } from '../core/policy/index.js';

/** Something the tracker can cut when its session is revoked or its token expires. */
export interface Cuttable {
  cut(reason: 'session_revoked' | 'token_expired'): void;
}

interface SessionState {
  readonly tenant: string;
  active: number;
  tokens: number;
  refilledAt: number;
  opened: number;
  /** The limits last applied, so an idle session is forgotten only once its bucket is full again. */
  limits: SessionLimits;
  readonly live: Set<Cuttable>;
}

export type AcquireResult = { readonly ok: true } | { readonly ok: false; readonly reason: 'too_many_connections' | 'rate_limited' };

export interface SessionSnapshot {
  readonly session: string;
  readonly tenant: string;
  readonly active: number;
  readonly opened: number;
}

/**
 * Per-session accounting on the data plane: concurrent connections (requests in flight plus open tunnels), a
 * token bucket for new ones, and every live connection so a revocation can cut them all at once.
 * Excess is refused on the spot, never queued.
 */
export class SessionTracker {
  private readonly sessions = new Map<string, SessionState>();

  constructor(private readonly now: () => number = () => performance.now()) {}

  private state(session: string, tenant: string, limits: SessionLimits): SessionState {
    let s = this.sessions.get(session);
    if (!s) {
      s = { tenant, active: 0, tokens: limits.burst, refilledAt: this.now(), opened: 0, limits, live: new Set() };
      this.sessions.set(session, s);
    }
    s.limits = limits;
    return s;
  }

  acquire(session: string, tenant: string, limits: SessionLimits): AcquireResult {
    const s = this.state(session, tenant, limits);
    if (s.active >= limits.maxConnections) return { ok: false, reason: 'too_many_connections' };
    const now = this.now();
    const burst = Math.max(1, limits.burst);
    s.tokens = Math.min(burst, s.tokens + ((now - s.refilledAt) / 1000) * limits.newConnectionsPerSecond);
    s.refilledAt = now;
    if (s.tokens < 1) return { ok: false, reason: 'rate_limited' };
    s.tokens -= 1;
    s.active++;
    s.opened++;
    return { ok: true };
  }

  release(session: string): void {
    const s = this.sessions.get(session);
    if (!s) return;
    s.active = Math.max(0, s.active - 1);
    this.gc(session, s);
  }

  /** Register a live connection; returns the function that unregisters it. */
  attach(session: string, tenant: string, limits: SessionLimits, item: Cuttable): () => void {
    const s = this.state(session, tenant, limits);
    s.live.add(item);
    return () => {
      s.live.delete(item);
      this.gc(session, s);
    };
  }

  /** Cut every live connection of a session. Returns how many were cut. */
  cut(session: string, reason: 'session_revoked' | 'token_expired'): number {
    const s = this.sessions.get(session);
    if (!s) return 0;
    const items = [...s.live];
    for (const item of items) item.cut(reason);
    return items.length;
  }

  snapshot(): SessionSnapshot[] {
    return [...this.sessions].map(([session, s]) => ({ session, tenant: s.tenant, active: s.active, opened: s.opened }));
  }

  /**
   * Forget an idle session only when its bucket has refilled completely: forgetting it earlier would hand a
   * fast client a fresh burst on every connection.
   */
  private gc(session: string, s: SessionState): void {
    if (s.active !== 0 || s.live.size !== 0) return;
    const refilled = s.tokens + ((this.now() - s.refilledAt) / 1000) * s.limits.newConnectionsPerSecond;
    if (refilled >= s.limits.burst) this.sessions.delete(session);
  }

  /** Drop idle sessions whose buckets have refilled since they were last used (called on a timer). */
  sweep(): void {
    for (const [session, s] of this.sessions) this.gc(session, s);
  }
}
