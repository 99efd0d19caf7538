import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { REASONS } from '../core/errors/index.js';
import type { Admission } from './admission.js';
import type { EgressEventInput } from './egress-events.js';
import { admit } from './admission.js';
import { denyResponse } from './deny-response.js';
import { forwardHttp, type ForwardResult } from './forward-http.js';
import type { ProxyContext } from './proxy-context.js';
import { parseAbsoluteTarget, singleHostHeader } from './request-target.js';

/** Per-request facts carried from the request head to the audit event. */
interface Pending {
  /** Set once the request has been counted out of the in-flight total (exactly once, whatever happens). */
  ended: boolean;
  readonly ctx: ProxyContext;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly t0: number;
  readonly startTime: number;
  readonly correlationId: string;
}

function end(p: Pending): void {
  if (p.ended) return;
  p.ended = true;
  p.ctx.end();
}

function refused(p: Pending, admission: Extract<Admission, { ok: false }>, decidedIn: number): void {
  const { ctx, req, res } = p;
  const event = (status: number): EgressEventInput => ({
    kind: 'http',
    correlationId: p.correlationId,
    startTime: p.startTime,
    endTime: Date.now(),
    facts: admission,
    allow: false,
    reason: admission.reason,
    client: { ip: req.socket.remoteAddress, port: req.socket.remotePort },
    http: admission.target ? { method: req.method ?? 'GET', status, path: admission.target.path } : { method: req.method ?? 'GET', status },
  });
  // An unauthenticated client may retry on the same connection with credentials; a malformed one is done.
  const respond = (): void => {
    denyResponse(res, admission.reason, p.correlationId, admission.reason === 'malformed_request' || admission.reason === 'host_mismatch');
    req.resume(); // drain any body so the connection can be reused
  };
  if (!ctx.strict) {
    respond();
    ctx.record(event(res.statusCode), decidedIn);
    end(p);
    return;
  }
  // Strict durability: the refusal is on disk before the client hears of it.
  void ctx.recordDurable(event(REASONS[admission.reason].status), decidedIn).then((ok) => {
    if (ok) respond();
    else denyResponse(res, 'audit_unavailable', p.correlationId, true);
    end(p);
  });
}

function proceed(p: Pending, admission: Admission): void {
  const decidedIn = (performance.now() - p.t0) / 1000;
  if (!admission.ok) {
    refused(p, admission, decidedIn);
    return;
  }
  if (!p.ctx.strict) {
    relay(p, admission, decidedIn, false);
    return;
  }
  // Strict durability: the decision is on disk before a byte is relayed; the end event follows, batched.
  const { req } = p;
  const decision: EgressEventInput = {
    kind: 'http',
    phase: 'decision',
    correlationId: p.correlationId,
    startTime: p.startTime,
    endTime: Date.now(),
    facts: admission,
    allow: true,
    reason: admission.decision.reason,
    client: { ip: req.socket.remoteAddress, port: req.socket.remotePort },
    http: { method: req.method ?? 'GET', path: admission.target.path },
  };
  void p.ctx.recordDurable(decision, decidedIn).then((ok) => {
    if (ok) relay(p, admission, decidedIn, true);
    else {
      p.ctx.tracker.release(admission.claims.sub);
      denyResponse(p.res, 'audit_unavailable', p.correlationId, true);
      end(p);
    }
  });
}

function relay(p: Pending, admission: Extract<Admission, { ok: true }>, decidedIn: number, strict: boolean): void {
  const { ctx, req, res } = p;
  const { claims, target } = admission;
  const client = { ip: req.socket.remoteAddress, port: req.socket.remotePort };
  ctx.bindSocket(req.socket, claims.sub, claims.tenant, admission.limits);
  const limits = admission.policy.egress.limits;
  forwardHttp(req, res, {
    agent: ctx.agent,
    target,
    address: admission.addresses[0] as NonNullable<(typeof admission.addresses)[0]>,
    responseTimeoutMs: limits.responseTimeoutMs,
    idleTimeoutMs: limits.tunnelIdleTimeoutMs,
    onFailure: (reason) => denyResponse(res, reason, p.correlationId),
    onDone: (result: ForwardResult) => {
      ctx.tracker.release(claims.sub);
      ctx.metrics.finished('http', (performance.now() - p.t0) / 1000);
      ctx.record(
        {
          kind: 'http',
          phase: strict ? 'end' : undefined,
          correlationId: p.correlationId,
          startTime: p.startTime,
          endTime: Date.now(),
          facts: admission,
          allow: true,
          reason: admission.decision.reason,
          client,
          http: { method: req.method ?? 'GET', path: target.path, status: result.failure ? res.statusCode : result.status },
          bytesUp: result.bytesUp,
          bytesDown: result.bytesDown,
          endReason: result.endReason,
        },
        // The end event of a strict-mode exchange is not a second decision: it carries no decision metric.
        strict ? null : decidedIn,
      );
      end(p);
    },
  });
}

function crashed(p: Pending, err: unknown): void {
  p.ctx.logger.error({ err: (err as Error).message, correlation_id: p.correlationId }, 'request handling failed');
  if (!p.res.headersSent) denyResponse(p.res, 'upstream_error', p.correlationId, true);
  else p.res.destroy();
  end(p);
}

/**
 * An absolute-form request (RFC 9112 §3.2.2): decide, then relay it over a pooled upstream connection.
 * Callback-shaped on purpose: with a cached token and cached addresses the whole decision is synchronous, and
 * the relay completes through one callback, so a request costs no promise round trips.
 */
export function handleHttp(ctx: ProxyContext, req: IncomingMessage, res: ServerResponse): void {
  const p: Pending = { ended: false, ctx, req, res, t0: performance.now(), startTime: Date.now(), correlationId: randomUUID() };
  if (ctx.shuttingDown) {
    denyResponse(res, 'proxy_shutting_down', p.correlationId, true);
    ctx.record(
      { kind: 'http', correlationId: p.correlationId, startTime: p.startTime, endTime: p.startTime, facts: { policy: ctx.policy }, allow: false, reason: 'proxy_shutting_down', client: { ip: req.socket.remoteAddress, port: req.socket.remotePort }, http: { method: req.method ?? 'GET', status: 503 } },
      null,
    );
    return;
  }
  ctx.begin();
  try {
    const pending = admit(ctx.deps, req.headers['proxy-authorization'], parseAbsoluteTarget(req.url ?? '', singleHostHeader(req.rawHeaders), ctx.authorities));
    if (pending instanceof Promise) pending.then((a) => proceed(p, a)).catch((err: unknown) => crashed(p, err));
    else proceed(p, pending);
  } catch (err) {
    crashed(p, err);
  }
}
