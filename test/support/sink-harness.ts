/**
 * Helpers for the audit-shipping end-to-end tests (test/audit-sinks-*.test.ts): what the local log holds, what
 * each receiver got (normalised to the record line it claims to be), Prometheus metrics, a TCP front that can
 * make a healthy receiver hang or answer garbage, and timed requests through the proxy.
 */
import { request } from 'node:http';
import { readdir, readFile } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { AUDIT_SOURCES, SEGMENT_FILE } from '../../core/audit/record-format.js';
import type { FakeElasticsearch, FakeHec, FakeWebhook } from './fake-siem.js';
import { basic } from './raw-client.js';
import { waitUntil } from './wait.js';

/** `source:seq` -> the exact line, for every record in every segment of the local log. */
export async function localRecords(auditDir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const source of AUDIT_SOURCES) {
    const dir = join(auditDir, source);
    const files = (await readdir(dir).catch(() => [] as string[])).filter((f) => SEGMENT_FILE.test(f)).sort();
    for (const f of files) {
      for (const line of (await readFile(join(dir, f), 'utf8')).split('\n')) {
        if (line.length === 0) continue;
        const r = JSON.parse(line) as { source: string; seq: number };
        out.set(`${r.source}:${r.seq}`, line);
      }
    }
  }
  return out;
}

/** Every copy a receiver got, by `source:seq`, each as the record line it carries (duplicates kept). */
export type Copies = Map<string, string[]>;

export interface Received {
  readonly copies: Copies;
  readonly checkpoints: number;
}

const add = (copies: Copies, key: string, line: string): void => {
  const list = copies.get(key);
  if (list) list.push(line);
  else copies.set(key, [line]);
};

