import { hostname } from 'node:os';
import { Worker } from 'node:worker_threads';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from '../log/logger.js';
import type { SinkSettings } from '../policy/compile-audit.js';
import { workerScript } from '../util/worker-script.js';
import type { SinkStats } from './shipper/sink-runner.js';
import type { FromShipper, ToShipper } from './shipper-protocol.js';

export type { SinkStats } from './shipper/sink-runner.js';

function createSinkMetrics(registry: Registry) {
  const lag = new Gauge({ name: 'gatehouse_audit_sink_lag_records', help: 'Records on disk that a sink has not confirmed yet.', labelNames: ['sink', 'source'] as const, registers: [registry] });
  const delivered = new Counter({ name: 'gatehouse_audit_sink_delivered_total', help: 'Records delivered to a sink (re-sent ones count again).', labelNames: ['sink'] as const, registers: [registry] });
  const errors = new Counter({ name: 'gatehouse_audit_sink_errors_total', help: 'Failed deliveries (each is retried with backoff).', labelNames: ['sink'] as const, registers: [registry] });
  const dead = new Counter({ name: 'gatehouse_audit_sink_dead_letter_total', help: 'Records a sink rejected for good, written to audit/dead-letter/<sink>.jsonl.', labelNames: ['sink'] as const, registers: [registry] });
  const up = new Gauge({ name: 'gatehouse_audit_sink_up', help: '1 when the sink\'s last delivery succeeded, 0 while it is failing.', labelNames: ['sink'] as const, registers: [registry] });
  const last = new Map<string, { delivered: number; errors: number; deadLettered: number }>();
  return (stats: readonly SinkStats[]): void => {
    for (const s of stats) {
      const prev = last.get(s.name) ?? { delivered: 0, errors: 0, deadLettered: 0 };
      delivered.labels(s.name).inc(Math.max(0, s.delivered - prev.delivered));
      errors.labels(s.name).inc(Math.max(0, s.errors - prev.errors));
      dead.labels(s.name).inc(Math.max(0, s.deadLettered - prev.deadLettered));
      last.set(s.name, { delivered: s.delivered, errors: s.errors, deadLettered: s.deadLettered });
      up.labels(s.name).set(s.lastError === null ? 1 : 0);
      for (const [source, n] of Object.entries(s.lag)) lag.labels(s.name, source).set(n);
    }
  };
}

/**
 * Ships the audit log to the policy's sinks from a worker thread. Start it even with no sinks: a later policy
 * reload may add some.
 */
export class AuditShipper {
  private latest: readonly SinkStats[] = [];
  private readonly errors = new Map<string, string>();
  private nextId = 1;

  private constructor(
    private readonly worker: Worker,
    private readonly logger: Logger,
  ) {}

  static async start(options: { dir: string; sinks: readonly SinkSettings[]; registry: Registry; logger: Logger }): Promise<AuditShipper> {
    const worker = new Worker(workerScript(import.meta.url, 'core/audit/shipper-worker.js'));
    const shipper = new AuditShipper(worker, options.logger);
    const metrics = createSinkMetrics(options.registry);
    const ready = new Promise<void>((resolve, reject) => {
      worker.once('error', reject);
      worker.on('message', (m: FromShipper) => {
        if (m.type === 'ready') resolve();
        else if (m.type === 'stats') {
          shipper.latest = m.sinks;
          metrics(m.sinks);
          for (const s of m.sinks) {
            // Log transitions, not every failed attempt.
            if (s.lastError && shipper.errors.get(s.name) !== s.lastError) options.logger.warn({ sink: s.name, err: s.lastError, next_attempt: s.nextAttemptAt }, 'audit sink delivery failing; retrying with backoff');
            if (!s.lastError && shipper.errors.has(s.name)) options.logger.info({ sink: s.name }, 'audit sink delivering again');
            if (s.lastError) shipper.errors.set(s.name, s.lastError);
            else shipper.errors.delete(s.name);
          }
        } else if (m.type === 'error') options.logger.error({ sink: m.sink, err: m.message }, 'audit sink cannot start');
      });
    });
    worker.postMessage({ type: 'init', dir: options.dir, hostname: hostname(), sinks: options.sinks } satisfies ToShipper);
    await ready;
    worker.unref();
    return shipper;
  }

  /** The last reported state of every running sink (`gatehouse audit sinks`, GET /v1/audit/sinks). */
  stats(): readonly SinkStats[] {
    return this.latest;
  }

  configure(sinks: readonly SinkSettings[]): void {
    this.worker.postMessage({ type: 'configure', sinks } satisfies ToShipper);
  }

  async close(): Promise<void> {
    const id = this.nextId++;
    this.worker.ref();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 10_000);
      this.worker.on('message', (m: FromShipper) => {
        if (m.type === 'ack' && m.id === id) {
          clearTimeout(timer);
          resolve();
        }
      });
      this.worker.postMessage({ type: 'close', id } satisfies ToShipper);
    });
    await this.worker.terminate();
    this.logger.debug('audit shipper stopped');
  }
}
