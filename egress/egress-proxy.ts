import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Registry } from 'prom-client';
import type { Reason } from '../core/errors/index.js';
import type { Logger } from '../core/log/logger.js';
import type { Netguard } from '../core/netguard/index.js';
import { indexGrants, type CompiledPolicy, type Grant, type RuleIndex } from '../core/policy/index.js';
import { AUDIENCE, CachedVerifier, type Keystore } from '../core/tokens/index.js';
import { BoundedCache } from '../core/util/bounded-cache.js';
import { denySocket } from './deny-response.js';
import { createEgressMetrics } from './egress-metrics.js';
import { createUpstreamAgent } from './forward-http.js';
import { handleHttp } from './handle-http.js';
import { handleTunnel } from './handle-tunnel.js';
import { ProxyContext, type AuditWriter } from './proxy-context.js';
import { SessionTracker, type SessionSnapshot } from './session-tracker.js';

export interface EgressProxyOptions {
  readonly host: string;
  readonly port: number;
  /** The current policy; read per request, so a reload applies to the next connection. */
  readonly policy: () => CompiledPolicy;
  readonly keys: Keystore;
  readonly issuer: string;
  readonly isRevoked: (session: string) => boolean;
  readonly netguard: Netguard;
  readonly audit: AuditWriter;
  readonly registry: Registry;
  readonly logger: Logger;
}

export interface EgressProxy {
  start(): Promise<AddressInfo>;
  /** Stop accepting, let in-flight work finish for up to `drainMs`, then cut what is left. */
  close(drainMs?: number): Promise<void>;
  address(): AddressInfo | null;
  /** Close every live connection of a session at once (revocation). Returns how many were cut. */
  cutSession(session: string): number;
  sessions(): SessionSnapshot[];
  /** Apply listener-level settings from the current policy (timeouts). */
  applyPolicy(): void;
}

const CLIENT_ERRORS: Readonly<Record<string, Reason>> = {
  HPE_HEADER_OVERFLOW: 'header_too_large',
  ERR_HTTP_REQUEST_TIMEOUT: 'header_timeout',
  ERR_HTTP_HEADERS_TIMEOUT: 'header_timeout',
};

/**
 * The egress trust edge: an HTTP forward proxy for absolute-form requests, CONNECT tunnels and upgrades, that
 * lets a session reach only what its token grants and its tenant's ceiling allows, at vetted addresses.
 */
export function createEgressProxy(options: EgressProxyOptions): EgressProxy {
  const policy = options.policy;
  const limits = () => policy().egress.limits;
  const metrics = createEgressMetrics(options.registry);
  const tracker = new SessionTracker();
  const verifier = new CachedVerifier<RuleIndex<Grant>>(
    {
      keys: options.keys,
      issuer: options.issuer,
      audience: AUDIENCE.egress,
      clockSkewMs: () => policy().tokens.clockSkewMs,
      maxTtlMs: () => policy().tokens.maxTtlMs,
    },
    (claims) => indexGrants(claims.egress ?? []),
  );
  const agent = createUpstreamAgent(options.netguard, () => limits().connectTimeoutMs);
  const ctx = new ProxyContext(
    { policy, verifier, isRevoked: options.isRevoked, tracker, netguard: options.netguard, credentials: new BoundedCache(10_000) },
    agent,
    options.audit,
    metrics,
    options.logger,
    tracker,
  );
  const sockets = new Set<Socket>();
  let sweeper: NodeJS.Timeout | null = null;

  const server: Server = createServer({
    // Listener-level: read once at start. Documented as "takes effect on restart".
    maxHeaderSize: limits().maxHeaderBytes,
    requestTimeout: 0, // uploads may legitimately take long; idle and header timeouts bound slow clients
    headersTimeout: limits().headerTimeoutMs,
    keepAliveTimeout: limits().clientIdleTimeoutMs,
    connectionsCheckingInterval: 1000,
    noDelay: true,
    requireHostHeader: false, // absolute-form carries the authority; Host is checked against it when present
    joinDuplicateHeaders: false,
  });

  // RFC 9112 §9.6: a client may half-close after its request and still expect the response. Node's default
  // ends the connection on the client's FIN and drops the response; keep the write side open instead.
  (server as Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;

  const refuseRaw = (socket: Duplex, reason: Reason): void => {
    const correlationId = randomUUID();
    const now = Date.now();
    denySocket(socket, reason, correlationId);
    const s = socket as Socket;
    ctx.record({ kind: 'refused', correlationId, startTime: now, endTime: now, facts: { policy: policy() }, allow: false, reason, client: { ip: s.remoteAddress, port: s.remotePort } }, null);
  };

  server.on('connection', (socket: Socket) => {
    metrics.connectionOpened();
    socket.once('close', () => {
      sockets.delete(socket);
      metrics.connectionClosed();
    });
    if (sockets.size >= limits().maxConnections) {
      refuseRaw(socket, 'proxy_at_capacity');
      return;
    }
    sockets.add(socket);
  });
  server.on('request', (req, res) => handleHttp(ctx, req, res));
  server.on('connect', (req, socket: Socket, head: Buffer) => void handleTunnel(ctx, 'connect', req, socket, head));
  server.on('upgrade', (req, socket: Socket, head: Buffer) => void handleTunnel(ctx, 'upgrade', req, socket, head));
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    const code = err.code ?? '';
    if (code === 'ECONNRESET' || code === 'EPIPE' || !socket.writable) {
      socket.destroy();
      return;
    }
    refuseRaw(socket, CLIENT_ERRORS[code] ?? 'malformed_request');
  });

  const applyPolicy = (): void => {
    server.headersTimeout = limits().headerTimeoutMs;
    server.keepAliveTimeout = limits().clientIdleTimeoutMs;
  };

  return {
    async start() {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: options.host, port: options.port }, () => {
          server.off('error', reject);
          resolve();
        });
      });
      const address = server.address() as AddressInfo;
      options.netguard.self.add(address.address, address.port);
      sweeper = setInterval(() => tracker.sweep(), 10_000).unref();
      return address;
    },
    async close(drainMs = 10_000) {
      ctx.shuttingDown = true;
      if (sweeper) clearInterval(sweeper);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([ctx.drained(), new Promise<void>((resolve) => (timer = setTimeout(resolve, drainMs)))]);
      clearTimeout(timer);
      for (const socket of sockets) socket.destroy();
      await ctx.drained();
      await closed;
      await agent.close().catch(() => undefined);
    },
    address: () => server.address() as AddressInfo | null,
    cutSession: (session) => tracker.cut(session, 'session_revoked'),
    sessions: () => tracker.snapshot(),
    applyPolicy,
  };
}
