import { isDeepStrictEqual } from 'node:util';
import { parentPort } from 'node:worker_threads';
import type { SinkSettings } from '../policy/compile-audit.js';
import { resolveSecret } from '../util/secret-ref.js';
import { SinkRunner } from './shipper/sink-runner.js';
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

async function startSink(settings: SinkSettings): Promise<void> {
  try {
    const sink = await createSink(settings, { secret: resolveSecret, hostname });
    const runner = await SinkRunner.start(sink, { dir, batchMax: settings.batchMax, resendWindowMs: settings.resendWindowMs, timeoutMs: settings.timeoutMs });
    runners.set(settings.name, { settings, runner });
  } catch (err) {
    // A sink that cannot start (a missing secret, an unreadable CA) is reported; the others still run.
    post({ type: 'error', sink: settings.name, message: (err as Error).message });
  }
}

/** Apply a new sink list: unchanged sinks keep running; changed ones restart from their cursors. */
async function configure(sinks: readonly SinkSettings[]): Promise<void> {
  const wanted = new Map(sinks.map((s) => [s.name, s]));
  for (const [name, { settings, runner }] of [...runners]) {
    if (!isDeepStrictEqual(wanted.get(name), settings)) {
      await runner.stop();
      runners.delete(name);
    }
  }
  for (const s of sinks) if (!runners.has(s.name)) await startSink(s);
}

let queue: Promise<void> = Promise.resolve();
const enqueue = (task: () => Promise<void>): void => {
  queue = queue.then(task).catch((err: unknown) => post({ type: 'error', sink: '*', message: (err as Error).message }));
};

setInterval(() => enqueue(async () => post({ type: 'stats', sinks: await Promise.all([...runners.values()].map((r) => r.runner.stats())) })), 1000).unref();

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
        post({ type: 'ack', id: m.id });
        port.close();
      });
      return;
  }
});
