import type { BrokerLimits } from '../core/policy/compile-broker.js';

interface SessionState {
  active: number;
  tokens: number;
  refilledAt: number;
  limits: BrokerLimits;
}

/**
 * Per-session request rate (token bucket: `requestsPerSecond` sustained, `burst` at once) and requests in
 * flight. Keyed by session id, so every token of a session shares one budget. Idle sessions whose bucket has
 * refilled are forgotten, which keeps memory bounded by the sessions active recently.
 */
export class SessionLimits {
  private readonly sessions = new Map<string, SessionState>();

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Take one request slot; the returned release must be called exactly once when the request ends. */
  acquire(session: string, limits: BrokerLimits): { ok: true; release: () => void } | { ok: false; reason: 'rate_limited' | 'too_many_requests' } {
    const now = this.now();
    let s = this.sessions.get(session);
    if (!s) {
      s = { active: 0, tokens: limits.burst, refilledAt: now, limits };
      this.sessions.set(session, s);
    }
    s.limits = limits; // a policy reload applies to live sessions too
    s.tokens = Math.min(limits.burst, s.tokens + ((now - s.refilledAt) / 1000) * limits.requestsPerSecond);
    s.refilledAt = now;
    if (s.active >= limits.maxConcurrent) return { ok: false, reason: 'too_many_requests' };
    if (s.tokens < 1) return { ok: false, reason: 'rate_limited' };
    s.tokens -= 1;
    s.active++;
    const state = s;
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        state.active--;
        if (state.active === 0) this.forgetIfIdle(session, state);
      },
    };
  }

  private forgetIfIdle(session: string, s: SessionState): void {
    const refilled = s.tokens + ((this.now() - s.refilledAt) / 1000) * s.limits.requestsPerSecond;
    if (refilled >= s.limits.burst && this.sessions.get(session) === s) this.sessions.delete(session);
  }

  /** Drop idle sessions whose buckets have refilled (called on a timer). */
  sweep(): void {
    for (const [session, s] of this.sessions) if (s.active === 0) this.forgetIfIdle(session, s);
  }

  get size(): number {
    return this.sessions.size;
  }
}
