import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLog } from '../../core/audit/audit-log.js';
import { validateEvent } from '../../core/audit/event-schema.js';
import { silentLogger } from '../../core/log/logger.js';
import { createMetricsRegistry } from '../../core/metrics/registry.js';
import { createNetguard, createStaticResolver, type Netguard } from '../../core/netguard/index.js';
import { checkGrant, PolicyStore } from '../../core/policy/index.js';
import { AUDIENCE, DEFAULT_ISSUER, issueSessionToken, Keystore, RevocationList } from '../../core/tokens/index.js';
import { createEgressProxy, type EgressProxy } from '../../egress/index.js';
import type { Registry } from 'prom-client';
import { recordingAuditWriter } from './recording-audit.js';

export interface EgressHarness {
  readonly dir: string;
  readonly proxy: EgressProxy;
  readonly port: number;
  readonly keys: Keystore;
  readonly revocations: RevocationList;
  readonly store: PolicyStore;
  readonly audit: AuditLog;
  readonly netguard: Netguard;
  readonly registry: Registry;
  /**
   * Resolves with the first audit event (already written, or written later) that satisfies `match`; rejects
   * after `timeoutMs`. Event-driven: the proxy's audit writer announces each event as it appends it.
   */
  waitForEvent(match: (event: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Issue an egress token (checked against the ceiling, like the CLI). */
  token(grants: string[], options?: { tenant?: string; session?: string; ttlMs?: number; now?: number }): Promise<string>;
  /** The proxy URL with a token as the password, as a sandbox would set HTTPS_PROXY. */
  proxyUrl(token: string): string;
  close(): Promise<void>;
}

/**
 * A real egress proxy on 127.0.0.1:0 with its own state directory, policy file and audit log. Names are resolved
 * by a fixed table (no real DNS), which is how tests make an allowed name answer a private address.
 */
export async function startEgressHarness(policyText: string, hosts: Record<string, string[]> = {}): Promise<EgressHarness> {
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-test-'));
  const store = PolicyStore.fromText(policyText, join(dir, 'policy.yaml'));
  const keys = await Keystore.open(dir, { retainRetiredMs: 60_000 });
  const revocations = await RevocationList.open(dir);
  // Every event the proxy writes in tests is validated: an invalid event fails the test that caused it.
  const audit = await AuditLog.open({ dir: join(dir, 'audit'), flushIntervalMs: 10, validate: validateEvent });
  const netguard = createNetguard({ resolver: createStaticResolver(new Map(Object.entries(hosts))) });
  const registry = createMetricsRegistry({ processMetrics: false });
  const recorded = recordingAuditWriter<'egress'>(audit);
  const writer = recorded.writer;
  const proxy = createEgressProxy({
    host: '127.0.0.1',
    port: 0,
    policy: () => store.current,
    keys,
    issuer: DEFAULT_ISSUER,
    isRevoked: (s) => revocations.isRevoked(s),
    netguard,
    audit: writer,
    registry,
    logger: silentLogger(),
  });
  revocations.on('revoked', (session) => proxy.cutSession(session));
  const address = await proxy.start();
  let counter = 0;
  return {
    dir,
    proxy,
    port: address.port,
    keys,
    revocations,
    store,
    audit,
    netguard,
    registry,
    waitForEvent: recorded.waitForEvent,
    async token(grants, options = {}) {
      const tenant = options.tenant ?? 'acme';
      const { egress } = checkGrant(store.current, tenant, grants);
      const issued = await issueSessionToken(keys, {
        issuer: DEFAULT_ISSUER,
        audience: AUDIENCE.egress,
        session: options.session ?? `s-${++counter}`,
        tenant,
        ttlMs: options.ttlMs ?? 60_000,
        claims: { egress },
        ...(options.now !== undefined ? { now: options.now } : {}),
      });
      return issued.token;
    },
    proxyUrl: (token) => `http://gatehouse:${token}@127.0.0.1:${address.port}`,
    async close() {
      await proxy.close(1000);
      await audit.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
