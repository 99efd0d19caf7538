import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { request, type Agent } from 'undici';
import type { SinkSettings } from '../../policy/compile-audit.js';
import type { Checkpoint } from '../checkpoint.js';
import { createSinkAgent, describeFailure, readJsonCapped, retryAfterMs } from './http-client.js';
import type { SendResult, ShippedRecord, Sink, SinkContext } from './sink.js';

export type SplunkHecSettings = Extract<SinkSettings, { type: 'splunk_hec' }>;

export interface SplunkHecOptions {
  /** Time between indexer-acknowledgement queries. Absent: 1000 ms, less when the timeout is under 3 s. */
  readonly ackPollIntervalMs?: number;
}

const MIN_ACK_POLLS = 3;
const RESPONSE_CAP = 64 * 1024;
// "Troubleshoot HTTP Event Collector", possible error codes. Our own vocabulary: the receiver's text is never echoed.
const HEC_CODES: Readonly<Record<number, string>> = {
  5: 'No data', 6: 'Invalid data format', 7: 'Incorrect index', 9: 'Server is busy', 10: 'Data channel is missing',
  11: 'Invalid data channel', 12: 'Event field is required', 13: 'Event field cannot be blank', 14: 'ACK is disabled',
  15: 'Error in handling indexed fields', 16: 'Query string authorization is not enabled',
};
/** 400 codes that describe our configuration or channel, not the data: sending the batch again can succeed. */
const RETRY_400 = new Set([7, 10, 11, 14, 16]);

type Reply =
  | { readonly ok: true; readonly status: number; readonly retryAfterMs: number | undefined; readonly json: unknown }
  | { readonly ok: false; readonly failure: string };

/**
 * Splunk HTTP Event Collector sink.
 *
 * Wire format ("Format events for HTTP Event Collector", event metadata): `POST {url}/services/collector/event`
 * with `Authorization: Splunk <token>`; the body is JSON objects one after another (not an array), one per record:
 * `{"time": <event.time in epoch seconds, float>, "host", "source": "gatehouse:<source>", "sourcetype", ["index"],
 * "event": <the whole AuditRecord, so seq and prev travel with it>}`. Checkpoints go the same way with sourcetype
 * `gatehouse:checkpoint`.
 *
 * Indexer acknowledgement ("About HTTP Event Collector Indexer Acknowledgment", on by default here): every request
 * carries `X-Splunk-Request-Channel: <a UUID fixed per sink>`; HEC answers 200 `{"text":"Success","code":0,"ackId":N}`
 * before indexing, and `POST /services/collector/ack?channel=<uuid>` `{"acks":[N]}` answers `{"acks":{"N":true}}`
 * once indexed. A batch counts as delivered only then; without the ack in time it is sent again (at least once,
 * where Vector marks it Rejected). A 200 without an ackId (a token with acknowledgement off) counts as delivered.
 *
 * Status codes ("Troubleshoot HTTP Event Collector"): 400 with a data code (5, 6, 12, 13, 15) dead-letters the
 * batch; 400 codes 7, 10, 11, 14, 16 (index, channel, configuration), 401/403, 413, 429, 5xx and network errors
 * are retried, honouring Retry-After.
 */
