import { request, type Agent } from 'undici';
import type { SinkSettings } from '../../policy/compile-audit.js';
import type { Checkpoint } from '../checkpoint.js';
import { createSinkAgent, describeFailure, readJsonCapped, retryAfterMs } from './http-client.js';
import type { SendResult, ShippedRecord, Sink, SinkContext } from './sink.js';

export type ElasticsearchSettings = Extract<SinkSettings, { type: 'elasticsearch' }>;

export const DEFAULT_ES_INDEX = 'gatehouse-audit';
// A bulk response holds one small item per action (fewer with filter_path); 10,000 records stay well under this.
const RESPONSE_CAP = 32 * 1024 * 1024;
// filter_path (ES "Common options", also in OpenSearch): only what the sink reads. Keeps responses small and
// leaves out error.reason, which quotes field values from the documents.
const BULK_PATH = '/_bulk?filter_path=errors,items.*.status,items.*.error.type';

type Reply =
  | { readonly ok: true; readonly status: number; readonly retryAfterMs: number | undefined; readonly json: unknown }
  | { readonly ok: false; readonly failure: string };

type ItemOutcome = 'ok' | 'retry' | 'dead';

interface Action {
  readonly id: string;
  readonly index: string;
  readonly doc: Readonly<Record<string, unknown>>;
}

/**
 * Elasticsearch / OpenSearch bulk sink.
 *
 * Wire format (Elasticsearch "Bulk API"; OpenSearch "Bulk"): `POST {url}/_bulk` with
 * `Content-Type: application/x-ndjson`, two lines per record, the last one ending in a newline:
 * `{"create":{"_index":"<index>","_id":"<source>-<seq>"}}` and the document, which is the record's event plus
 * `"@timestamp"` (ISO 8601 of event.time) and `"gatehouse": {"source","seq","prev"}`. `create` with a
 * deterministic `_id` makes a replay answer 409 (`version_conflict_engine_exception`), which counts as delivered,
 * and works for data streams too. Checkpoints go to `<index>-checkpoints` with `_id` `<source>-checkpoint-<seq>`.
 * Auth: `Authorization: ApiKey <key>` ("Create API key": the encoded form) or Basic.
 *
 * Results ("Bulk API", response body): 200 with `errors:false` is delivered. With `errors:true` the `items[]` are
 * read in order: 200/201/409 ok; 429, 5xx or `es_rejected_execution_exception` are retried (`kept` = leading ok
 * items; the rest is sent again, idempotent by `_id`); other 4xx (mapping errors) are dead-lettered. A whole-request
 * 429/5xx, 401/403, other 4xx (often a body over `http.max_content_length`) and network errors are retried.
 */
