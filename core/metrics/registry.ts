import { collectDefaultMetrics, Registry } from 'prom-client';

/**
 * One registry per Gatehouse process (no module-level default registry, so tests can run several instances).
 * Components register their own metrics on it; the admin API serves it at /metrics.
 */
export function createMetricsRegistry(options: { processMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  if (options.processMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'gatehouse_' });
  return registry;
}

/** Latency buckets in seconds, from 100 µs (a cached local decision) to 30 s (a slow upstream). */
export const LATENCY_BUCKETS = [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Duration buckets in seconds for long-lived things (tunnels): 10 ms to 1 h. */
export const DURATION_BUCKETS = [0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600];

export type { Registry } from 'prom-client';
