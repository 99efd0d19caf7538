export interface Row {
  readonly mode: string;
  readonly concurrency: number;
  readonly target: 'direct' | 'gatehouse' | 'squid' | 'squid-lean';
  readonly unit: string;
  readonly perSecond?: number;
  readonly mbPerSecond?: number;
  readonly p50: number;
  readonly p99: number;
  readonly errors: number;
}

export const ratio = (a: number, b: number): string => (b > 0 ? (a / b).toFixed(2) : 'n/a');

const value = (r: Row): number => r.perSecond ?? r.mbPerSecond ?? 0;

/** The targets from the issue, checked against squid measured in the same run. */
const TARGETS: Readonly<Record<string, number>> = {
  'plain HTTP keep-alive (req/s)': 1.0,
  'CONNECT setup + 1 request (setups/s)': 1.0,
  'bulk through tunnels (MB/s)': 0.9,
};

export function formatTable(rows: readonly Row[]): string {
  const lines = [
    'mode                                   c   target        value     p50 ms   p99 ms  errors  x direct  x squid  x lean  target (x squid)',
    '-------------------------------------  --  ----------  ---------  -------  -------  ------  --------  -------  ------  ----------------',
  ];
  for (const r of rows) {
    const direct = rows.find((x) => x.mode === r.mode && x.concurrency === r.concurrency && x.target === 'direct');
    const squid = rows.find((x) => x.mode === r.mode && x.concurrency === r.concurrency && x.target === 'squid');
    const lean = rows.find((x) => x.mode === r.mode && x.concurrency === r.concurrency && x.target === 'squid-lean');
    const vs = squid ? value(r) / Math.max(1e-9, value(squid)) : 0;
    const goal = TARGETS[r.mode];
    const verdict = r.target === 'gatehouse' && goal !== undefined ? (vs >= goal ? `PASS>=${goal}` : `MISS<${goal}`) : '';
    lines.push(
      [
        r.mode.padEnd(37),
        String(r.concurrency).padStart(2),
        r.target.padEnd(10),
        value(r).toFixed(r.unit === 'MB/s' ? 1 : 0).padStart(9),
        r.p50.toFixed(2).padStart(7),
        r.p99.toFixed(2).padStart(7),
        String(r.errors).padStart(6),
        (direct ? ratio(value(r), value(direct)) : '').padStart(8),
        (squid ? ratio(value(r), value(squid)) : '').padStart(7),
        (lean ? ratio(value(r), value(lean)) : '').padStart(6),
        verdict,
      ].join('  '),
    );
  }
  return `${lines.join('\n')}\n`;
}