export async function createElasticsearchSink(settings: ElasticsearchSettings, ctx: SinkContext): Promise<Sink> {
  const authorization = await authHeader(settings, ctx);
  const agent: Agent = await createSinkAgent({ url: settings.url, ca: settings.tls?.ca, serverName: settings.tls?.server_name, timeoutMs: settings.timeoutMs });
  const base = settings.url.replace(/\/+$/, '');
  const index = settings.index ?? DEFAULT_ES_INDEX;
  const closing = new AbortController();
  const headers: Record<string, string> = { 'content-type': 'application/x-ndjson', ...(authorization ? { authorization } : {}) };

  const post = async (body: string): Promise<Reply> => {
    try {
      const res = await request(`${base}${BULK_PATH}`, {
        dispatcher: agent,
        method: 'POST',
        headers,
        body,
        signal: AbortSignal.any([closing.signal, AbortSignal.timeout(settings.timeoutMs)]),
      });
      return { ok: true, status: res.statusCode, retryAfterMs: retryAfterMs(res.headers['retry-after']), json: await readJsonCapped(res.body, RESPONSE_CAP) };
    } catch (err) {
      return { ok: false, failure: describeFailure(err, closing.signal.aborted, settings.timeoutMs) };
    }
  };

  const bulk = async (actions: readonly Action[], batch: readonly ShippedRecord[] | null): Promise<SendResult> => {
    if (actions.length === 0) return { status: 'delivered' };
    const body = actions.map((a) => `${JSON.stringify({ create: { _index: a.index, _id: a.id } })}\n${JSON.stringify(a.doc)}\n`).join('');
    const reply = await post(body);
    if (!reply.ok) return retry(0, reply.failure);
    const { status } = reply;
    const after = reply.retryAfterMs;
    if (status === 401 || status === 403) return retry(0, `Elasticsearch rejected the credentials (${status})`, after);
    if (status === 413) return retry(0, 'bulk body too large (413): lower batch_max or raise http.max_content_length', after);
    if (status === 429 || status >= 500) return retry(0, `Elasticsearch busy or failing (${status})`, after);
    if (status >= 400) return retry(0, `bulk request refused (${status}): the body may be too large or the index closed or invalid`, after);
    if (status !== 200) return retry(0, `bulk request answered ${status}`, after);
    const errors = field(reply.json, 'errors');
    if (errors === false) return { status: 'delivered' };
    const items = field(reply.json, 'items');
    if (errors !== true || !Array.isArray(items)) return retry(0, 'unreadable bulk response');
    if (items.length !== actions.length) return retry(0, `bulk response has ${items.length} items for ${actions.length} actions`);
    const outcomes = items.map(itemOutcome);
    const firstRetry = outcomes.indexOf('retry');
    if (firstRetry !== -1) {
      // Leading ok items are kept; from the first one that is not ok everything is sent again (create + _id: a
      // replay of what did land answers 409). A dead item before the retryable one is dead-lettered on the replay.
      const kept = outcomes.findIndex((o) => o !== 'ok');
      const count = outcomes.filter((o) => o === 'retry').length;
      return retry(kept, `${count} of ${actions.length} bulk items refused for now (first: ${itemLabel(items[firstRetry])})`, after);
    }
    const dead = outcomes.flatMap((o, i) => (o === 'dead' ? [i] : []));
    if (dead.length === 0) return { status: 'delivered' };
    const reason = `${dead.length} of ${actions.length} bulk items rejected (first: ${itemLabel(items[dead[0] as number])})`;
    // Checkpoints have no dead-letter file (deadLetter holds records): keep them until Elasticsearch takes them.
    if (batch === null) return retry(0, reason);
    return { status: 'delivered', deadLetter: dead.map((i) => batch[i] as ShippedRecord), reason };
  };

  return {
    name: settings.name,
    type: 'elasticsearch',
    send(batch: readonly ShippedRecord[]): Promise<SendResult> {
      return bulk(batch.map((r) => ({ index, id: `${r.source}-${r.seq}`, doc: recordDocument(r) })), batch);
    },
    sendCheckpoints(checkpoints: readonly Checkpoint[]): Promise<SendResult> {
      return bulk(
        checkpoints.map((c) => ({ index: `${index}-checkpoints`, id: `${c.source}-checkpoint-${c.seq}`, doc: { ...c, '@timestamp': c.time } })),
        null,
      );
    },
    healthy: () => true,
    async close(): Promise<void> {
      closing.abort();
      await agent.close();
    },
  };
}

/** The indexed document: a copy of the event with @timestamp and the chain fields; the record is not touched. */
export function recordDocument(r: ShippedRecord): Record<string, unknown> {
  const { event, source, seq, prev } = r.record;
  const time = event['time'];
  const stamp = typeof time === 'number' && Number.isFinite(time) ? new Date(time).toISOString() : undefined;
  return { ...event, ...(stamp === undefined ? {} : { '@timestamp': stamp }), gatehouse: { source, seq, prev } };
}

async function authHeader(settings: ElasticsearchSettings, ctx: SinkContext): Promise<string | undefined> {
  let value: string | undefined;
  if (settings.api_key !== undefined) value = `ApiKey ${await ctx.secret(settings.api_key)}`;
  else if (settings.username !== undefined && settings.password !== undefined) {
    const password = await ctx.secret(settings.password);
    value = `Basic ${Buffer.from(`${settings.username}:${password}`).toString('base64')}`;
  }
  // SECURITY: a credential with a control character would split the header; say so without the value.
  if (value !== undefined && !/^[\x20-\x7e]+$/.test(value)) throw new Error(`the Elasticsearch credential for sink ${settings.name} has characters not allowed in a header`);
  return value;
}

function itemOutcome(item: unknown): ItemOutcome {
  const { status, type } = itemFields(item);
  if (status === 200 || status === 201 || status === 409) return 'ok';
  if (status === 429 || status === undefined || status >= 500 || type === 'es_rejected_execution_exception') return 'retry';
  return 'dead';
}

/** `{"create": {"status", "error": {"type"}}}`: the one key is the action name. */
function itemFields(item: unknown): { status: number | undefined; type: string | undefined } {
  const inner = typeof item === 'object' && item !== null ? Object.values(item)[0] : undefined;
  const status = field(inner, 'status');
  const type = field(field(inner, 'error'), 'type');
  return { status: typeof status === 'number' ? status : undefined, type: typeof type === 'string' ? type : undefined };
}

/** Status and error type only: error.reason can quote the document. */
function itemLabel(item: unknown): string {
  const { status, type } = itemFields(item);
  const safeType = type !== undefined && /^[a-z0-9_]{1,80}$/.test(type) ? type : 'error';
  return `${status ?? 'no status'} ${safeType}`;
}

function retry(kept: number, error: string, after?: number): SendResult {
  return after === undefined ? { status: 'retry', kept, error } : { status: 'retry', kept, error, retryAfterMs: after };
}

function field(json: unknown, key: string): unknown {
  return typeof json === 'object' && json !== null ? (json as Record<string, unknown>)[key] : undefined;
}


