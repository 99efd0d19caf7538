import { connect, type Socket } from 'node:net';

/**
 * Load generator (its own process, pinned to its own core by the runner). Every loop is bounded by a deadline
 * and stops by itself. Modes:
 *   connect  open a connection (CONNECT tunnel through a proxy, or plain TCP for direct), one GET, close
 *   bulk     open `concurrency` tunnels once, then GET /bulk repeatedly through each
 *   idle     open `count` tunnels and hold them until stdin closes (for RSS measurements)
 * Input: one JSON argument. Output: one JSON line.
 */
interface Config {
  mode: 'connect' | 'bulk' | 'idle';
  proxyPort: number | null;
  originHost: string;
  originPort: number;
  auth: string | null;
  concurrency: number;
  seconds: number;
  bulkBytes: number;
  count: number;
}

const cfg = JSON.parse(process.argv[2] ?? '{}') as Config;
const authority = `${cfg.originHost}:${cfg.originPort}`;

function open(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const port = cfg.proxyPort ?? cfg.originPort;
    const s = connect({ host: '127.0.0.1', port, noDelay: true }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Read a response head and a Content-Length body; returns body bytes. Leftover bytes are pushed back. */
function readResponse(s: Socket): Promise<number> {
  return new Promise((resolve, reject) => {
    let head = Buffer.alloc(0);
    let bodyLeft = -1;
    let bodyBytes = 0;
    const onData = (chunk: Buffer): void => {
      if (bodyLeft < 0) {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end === -1) return;
        const text = head.subarray(0, end).toString('latin1');
        const status = Number(text.split(' ')[1]);
        if (status !== 200) return finish(new Error(`status ${status}: ${text.slice(0, 200)}`));
        const len = /content-length:\s*(\d+)/i.exec(text);
        bodyLeft = len ? Number(len[1]) : 0;
        chunk = head.subarray(end + 4);
      }
      bodyBytes += chunk.length;
      bodyLeft -= chunk.length;
      if (bodyLeft <= 0) finish(null);
    };
    const onClose = (): void => finish(new Error('closed'));
    function finish(err: Error | null): void {
      s.off('data', onData);
      s.off('close', onClose);
      if (err) reject(err);
      else resolve(bodyBytes);
    }
    s.on('data', onData);
    s.once('close', onClose);
  });
}

function readHead(s: Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (c: Buffer): void => {
      buf += c.toString('latin1');
      if (!buf.includes('\r\n\r\n')) return;
      s.off('data', onData);
      if (!/^HTTP\/1\.[01] 200/.test(buf)) reject(new Error(`CONNECT refused: ${buf.slice(0, 200)}`));
      else resolve();
    };
    s.on('data', onData);
    s.once('close', () => reject(new Error('closed during CONNECT')));
  });
}

async function tunnel(): Promise<Socket> {
  const s = await open();
  if (cfg.proxyPort !== null) {
    s.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${cfg.auth ? `Proxy-Authorization: ${cfg.auth}\r\n` : ''}\r\n`);
    await readHead(s);
  }
  return s;
}

const get = (s: Socket, path: string): void => void s.write(`GET ${path} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);

const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;

async function runConnect(): Promise<object> {
  const deadline = performance.now() + cfg.seconds * 1000;
  const latencies: number[] = [];
  let errors = 0;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      try {
        const s = await tunnel();
        get(s, '/small');
        await readResponse(s);
        s.destroy();
        latencies.push(performance.now() - t0);
      } catch {
        errors++;
      }
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: cfg.concurrency }, worker));
  const elapsed = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  return { ops: latencies.length, perSecond: latencies.length / elapsed, p50: percentile(latencies, 50), p99: percentile(latencies, 99), errors };
}

async function runBulk(): Promise<object> {
  const sockets = await Promise.all(Array.from({ length: cfg.concurrency }, tunnel));
  const deadline = performance.now() + cfg.seconds * 1000;
  const latencies: number[] = [];
  let bytes = 0;
  const start = performance.now();
  await Promise.all(
    sockets.map(async (s) => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        get(s, `/bulk?bytes=${cfg.bulkBytes}`);
        // Not `bytes += await ...`: that reads `bytes` before the await and loses other workers' updates.
        const received = await readResponse(s);
        bytes += received;
        latencies.push(performance.now() - t0);
      }
      s.destroy();
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  return { ops: latencies.length, mbPerSecond: bytes / elapsed / 1e6, p50: percentile(latencies, 50), p99: percentile(latencies, 99), errors: 0 };
}

async function runIdle(): Promise<object> {
  const sockets: Socket[] = [];
  let errors = 0;
  // Open in batches so the listen backlog is never the limit being measured.
  for (let i = 0; i < cfg.count; i += 100) {
    const batch = await Promise.allSettled(Array.from({ length: Math.min(100, cfg.count - i) }, tunnel));
    for (const r of batch) {
      if (r.status === 'fulfilled') sockets.push(r.value);
      else errors++;
    }
  }
  process.stdout.write(`${JSON.stringify({ open: sockets.length, errors })}\n`);
  // Hold until the runner has measured and closes our stdin.
  await new Promise<void>((resolve) => {
    process.stdin.once('end', resolve);
    process.stdin.once('close', resolve);
    process.stdin.resume();
  });
  for (const s of sockets) s.destroy();
  return { open: sockets.length, errors };
}

const result = cfg.mode === 'connect' ? await runConnect() : cfg.mode === 'bulk' ? await runBulk() : await runIdle();
if (cfg.mode !== 'idle') process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
