import type { IncomingMessage, ServerResponse } from 'node:http';
import { Transform } from 'node:stream';
import type { Logger } from '../core/log/logger.js';
import type { CompiledPolicy } from '../core/policy/index.js';
import type { Reason } from '../core/errors/index.js';
import type { SessionClaims } from '../core/tokens/index.js';
import { AuthRefusal, type BrokerAuth, type BrokerSession } from './broker-auth.js';
import { brokerEvent, type BrokerEventInput, type Operation } from './broker-events.js';
import type { BrokerMetrics } from './broker-metrics.js';
import { Refusal } from './refusal.js';
import type { SessionLimits } from './session-limits.js';

/** Where broker decisions are recorded. The audit log satisfies it. */
export interface BrokerAuditWriter {
  append(source: 'broker', event: Record<string, unknown>): void;
  appendDurable(source: 'broker', event: Record<string, unknown>): Promise<void>;
}

export interface BrokerDeps {
  readonly policy: () => CompiledPolicy;
  readonly auth: BrokerAuth;
  readonly limits: SessionLimits;
  readonly audit: BrokerAuditWriter;
  readonly metrics: BrokerMetrics;
  readonly logger: Logger;
}

/** One broker request: who it is, what it touched, and the bytes it moved, for its audit event. */
export class BrokerRequest {
  private session_: BrokerSession | null = null;
  /** The token's claims once verified (also for a revoked session's refusal), for the audit event. */
  claims: SessionClaims | undefined;
  paths: string[] = [];
  store: string | undefined;
  upstream: string | undefined;
  upstreamPath: string | undefined;
  bytesIn = 0;
  bytesOut = 0;
  /** The body length announced to the client, when known: a client may close as soon as it has that many bytes. */
  expectedOut: number | undefined;
  private decidedDurably = false;
  readonly started = Date.now();
  private readonly startedAt = performance.now();
  /**
   * The client's address, read on arrival. Once Node has finished a response on a connection that is closing it
   * sets `req.socket` to null, and reading the address at the end threw inside finish(): the refusal of an
   * oversized JSON body (whose reader destroys the request) went out with no audit event and no metric.
   */
  private readonly client: { ip: string | undefined; port: number | undefined };

  constructor(
    readonly deps: BrokerDeps,
    readonly operation: Operation,
    readonly correlationId: string,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
  ) {
    this.client = { ip: req.socket.remoteAddress, port: req.socket.remotePort };
  }

  private eventInput(allow: boolean, reason: Reason, status: number, extra: Partial<BrokerEventInput> = {}): BrokerEventInput {
    return {
      operation: this.operation,
      correlationId: this.correlationId,
      policyVersion: this.deps.policy().version,
      time: this.started,
      endTime: Date.now(),
      claims: this.claims,
      allow,
      reason,
      status,
      client: this.client,
      ...(this.paths.length > 0 ? { paths: this.paths } : {}),
      ...(this.store ? { store: this.store } : {}),
      ...(this.upstream ? { upstream: this.upstream } : {}),
      ...(this.upstreamPath !== undefined ? { upstreamPath: this.upstreamPath } : {}),
      ...(this.bytesIn > 0 || this.bytesOut > 0 ? { bytesIn: this.bytesIn, bytesOut: this.bytesOut } : {}),
      ...extra,
    };
  }

  get session(): BrokerSession {
    if (!this.session_) throw new Error('not authenticated');
    return this.session_;
  }

  /** Authenticate the request's broker token; throws a Refusal. */
  async authenticate(raw: string | null): Promise<BrokerSession> {
    this.session_ = await this.deps.auth.authenticate(raw);
    this.claims = this.session_.claims;
    return this.session_;
  }

  /**
   * Called once every check has passed, right before the store or upstream is touched. With strict audit
   * durability the decision is on disk before anything happens, or nothing happens.
   */
  async decided(): Promise<void> {
    if (this.deps.policy().audit.durability !== 'strict') return;
    try {
      await this.deps.audit.appendDurable('broker', brokerEvent(this.eventInput(true, 'allowed', 0, { phase: 'decision' })));
      this.decidedDurably = true;
    } catch {
      throw new Refusal('audit_unavailable', 'the audit log cannot be written and durability is strict');
    }
  }

  /** Count body bytes from the sandbox as they are read. */
  countIn(): Transform {
    return new Transform({
      transform: (chunk: Buffer, _e, done) => {
        this.bytesIn += chunk.length;
        done(null, chunk);
      },
    });
  }

  /** Count body bytes to the sandbox as they are written. */
  countOut(): Transform {
    return new Transform({
      transform: (chunk: Buffer, _e, done) => {
        this.bytesOut += chunk.length;
        done(null, chunk);
      },
    });
  }

  /** Record the outcome: one audit event (two in strict mode), a metric, and a debug log for refusals. */
  finish(allow: boolean, reason: Reason, status: number, authDetail?: string, alreadyRecorded = false): void {
    this.deps.metrics.done(this.operation, allow, reason, (performance.now() - this.startedAt) / 1000, this.bytesIn, this.bytesOut);
    if (!alreadyRecorded) {
      try {
        this.deps.audit.append('broker', brokerEvent(this.outcome(allow, reason, status, authDetail)));
      } catch (err) {
        this.deps.logger.error({ err: (err as Error).message, correlation_id: this.correlationId }, 'audit append failed');
      }
    }
    if (!allow) this.deps.logger.debug({ reason, operation: this.operation, correlation_id: this.correlationId, session: this.claims?.sub }, 'broker refused');
  }

  private outcome(allow: boolean, reason: Reason, status: number, authDetail?: string): BrokerEventInput {
    const complete = this.res.writableFinished || (this.expectedOut !== undefined && this.bytesOut >= this.expectedOut);
    return this.eventInput(allow, reason, status, {
      ...(authDetail ? { authDetail } : {}),
      ...(this.decidedDurably ? { phase: 'end' as const } : {}),
      ...(allow && !complete ? { endReason: 'client_closed' } : {}),
    });
  }

  /** Send a refusal (unless the response has started) and record it. */
  async refuse(err: unknown): Promise<void> {
    const refusal = err instanceof Refusal ? err : null;
    if (!refusal) this.deps.logger.error({ err: (err as Error).message, correlation_id: this.correlationId, operation: this.operation }, 'broker request failed');
    let r = refusal ?? new Refusal('upstream_error', 'internal error');
    if (r instanceof AuthRefusal && r.claims) this.claims ??= r.claims;
    let authDetail = r instanceof AuthRefusal ? r.authDetail : undefined;
    let recorded = false;
    // Strict durability, as on the egress proxy: a refusal decided before anything happened is on disk before the
    // client hears of it. (One after the durable decision event is the end of an operation that was recorded.)
    if (!this.res.headersSent && !this.decidedDurably && this.deps.policy().audit.durability === 'strict') {
      try {
        await this.deps.audit.appendDurable('broker', brokerEvent(this.outcome(false, r.reason, r.status, authDetail)));
        recorded = true;
      } catch {
        r = new Refusal('audit_unavailable', 'the audit log cannot be written and durability is strict');
        authDetail = undefined;
      }
    }
    if (!this.res.headersSent) {
      const body = JSON.stringify(r.body(this.correlationId));
      this.res.writeHead(r.status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), 'x-gatehouse-correlation-id': this.correlationId, ...r.headers });
      this.res.end(body);
    } else {
      this.res.destroy();
    }
    this.finish(false, r.reason, r.status, authDetail, recorded);
  }
}
