import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Reason } from '../core/errors/index.js';
import { DialError } from '../core/netguard/index.js';
import { admit, type Admission } from './admission.js';
import { denySocket } from './deny-response.js';
import { canonicalAuthority } from './forward-http.js';
import { upstreamRequestHeaders } from '../core/http/hop-by-hop.js';
import type { ProxyContext } from './proxy-context.js';
import { parseAbsoluteTarget, parseConnectTarget, sameAuthority, singleHostHeader, type TargetResult } from './request-target.js';
import { splice } from './splice.js';

type Kind = 'connect' | 'upgrade';

function connectTarget(req: IncomingMessage, ctx: ProxyContext): TargetResult {
  const result = parseConnectTarget(req.url ?? '', ctx.authorities);
  const host = singleHostHeader(req.rawHeaders);
  // A Host header on CONNECT that names another authority is the start of a fronting attempt.
  if (result.ok && (host === null || (host !== undefined && !sameAuthority(host, result.target.host, result.target.port, result.target.port, ctx.authorities)))) {
    return { ok: false, reason: 'host_mismatch' };
  }
  return result;
}

/** The request head for the upstream of a WebSocket (or other) upgrade, in origin-form. */
function upgradeHead(req: IncomingMessage, admission: Extract<Admission, { ok: true }>): string {
  const headers = upstreamRequestHeaders(req.rawHeaders, req.headers.connection, canonicalAuthority(admission.target, 80), true);
  const lines = [`${req.method ?? 'GET'} ${admission.target.path} HTTP/1.1`];
  for (let i = 0; i < headers.length; i += 2) lines.push(`${headers[i]}: ${headers[i + 1]}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/**
 * CONNECT (RFC 9110 §9.3.6) and HTTP Upgrade (RFC 9110 §7.8): decide, dial the vetted address, then splice bytes
 * both ways. The client socket stays paused until the decision, so nothing it sends early is lost or relayed.
 */
export async function handleTunnel(ctx: ProxyContext, kind: Kind, req: IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
  const startTime = Date.now();
  const t0 = performance.now();
  const correlationId = randomUUID();
  const client = { ip: socket.remoteAddress, port: socket.remotePort };
  const method = req.method ?? 'CONNECT';
  socket.setNoDelay(true);
  socket.on('error', () => socket.destroy());
  const base = { kind, correlationId, startTime, client, ...(kind === 'upgrade' ? { http: { method } } : {}) };

  if (ctx.shuttingDown) {
    denySocket(socket, 'proxy_shutting_down', correlationId);
    ctx.record({ ...base, endTime: Date.now(), facts: { policy: ctx.policy }, allow: false, reason: 'proxy_shutting_down' }, null);
    return;
  }
  ctx.begin();
  try {
    const target = kind === 'connect' ? connectTarget(req, ctx) : parseAbsoluteTarget(req.url ?? '', singleHostHeader(req.rawHeaders), ctx.authorities);
    const pending = admit(ctx.deps, req.headers['proxy-authorization'], target);
    const admission = pending instanceof Promise ? await pending : pending;
    const decidedIn = (performance.now() - t0) / 1000;
    if (!admission.ok) {
      const refusal = { ...base, endTime: Date.now(), facts: admission, allow: false, reason: admission.reason };
      if (!ctx.strict) {
        denySocket(socket, admission.reason, correlationId);
        ctx.record(refusal, decidedIn);
      } else {
        // Strict durability: the refusal is on disk before the client hears of it.
        denySocket(socket, (await ctx.recordDurable(refusal, decidedIn)) ? admission.reason : 'audit_unavailable', correlationId);
      }
      return;
    }
    const { claims, limits } = admission;
    const policy = admission.policy;
    const strict = ctx.strict;
    if (strict) {
      // Strict durability: the decision is on disk before anything is dialled or relayed.
      const decision = { ...base, phase: 'decision' as const, endTime: Date.now(), facts: admission, allow: true, reason: admission.decision.reason, ...(kind === 'upgrade' ? { http: { method, path: admission.target.path } } : {}) };
      if (!(await ctx.recordDurable(decision, decidedIn))) {
        ctx.tracker.release(claims.sub);
        denySocket(socket, 'audit_unavailable', correlationId);
        return;
      }
    }
    let failure: Reason | null = null;
    let upstream: Socket | null = null;
    const dialStart = performance.now();
    try {
      upstream = await ctx.deps.netguard.dial(admission.addresses, admission.target.port, { timeoutMs: policy.egress.limits.connectTimeoutMs });
      ctx.metrics.upstreamConnected((performance.now() - dialStart) / 1000);
    } catch (err) {
      failure = err instanceof DialError && err.code === 'timeout' ? 'upstream_timeout' : 'upstream_connect_failed';
    }
    if (!upstream || socket.destroyed) {
      ctx.tracker.release(claims.sub);
      upstream?.destroy();
      if (failure) denySocket(socket, failure, correlationId);
      ctx.record({ ...base, ...(strict ? { phase: 'end' as const } : {}), endTime: Date.now(), facts: admission, allow: true, reason: admission.decision.reason, endReason: failure ?? 'client_closed', bytesUp: 0, bytesDown: 0 }, strict ? null : decidedIn);
      return;
    }
    if (kind === 'connect') socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    else upstream.write(upgradeHead(req, admission));
    // The upstream's answer to an upgrade (101, or a refusal) is relayed as bytes; note its status for the record.
    let upgradeStatus = 0;
    if (kind === 'upgrade') {
      upstream.once('data', (chunk: Buffer) => {
        const m = /^HTTP\/1\.[01] (\d{3})/.exec(chunk.toString('latin1', 0, 16));
        if (m) upgradeStatus = Number(m[1]);
      });
    }
    const tunnel = splice(socket, upstream, policy.egress.limits.tunnelIdleTimeoutMs);
    // Bytes the client sent right behind its request head go first (synchronously, before the pipe starts).
    if (head.length > 0) upstream.write(head);
    ctx.metrics.tunnelOpened();
    const detach = ctx.tracker.attach(claims.sub, claims.tenant, limits, {
      cut: (reason) => {
        ctx.metrics.cut(reason);
        tunnel.cut(reason);
      },
    });
    // SECURITY: a tunnel must not outlive the token that opened it (unless the policy says otherwise).
    const expiry = policy.egress.limits.endTunnelsAtTokenExpiry
      ? setTimeout(() => {
          ctx.metrics.cut('token_expired');
          tunnel.cut('token_expired');
        }, Math.max(0, claims.exp * 1000 - Date.now())).unref()
      : null;
    const result = await tunnel.done;
    if (expiry) clearTimeout(expiry);
    detach();
    ctx.tracker.release(claims.sub);
    ctx.metrics.tunnelClosed();
    ctx.metrics.finished(kind, (performance.now() - t0) / 1000);
    ctx.record(
      {
        ...base,
        ...(strict ? { phase: 'end' as const } : {}),
        endTime: Date.now(),
        facts: admission,
        allow: true,
        reason: admission.decision.reason,
        ...(kind === 'upgrade' ? { http: { method, path: admission.target.path, ...(upgradeStatus ? { status: upgradeStatus } : {}) } } : {}),
        bytesUp: result.bytesUp,
        bytesDown: result.bytesDown,
        endReason: ctx.shuttingDown && result.endReason === 'reset' ? 'shutdown' : result.endReason,
      },
      strict ? null : decidedIn,
    );
  } catch (err) {
    ctx.logger.error({ err: (err as Error).message, correlation_id: correlationId }, 'tunnel handling failed');
    socket.destroy();
  } finally {
    ctx.end();
  }
}