/** What rsyslog wrote (RSYSLOG_SyslogProtocol23Format): the MSG of each record message is the log line. */
export function syslogReceived(lines: readonly string[]): Received {
  const copies: Copies = new Map();
  let checkpoints = 0;
  for (const l of lines) {
    if (l.includes(' checkpoint [gatehouse-checkpoint@32473 ')) checkpoints++;
    const sd = /\[gatehouse@32473 source="([a-z]+)" seq="(\d+)"/.exec(l);
    if (!sd) continue;
    const at = l.indexOf(' {"v":1,');
    const line = at === -1 ? 'NO RECORD IN MSG' : l.slice(at + 1);
    // The structured data must name the record the MSG carries.
    const record = at === -1 ? null : (JSON.parse(line) as { source: string; seq: number });
    add(copies, `${sd[1]}:${sd[2]}`, record && record.source === sd[1] && record.seq === Number(sd[2]) ? line : `SD ${sd[0]} DOES NOT MATCH ${line}`);
  }
  return { copies, checkpoints };
}

export function hecReceived(hec: FakeHec): Received {
  const copies: Copies = new Map();
  let checkpoints = 0;
  for (const e of hec.events) {
    if (e['sourcetype'] === 'gatehouse:checkpoint') {
      checkpoints++;
      continue;
    }
    const record = e['event'] as { source: string; seq: number };
    const ok = e['source'] === `gatehouse:${record.source}`;
    add(copies, `${record.source}:${record.seq}`, ok ? JSON.stringify(record) : `HEC source ${String(e['source'])} for ${record.source}`);
  }
  return { copies, checkpoints };
}

/**
 * Every create action in every bulk request (duplicates included, as sent), turned back into the record line:
 * the document is the event plus `@timestamp` and `gatehouse: {source, seq, prev}`, and the `_id` must be
 * `<source>-<seq>` for the record the document holds.
 */
export function esReceived(es: FakeElasticsearch): Received {
  const copies: Copies = new Map();
  let checkpoints = 0;
  for (const req of es.requests) {
    if (!req.url.startsWith('/_bulk')) continue;
    const lines = req.body.split('\n').filter((l) => l.length > 0);
    for (let i = 0; i + 1 < lines.length; i += 2) {
      const action = (JSON.parse(lines[i] as string) as { create: { _index: string; _id: string } }).create;
      const doc = JSON.parse(lines[i + 1] as string) as Record<string, unknown>;
      if (action._index.endsWith('-checkpoints')) {
        checkpoints++;
        continue;
      }
      const { '@timestamp': stamp, gatehouse, ...event } = doc;
      const g = gatehouse as { source: string; seq: number; prev: string };
      const line = JSON.stringify({ v: 1, source: g.source, seq: g.seq, prev: g.prev, event });
      const stampOk = stamp === new Date(event['time'] as number).toISOString();
      add(copies, `${g.source}:${g.seq}`, action._id === `${g.source}-${g.seq}` && stampOk ? line : `ES _id ${action._id} / @timestamp ${String(stamp)} for ${g.source}-${g.seq}`);
    }
  }
  return { copies, checkpoints };
}

export function webhookReceived(hook: FakeWebhook): Received {
  const copies: Copies = new Map();
  let checkpoints = 0;
  for (const d of hook.deliveries) {
    checkpoints += d.checkpoints?.length ?? 0;
    const records = d.records ?? [];
    const first = records[0];
    const last = records[records.length - 1];
    const key = first && last ? `${first.source}-${first.seq}-${last.seq}` : null;
    for (const r of records) add(copies, `${r.source}:${r.seq}`, key === d.batch ? JSON.stringify(r) : `webhook batch key ${d.batch} for ${key ?? '?'}`);
  }
  return { copies, checkpoints };
}

/**
 * What is wrong with a receiver's copies against the local log: records missing, and copies that differ from
 * the local line for their seq (a duplicate must be the same record). Empty when every record arrived intact.
 */
export function deliveryProblems(local: ReadonlyMap<string, string>, received: Received): string[] {
  const problems: string[] = [];
  for (const [key, line] of local) {
    const copies = received.copies.get(key);
    if (!copies) problems.push(`missing ${key}`);
    else for (const c of copies) if (c !== line) problems.push(`copy of ${key} differs: ${c.slice(0, 200)}`);
  }
  for (const key of received.copies.keys()) if (!local.has(key)) problems.push(`received ${key}, which is not in the local log`);
  return problems;
}

/**
 * Wait until every receiver has every record of the local log intact; resolves with the local log. On timeout
 * the error lists each receiver's first problems and `context()` (the server's log tail, say).
 */
export async function waitForDelivery(auditDir: string, receivers: () => Promise<Record<string, Received>>, what: string, context: () => string, timeoutMs = 20_000): Promise<Map<string, string>> {
  let last: Record<string, string[]> = {};
  try {
    return await waitUntil(
      async () => {
        // Receivers first, then the log: everything received is on disk by then.
        const got = await receivers();
        const local = await localRecords(auditDir);
        last = Object.fromEntries(Object.entries(got).map(([name, r]) => [name, deliveryProblems(local, r).slice(0, 5)]));
        return Object.values(last).every((p) => p.length === 0) ? local : null;
      },
      what,
      timeoutMs,
      100,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${JSON.stringify(last, null, 2)}\n${context()}`);
  }
}

/** The admin API's /metrics as `name{labels}` -> value. */
export async function scrape(adminPort: number, texts?: string[]): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  texts?.push(text);
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.length === 0) continue;
    const space = line.lastIndexOf(' ');
    out.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return out;
}

/** One sink metric (0 when the series does not exist yet). */
export const sinkMetric = (m: ReadonlyMap<string, number>, name: string, sink: string, source?: string): number =>
  m.get(`gatehouse_audit_sink_${name}{sink="${sink}"${source ? `,source="${source}"` : ''}}`) ?? 0;

/** Sum of a sink's lag over every source. */
export const totalLag = (m: ReadonlyMap<string, number>, sink: string): number => AUDIT_SOURCES.reduce((n, s) => n + sinkMetric(m, 'lag_records', sink, s), 0);

/**
 * How a TcpFront treats new connections: `pass` relays to the real receiver; `refuse` resets them (receiver
 * down); `hang` accepts and reads but never answers; `reply` answers each request with fixed bytes and closes.
 */
export type FrontMode = { readonly kind: 'pass' } | { readonly kind: 'refuse' } | { readonly kind: 'hang' } | { readonly kind: 'reply'; readonly bytes: string };

/** A TCP front on 127.0.0.1 for a receiver: the sink is configured with the front's port. */
export class TcpFront {
  private mode: FrontMode = { kind: 'pass' };
  private readonly sockets = new Set<Socket>();
  /** Connections accepted, per mode kind. */
  readonly accepted: Record<FrontMode['kind'], number> = { pass: 0, refuse: 0, hang: 0, reply: 0 };

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly targetPort: number,
  ) {
    server.on('connection', (s) => this.accept(s));
  }

  static async start(targetPort: number): Promise<TcpFront> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new TcpFront(server, (server.address() as { port: number }).port, targetPort);
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Switch mode; open connections are cut so the sink's next connection meets the new behaviour. */
  set(mode: FrontMode): void {
    const unchanged = mode.kind === 'pass' && this.mode.kind === 'pass';
    this.mode = mode;
    // Relaying on: the sink's keep-alive connections stay (cutting them would be a failure of its own).
    if (unchanged) return;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  private track(s: Socket): void {
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
    s.on('error', () => s.destroy());
  }

  private accept(client: Socket): void {
    const mode = this.mode;
    this.accepted[mode.kind]++;
    this.track(client);
    switch (mode.kind) {
      case 'refuse':
        client.resetAndDestroy();
        return;
      case 'hang':
        client.resume();
        return;
      case 'reply':
        answerEachRequest(client, mode.bytes);
        return;
      case 'pass': {
        const upstream = connect({ host: '127.0.0.1', port: this.targetPort });
        this.track(upstream);
        client.pipe(upstream);
        upstream.pipe(client);
        client.on('close', () => upstream.destroy());
        upstream.on('close', () => client.destroy());
      }
    }
  }

  close(): Promise<void> {
    this.set({ kind: 'refuse' });
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** Read one HTTP/1.1 request (head plus Content-Length body), then write `bytes` and close. */
function answerEachRequest(client: Socket, bytes: string): void {
  let buf = Buffer.alloc(0);
  const onData = (chunk: Buffer): void => {
    buf = Buffer.concat([buf, chunk]);
    const end = buf.indexOf('\r\n\r\n');
    if (end === -1) return;
    const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(buf.subarray(0, end).toString('latin1'))?.[1] ?? 0);
    if (buf.length < end + 4 + length) return;
    client.off('data', onData);
    client.resume();
    client.end(bytes);
  };
  client.on('data', onData);
}

/** A raw HTTP/1.1 response with a body, closing the connection. */
export const rawResponse = (status: string, body: string, contentType = 'application/json'): string =>
  `HTTP/1.1 ${status}\r\ncontent-type: ${contentType}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`;

/** GET through the proxy (absolute-form, a fresh connection), timed. */
export function proxyGet(egressPort: number, token: string, url: string, timeoutMs = 5000): Promise<{ status: number; ms: number; body: string }> {
  const started = performance.now();
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: egressPort, method: 'GET', path: url, agent: false, headers: { host: target.host, 'proxy-authorization': basic(token) }, timeout: timeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - started, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer through the proxy within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** `n` sequential timed GETs; the median and the slowest, in ms. */
export async function timedGets(egressPort: number, token: string, url: string, n: number): Promise<{ statuses: number[]; median: number; max: number }> {
  const times: number[] = [];
  const statuses: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = await proxyGet(egressPort, token, `${url}${url.includes('?') ? '&' : '?'}i=${i}`);
    times.push(r.ms);
    statuses.push(r.status);
  }
  times.sort((a, b) => a - b);
  return { statuses, median: times[Math.floor(n / 2)] as number, max: times[n - 1] as number };
}
