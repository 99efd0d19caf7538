/**
 * Small in-test SIEM receivers for the audit sink tests. No real Splunk or Elasticsearch can be installed here, so
 * these follow the services' documented request and response formats instead:
 * - Splunk HEC: "Format events for HTTP Event Collector" (Authorization: Splunk <token>, concatenated JSON event
 *   objects), "About HTTP Event Collector Indexer Acknowledgment" (X-Splunk-Request-Channel, ackId,
 *   /services/collector/ack) and the status codes in "Troubleshoot HTTP Event Collector".
 * - Elasticsearch: "Bulk API" (NDJSON ending in a newline, `create` answering 409 version_conflict_engine_exception
 *   for an existing _id, per-item status and error.type, `errors` true when any item failed).
 * - Webhook: the Gatehouse webhook contract (core/audit/sinks/webhook.ts), verified here with its own HMAC code.
 * Every receiver listens on 127.0.0.1 only and records what it received.
 */
import { execFileSync } from 'node:child_process';
import { createHmac, generateKeyPairSync, createPublicKey, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { signCheckpoint, type Checkpoint } from '../../core/audit/checkpoint.js';
import { composeLine, GENESIS_HASH, hashLine, type AuditRecord, type AuditSource } from '../../core/audit/record-format.js';
import type { ShippedRecord } from '../../core/audit/sinks/sink.js';

export interface TlsFiles {
  readonly keyPath: string;
  readonly certPath: string;
}

export interface Received {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

type Handler = (req: Received, res: ServerResponse) => void;

interface Listening {
  readonly url: string;
  readonly requests: Received[];
  close(): Promise<void>;
}

async function listen(handler: Handler, tls?: TlsFiles): Promise<Listening> {
  const requests: Received[] = [];
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const received = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      requests.push(received);
      handler(received, res);
    });
  };
  const server: Server = tls
    ? createHttpsServer({ key: readFileSync(tls.keyPath), cert: readFileSync(tls.certPath) }, onRequest)
    : createHttpServer(onRequest);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

/** Split concatenated JSON objects (`{..}{..}` or separated by whitespace), as HEC reads its event body. */
export function splitConcatenatedJson(text: string): unknown[] {
  const out: unknown[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      if (ch === '\\') i++;
      else if (ch === '"') inString = false;
    } else if (ch === '"') inString = true;
    else if (ch === '{') {
      if (depth++ === 0) start = i;
    } else if (ch === '}') {
      if (--depth === 0) out.push(JSON.parse(text.slice(start, i + 1)));
      if (depth < 0) throw new Error('unbalanced');
    } else if (depth === 0 && !/\s/.test(ch ?? '')) throw new Error(`unexpected ${ch} between objects`);
  }
  if (depth !== 0 || inString) throw new Error('truncated');
  return out;
}

/** What every fake receiver offers a test: its URL, what it received, and a way to stop it. */
abstract class FakeReceiver {
  protected constructor(protected readonly server: Listening) {}

  get url(): string {
    return this.server.url;
  }
  get requests(): readonly Received[] {
    return this.server.requests;
  }
  close(): Promise<void> {
    return this.server.close();
  }
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A Splunk HEC receiver. Knobs are plain fields a test sets before sending. */
export class FakeHec extends FakeReceiver {
  /** Events as indexed: the parsed envelopes, in arrival order. */
  readonly events: Record<string, unknown>[] = [];
  /** Channel of every accepted event request. */
  readonly channels: string[] = [];
  ackPolls = 0;
  /** Answer this many event requests with 503 code 9 (Server is busy), with `retryAfter` if set. */
  busy = 0;
  retryAfter: string | undefined;
  /** Answer each ack query for an id `false` this many times before `true`. */
  pendingPolls = 0;
  /** Never acknowledge. */
  neverAck = false;
  /** Answer event requests 400 code 6 (Invalid data format). */
  invalidData = false;
  /** Answer ack queries 200 with this body instead of `{"acks":{"<id>":true|false}}` (a receiver with the wrong shape). */
  ackAnswer: ((ids: readonly unknown[]) => unknown) | undefined;
  private ackWaiters: Array<() => void> = [];
  private nextAckId = 0;
  private readonly pending = new Map<number, number>();
  private constructor(
    server: Listening,
    private readonly token: string,
    private readonly ack: boolean,
  ) {
    super(server);
  }

