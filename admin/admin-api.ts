import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import type { Registry } from 'prom-client';
import { adminAuthFailureEvent, controlEvent, type ControlEventInput } from '../core/audit/control-events.js';
import { GatehouseError, isGatehouseError, toWireError, type Reason } from '../core/errors/index.js';
import type { SinkStats } from '../core/audit/shipper.js';
import type { Logger } from '../core/log/logger.js';
import type { PolicyStore } from '../core/policy/index.js';
import { checkBrokerGrant, issueBrokerToken, issueEgressToken, newSessionId, type Keystore, type MountMode, type RevocationList } from '../core/tokens/index.js';
import { createSessionRoutesSchemas } from './admin-schemas.js';
import type { SessionRegistry } from './session-registry.js';

export interface LiveSession {
  readonly session: string;
  readonly tenant: string;
  readonly active: number;
  readonly opened: number;
}

export interface AdminAuditWriter {
  append(source: 'control', event: Record<string, unknown>): void;
}

export interface AdminApiOptions {
  readonly host: string;
  readonly port: number;
  readonly adminToken: string;
  readonly policy: PolicyStore;
  readonly keys: Keystore;
  readonly revocations: RevocationList;
  readonly sessions: SessionRegistry;
  readonly issuer: string;
  readonly registry: Registry;
  readonly audit: AdminAuditWriter;
  readonly logger: Logger;
  /** Live data-plane sessions (from the egress proxy). */
  readonly liveSessions: () => readonly LiveSession[];
  /** The audit sinks' delivery state. */
  readonly auditSinks?: () => readonly SinkStats[];
}

export interface AdminApi {
  start(): Promise<AddressInfo>;
  close(): Promise<void>;
}

const digest = (value: string): Buffer => createHash('sha256').update(value).digest();

const CODE_REASONS: Readonly<Record<string, Reason>> = {
  GH_ERR_TOKEN_DEST_OUTSIDE_CEILING: 'dest_not_allowed',
  GH_ERR_TOKEN_DEST_DENIED: 'dest_denied',
  GH_ERR_TOKEN_TENANT_UNKNOWN: 'tenant_unknown',
  GH_ERR_TOKEN_SESSION_REVOKED: 'session_revoked',
  GH_ERR_TOKEN_TTL_TOO_LONG: 'ttl_too_long',
  GH_ERR_POLICY_INVALID: 'policy_invalid',
  GH_ERR_TOKEN_NO_BROKER: 'mount_not_granted',
  GH_ERR_TOKEN_MOUNT_OUTSIDE_CEILING: 'mount_not_granted',
  GH_ERR_TOKEN_UPSTREAM_OUTSIDE_CEILING: 'upstream_not_granted',
};
const reasonFor = (err: unknown): Reason => (isGatehouseError(err) ? (CODE_REASONS[err.code] ?? 'malformed_request') : 'malformed_request');

/**
 * The admin API: session issuing and revocation, policy reload, key rotation, JWKS, metrics and health.
 * Everything under /v1 needs the admin token; every /v1 call is audited (source `control`).
 */
