import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Registry } from 'prom-client';
import { createBroker, type Broker } from '../../broker/broker-server.js';
import { AuditLog } from '../../core/audit/audit-log.js';
import { validateEvent } from '../../core/audit/event-schema.js';
import { silentLogger } from '../../core/log/logger.js';
import { createMetricsRegistry } from '../../core/metrics/registry.js';
import { PolicyStore } from '../../core/policy/index.js';
import { DEFAULT_ISSUER, issueBrokerToken, Keystore, RevocationList, type MountMode } from '../../core/tokens/index.js';
import { recordingAuditWriter } from './recording-audit.js';

export interface BrokerHarness {
  readonly dir: string;
  /** http://127.0.0.1:PORT */
  readonly url: string;
  readonly broker: Broker;
  readonly keys: Keystore;
  readonly revocations: RevocationList;
  readonly store: PolicyStore;
  readonly audit: AuditLog;
  readonly registry: Registry;
  /** Every broker event written so far (each validated against the OCSF rules before it was written). */
  readonly events: readonly Record<string, unknown>[];
  waitForEvent(match: (event: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Issue a broker token through the same checks as the admin API. */
  token(options: { tenant?: string; session?: string; filesystem?: string; mounts?: Record<string, MountMode>; upstreams?: string[]; ttl?: string }): Promise<string>;
  /** fetch against the broker with the token as Authorization: Bearer. */
  fetch(token: string | null, path: string, init?: RequestInit & { duplex?: 'half' }): Promise<Response>;
  close(): Promise<void>;
}

/**
 * A real broker on 127.0.0.1:0 with its own state directory (the local store lives in it), policy and audit log.
 * `policyText` is the whole policy YAML; `${STATE}` in it is replaced with the state directory.
 */
export async function startBrokerHarness(policyText: string): Promise<BrokerHarness> {
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-broker-'));
  const store = PolicyStore.fromText(policyText.replaceAll('${STATE}', dir), join(dir, 'policy.yaml'));
  const keys = await Keystore.open(dir, { retainRetiredMs: 60_000 });
  const revocations = await RevocationList.open(dir);
  const audit = await AuditLog.open({ dir: join(dir, 'audit'), flushIntervalMs: 10, validate: validateEvent });
  const registry = createMetricsRegistry({ processMetrics: false });
  const recorded = recordingAuditWriter<'broker'>(audit);
  const writer = recorded.writer;
  const broker = createBroker({ policy: store, keys, revocations, audit: writer, logger: silentLogger(), registry, stateDir: dir, issuer: DEFAULT_ISSUER });
  revocations.on('revoked', (session) => broker.cutSession(session));
  const address = await broker.listen({ host: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${typeof address === 'string' ? 0 : address.port}`;
  let counter = 0;
  return {
    dir,
    url,
    broker,
    keys,
    revocations,
    store,
    audit,
    registry,
    events: recorded.events,
    waitForEvent: recorded.waitForEvent,
    async token(o) {
      const issued = await issueBrokerToken(
        { policy: store.current, keys, isRevoked: (s) => revocations.isRevoked(s), issuer: DEFAULT_ISSUER },
        {
          tenant: o.tenant ?? 'acme',
          session: o.session ?? `broker-test-${++counter}`,
          filesystem: o.filesystem ?? 'fs-1',
          ...(o.mounts ? { mounts: o.mounts } : {}),
          ...(o.upstreams ? { upstreams: o.upstreams } : {}),
          ...(o.ttl ? { ttl: o.ttl } : {}),
        },
      );
      return issued.token;
    },
    fetch(token, path, init = {}) {
      const headers = new Headers(init.headers);
      if (token !== null) headers.set('authorization', `Bearer ${token}`);
      return fetch(`${url}${path}`, { ...init, headers });
    },
    async close() {
      await broker.close();
      await audit.close();
      store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