  static async start(options: { token: string; ack?: boolean; tls?: TlsFiles }): Promise<FakeHec> {
    const box: { hec?: FakeHec } = {};
    const server = await listen((req, res) => box.hec?.handle(req, res), options.tls);
    box.hec = new FakeHec(server, options.token, options.ack ?? true);
    return box.hec;
  }

  private handle(req: Received, res: ServerResponse): void {
    const auth = req.headers.authorization;
    // A verbose receiver echoing what it got: the sink must never pass a response body on.
    if (auth === undefined) return json(res, 401, { text: 'Token is required', code: 2 });
    if (auth !== `Splunk ${this.token}`) return json(res, 403, { text: `Invalid token ${auth}`, code: 4 });
    const path = new URL(req.url, 'http://x').pathname;
    if (req.method !== 'POST') return json(res, 405, { text: 'Method not allowed' });
    const channel = req.headers['x-splunk-request-channel'] ?? new URL(req.url, 'http://x').searchParams.get('channel') ?? undefined;
    if (this.ack && channel === undefined) return json(res, 400, { text: 'Data channel is missing', code: 10 });
    if (this.ack && (typeof channel !== 'string' || !GUID.test(channel))) return json(res, 400, { text: 'Invalid data channel', code: 11 });
    if (path === '/services/collector/ack') return this.answerAcks(req, res);
    if (path !== '/services/collector/event') return json(res, 404, { text: 'The requested URL was not found on this server.', code: 404 });
    if (this.busy > 0) {
      this.busy--;
      return json(res, 503, { text: 'Server is busy', code: 9 }, this.retryAfter ? { 'retry-after': this.retryAfter } : {});
    }
    if (this.invalidData) return json(res, 400, { text: 'Invalid data format', code: 6, 'invalid-event-number': 0 });
    let events: unknown[];
    try {
      events = splitConcatenatedJson(req.body);
    } catch {
      return json(res, 400, { text: 'Invalid data format', code: 6 });
    }
    if (events.length === 0) return json(res, 400, { text: 'No data', code: 5 });
    for (const [i, e] of events.entries()) {
      if (typeof e !== 'object' || e === null || !('event' in e)) return json(res, 400, { text: 'Event field is required', code: 12, 'invalid-event-number': i });
      if (e.event === '' || e.event === null) return json(res, 400, { text: 'Event field cannot be blank', code: 13, 'invalid-event-number': i });
    }
    this.events.push(...(events as Record<string, unknown>[]));
    if (!this.ack) return json(res, 200, { text: 'Success', code: 0 });
    this.channels.push(channel as string);
    const ackId = this.nextAckId++;
    this.pending.set(ackId, this.pendingPolls);
    json(res, 200, { text: 'Success', code: 0, ackId });
  }

  /** Resolves at the next acknowledgement query. */
  nextAckPoll(): Promise<void> {
    return new Promise((resolve) => this.ackWaiters.push(resolve));
  }

  private answerAcks(req: Received, res: ServerResponse): void {
    if (!this.ack) return json(res, 400, { text: 'ACK is disabled', code: 14 });
    this.ackPolls++;
    for (const wake of this.ackWaiters.splice(0)) wake();
    const ids = (JSON.parse(req.body) as { acks?: unknown }).acks;
    if (!Array.isArray(ids)) return json(res, 400, { text: 'Invalid data format', code: 6 });
    if (this.ackAnswer) return json(res, 200, this.ackAnswer(ids));
    const acks: Record<string, boolean> = {};
    for (const id of ids as number[]) {
      const left = this.pending.get(id);
      if (left === undefined || this.neverAck) acks[String(id)] = false;
      else if (left > 0) {
        this.pending.set(id, left - 1);
        acks[String(id)] = false;
      } else {
        // An acknowledged id is forgotten once reported, as Splunk does.
        this.pending.delete(id);
        acks[String(id)] = true;
      }
    }
    json(res, 200, { acks });
  }
}

export interface StoredDoc {
  readonly index: string;
  readonly doc: Record<string, unknown>;
}

/** An Elasticsearch bulk receiver. */
export class FakeElasticsearch extends FakeReceiver {
  /** Documents by `<index>/<_id>`. */
  readonly docs = new Map<string, StoredDoc>();
  /** Answer this many bulk requests with 503, with `retryAfter` if set. */
  busy = 0;
  retryAfter: string | undefined;
  /** Fail chosen _ids: `rejected` (429 es_rejected_execution_exception) `times` times, `mapping` (400) always. */
  readonly failIds = new Map<string, { kind: 'rejected' | 'mapping'; times: number }>();
  private constructor(
    server: Listening,
    private readonly auth: string,
  ) {
    super(server);
  }

