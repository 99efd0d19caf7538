import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { admit } from './admission.js';
import { denyResponse } from './deny-response.js';
import { forwardHttp } from './forward-http.js';
import type { ProxyContext } from './proxy-context.js';
import { parseAbsoluteTarget } from './request-target.js';

/** An absolute-form request (RFC 9112 §3.2.2): decide, then relay it over a pooled upstream connection. */
export async function handleHttp(ctx: ProxyContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const startTime = Date.now();
  const t0 = performance.now();
  const correlationId = randomUUID();
  const client = { ip: req.socket.remoteAddress, port: req.socket.remotePort };
  const method = req.method ?? 'GET';
  const base = { kind: 'http' as const, correlationId, startTime, client };

  if (ctx.shuttingDown) {
    const facts = { policy: ctx.policy };
    denyResponse(res, 'proxy_shutting_down', correlationId, true);
    ctx.record({ ...base, endTime: Date.now(), facts, allow: false, reason: 'proxy_shutting_down', http: { method, status: 503 } }, null);
    return;
  }
  ctx.begin();
  try {
    const admission = await admit(ctx.deps, req.headers['proxy-authorization'], parseAbsoluteTarget(req.url ?? '', req.headers.host));
    const decidedIn = (performance.now() - t0) / 1000;
    if (!admission.ok) {
      // An unauthenticated client may retry on the same connection with credentials; others are done.
      denyResponse(res, admission.reason, correlationId, admission.reason === 'malformed_request' || admission.reason === 'host_mismatch');
      req.resume(); // drain any body so the connection can be reused
      const status = res.statusCode;
      ctx.record({ ...base, endTime: Date.now(), facts: admission, allow: false, reason: admission.reason, http: { method, status, ...(admission.target ? { path: admission.target.path } : {}) } }, decidedIn);
      return;
    }
    const { claims, target, limits } = admission;
    ctx.bindSocket(req.socket, claims.sub, claims.tenant, limits);
    const policy = admission.policy;
    let result;
    try {
      result = await forwardHttp(req, res, {
        agent: ctx.agent,
        target,
        address: admission.addresses[0] as NonNullable<(typeof admission.addresses)[0]>,
        responseTimeoutMs: policy.egress.limits.responseTimeoutMs,
        idleTimeoutMs: policy.egress.limits.tunnelIdleTimeoutMs,
        onFailure: (reason) => denyResponse(res, reason, correlationId),
      });
    } finally {
      ctx.tracker.release(claims.sub);
    }
    const seconds = (performance.now() - t0) / 1000;
    ctx.metrics.finished('http', seconds);
    ctx.record(
      {
        ...base,
        endTime: Date.now(),
        facts: admission,
        allow: true,
        reason: admission.decision.reason,
        http: { method, path: target.path, status: result.failure ? res.statusCode : result.status },
        bytesUp: result.bytesUp,
        bytesDown: result.bytesDown,
        endReason: result.endReason,
      },
      decidedIn,
    );
  } catch (err) {
    ctx.logger.error({ err: (err as Error).message, correlation_id: correlationId }, 'request handling failed');
    if (!res.headersSent) denyResponse(res, 'upstream_error', correlationId, true);
    else res.destroy();
  } finally {
    ctx.end();
  }
}