export async function createSplunkHecSink(settings: SplunkHecSettings, ctx: SinkContext, options: SplunkHecOptions = {}): Promise<Sink> {
  const token = await ctx.secret(settings.token);
  // SECURITY: a token with a control character would split the header; say so without the value.
  if (!/^[\x21-\x7e]+$/.test(token)) throw new Error(`the HEC token from ${settings.token} has characters not allowed in a header`);
  const agent: Agent = await createSinkAgent({ url: settings.url, ca: settings.tls?.ca, serverName: settings.tls?.server_name, timeoutMs: settings.timeoutMs });
  const base = settings.url.replace(/\/+$/, '');
  const ack = settings.ack ?? true;
  const channel = randomUUID();
  // About once a second, but at least MIN_ACK_POLLS queries within the timeout: the whole send (POST plus ack
  // wait) then stays inside about twice the timeout, which the shipper's hang guard allows for.
  const pollMs = options.ackPollIntervalMs ?? Math.max(20, Math.min(1000, Math.floor(settings.timeoutMs / MIN_ACK_POLLS)));
  const closing = new AbortController();
  const headers: Record<string, string> = {
    authorization: `Splunk ${token}`,
    'content-type': 'application/json',
    ...(ack ? { 'x-splunk-request-channel': channel } : {}),
  };
  const host = JSON.stringify(ctx.hostname);
  const index = settings.index === undefined ? '' : `"index":${JSON.stringify(settings.index)},`;

  const envelope = (time: number | undefined, source: string, sourcetype: string, eventJson: string): string =>
    `{${time === undefined ? '' : `"time":${time},`}"host":${host},"source":${JSON.stringify(`gatehouse:${source}`)},` +
    `"sourcetype":${JSON.stringify(sourcetype)},${index}"event":${eventJson}}`;

  const post = async (path: string, body: string, timeoutMs: number): Promise<Reply> => {
    try {
      const res = await request(`${base}${path}`, {
        dispatcher: agent,
        method: 'POST',
        headers,
        body,
        signal: AbortSignal.any([closing.signal, AbortSignal.timeout(Math.max(1, timeoutMs))]),
      });
      return { ok: true, status: res.statusCode, retryAfterMs: retryAfterMs(res.headers['retry-after']), json: await readJsonCapped(res.body, RESPONSE_CAP) };
    } catch (err) {
      return { ok: false, failure: describeFailure(err, closing.signal.aborted, timeoutMs) };
    }
  };

  const awaitAck = async (ackId: number): Promise<SendResult> => {
    const budget = Math.max(settings.timeoutMs, MIN_ACK_POLLS * pollMs);
    const deadline = Date.now() + budget;
    const query = JSON.stringify({ acks: [ackId] });
    let last = 'not yet indexed';
    for (let remaining = budget; remaining > 0; remaining = deadline - Date.now()) {
      try {
        await sleep(Math.min(pollMs, remaining), undefined, { signal: closing.signal });
      } catch {
        return retry('sink closed while waiting for the indexer acknowledgement');
      }
      const reply = await post(`/services/collector/ack?channel=${channel}`, query, Math.min(settings.timeoutMs, Math.max(deadline - Date.now(), pollMs)));
      if (!reply.ok) last = reply.failure;
      else if (reply.status === 200) {
        if (ackedIn(reply.json, ackId)) return { status: 'delivered' };
        last = 'not yet indexed';
      } else if (reply.status === 401 || reply.status === 403) return retry(`HEC token rejected (${reply.status})`);
      else if (reply.status === 400) return retry(`HEC refused the acknowledgement query (${describeCode(reply.json)})`);
      else last = `acknowledgement query answered ${reply.status}`;
    }
    return retry(`no indexer acknowledgement within ${budget} ms (${last}); the batch is sent again`);
  };

  const deliver = async (body: string, batch: readonly ShippedRecord[] | null): Promise<SendResult> => {
    const reply = await post('/services/collector/event', body, settings.timeoutMs);
    if (!reply.ok) return retry(reply.failure);
    const { status } = reply;
    if (status === 200) {
      // HEC always answers in JSON ({"text":"Success","code":0[,"ackId":N]}). A 200 with anything else (a cut-off
      // answer, a middlebox's page) does not show the events arrived: counting it delivered would lose them.
      if (typeof reply.json !== 'object' || reply.json === null) return retry('HEC answered 200 without its JSON reply; the batch is sent again', reply.retryAfterMs);
      const ackId = ack ? ackIdOf(reply.json) : undefined;
      return ackId === undefined ? { status: 'delivered' } : awaitAck(ackId);
    }
    const after = reply.retryAfterMs;
    if (status === 401 || status === 403) return retry(`HEC token rejected (${status})`, after);
    if (status === 413) return retry('HEC refused the body as too large (413): lower batch_max', after);
    if (status === 400) {
      const code = codeOf(reply.json);
      if (code !== undefined && RETRY_400.has(code)) return retry(`HEC refused the request (${describeCode(reply.json)})`, after);
      const reason = `HEC rejected the batch as invalid data (${describeCode(reply.json)})`;
      // Checkpoints have no dead-letter file (deadLetter holds records): keep them until HEC takes them.
      return batch === null ? retry(reason, after) : { status: 'delivered', deadLetter: batch, reason };
    }
    if (status === 429 || status >= 500) return retry(`HEC busy or failing (${status}${codeSuffix(reply.json)})`, after);
    return retry(`HEC answered ${status}`, after);
  };

  return {
    name: settings.name,
    type: 'splunk_hec',
    async send(batch: readonly ShippedRecord[]): Promise<SendResult> {
      if (batch.length === 0) return { status: 'delivered' };
      const sourcetype = settings.sourcetype ?? 'ocsf:gatehouse';
      const body = batch.map((r) => envelope(epochSeconds(r.record.event['time']), r.source, sourcetype, r.line)).join('\n');
      return deliver(body, batch);
    },
    async sendCheckpoints(checkpoints: readonly Checkpoint[]): Promise<SendResult> {
      if (checkpoints.length === 0) return { status: 'delivered' };
      const body = checkpoints.map((c) => envelope(epochSeconds(Date.parse(c.time)), c.source, 'gatehouse:checkpoint', JSON.stringify(c))).join('\n');
      return deliver(body, null);
    },
    healthy: () => true,
    async close(): Promise<void> {
      closing.abort();
      await agent.close();
    },
  };
}

function retry(error: string, after?: number): SendResult {
  return after === undefined ? { status: 'retry', kept: 0, error } : { status: 'retry', kept: 0, error, retryAfterMs: after };
}

/** event.time is OCSF milliseconds since the epoch; HEC wants seconds (a float keeps the milliseconds). */
function epochSeconds(ms: unknown): number | undefined {
  return typeof ms === 'number' && Number.isFinite(ms) ? ms / 1000 : undefined;
}

function field(json: unknown, key: string): unknown {
  return typeof json === 'object' && json !== null ? (json as Record<string, unknown>)[key] : undefined;
}

function ackIdOf(json: unknown): number | undefined {
  const id = field(json, 'ackId');
  return typeof id === 'number' && Number.isSafeInteger(id) && id >= 0 ? id : undefined;
}

function ackedIn(json: unknown, ackId: number): boolean {
  return field(field(json, 'acks'), String(ackId)) === true;
}

function codeOf(json: unknown): number | undefined {
  const code = field(json, 'code');
  return typeof code === 'number' && Number.isSafeInteger(code) ? code : undefined;
}

function codeSuffix(json: unknown): string {
  const code = codeOf(json);
  return code === undefined ? '' : `, code ${code}`;
}

function describeCode(json: unknown): string {
  const code = codeOf(json);
  if (code === undefined) return '400';
  return `400, code ${code}${HEC_CODES[code] ? `: ${HEC_CODES[code]}` : ''}`;
}