  static async start(options: { auth: string; tls?: TlsFiles }): Promise<FakeElasticsearch> {
    const box: { es?: FakeElasticsearch } = {};
    const server = await listen((req, res) => box.es?.handle(req, res), options.tls);
    box.es = new FakeElasticsearch(server, options.auth);
    return box.es;
  }

  private handle(req: Received, res: ServerResponse): void {
    if (req.headers.authorization !== this.auth) {
      return json(res, 401, { error: { type: 'security_exception', reason: `unable to authenticate with ${req.headers.authorization}` }, status: 401 });
    }
    if (req.method !== 'POST' || new URL(req.url, 'http://x').pathname !== '/_bulk') return json(res, 404, { error: 'no handler' });
    if (req.headers['content-type'] !== 'application/x-ndjson') return json(res, 406, { error: 'Content-Type header is not supported', status: 406 });
    if (this.busy > 0) {
      this.busy--;
      return json(res, 503, { error: { type: 'unavailable_shards_exception' }, status: 503 }, this.retryAfter ? { 'retry-after': this.retryAfter } : {});
    }
    if (!req.body.endsWith('\n')) return json(res, 400, { error: { type: 'illegal_argument_exception', reason: 'The bulk request must be terminated by a newline [\\n]' }, status: 400 });
    const lines = req.body.slice(0, -1).split('\n');
    if (lines.length % 2 !== 0) return json(res, 400, { error: { type: 'illegal_argument_exception', reason: 'action without source' }, status: 400 });
    const items: unknown[] = [];
    for (let i = 0; i < lines.length; i += 2) {
      const action = JSON.parse(lines[i] as string) as { create?: { _index?: string; _id?: string } };
      const doc = JSON.parse(lines[i + 1] as string) as Record<string, unknown>;
      if (!action.create?._index || !action.create._id) return json(res, 400, { error: { type: 'action_request_validation_exception' }, status: 400 });
      items.push({ create: this.createOne(action.create._index, action.create._id, doc) });
    }
    const errors = items.some((it) => ((it as { create: { status: number } }).create.status >= 300));
    json(res, 200, { took: 1, errors, items });
  }

  private createOne(index: string, id: string, doc: Record<string, unknown>): Record<string, unknown> {
    const fail = this.failIds.get(id);
    if (fail?.kind === 'mapping') {
      return { _index: index, _id: id, status: 400, error: { type: 'document_parsing_exception', reason: `[1:2] failed to parse field [x] of type [long]: preview ${JSON.stringify(doc)}` } };
    }
    if (fail && fail.times > 0) {
      fail.times--;
      return { _index: index, _id: id, status: 429, error: { type: 'es_rejected_execution_exception', reason: 'rejected execution of coordinating operation' } };
    }
    const key = `${index}/${id}`;
    if (this.docs.has(key)) {
      return { _index: index, _id: id, status: 409, error: { type: 'version_conflict_engine_exception', reason: `[${id}]: version conflict, document already exists (current version [1])` } };
    }
    this.docs.set(key, { index, doc });
    return { _index: index, _id: id, _version: 1, result: 'created', status: 201 };
  }
}

export interface WebhookDelivery {
  readonly batch: string;
  readonly timestamp: number;
  readonly body: string;
  readonly records?: AuditRecord[];
  readonly checkpoints?: Checkpoint[];
}

/** A webhook receiver that verifies the HMAC signature with the shared secret (its own code, not the sink's). */
export class FakeWebhook extends FakeReceiver {
  readonly deliveries: WebhookDelivery[] = [];
  badSignatures = 0;
  /** Answer this many requests with 500, with `retryAfter` if set. */
  failures = 0;
  retryAfter: string | undefined;
  /** Answer 400 (refuse every batch for good). */
  refuse = false;
  private constructor(
    server: Listening,
    private readonly secret: string,
  ) {
    super(server);
  }

