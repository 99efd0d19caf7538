import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Summaries of V8 CPU profiles (`node --cpu-prof`, one .cpuprofile per thread) for the benchmark report: where a
 * thread's busy time goes by area of the code, the functions with the most self time, and the inclusive time of
 * the functions the audit path runs through.
 */
interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface ProfileSummary {
  readonly file: string;
  /** What ran on the thread: main, or the worker script's name. */
  readonly thread: string;
  readonly totalMs: number;
  readonly busyMs: number;
  readonly areas: ReadonlyArray<readonly [string, number]>;
  readonly topSelf: ReadonlyArray<readonly [string, number]>;
  readonly inclusive: ReadonlyArray<readonly [string, number]>;
  /** Self time of every function and of every area, in ms (for comparing two profiles). */
  readonly selfMs: ReadonlyMap<string, number>;
  readonly areaMs: ReadonlyMap<string, number>;
}

const shortUrl = (url: string): string => {
  const dist = url.lastIndexOf('/dist/');
  if (dist !== -1) return url.slice(dist + 6);
  const nm = url.lastIndexOf('/node_modules/');
  if (nm !== -1) return url.slice(nm + 14);
  return url;
};

const keyOf = (f: CallFrame): string => (f.url ? `${f.functionName || '(anonymous)'} ${shortUrl(f.url)}:${f.lineNumber + 1}` : f.functionName || '(native)');

/** Which part of the system a frame belongs to. */
function area(f: CallFrame): string {
  if (!f.url) return f.functionName.startsWith('(') ? f.functionName : 'native (V8 builtins, JSON, crypto bindings)';
  const u = shortUrl(f.url);
  if (u.startsWith('core/audit/')) return 'core/audit';
  if (u.startsWith('egress/egress-events')) return 'egress/egress-events (event builder)';
  if (u.startsWith('core/') || u.startsWith('egress/') || u.startsWith('bench/')) return u.split('/')[0] as string;
  if (u.startsWith('node:')) return 'node internals';
  return `deps: ${u.split('/')[0]}`;
}

/** Functions whose inclusive time shows what auditing costs on a thread. */
const INCLUSIVE = ['append', 'validateEvent', 'egressEvent', 'record', 'post', 'chain', 'writePending', 'hashLine', 'composeLine', 'readAfter', 'readLines', 'formatRecord', 'send'];

export function summarise(file: string, profile: CpuProfile, top = 12): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  let totalUs = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    totalUs += dt;
    self.set(id, (self.get(id) ?? 0) + dt);
  });
  const idleUs = profile.nodes.filter((n) => n.callFrame.functionName === '(idle)').reduce((s, n) => s + (self.get(n.id) ?? 0), 0);
  const areas = new Map<string, number>();
  const selfByKey = new Map<string, number>();
  const inclusive = new Map<string, number>();
  // Inclusive time: a depth-first walk carrying the keys already on the stack, so recursion counts once.
  const walk = (id: number, onStack: ReadonlySet<string>): number => {
    const node = byId.get(id) as ProfileNode;
    let t = self.get(id) ?? 0;
    const key = keyOf(node.callFrame);
    const next = onStack.has(key) ? onStack : new Set([...onStack, key]);
    for (const c of node.children ?? []) t += walk(c, next);
    if (node.callFrame.functionName !== '(idle)') {
      areas.set(area(node.callFrame), (areas.get(area(node.callFrame)) ?? 0) + (self.get(id) ?? 0));
      selfByKey.set(key, (selfByKey.get(key) ?? 0) + (self.get(id) ?? 0));
    }
    if (!onStack.has(key) && INCLUSIVE.includes(node.callFrame.functionName) && node.callFrame.url) inclusive.set(key, (inclusive.get(key) ?? 0) + t);
    return t;
  };
  const root = profile.nodes[0];
  if (root) walk(root.id, new Set());
  const ms = (us: number): number => us / 1000;
  const sorted = (m: Map<string, number>, n: number): Array<readonly [string, number]> =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, v]) => [k, ms(v)] as const);
  const urls = profile.nodes.map((n) => shortUrl(n.callFrame.url));
  const worker = urls.find((u) => /-worker\.js$/.test(u));
  return {
    file,
    thread: worker ? (worker.split('/').pop() as string) : 'main',
    totalMs: ms(totalUs),
    busyMs: ms(totalUs - idleUs),
    areas: sorted(areas, 20),
    topSelf: sorted(selfByKey, top),
    inclusive: sorted(inclusive, 12).filter(([, v]) => v > 0),
    selfMs: new Map([...selfByKey].map(([k, v]) => [k, ms(v)])),
    areaMs: new Map([...areas].map(([k, v]) => [k, ms(v)])),
  };
}

