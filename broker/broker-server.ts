import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import type { Registry } from 'prom-client';
import type { Logger } from '../core/log/logger.js';
import type { PolicyStore } from '../core/policy/index.js';
import { CachedVerifier, AUDIENCE, type Keystore, type RevocationList } from '../core/tokens/index.js';
import { BrokerAuth, extractToken, grantOf } from './broker-auth.js';
import type { Operation } from './broker-events.js';
import { createBrokerMetrics } from './broker-metrics.js';
import { BrokerRequest, type BrokerAuditWriter, type BrokerDeps } from './broker-request.js';
import { Credentials } from './credentials.js';
import { FileRoutes } from './file-routes.js';
import { Refusal } from './refusal.js';
import { SessionLimits } from './session-limits.js';
import { StoreRegistry } from './store-registry.js';
import { UpstreamRoutes } from './upstream-routes.js';

export interface BrokerOptions {
  readonly policy: PolicyStore;
  readonly keys: Keystore;
  readonly revocations: RevocationList;
  readonly audit: BrokerAuditWriter;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly stateDir: string;
  readonly issuer: string;
}

export interface Broker {
  /** Listen on host:port, or on a unix socket path. */
  listen(at: { host: string; port: number } | { socket: string }): Promise<AddressInfo | string>;
  /** End a revoked session's requests in flight (new ones are refused by the revocation list). Returns how many. */
  cutSession(session: string): number;
  close(): Promise<void>;
}

const MAX_JSON_BYTES = 16 * 1024;

/**
 * The credential broker: a file store API over the policy's stores and a forwarding API to its upstreams, for
 * sandboxes holding a broker token (aud gatehouse-broker) and never a real credential.
 */
