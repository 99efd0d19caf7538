import { stat } from 'node:fs/promises';
import { AuditLog } from '../core/audit/audit-log.js';
import { createAuditMetrics } from '../core/audit/audit-metrics.js';
import { validateEvent } from '../core/audit/event-schema.js';
import { AuditShipper } from '../core/audit/shipper.js';
import { createLogger } from '../core/log/logger.js';
import { createMetricsRegistry } from '../core/metrics/registry.js';
import { createNetguard, createResolverFromSettings } from '../core/netguard/index.js';
import { POLICY_BOUNDS, PolicyStore } from '../core/policy/index.js';
import { DEFAULT_ISSUER, Keystore, RevocationList } from '../core/tokens/index.js';
import { createEgressProxy, type AuditWriter } from '../egress/index.js';
import { threadIds } from './thread-cpu.js';

/**
 * The egress proxy wired as `gatehouse up` wires it (cli/up.ts: policy file, keystore, revocations, metrics,
 * resolver from the policy, the audit log with the policy's settings and schema validation, the shipper), with
 * one switch: `audit: false` gives it a writer that drops every event, so audit on and off differ in nothing
 * else. The event object is still built (egress builds it before handing it to the writer). A third setting,
 * `serialize`, validates and serialises each event as `AuditLog.append` does and then drops it: the difference
 * to `off` is the data plane's own share of the cost, the rest is the hand-off and the writer thread.
 *
 * Its own process, pinned by the runner. Argument: JSON {stateDir, policyFile, auditDir, audit}. Prints
 * `threads {"writer":[tid],"shipper":[tid]}` and `port N` once listening; on SIGUSR2 prints `stats {...}` (events
 * appended and the time spent inside append, measured around each call); on SIGTERM closes everything and exits
 * (so --cpu-prof can write its profiles).
 */
interface Config {
  stateDir: string;
  policyFile: string;
  auditDir: string;
  audit: boolean | 'serialize';
}

const cfg = JSON.parse(process.argv[2] ?? '{}') as Config;
const logger = createLogger({ level: 'warn' });
const store = await PolicyStore.load(cfg.policyFile);
const keys = await Keystore.open(cfg.stateDir, { retainRetiredMs: POLICY_BOUNDS.maxTtlMs + POLICY_BOUNDS.maxClockSkewMs });
const revocations = await RevocationList.open(cfg.stateDir);
const registry = createMetricsRegistry();
const a = store.current.audit;

/** Start a worker-owning component and report the OS threads that appeared meanwhile (its worker thread). */
async function withThreads<T>(start: () => Promise<T>): Promise<[T, number[]]> {
  await stat('.'); // the libuv pool is running before the snapshot, so only the worker's thread is new
  const before = new Set(threadIds());
  const value = await start();
  return [value, threadIds().filter((t) => !before.has(t))];
}

let log: AuditLog | null = null;
let shipper: AuditShipper | null = null;
let inner: AuditWriter['append'];
const threads: Record<string, number[]> = {};
if (cfg.audit === true) {
  const auditMetrics = createAuditMetrics(registry);
  [log, threads['writer']] = await withThreads(() =>
    AuditLog.open({
      dir: cfg.auditDir,
      flushIntervalMs: a.flushIntervalMs,
      segmentMaxBytes: a.segmentMaxBytes,
      segmentMaxAgeMs: a.segmentMaxAgeMs,
      checkpointIntervalMs: a.checkpointIntervalMs,
      retentionMs: a.retentionMs,
      maxPendingBytes: a.maxPendingBytes,
      policyVersion: store.current.version,
      validate: validateEvent,
      onError: (message) => logger.error({ err: message }, 'audit log write failed'),
      onStats: (stats) => auditMetrics.update(stats),
    }),
  );
  [shipper, threads['shipper']] = await withThreads(() => AuditShipper.start({ dir: cfg.auditDir, sinks: a.sinks, registry, logger }));
  const opened = log;
  inner = (source, event) => opened.append(source, event);
} else if (cfg.audit === 'serialize') {
  let bytes = 0; // kept, so the serialisation cannot be optimised away
  inner = (_source, event) => {
    validateEvent(event);
    bytes += JSON.stringify(event).length;
  };
  process.once('exit', () => void bytes);
} else {
  inner = () => undefined;
}

// Time spent inside append on the data plane, per call (two clock reads, about 0.1 us, in every setting alike).
const counters = { events: 0, appendMs: 0 };
const writer: AuditWriter = {
  append: (source, event) => {
    const t0 = performance.now();
    inner(source, event);
    counters.appendMs += performance.now() - t0;
    counters.events++;
  },
  appendDurable: (source, event) => (log ? log.appendDurable(source, event) : Promise.resolve()),
};

const proxy = createEgressProxy({
  host: '127.0.0.1',
  port: 0,
  policy: () => store.current,
  keys,
  issuer: DEFAULT_ISSUER,
  isRevoked: (s) => revocations.isRevoked(s),
  netguard: createNetguard({ resolver: createResolverFromSettings(store.current.egress.resolver) }),
  audit: writer,
  registry,
  logger,
});
const address = await proxy.start();
process.stdout.write(`threads ${JSON.stringify(threads)}\nport ${address.port}\n`);

process.on('SIGUSR2', () => void process.stdout.write(`stats ${JSON.stringify(counters)}\n`));
process.once('SIGTERM', () => {
  void (async () => {
    await proxy.close(500);
    await log?.close();
    await shipper?.close();
    process.exit(0);
  })();
});