export function createAdminApi(options: AdminApiOptions): AdminApi {
  const expected = digest(options.adminToken);
  const app = Fastify({
    logger: false,
    bodyLimit: 64 * 1024,
    return503OnClosing: true,
    genReqId: () => randomUUID(),
    // Unknown keys are errors, not silently dropped (Fastify's default strips them).
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: true } },
  });
  const schemas = createSessionRoutesSchemas();

  const audit = (req: FastifyRequest, input: Omit<ControlEventInput, 'correlationId' | 'policyVersion' | 'time' | 'actor'>): void => {
    try {
      options.audit.append(
        'control',
        controlEvent({ ...input, correlationId: req.id, policyVersion: options.policy.current.version, time: Date.now(), actor: { kind: 'admin', ...(req.socket.remoteAddress ? { ip: req.socket.remoteAddress } : {}), ...(req.socket.remotePort ? { port: req.socket.remotePort } : {}) } }),
      );
    } catch (err) {
      options.logger.error({ err: (err as Error).message }, 'audit append failed');
    }
  };

  // Every response carries its correlation id, so a refusal can be matched to its audit event and log line.
  app.addHook('onSend', async (req, reply) => {
    void reply.header('x-gatehouse-correlation-id', req.id);
  });

  app.setErrorHandler((err: Error & { validation?: unknown[]; statusCode?: number }, req, reply) => {
    let wireErr: unknown = err;
    if (err.validation) wireErr = new GatehouseError('GH_ERR_ADMIN_BAD_REQUEST', { detail: err.message.slice(0, 300) });
    else if (!isGatehouseError(err) && err.statusCode && err.statusCode < 500) wireErr = new GatehouseError('GH_ERR_ADMIN_BAD_REQUEST', { detail: 'the request body is not valid JSON or is too large' });
    const { status, body } = toWireError(wireErr, req.id);
    if (status >= 500) options.logger.error({ err: err.message, correlation_id: req.id }, 'admin API error');
    // Requests refused before a route ran (bad JSON, unknown keys) are decisions too.
    if (req.url.startsWith('/v1/') && (err.validation || (err.statusCode !== undefined && err.statusCode < 500 && !isGatehouseError(err)))) {
      const body = req.body as { tenant?: unknown } | undefined;
      const tenant = typeof body?.tenant === 'string' && /^[a-z0-9][a-z0-9_-]{0,62}$/.test(body.tenant) ? body.tenant : undefined;
      audit(req, { ...routeOf(req), outcome: { allow: false, reason: 'malformed_request' }, status, ...(tenant ? { tenant } : {}) });
    }
    void reply.code(status).send(body);
  });
  app.setNotFoundHandler((req, reply) => {
    const { status, body } = toWireError(new GatehouseError('GH_ERR_ADMIN_NOT_FOUND'), req.id);
    void reply.code(status).send(body);
  });

  // The same operation names and OCSF activities whether a call succeeds or is refused for its body.
  const ROUTES: Readonly<Record<string, { operation: string; activity: 1 | 2 | 3 | 4 }>> = {
    'POST /v1/sessions': { operation: 'CreateSession', activity: 1 },
    'GET /v1/sessions': { operation: 'ListSessions', activity: 2 },
    'POST /v1/sessions/:id/revoke': { operation: 'RevokeSession', activity: 3 },
    'POST /v1/policy/reload': { operation: 'ReloadPolicy', activity: 3 },
    'POST /v1/keys/rotate': { operation: 'RotateSigningKey', activity: 3 },
    'GET /v1/audit/sinks': { operation: 'ListAuditSinks', activity: 2 },
  };
  const routeOf = (req: FastifyRequest): { operation: string; activity: 1 | 2 | 3 | 4 } =>
    ROUTES[`${req.method} ${req.routeOptions.url ?? ''}`] ?? { operation: `${req.method} ${req.url.split('?')[0]}`, activity: req.method === 'GET' ? 2 : 3 };

  const requireAdmin = async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const header = req.headers.authorization;
    const token = header?.startsWith('Bearer ') ? header.slice(7).trim() : null;
    // SECURITY: compare fixed-length digests in constant time.
    if (token && timingSafeEqual(digest(token), expected)) return;
    try {
      options.audit.append(
        'control',
        adminAuthFailureEvent({ correlationId: req.id, policyVersion: options.policy.current.version, time: Date.now(), reason: header ? 'auth_invalid' : 'auth_missing', ...(req.socket.remoteAddress ? { ip: req.socket.remoteAddress } : {}) }),
      );
    } catch {
      // audit failures are logged by the writer
    }
    const { status, body } = toWireError(new GatehouseError('GH_ERR_ADMIN_UNAUTHORIZED'), req.id);
    await reply.code(status).header('www-authenticate', 'Bearer realm="gatehouse-admin"').send(body);
  };

  app.get('/healthz', async () => ({ status: 'ok', policy_version: options.policy.current.version }));
  app.get('/metrics', async (_req, reply) => reply.type(options.registry.contentType).send(await options.registry.metrics()));
  app.get('/.well-known/jwks.json', async () => options.keys.jwks());

  app.register(async (v1) => {
    v1.addHook('onRequest', requireAdmin);

    v1.post('/v1/sessions', { schema: schemas.createSession }, async (req, reply) => {
      const body = req.body as { tenant: string; session?: string; egress?: string[]; broker?: { filesystem: string; mounts?: Record<string, MountMode>; upstreams?: string[] }; ttl?: string };
      const deps = { policy: options.policy.current, keys: options.keys, isRevoked: (s: string) => options.revocations.isRevoked(s), issuer: options.issuer };
      try {
        // Check both grants before signing either: a refused broker grant must not leave an orphan egress token.
        if (body.broker) checkBrokerGrant(deps.policy, { tenant: body.tenant, filesystem: body.broker.filesystem, ...(body.broker.mounts ? { mounts: body.broker.mounts } : {}), ...(body.broker.upstreams ? { upstreams: body.broker.upstreams } : {}) });
        const session = body.session ?? newSessionId();
        const ttl = body.ttl ? { ttl: body.ttl } : {};
        const egress = body.egress ? await issueEgressToken(deps, { tenant: body.tenant, destinations: body.egress, session, ...ttl }) : null;
        const broker = body.broker
          ? await issueBrokerToken(deps, { tenant: body.tenant, session, filesystem: body.broker.filesystem, ...(body.broker.mounts ? { mounts: body.broker.mounts } : {}), ...(body.broker.upstreams ? { upstreams: body.broker.upstreams } : {}), ...ttl })
          : null;
        const first = (egress ?? broker) as { expiresAt: number; jti: string };
        const jtis = [egress?.jti, broker?.jti].filter((j): j is string => j !== undefined);
        for (const jti of jtis) await options.sessions.record({ session, tenant: body.tenant, egress: egress?.egress ?? [], expires_at: new Date(first.expiresAt).toISOString(), jti });
        audit(req, {
          operation: 'CreateSession',
          activity: 1,
          outcome: { allow: true, reason: 'allowed' },
          status: 201,
          tenant: body.tenant,
          details: { session, jti: first.jti, ...(egress && broker ? { broker_jti: broker.jti } : {}), ...(egress ? { egress: egress.egress } : {}), ...(broker ? { filesystem: broker.grant.fs, mounts: broker.grant.mounts, upstreams: broker.grant.upstreams } : {}) },
        });
        return reply.code(201).send({
          session,
          tenant: body.tenant,
          expires_at: new Date(first.expiresAt).toISOString(),
          ...(egress ? { egress: egress.egress } : {}),
          ...(broker ? { broker: { filesystem: broker.grant.fs, mounts: broker.grant.mounts, upstreams: broker.grant.upstreams } } : {}),
          tokens: { ...(egress ? { egress: egress.token } : {}), ...(broker ? { broker: broker.token } : {}) },
          warnings: egress?.warnings ?? [],
        });
      } catch (err) {
        audit(req, { operation: 'CreateSession', activity: 1, outcome: { allow: false, reason: reasonFor(err) }, status: isGatehouseError(err) ? err.status : 500, tenant: body.tenant, details: { ...(isGatehouseError(err) ? { code: err.code } : {}) } });
        throw err;
      }
    });

    v1.get('/v1/sessions', async (req) => {
      const live = new Map(options.liveSessions().map((s) => [s.session, s]));
      const known = options.sessions.list();
      const ids = new Set([...known.map((s) => s.session), ...live.keys()]);
      const sessions = [...ids].map((id) => {
        const record = options.sessions.get(id);
        const l = live.get(id);
        return {
          session: id,
          tenant: record?.tenant ?? l?.tenant,
          egress: record?.egress ?? [],
          created_at: record?.created_at ?? null,
          expires_at: record?.expires_at ?? null,
          revoked: options.revocations.isRevoked(id),
          active_connections: l?.active ?? 0,
          connections_opened: l?.opened ?? 0,
        };
      });
      audit(req, { operation: 'ListSessions', activity: 2, outcome: { allow: true, reason: 'allowed' }, status: 200 });
      return { sessions, revoked: options.revocations.list() };
    });

    v1.post('/v1/sessions/:id/revoke', { schema: schemas.revokeSession }, async (req) => {
      const { id } = req.params as { id: string };
      const body = (req.body ?? {}) as { reason?: string };
      const record = await options.revocations.revoke(id, body.reason);
      // The reason is the administrator's own words, kept (bounded by the schema) so the trail says why.
      audit(req, { operation: 'RevokeSession', activity: 3, outcome: { allow: true, reason: 'allowed' }, status: 200, details: { session: id, ...(record.reason ? { reason: record.reason } : {}) } });
      return { session: record.session, revoked_at: record.revoked_at };
    });

    v1.post('/v1/policy/reload', async (_req, reply) => {
      const outcome = await options.policy.reload('api');
      // The reload itself is audited by whoever listens to the store (one event per reload).
      if (outcome.status === 'rejected') {
        return reply.code(422).send({ status: 'rejected', current: outcome.current, attempted: outcome.attempted, problems: outcome.problems });
      }
      return outcome;
    });

    v1.get('/v1/audit/sinks', async (req) => {
      const sinks = options.auditSinks?.() ?? [];
      audit(req, { operation: 'ListAuditSinks', activity: 2, outcome: { allow: true, reason: 'allowed' }, status: 200 });
      return { sinks };
    });

    v1.post('/v1/keys/rotate', async (req) => {
      const rotated = await options.keys.rotate();
      audit(req, { operation: 'RotateSigningKey', activity: 3, outcome: { allow: true, reason: 'allowed' }, status: 200, details: rotated });
      return rotated;
    });
  });

  return {
    async start() {
      await app.listen({ host: options.host, port: options.port });
      return app.server.address() as AddressInfo;
    },
    async close() {
      await app.close();
    },
  };
}
