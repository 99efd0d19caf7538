import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { FastHistogram } from '../core/metrics/fast-histogram.js';
import { DURATION_BUCKETS, LATENCY_BUCKETS } from '../core/metrics/registry.js';

export type RequestKind = 'http' | 'connect' | 'upgrade';

/** The egress proxy's Prometheus metrics. Labels are closed sets (kinds, decisions, reason codes): never hosts. */
export function createEgressMetrics(registry: Registry) {
  const connections = new Counter({ name: 'gatehouse_egress_client_connections_total', help: 'Client TCP connections accepted.', registers: [registry] });
  const activeConnections = new Gauge({ name: 'gatehouse_egress_client_connections_active', help: 'Client TCP connections open now.', registers: [registry] });
  // Per-request counts are kept here and added to the prom-client counters when they are read (`collect` runs
  // before every read: a scrape, get(), the JSON form), so readers see exact values while the data plane pays an
  // addition instead of prom-client's label hashing on every increment. Whole numbers only, so the sums are exact.
  const pendingDecisions: Array<{ readonly child: ReturnType<typeof decisions.labels>; n: number }> = [];
  const pendingBytes = { up: 0, down: 0 };
  const decisions: Counter<'kind' | 'decision' | 'reason'> = new Counter({
    name: 'gatehouse_egress_decisions_total',
    help: 'Proxy decisions by kind, outcome and reason code.',
    labelNames: ['kind', 'decision', 'reason'] as const,
    registers: [registry],
    collect() {
      for (const p of pendingDecisions) {
        if (p.n === 0) continue;
        p.child.inc(p.n);
        p.n = 0;
      }
    },
  });
  const bytes: Counter<'direction'> = new Counter({
    name: 'gatehouse_egress_bytes_total',
    help: 'Bytes relayed, by direction (up = to the destination).',
    labelNames: ['direction'] as const,
    registers: [registry],
    collect() {
      if (pendingBytes.up > 0) up.inc(pendingBytes.up);
      if (pendingBytes.down > 0) down.inc(pendingBytes.down);
      pendingBytes.up = 0;
      pendingBytes.down = 0;
    },
  });
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
  // Bound once per label set (closed vocabularies): kind, then allow/deny, then reason.
  const decisionChildren = new Map<string, Map<string, { readonly child: ReturnType<typeof decisions.labels>; n: number }>>();
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
      const outcome = allow ? 'allow' : 'deny';
      const kindKey = allow ? kind : `${kind}|deny`;
      let byReason = decisionChildren.get(kindKey);
      if (!byReason) decisionChildren.set(kindKey, (byReason = new Map()));
      let pending = byReason.get(reason);
      if (!pending) {
        pending = { child: decisions.labels(kind, outcome, reason), n: 0 };
        byReason.set(reason, pending);
        pendingDecisions.push(pending);
      }
      pending.n++;
      if (seconds !== null && kind !== 'refused') decisionTimers[kind].observe(seconds);
    },
    transferred(bytesUp: number, bytesDown: number): void {
      if (bytesUp > 0) pendingBytes.up += bytesUp;
      if (bytesDown > 0) pendingBytes.down += bytesDown;
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
