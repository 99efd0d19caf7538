import type { Registry } from 'prom-client';

/** One label set's observations: per-bucket counts (not cumulative), sum and count. */
class HistogramChild {
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(
    private readonly owner: FastHistogram,
    readonly labels: Readonly<Record<string, string>>,
    private readonly bounds: readonly number[],
  ) {
    this.counts = bounds.map(() => 0);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
    const bounds = this.bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= (bounds[i] as number)) {
        this.counts[i] = (this.counts[i] as number) + 1;
        break;
      }
    }
    this.sum += value;
    // Listed on its first observation, as prom-client lists a label set only once observed.
    if (this.count++ === 0) this.owner.listed.push(this);
  }
}

interface ExportedValue {
  readonly labels: Record<string, string | number>;
  readonly sharedLabels: Readonly<Record<string, string>>;
  readonly value: number;
  readonly metricName: string;
  readonly exemplar: null | undefined;
}

/**
 * A Prometheus histogram with a fixed label name list, for the data plane: `labels(...)` children are bound once
 * and `observe` is a bucket scan and three additions. prom-client's own Histogram hashes and validates the label
 * set on every observation (about 1-2 us per request here). Exposition is prom-client's, line for line (the
 * registry formats what `getForPromString` returns, in the same shape as its Histogram), which a test checks.
 */
export class FastHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  /** Children observed at least once, in order of first observation. */
  readonly listed: HistogramChild[] = [];
  private readonly children = new Map<string, HistogramChild>();
  private readonly bounds: readonly number[];

  constructor(
    readonly config: { readonly name: string; readonly help: string; readonly labelNames: readonly string[]; readonly buckets: readonly number[]; readonly registers: readonly Registry[] },
  ) {
    if (config.labelNames.includes('le')) throw new Error('le is a reserved label keyword');
    // As given, like prom-client (callers pass them sorted).
    this.bounds = Object.freeze([...config.buckets]);
    for (const r of config.registers) r.registerMetric(this as never);
  }

  get name(): string {
    return this.config.name;
  }

  get help(): string {
    return this.config.help;
  }

  /** The child for these label values (one per label name, in order); keep it, do not call this per observation. */
  labels(...values: string[]): HistogramChild {
    if (values.length !== this.config.labelNames.length) throw new Error(`Invalid number of arguments (${values.length}) for ${this.name}`);
    const key = values.join('\u0000');
    let child = this.children.get(key);
    if (!child) {
      const labels: Record<string, string> = {};
      this.config.labelNames.forEach((n, i) => (labels[n] = values[i] as string));
      child = new HistogramChild(this, labels, this.bounds);
      this.children.set(key, child);
    }
    return child;
  }

  reset(): void {
    for (const c of this.listed) {
      c.counts.fill(0);
      c.sum = 0;
      c.count = 0;
    }
    this.listed.length = 0;
  }

  getForPromString(): { name: string; help: string; type: 'histogram'; values: ExportedValue[]; aggregator: 'sum' } {
    const bucketName = `${this.name}_bucket`;
    const values: ExportedValue[] = [];
    for (const c of this.listed) {
      let acc = 0;
      this.bounds.forEach((le, i) => {
        acc += c.counts[i] as number;
        values.push({ labels: { le }, sharedLabels: c.labels, value: acc, metricName: bucketName, exemplar: null });
      });
      values.push(
        { labels: { le: '+Inf' }, sharedLabels: c.labels, value: c.count, metricName: bucketName, exemplar: null },
        { labels: {}, sharedLabels: c.labels, value: c.sum, metricName: `${this.name}_sum`, exemplar: undefined },
        { labels: {}, sharedLabels: c.labels, value: c.count, metricName: `${this.name}_count`, exemplar: undefined },
      );
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /** As prom-client's `get()`: label sets merged into each value's labels. */
  get(): { name: string; help: string; type: 'histogram'; values: Array<Omit<ExportedValue, 'sharedLabels'>>; aggregator: 'sum' } {
    const data = this.getForPromString();
    return { ...data, values: data.values.map(({ sharedLabels, labels, ...rest }) => ({ ...rest, labels: { ...labels, ...sharedLabels } })) };
  }
}
