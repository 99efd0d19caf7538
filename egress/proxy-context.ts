import type { Socket } from 'node:net';
import type { Agent } from 'undici';
import type { Logger } from '../core/log/logger.js';
import type { CompiledPolicy, SessionLimits } from '../core/policy/index.js';
import type { AdmissionDeps } from './admission.js';
import { egressEvent, type EgressEventInput } from './egress-events.js';
import type { EgressMetrics } from './egress-metrics.js';
import type { SessionTracker } from './session-tracker.js';
import { createAuthorityCache, type AuthorityCache } from './request-target.js';

/** Where decisions are recorded. The audit log satisfies it. */
export interface AuditWriter {
  append(source: 'egress', event: Record<string, unknown>): void;
  /** Resolves once the event is on disk (fsynced); rejects when it cannot be. Strict durability only. */
  appendDurable(source: 'egress', event: Record<string, unknown>): Promise<void>;
}

interface SocketSessions {
  readonly detach: Map<string, () => void>;
}

/** State shared by the request, CONNECT and Upgrade handlers of one proxy instance. */
export class ProxyContext {
  inflight = 0;
  shuttingDown = false;
  private readonly socketSessions = new WeakMap<Socket, SocketSessions>();
  private drainWaiters: Array<() => void> = [];
  readonly authorities: AuthorityCache = createAuthorityCache();

  constructor(
    readonly deps: AdmissionDeps,
    readonly agent: Agent,
    readonly audit: AuditWriter,
    readonly metrics: EgressMetrics,
    readonly logger: Logger,
    readonly tracker: SessionTracker,
  ) {}

  get policy(): CompiledPolicy {
    return this.deps.policy();
  }

  /** Record one decision: audit event, metric, debug log. Audit failures are logged, never thrown at the client. */
  record(input: EgressEventInput, decidedInSeconds: number | null): void {
    // A strict-mode end event closes a decision already counted when it was recorded.
    if (input.phase !== 'end') this.metrics.decision(input.kind, input.allow, input.reason, decidedInSeconds);
    if (input.bytesUp !== undefined || input.bytesDown !== undefined) this.metrics.transferred(input.bytesUp ?? 0, input.bytesDown ?? 0);
    try {
      this.audit.append('egress', egressEvent(input));
    } catch (err) {
      this.logger.error({ err: (err as Error).message, correlation_id: input.correlationId }, 'audit append failed');
    }
    if (!input.allow) {
      this.logger.debug({ reason: input.reason, kind: input.kind, correlation_id: input.correlationId, session: input.facts.claims?.sub }, 'egress denied');
    }
  }

  /** Strict durability: a decision's event must be on disk before the decision is acted on. */
  get strict(): boolean {
    return this.deps.policy().audit.durability === 'strict';
  }

  /**
   * Record a decision durably before acting on it (strict mode). False when it could not be written: the
   * caller then refuses the traffic with audit_unavailable, because nothing may happen that is not recorded.
   */
  async recordDurable(input: EgressEventInput, decidedInSeconds: number | null): Promise<boolean> {
    this.metrics.decision(input.kind, input.allow, input.reason, decidedInSeconds);
    try {
      await this.audit.appendDurable('egress', egressEvent(input));
      return true;
    } catch (err) {
      this.metrics.decision(input.kind, false, 'audit_unavailable', null);
      this.logger.error({ err: (err as Error).message, correlation_id: input.correlationId }, 'strict audit: decision could not be recorded; refusing');
      return false;
    }
  }

  begin(): void {
    this.inflight++;
  }

  end(): void {
    this.inflight--;
    if (this.inflight === 0) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** Resolves when no request or tunnel is in flight. */
  drained(): Promise<void> {
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /**
   * Tie a client connection to a session for as long as it stays open (keep-alive included), so revoking the
   * session closes it. Idempotent per (socket, session).
   */
  bindSocket(socket: Socket, session: string, tenant: string, limits: SessionLimits): void {
    let entry = this.socketSessions.get(socket);
    if (!entry) {
      const created: SocketSessions = { detach: new Map() };
      entry = created;
      this.socketSessions.set(socket, created);
      socket.once('close', () => {
        for (const detach of created.detach.values()) detach();
        created.detach.clear();
      });
    }
    if (entry.detach.has(session)) return;
    const detach = this.tracker.attach(session, tenant, limits, {
      cut: (reason) => {
        this.metrics.cut(reason);
        socket.destroy();
      },
    });
    entry.detach.set(session, detach);
  }
}