/** Every profile in `dir`, summarised. */
export async function summariseDir(dir: string): Promise<ProfileSummary[]> {
  const files = (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.cpuprofile')).sort();
  const out: ProfileSummary[] = [];
  for (const f of files) out.push(summarise(f, JSON.parse(await readFile(join(dir, f), 'utf8')) as CpuProfile));
  return out;
}

export function formatSummary(title: string, s: ProfileSummary): string {
  const pct = (v: number): string => `${((100 * v) / Math.max(1e-9, s.busyMs)).toFixed(1).padStart(5)}%`;
  const lines = [`${title} [${s.thread}] busy ${s.busyMs.toFixed(0)} ms of ${s.totalMs.toFixed(0)} ms profiled (percentages of busy time)`];
  lines.push('  by area:');
  for (const [k, v] of s.areas) if (v / s.busyMs >= 0.005) lines.push(`    ${pct(v)}  ${k}`);
  lines.push('  top self time:');
  for (const [k, v] of s.topSelf) lines.push(`    ${pct(v)}  ${k}`);
  if (s.inclusive.length > 0) {
    lines.push('  inclusive (audit path):');
    for (const [k, v] of s.inclusive) lines.push(`    ${pct(v)}  ${k}`);
  }
  return `${lines.join('\n')}\n`;
}

/** One profile and what to divide it by: operations completed, and the thread's CPU time measured outside V8. */
export interface ProfiledRun {
  readonly summary: ProfileSummary;
  readonly ops: number;
  /** CPU seconds of the profiled thread over the profile's span; null to take the profile's own busy time. */
  readonly cpuSeconds: number | null;
}

/**
 * Where the extra time per operation goes between two profiles of the same program (audit on versus off): for
 * each area and each function, time in A per operation minus time in B per operation, in microseconds.
 * Sampled time is wall time while the thread was not idle, which includes time other processes held the core;
 * each profile is scaled to its thread's measured CPU time so that a busier machine during one does not count.
 */
export function formatDiff(title: string, a: ProfiledRun, b: ProfiledRun, top = 15): string {
  const scale = (r: ProfiledRun): number => (r.cpuSeconds === null ? 1 : (r.cpuSeconds * 1000) / Math.max(1e-9, r.summary.busyMs));
  const [sa, sb] = [scale(a), scale(b)];
  const perOp = (m: ReadonlyMap<string, number>, key: string, r: ProfiledRun, k: number): number => ((m.get(key) ?? 0) * 1000 * k) / Math.max(1, r.ops);
  const delta = (ma: ReadonlyMap<string, number>, mb: ReadonlyMap<string, number>): Array<readonly [string, number]> =>
    [...new Set([...ma.keys(), ...mb.keys()])].map((k) => [k, perOp(ma, k, a, sa) - perOp(mb, k, b, sb)] as const).sort((x, y) => Math.abs(y[1]) - Math.abs(x[1]));
  const busy = (a.summary.busyMs * 1000 * sa) / Math.max(1, a.ops) - (b.summary.busyMs * 1000 * sb) / Math.max(1, b.ops);
  const fmt = (v: number): string => `${v >= 0 ? '+' : ''}${v.toFixed(2)}`.padStart(8);
  const lines = [
    `${title}: ${fmt(busy)} us CPU per operation (${a.ops} vs ${b.ops} operations over each process's life; samples scaled by ${sa.toFixed(2)} and ${sb.toFixed(2)} to measured CPU)`,
    '  by area (us per operation):',
  ];
  for (const [k, v] of delta(a.summary.areaMs, b.summary.areaMs).filter(([, v]) => Math.abs(v) >= 0.3)) lines.push(`    ${fmt(v)}  ${k}`);
  lines.push('  by function (us per operation):');
  for (const [k, v] of delta(a.summary.selfMs, b.summary.selfMs).slice(0, top)) lines.push(`    ${fmt(v)}  ${k}`);
  return `${lines.join('\n')}\n`;
}