  static async start(options: { secret: string; tls?: TlsFiles }): Promise<FakeWebhook> {
    const box: { hook?: FakeWebhook } = {};
    const server = await listen((req, res) => box.hook?.handle(req, res), options.tls);
    box.hook = new FakeWebhook(server, options.secret);
    return box.hook;
  }

  override get url(): string {
    return `${this.server.url}/hooks/audit`;
  }

  private handle(req: Received, res: ServerResponse): void {
    const timestamp = Number(req.headers['x-gatehouse-timestamp']);
    const given = Buffer.from(String(req.headers['x-gatehouse-signature'] ?? ''));
    const expected = Buffer.from(`sha256=${createHmac('sha256', this.secret).update(`${timestamp}.${req.body}`).digest('hex')}`);
    const fresh = Math.abs(Date.now() / 1000 - timestamp) <= 300;
    if (!fresh || given.length !== expected.length || !timingSafeEqual(given, expected)) {
      this.badSignatures++;
      return json(res, 401, { error: 'bad signature' });
    }
    if (this.failures > 0) {
      this.failures--;
      return json(res, 500, { error: 'internal' }, this.retryAfter ? { 'retry-after': this.retryAfter } : {});
    }
    if (this.refuse) return json(res, 400, { error: 'unsupported payload' });
    const parsed = JSON.parse(req.body) as { records?: AuditRecord[]; checkpoints?: Checkpoint[] };
    this.deliveries.push({ batch: String(req.headers['x-gatehouse-batch']), timestamp, body: req.body, ...parsed });
    json(res, 202, { ok: true });
  }
}

/** A self-signed P-256 certificate for 127.0.0.1, made with the openssl CLI. */
export function selfSignedCert(dir: string): TlsFiles {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
  } catch {
    throw new Error('the openssl CLI is required for the HTTPS sink tests');
  }
  const keyPath = join(dir, 'key.pem');
  const certPath = join(dir, 'cert.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', keyPath, '-out', certPath,
  ], { stdio: 'ignore' });
  return { keyPath, certPath };
}

/** `count` chained records of one source from `firstSeq`, as the shipper hands them to a sink. */
export function auditBatch(source: AuditSource, firstSeq: number, count: number, time = Date.UTC(2026, 0, 2, 3, 4, 5, 678)): ShippedRecord[] {
  const out: ShippedRecord[] = [];
  let prev = GENESIS_HASH;
  for (let seq = firstSeq; seq < firstSeq + count; seq++) {
    const event = { class_uid: 4002, activity_id: 3, time: time + seq, metadata: { uid: `evt-${source}-${seq}` }, url: { hostname: 'api.example.com' } };
    const line = composeLine(source, seq, prev, JSON.stringify(event));
    out.push({ source, seq, line, record: JSON.parse(line) as AuditRecord });
    prev = hashLine(line);
  }
  return out;
}

/** A signed checkpoint after `batch` (its last record). */
export function checkpointFor(batch: readonly ShippedRecord[]): Checkpoint {
  const last = batch[batch.length - 1];
  if (!last) throw new Error('empty batch');
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const kid = createPublicKey(publicKey.export({ type: 'spki', format: 'pem' })).export({ format: 'jwk' }).x as string;
  return signCheckpoint({ kid, privateKey, publicKeyPem: '' }, { source: last.source, segment: '000000000001.jsonl', seq: last.seq, hash: hashLine(last.line), time: new Date(Date.UTC(2026, 0, 2, 3, 5)).toISOString() });
}
