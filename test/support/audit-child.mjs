// A separate process that writes the audit log through the built AuditLog, for tests that kill it (SIGKILL) or
// limit its file size (prlimit). Plain JavaScript: Node 20 runs it without a TypeScript loader.
//
// node audit-child.mjs '<json options>'   options: dir, mode ('batched' | 'strict'), count, flushIntervalMs,
//   segmentMaxBytes, pad (bytes of padding per event), concurrency (strict mode)
// stdout, one line each: "ready" | "appended <n> <epoch ms>" | "acked <n>" | "failed <n> <code>" | "error <message>"
//   | "done" | "closed". On stdin, "finish" flushes, closes the log and exits.
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';

const opts = JSON.parse(process.argv[2] ?? '{}');
const { AuditLog } = await import(new URL('../../dist/core/audit/audit-log.js', import.meta.url).href);
const say = (line) => process.stdout.write(`${line}\n`);
const log = await AuditLog.open({
  dir: opts.dir,
  flushIntervalMs: opts.flushIntervalMs ?? 50,
  segmentMaxBytes: opts.segmentMaxBytes ?? 64 * 1024 * 1024,
  checkpointIntervalMs: 3_600_000,
  onError: (message) => say(`error ${message}`),
});
const event = (n) => ({ n, pad: 'x'.repeat(opts.pad ?? 100) });
let finishing = false;

createInterface({ input: process.stdin }).on('line', (line) => {
  if (line !== 'finish') return;
  finishing = true;
  log
    .flush()
    .then(() => log.close())
    .then(() => {
      say('closed');
      process.exit(0);
    })
    .catch((err) => {
      say(`error close: ${err.code ?? err.message}`);
      process.exit(1);
    });
});
say('ready');

if (opts.mode === 'strict') {
  // Several decisions in flight at once, as on a busy proxy; each is acknowledged only once it is durable.
  let next = 1;
  const worker = async () => {
    while (!finishing && next <= opts.count) {
      const n = next++;
      try {
        await log.appendDurable('egress', event(n));
        say(`acked ${n}`);
      } catch (err) {
        say(`failed ${n} ${err.code}`);
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency ?? 4 }, worker));
} else {
  for (let n = 1; n <= opts.count && !finishing; n++) {
    log.append('egress', event(n));
    say(`appended ${n} ${Date.now()}`);
    // Yield to the event loop like a proxy between requests, so the flush timer runs.
    if (n % (opts.burst ?? 5) === 0) await delay(1);
  }
}
say('done');
