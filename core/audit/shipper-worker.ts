import { isDeepStrictEqual } from 'node:util';
import { parentPort } from 'node:worker_threads';
import type { SinkSettings } from '../policy/compile-audit.js';
import { resolveSecret } from '../util/secret-ref.js';
import { SinkRunner, type SinkStats } from './shipper/sink-runner.js';
import type { FromShipper, ToShipper } from './shipper-protocol.js';
import { createSink } from './sinks/index.js';

/**
 * The shipper thread: one SinkRunner per configured sink, each delivering from its own cursor. Separate from
 * the writer thread so a slow or broken SIEM can never hold up writing the local log.
 */
if (!parentPort) throw new Error('shipper-worker must run as a worker thread');
const port = parentPort;
const post = (m: FromShipper): void => port.postMessage(m);

let dir = '';
let hostname = 'gatehouse';
const runners = new Map<string, { settings: SinkSettings; runner: SinkRunner }>();

/**
 * Sinks that could not start (a missing secret, an unreadable CA). They are retried with backoff, and reported
 * in the stats as failing, so `gatehouse audit sinks`, its exit code and the metrics show them: a sink missing
 * from the list would read as "nothing configured" while its records pile up undelivered.
 */
const failed = new Map<string, { settings: SinkSettings; error: string; attempts: number; nextAt: number; timer: NodeJS.Timeout }>();

async function startSink(settings: SinkSettings): Promise<void> {
  try {
    const sink = await createSink(settings, { secret: resolveSecret, hostname });
    const runner = await SinkRunner.start(sink, { dir, batchMax: settings.batchMax, resendWindowMs: settings.resendWindowMs, timeoutMs: settings.timeoutMs });
    runners.set(settings.name, { settings, runner });
    forget(settings.name);
  } catch (err) {
    const error = (err as Error).message;
    const previous = failed.get(settings.name);
    clearTimeout(previous?.timer);
    const attempts = (previous?.attempts ?? 0) + 1;
    // Exponential backoff with full jitter, 1 s doubling up to a minute: a secret mounted late is picked up soon.
    const delay = Math.random() * Math.min(60_000, 1000 * 2 ** attempts);
    const timer = setTimeout(() => enqueue(async () => {
      if (failed.get(settings.name)?.settings === settings) await startSink(settings);
    }), delay).unref();
    failed.set(settings.name, { settings, error, attempts, nextAt: Date.now() + delay, timer });
    // Logged when it starts failing or the cause changes, not at every retry.
    if (previous?.error !== error) post({ type: 'error', sink: settings.name, message: error });
  }
}

function forget(name: string): void {
  clearTimeout(failed.get(name)?.timer);
  failed.delete(name);
}

const failedStats = (): SinkStats[] =>
  [...failed.values()].map((f) => ({
    name: f.settings.name,
    type: f.settings.type,
    state: 'backoff',
    lag: {},
    delivered: 0,
    errors: f.attempts,
    deadLettered: 0,
    lastError: `cannot start: ${f.error}`,
    lastDeliveryAt: null,
    nextAttemptAt: new Date(f.nextAt).toISOString(),
  }));

/** Apply a new sink list: unchanged sinks keep running; changed ones restart from their cursors. */
async function configure(sinks: readonly SinkSettings[]): Promise<void> {
  const wanted = new Map(sinks.map((s) => [s.name, s]));
  for (const [name, { settings, runner }] of [...runners]) {
    if (!isDeepStrictEqual(wanted.get(name), settings)) {
      await runner.stop();
      runners.delete(name);
    }
  }
  // A reload retries a sink that could not start at once, whatever its backoff.
  for (const name of [...failed.keys()]) forget(name);
  for (const s of sinks) if (!runners.has(s.name)) await startSink(s);
}

let queue: Promise<void> = Promise.resolve();
const enqueue = (task: () => Promise<void>): void => {
  queue = queue.then(task).catch((err: unknown) => post({ type: 'error', sink: '*', message: (err as Error).message }));
};

setInterval(() => enqueue(async () => post({ type: 'stats', sinks: [...(await Promise.all([...runners.values()].map((r) => r.runner.stats()))), ...failedStats()] })), 1000).unref();

port.on('message', (m: ToShipper) => {
  switch (m.type) {
    case 'init':
      dir = m.dir;
      hostname = m.hostname;
      enqueue(async () => {
        await configure(m.sinks);
        post({ type: 'ready' });
      });
      return;
    case 'configure':
      enqueue(() => configure(m.sinks));
      return;
    case 'nudge':
      for (const { runner } of runners.values()) runner.nudge();
      return;
    case 'close':
      enqueue(async () => {
        for (const { runner } of runners.values()) await runner.stop();
        runners.clear();
        for (const name of [...failed.keys()]) forget(name);
        post({ type: 'ack', id: m.id });
        port.close();
      });
      return;
  }
});
