import { Counter, Histogram, type Registry } from 'prom-client';
import { DURATION_BUCKETS, LATENCY_BUCKETS } from '../core/metrics/registry.js';

/** The broker's Prometheus metrics. Labels are closed sets (operations, reason codes, configured names): never paths. */
export function createBrokerMetrics(registry: Registry) {
  const requests = new Counter({ name: 'gatehouse_broker_requests_total', help: 'Broker operations by operation, outcome and reason code.', labelNames: ['operation', 'decision', 'reason'] as const, registers: [registry] });
  const bytes = new Counter({ name: 'gatehouse_broker_bytes_total', help: 'Body bytes through the broker, by direction (up = from the sandbox).', labelNames: ['direction'] as const, registers: [registry] });
  const seconds = new Histogram({ name: 'gatehouse_broker_request_duration_seconds', help: 'Broker operations until the last byte.', labelNames: ['operation'] as const, buckets: [...LATENCY_BUCKETS.filter((b) => b < 0.01), ...DURATION_BUCKETS], registers: [registry] });
  return {
    done(operation: string, allow: boolean, reason: string, seconds_: number, up: number, down: number): void {
      requests.labels(operation, allow ? 'allow' : 'deny', reason).inc();
      seconds.labels(operation).observe(seconds_);
      if (up > 0) bytes.labels('up').inc(up);
      if (down > 0) bytes.labels('down').inc(down);
    },
  };
}

export type BrokerMetrics = ReturnType<typeof createBrokerMetrics>;
