import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { FastHistogram } from './fast-histogram.js';
import { LATENCY_BUCKETS } from './registry.js';

/** The same observations through prom-client's Histogram and FastHistogram, each on its own registry. */
function pair() {
  const [a, b] = [new Registry(), new Registry()];
  const config = { name: 'h_seconds', help: 'A histogram.', labelNames: ['kind'] as const, buckets: LATENCY_BUCKETS };
  const reference = new Histogram({ ...config, registers: [a] });
  const fast = new FastHistogram({ ...config, registers: [b] });
  return { a, b, reference, fast };
}

describe('FastHistogram', () => {
  it('exposes exactly what prom-client exposes for the same observations', async () => {
    const { a, b, reference, fast } = pair();
    expect(await b.metrics()).toBe(await a.metrics()); // nothing observed: no series
    const values = [0, 0.00005, 0.0001, 0.0003, 0.001, 0.02, 0.7, 29.9, 30, 31, 1e9, 0.1 + 0.2];
    const [http, connect] = [fast.labels('http'), fast.labels('connect')];
    fast.labels('upgrade'); // bound but never observed: not listed, as in prom-client
    for (const [i, v] of values.entries()) {
      const kind = i % 3 === 0 ? 'connect' : 'http';
      reference.labels(kind).observe(v);
      (kind === 'connect' ? connect : http).observe(v);
    }
    expect(await b.metrics()).toBe(await a.metrics());
    expect(await b.getMetricsAsJSON()).toEqual(await a.getMetricsAsJSON());
    a.resetMetrics();
    b.resetMetrics();
    expect(await b.metrics()).toBe(await a.metrics());
  });

  it('refuses what prom-client refuses', () => {
    const { fast } = pair();
    expect(() => fast.labels('http').observe(Number.NaN)).toThrow(TypeError);
    expect(() => fast.labels('http', 'extra')).toThrow();
    expect(() => new FastHistogram({ name: 'x', help: 'x', labelNames: ['le'], buckets: [1], registers: [] })).toThrow();
  });
});
