import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { FastHistogram } from '../core/metrics/fast-histogram.js';
import { DURATION_BUCKETS, LATENCY_BUCKETS } from '../core/metrics/registry.js';

export type RequestKind = 'http' | 'connect' | 'upgrade';

/** The egress proxy's Prometheus metrics. Labels are closed sets (kinds, decisions, reason codes): never hosts. */
export function createEgressMetrics(registry: Registry) {
  const connections = new Counter({ name: 'gatehouse_egress_client_connections_total', help: 'Client TCP connections accepted.', registers: [registry] });
  const activeConnections = new Gauge({ name: 'gatehouse_egress_client_connections_active', help: 'Client TCP connections open now.', registers: [registry] });
  const decisions = new Counter({
    name: 'gatehouse_egress_decisions_total',
    help: 'Proxy decisions by kind, outcome and reason code.',
    labelNames: ['kind', 'decision', 'reason'] as const,
    registers: [registry],
  });
  const bytes = new Counter({ name: 'gatehouse_egress_bytes_total', help: 'Bytes relayed, by direction (up = to the destination).', labelNames: ['direction'] as const, registers: [registry] });
  const activeTunnels = new Gauge({ name: 'gatehouse_egress_tunnels_active', help: 'CONNECT tunnels and upgraded connections open now.', registers: [registry] });
  // FastHistogram: observed on every request, where prom-client's Histogram re-hashes its labels each time.
  const decisionSeconds = new FastHistogram({
    name: 'gatehouse_egress_decision_seconds',
    help: 'Time from request head to decision (authentication, policy, resolution).',
    labelNames: ['kind'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const upstreamConnectSeconds = new Histogram({ name: 'gatehouse_egress_upstream_connect_seconds', help: 'Time to connect to the vetted upstream address.', buckets: LATENCY_BUCKETS, registers: [registry] });
  const requestSeconds = new FastHistogram({
    name: 'gatehouse_egress_request_duration_seconds',
    help: 'Duration of proxied requests (http) and tunnels (connect, upgrade), until the last byte.',
    labelNames: ['kind'] as const,
    buckets: [...LATENCY_BUCKETS.filter((b) => b < 0.01), ...DURATION_BUCKETS],
    registers: [registry],
  });
  const cut = new Counter({ name: 'gatehouse_egress_connections_cut_total', help: 'Live connections closed by revocation or token expiry.', labelNames: ['reason'] as const, registers: [registry] });
  const up = bytes.labels('up');
  const down = bytes.labels('down');
  // prom-client hashes label values on every call; bind each child once (the label sets are closed vocabularies).
  const decisionChildren = new Map<string, ReturnType<typeof decisions.labels>>();
  const decisionTimers = { http: decisionSeconds.labels('http'), connect: decisionSeconds.labels('connect'), upgrade: decisionSeconds.labels('upgrade') };
  const requestTimers = { http: requestSeconds.labels('http'), connect: requestSeconds.labels('connect'), upgrade: requestSeconds.labels('upgrade') };
  return {
    connectionOpened(): void {
      connections.inc();
      activeConnections.inc();
    },
    connectionClosed(): void {
      activeConnections.dec();
    },
    decision(kind: RequestKind | 'refused', allow: boolean, reason: string, seconds: number | null): void {
      const key = `${kind}|${allow ? 'allow' : 'deny'}|${reason}`;
      let child = decisionChildren.get(key);
      if (!child) {
        child = decisions.labels(kind, allow ? 'allow' : 'deny', reason);
        decisionChildren.set(key, child);
      }
      child.inc();
      if (seconds !== null && kind !== 'refused') decisionTimers[kind].observe(seconds);
    },
    transferred(bytesUp: number, bytesDown: number): void {
      if (bytesUp > 0) up.inc(bytesUp);
      if (bytesDown > 0) down.inc(bytesDown);
    },
    tunnelOpened(): void {
      activeTunnels.inc();
    },
    tunnelClosed(): void {
      activeTunnels.dec();
    },
    upstreamConnected(seconds: number): void {
      upstreamConnectSeconds.observe(seconds);
    },
    finished(kind: RequestKind, seconds: number): void {
      requestTimers[kind].observe(seconds);
    },
    cut(reason: string): void {
      cut.labels(reason).inc();
    },
  };
}

export type EgressMetrics = ReturnType<typeof createEgressMetrics>;