export function createBroker(options: BrokerOptions): Broker {
  const policy = () => options.policy.current;
  const verifier = new CachedVerifier(
    { keys: options.keys, issuer: options.issuer, audience: AUDIENCE.broker, clockSkewMs: () => policy().tokens.clockSkewMs, maxTtlMs: () => policy().tokens.maxTtlMs },
    grantOf,
  );
  const credentials = new Credentials();
  const stores = new StoreRegistry(options.stateDir, credentials);
  const files = new FileRoutes(stores);
  const upstreams = new UpstreamRoutes(credentials);
  const limits = new SessionLimits();
  const sweeper = setInterval(() => limits.sweep(), 10_000).unref();
  const deps: BrokerDeps = {
    policy,
    auth: new BrokerAuth(verifier, policy, (s) => options.revocations.isRevoked(s)),
    limits,
    audit: options.audit,
    metrics: createBrokerMetrics(options.registry),
    logger: options.logger,
  };
  options.policy.on('applied', () => credentials.clear());

  const app = Fastify({
    logger: false,
    exposeHeadRoutes: false,
    return503OnClosing: true,
    genReqId: () => randomUUID(),
    bodyLimit: MAX_JSON_BYTES,
    // Left to itself Fastify answers a target it cannot percent-decode (`%zz`, `%ff`: FST_ERR_BAD_URL) with its own
    // error: not the broker's shape, no correlation id, no audit event, and a message echoing the whole target (a
    // ?key=<broker token> included). Such a request goes to the handler its path names instead, which
    // authenticates it and refuses the path (path_invalid) with one audit event, like any other bad path.
    frameworkErrors: (_err, req, reply) => undecodable(req, reply),
  });
  // Bodies are streamed by the routes themselves (uploads, upstream calls): Fastify must not read them.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));

  /** Run one operation: authenticate, take a rate slot, do it; every outcome ends in exactly one audit record. */
  const inflight = new Map<string, Set<BrokerRequest>>();
  const run = (operation: Operation, sdkHeaders: boolean, work: (r: BrokerRequest, query: URLSearchParams) => Promise<void>) => async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    reply.hijack(); // the routes write the raw response (streams both ways)
    const r = new BrokerRequest(deps, operation, req.id, req.raw, reply.raw);
    const q = (req.raw.url ?? '').indexOf('?');
    const query = new URLSearchParams(q === -1 ? '' : (req.raw.url ?? '').slice(q + 1));
    let release: (() => void) | null = null;
    try {
      const session = await r.authenticate(extractToken(req.raw.headers, query, sdkHeaders));
      const slot = limits.acquire(session.claims.sub, session.ceiling.limits);
      if (!slot.ok) throw new Refusal(slot.reason, slot.reason === 'rate_limited' ? 'this session is over its request rate' : 'this session has too many requests in flight', { 'retry-after': '1' });
      release = slot.release;
      let mine = inflight.get(session.claims.sub);
      if (!mine) inflight.set(session.claims.sub, (mine = new Set()));
      mine.add(r);
      try {
        await work(r, query);
      } finally {
        mine.delete(r);
        if (mine.size === 0) inflight.delete(session.claims.sub);
      }
    } catch (err) {
      await r.refuse(err);
    } finally {
      release?.();
    }
  };

  const readJson = async (r: BrokerRequest): Promise<unknown> => {
    let size = 0;
    const parts: Buffer[] = [];
    for await (const chunk of r.req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_JSON_BYTES) throw new Refusal('malformed_request', 'the JSON body is too large');
      parts.push(chunk);
    }
    try {
      return JSON.parse(Buffer.concat(parts).toString('utf8'));
    } catch {
      throw new Refusal('malformed_request', 'the body is not valid JSON');
    }
  };

  const getFile = run('GetFile', false, (r) => files.get(r, false));
  const headFile = run('StatFile', false, (r) => files.get(r, true));
  const putFile = run('PutFile', false, (r) => files.put(r));
  const deleteFile = run('DeleteFile', false, (r) => files.delete(r));
  const statFile = run('StatFile', false, (r) => files.stat(r));
  const callUpstreamByName = run('CallUpstream', true, (r) => upstreams.call(r, ((r.req.url ?? '').split('/')[3] ?? '').split('?')[0] ?? ''));
  app.get('/v1/files/*', getFile);
  app.head('/v1/files/*', headFile);
  app.put('/v1/files/*', putFile);
  app.delete('/v1/files/*', deleteFile);
  app.get('/v1/stat/*', statFile);
  app.get('/v1/list', run('ListFiles', false, (r, q) => files.list(r, q)));
  app.post('/v1/move', run('MoveFile', false, async (r) => files.move(r, await readJson(r))));
  app.all('/v1/upstreams/:name/*', run('CallUpstream', true, (r) => upstreams.call(r, (r.req.url ?? '').split('/')[3] ?? '')));
  app.all('/v1/upstreams/:name', callUpstreamByName);
  app.get('/healthz', async () => ({ status: 'ok', policy_version: policy().version }));
  const NOT_FOUND = { code: 'GH_ERR_BROKER_NOT_FOUND', reason: 'malformed_request', message: 'Not found: no such broker endpoint.' };
  app.setNotFoundHandler((req, reply) => {
    const id = req.id;
    void reply.code(404).header('x-gatehouse-correlation-id', id).send({ error: { ...NOT_FOUND, correlation_id: id } });
  });

  /** A request whose target the router could not decode: the handler its raw path names, else not found. */
  function undecodable(req: FastifyRequest, reply: FastifyReply): void {
    const url = req.raw.url ?? '';
    const method = req.raw.method ?? '';
    const fileHandler = { GET: getFile, HEAD: headFile, PUT: putFile, DELETE: deleteFile }[method];
    // The name route splits at '?' too, so it serves a name followed by a path as well as a bare name.
    const handler = url.startsWith('/v1/files/') ? fileHandler : url.startsWith('/v1/stat/') && method === 'GET' ? statFile : url.startsWith('/v1/upstreams/') ? callUpstreamByName : undefined;
    if (handler) {
      void handler(req, reply);
      return;
    }
    reply.hijack();
    const body = JSON.stringify({ error: { ...NOT_FOUND, correlation_id: req.id } });
    reply.raw.writeHead(404, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), 'x-gatehouse-correlation-id': req.id });
    reply.raw.end(body);
  }

  return {
    async listen(at) {
      if ('socket' in at) {
        await app.listen({ path: at.socket });
        return at.socket;
      }
      await app.listen({ host: at.host, port: at.port });
      return app.server.address() as AddressInfo;
    },
    cutSession(session) {
      const live = inflight.get(session);
      if (!live) return 0;
      // An upload cut here never lands (the store sees an aborted body); a download simply stops.
      for (const r of live) {
        r.req.destroy();
        r.res.destroy();
      }
      return live.size;
    },
    async close() {
      clearInterval(sweeper);
      await app.close();
      await stores.close();
      await upstreams.close();
    },
  };
}
