import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createEgressMetrics } from './egress-metrics.js';

const series = async (registry: Registry, prefix: string): Promise<string[]> =>
  (await registry.metrics()).split('\n').filter((l) => l.startsWith(prefix));

describe('egress metrics', () => {
  it('counts decisions and bytes exactly, whenever they are read', async () => {
    const registry = new Registry();
    const m = createEgressMetrics(registry);
    expect(await series(registry, 'gatehouse_egress_decisions_total{')).toEqual([]);
    m.decision('http', true, 'allowed', 0.001);
    m.decision('http', true, 'allowed', null);
    m.decision('http', false, 'dest_not_allowed', 0.001);
    m.decision('refused', false, 'proxy_at_capacity', null);
    m.transferred(10, 2 ** 40);
    m.transferred(0, 5);
    expect(await series(registry, 'gatehouse_egress_decisions_total{')).toEqual([
      'gatehouse_egress_decisions_total{kind="http",decision="allow",reason="allowed"} 2',
      'gatehouse_egress_decisions_total{kind="http",decision="deny",reason="dest_not_allowed"} 1',
      'gatehouse_egress_decisions_total{kind="refused",decision="deny",reason="proxy_at_capacity"} 1',
    ]);
    // Read again with nothing new: unchanged (nothing counted twice).
    expect(await series(registry, 'gatehouse_egress_decisions_total{')).toHaveLength(3);
    m.decision('http', true, 'allowed', null);
    m.transferred(1, 1);
    const json = await registry.getSingleMetric('gatehouse_egress_decisions_total')?.get();
    expect(json?.values.find((v) => v.labels['reason'] === 'allowed')?.value).toBe(3);
    expect(await series(registry, 'gatehouse_egress_bytes_total{')).toEqual([
      'gatehouse_egress_bytes_total{direction="up"} 11',
      `gatehouse_egress_bytes_total{direction="down"} ${2 ** 40 + 6}`,
    ]);
    expect(await series(registry, 'gatehouse_egress_decision_seconds_count')).toEqual(['gatehouse_egress_decision_seconds_count{kind="http"} 2']);
  });
});
