import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createAdminApi, SessionRegistry } from '../admin/index.js';
import { AuditLog } from '../core/audit/audit-log.js';
import { controlEvent } from '../core/audit/control-events.js';
import { validateEvent } from '../core/audit/event-schema.js';
import { createAuditMetrics } from '../core/audit/audit-metrics.js';
import { AuditShipper } from '../core/audit/shipper.js';
import { createBroker } from '../broker/broker-server.js';
import { GatehouseError } from '../core/errors/index.js';
import { createLogger, type Logger } from '../core/log/logger.js';
import { createMetricsRegistry } from '../core/metrics/registry.js';
import { createNetguard, createResolverFromSettings } from '../core/netguard/index.js';
import { defaultPolicyText, formatProblem, POLICY_BOUNDS, PolicyStore } from '../core/policy/index.js';
import { loadOrCreateAdminToken } from '../core/state/admin-token.js';
import { ensureStateDir, readFileIfExists } from '../core/state/files.js';
import { lockStateDir } from '../core/state/state-lock.js';
import { Keystore, RevocationList } from '../core/tokens/index.js';
import { createEgressProxy } from '../egress/index.js';
import { banner } from './banner.js';
import { schemaUrl } from './package-paths.js';
import type { RuntimeConfig } from './runtime-config.js';

export interface RunningGatehouse {
  readonly egress: { host: string; port: number };
  readonly admin: { host: string; port: number };
  readonly broker: { host: string; port: number } | { socket: string };
  readonly policyFile: string;
  policyVersion(): string;
  /** The tenant the banner's example uses: the policy's first. */
  exampleTenant(): string;
  /** Re-read the policy file now (SIGHUP). */
  reloadPolicy(): Promise<unknown>;
  stop(): Promise<void>;
}

/** Ensure there is a policy to load: the given file, or the default one in the state directory (written once). */
async function policyPath(config: RuntimeConfig): Promise<string> {
  if (config.policyFile) return config.policyFile;
  const file = join(config.stateDir, 'policy.yaml');
  if ((await readFileIfExists(file)) === null) await writeFile(file, defaultPolicyText(schemaUrl()), { mode: 0o600, flag: 'wx' }).catch(() => undefined);
  return file;
}

function watchPolicy(store: PolicyStore, audit: AuditLog, logger: Logger, onApplied: () => void): void {
  store.on('applied', (outcome, trigger) => {
    onApplied();
    logger.info({ previous: outcome.previous, current: outcome.current, trigger }, 'policy reloaded');
    for (const w of outcome.warnings) logger.warn({ problem: formatProblem(w) }, 'policy warning');
    audit.append('control', controlEvent({ operation: 'ReloadPolicy', activity: 3, correlationId: randomUUID(), policyVersion: outcome.current, time: Date.now(), actor: { kind: 'system', name: `policy-${trigger}` }, outcome: { allow: true, reason: 'allowed' }, details: { previous_version: outcome.previous, new_version: outcome.current } }));
  });
  store.on('rejected', (outcome, trigger) => {
    logger.warn({ current: outcome.current, attempted: outcome.attempted, trigger, problems: outcome.problems.map(formatProblem) }, 'policy change rejected; the last good policy stays in force');
    audit.append('control', controlEvent({ operation: 'ReloadPolicy', activity: 3, correlationId: randomUUID(), policyVersion: outcome.current, time: Date.now(), actor: { kind: 'system', name: `policy-${trigger}` }, outcome: { allow: false, reason: 'policy_invalid' }, details: { previous_version: outcome.current, attempted_version: outcome.attempted, problems: outcome.problems.map(formatProblem) } }));
  });
  store.watch();
}

/**
 * `gatehouse up`: every component in one process, on the state directory. Resolves once everything listens.
 * Throws GatehouseError for configuration problems (the caller prints them and exits non-zero).
 */
export async function up(config: RuntimeConfig, logger: Logger = createLogger({ level: config.logLevel })): Promise<RunningGatehouse> {
  await ensureStateDir(config.stateDir);
  const unlock = await lockStateDir(config.stateDir);
  try {
    return await start(config, logger, unlock);
  } catch (err) {
    await unlock();
    throw err;
  }
}

async function start(config: RuntimeConfig, logger: Logger, unlock: () => Promise<void>): Promise<RunningGatehouse> {
  const policyFile = await policyPath(config);
  const store = await PolicyStore.load(policyFile);
  const keys = await Keystore.open(config.stateDir, { retainRetiredMs: POLICY_BOUNDS.maxTtlMs + POLICY_BOUNDS.maxClockSkewMs });
  const adminToken = await loadOrCreateAdminToken(config.stateDir);
  const revocations = await RevocationList.open(config.stateDir);
  const sessions = await SessionRegistry.open(config.stateDir);
  const registry = createMetricsRegistry();
  const auditMetrics = createAuditMetrics(registry);
  const a = store.current.audit;
  const audit = await AuditLog.open({
    dir: join(config.stateDir, 'audit'),
    flushIntervalMs: a.flushIntervalMs,
    segmentMaxBytes: a.segmentMaxBytes,
    segmentMaxAgeMs: a.segmentMaxAgeMs,
    checkpointIntervalMs: a.checkpointIntervalMs,
    retentionMs: a.retentionMs,
    maxPendingBytes: a.maxPendingBytes,
    sinkNames: a.sinks.map((s) => s.name),
    policyVersion: store.current.version,
    validate: validateEvent,
    // Damage found at start-up is not a failing write: say which, so the right runbook is followed.
    onError: (message) => logger.error({ err: message }, message.startsWith('audit segment ') ? 'audit segment damaged; left as evidence, run gatehouse audit verify' : 'audit log write failed; events kept in memory and retried'),
    onStats: (stats) => auditMetrics.update(stats),
  });
  const shipper = await AuditShipper.start({ dir: join(config.stateDir, 'audit'), sinks: a.sinks, registry, logger: logger.child({ component: 'audit-shipper' }) });
  const netguard = createNetguard({ resolver: createResolverFromSettings(store.current.egress.resolver) });

  const proxy = createEgressProxy({
    host: config.egress.host,
    port: config.egress.port,
    policy: () => store.current,
    keys,
    issuer: config.issuer,
    isRevoked: (s) => revocations.isRevoked(s),
    netguard,
    audit,
    registry,
    logger: logger.child({ component: 'egress' }),
  });
  const broker = createBroker({
    policy: store,
    keys,
    revocations,
    audit,
    logger: logger.child({ component: 'broker' }),
    registry,
    stateDir: config.stateDir,
    issuer: config.issuer,
  });
  const admin = createAdminApi({
    host: config.admin.host,
    port: config.admin.port,
    adminToken,
    policy: store,
    keys,
    revocations,
    sessions,
    issuer: config.issuer,
    registry,
    audit,
    logger: logger.child({ component: 'admin' }),
    liveSessions: () => proxy.sessions(),
    auditSinks: () => shipper.stats(),
  });
  revocations.on('revoked', (session) => {
    const cut = proxy.cutSession(session);
    const cutBroker = broker.cutSession(session);
    logger.info({ session, connections_cut: cut, broker_requests_cut: cutBroker }, 'session revoked');
  });
  watchPolicy(store, audit, logger, () => {
    proxy.applyPolicy();
    netguard.setResolver(createResolverFromSettings(store.current.egress.resolver));
    const next = store.current.audit;
    audit.configure({
      rotation: { segmentMaxBytes: next.segmentMaxBytes, segmentMaxAgeMs: next.segmentMaxAgeMs },
      checkpointIntervalMs: next.checkpointIntervalMs,
      retentionMs: next.retentionMs,
      maxPendingBytes: next.maxPendingBytes,
      sinkNames: next.sinks.map((s) => s.name),
      syncIntervalMs: next.flushIntervalMs,
      policyVersion: store.current.version,
    });
    audit.flushIntervalMs = next.flushIntervalMs;
    shipper.configure(next.sinks);
  });

  let egressAddress;
  let adminAddress;
  let brokerAddress;
  try {
    egressAddress = await proxy.start();
    adminAddress = await admin.start();
    brokerAddress = await broker.listen(config.broker);
  } catch (err) {
    store.close();
    await proxy.close(0).catch(() => undefined);
    await admin.close().catch(() => undefined);
    await broker.close().catch(() => undefined);
    await audit.close();
    await shipper.close();
    const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
    throw new GatehouseError('GH_ERR_LISTEN', { address: `${e.address ?? '?'}:${e.port ?? '?'}`, detail: e.code ?? 'error' }, { cause: err });
  }
  netguard.self.add(adminAddress.address, adminAddress.port);
  // The sandbox reaches the broker directly (or over its socket), never through the egress proxy.
  if (typeof brokerAddress !== 'string') netguard.self.add(brokerAddress.address, brokerAddress.port);
  const pruner = setInterval(() => void revocations.prune(POLICY_BOUNDS.maxTtlMs + POLICY_BOUNDS.maxClockSkewMs), 3_600_000).unref();
  for (const w of store.current.warnings) logger.warn({ problem: formatProblem(w) }, 'policy warning');

  let stopping: Promise<void> | null = null;
  return {
    egress: { host: egressAddress.address, port: egressAddress.port },
    admin: { host: adminAddress.address, port: adminAddress.port },
    broker: typeof brokerAddress === 'string' ? { socket: brokerAddress } : { host: brokerAddress.address, port: brokerAddress.port },
    policyFile,
    policyVersion: () => store.current.version,
    exampleTenant: () => store.current.tenants.keys().next().value ?? 'default',
    reloadPolicy: () => store.reload('signal'),
    stop() {
      stopping ??= (async () => {
        clearInterval(pruner);
        store.close();
        await admin.close();
        await broker.close();
        await proxy.close(config.drainTimeoutMs);
        await audit.close();
        await shipper.close();
        await unlock();
      })();
      return stopping;
    },
  };
}

export { banner };
