import { createHash, createHmac } from 'node:crypto';
import { request, type Agent } from 'undici';
import type { SinkSettings } from '../../policy/compile-audit.js';
import type { Checkpoint } from '../checkpoint.js';
import { createSinkAgent, describeFailure, retryAfterMs } from './http-client.js';
import type { SendResult, ShippedRecord, Sink, SinkContext } from './sink.js';

export type WebhookSettings = Extract<SinkSettings, { type: 'webhook' }>;

/** Largest request body the sink sends; a bigger batch is dead-lettered (split it with batch_max). */
export const WEBHOOK_MAX_BODY_BYTES = 10 * 1024 * 1024;
const RESPONSE_CAP = 64 * 1024;

type Reply =
  | { readonly ok: true; readonly status: number; readonly retryAfterMs: number | undefined }
  | { readonly ok: false; readonly failure: string };

/**
 * The webhook signature: hex HMAC-SHA256 keyed with the shared secret over `<timestamp>.<body>`, where timestamp
 * is the X-Gatehouse-Timestamp value (unix seconds) and body the exact request bytes. Sent as
 * `X-Gatehouse-Signature: sha256=<this>`. Receivers compare in constant time and refuse stale timestamps
 * (a replay window of a few minutes).
 */
export function webhookSignature(secret: string, timestamp: number | string, body: string | Buffer): string {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex');
}

/**
 * Generic webhook sink.
 *
 * Wire format: `POST {url}` with `Content-Type: application/json` and the body `{"records":[<AuditRecord>...]}`
 * (the exact log lines, so receivers can re-hash the chain) or `{"checkpoints":[<Checkpoint>...]}`. Headers:
 * `X-Gatehouse-Timestamp: <unix seconds>`, `X-Gatehouse-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`
 * (see webhookSignature) and `X-Gatehouse-Batch: <source>-<firstSeq>-<lastSeq>`, an idempotency key that is the
 * same when a batch is sent again (for checkpoints: `checkpoints-<sha256 of the body, 16 hex>`).
 *
 * Results: 2xx delivered; 408, 429, 5xx and network errors retried honouring Retry-After (RFC 9110 §10.2.3);
 * 401/403 retried (a secret or credential mismatch is configuration, not a bad batch); other 4xx dead-letter the
 * batch. A body over 10 MiB is never sent: the batch is dead-lettered.
 */
export async function createWebhookSink(settings: WebhookSettings, ctx: SinkContext): Promise<Sink> {
  const secret = await ctx.secret(settings.secret);
  const agent: Agent = await createSinkAgent({ url: settings.url, ca: settings.tls?.ca, serverName: settings.tls?.server_name, timeoutMs: settings.timeoutMs });
  const closing = new AbortController();

  const post = async (body: string, batchKey: string): Promise<Reply> => {
    const timestamp = Math.floor(Date.now() / 1000);
    try {
      const res = await request(settings.url, {
        dispatcher: agent,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-gatehouse-timestamp': String(timestamp),
          'x-gatehouse-signature': `sha256=${webhookSignature(secret, timestamp, body)}`,
          'x-gatehouse-batch': batchKey,
        },
        body,
        signal: AbortSignal.any([closing.signal, AbortSignal.timeout(settings.timeoutMs)]),
      });
      await drainCapped(res.body);
      return { ok: true, status: res.statusCode, retryAfterMs: retryAfterMs(res.headers['retry-after']) };
    } catch (err) {
      return { ok: false, failure: describeFailure(err, closing.signal.aborted, settings.timeoutMs) };
    }
  };

  const deliver = async (body: string, batchKey: string, batch: readonly ShippedRecord[] | null): Promise<SendResult> => {
    const bytes = Buffer.byteLength(body);
    if (bytes > WEBHOOK_MAX_BODY_BYTES) {
      const reason = `batch body is ${bytes} bytes, over the 10 MiB webhook limit: lower batch_max`;
      return batch === null ? retry(reason) : { status: 'delivered', deadLetter: batch, reason };
    }
    const reply = await post(body, batchKey);
    if (!reply.ok) return retry(reply.failure);
    const { status } = reply;
    const after = reply.retryAfterMs;
    if (status >= 200 && status < 300) return { status: 'delivered' };
    if (status === 408 || status === 429 || status >= 500) return retry(`webhook busy or failing (${status})`, after);
    if (status === 401 || status === 403) return retry(`webhook receiver rejected the signature or credentials (${status})`, after);
    if (status >= 400) {
      const reason = `webhook receiver refused the batch (${status})`;
      // Checkpoints have no dead-letter file (deadLetter holds records): keep them until the receiver takes them.
      return batch === null ? retry(reason, after) : { status: 'delivered', deadLetter: batch, reason };
    }
    // 1xx/3xx: redirects are not followed (the signature and the audit data stay with the configured receiver).
    return retry(`webhook answered ${status}`, after);
  };

  return {
    name: settings.name,
    type: 'webhook',
    async send(batch: readonly ShippedRecord[]): Promise<SendResult> {
      const first = batch[0];
      const last = batch[batch.length - 1];
      if (first === undefined || last === undefined) return { status: 'delivered' };
      // The exact log lines: byte-identical to JSON.stringify of each record, so receivers can verify the chain.
      const body = `{"records":[${batch.map((r) => r.line).join(',')}]}`;
      return deliver(body, `${first.source}-${first.seq}-${last.seq}`, batch);
    },
    async sendCheckpoints(checkpoints: readonly Checkpoint[]): Promise<SendResult> {
      if (checkpoints.length === 0) return { status: 'delivered' };
      const body = JSON.stringify({ checkpoints });
      return deliver(body, `checkpoints-${createHash('sha256').update(body).digest('hex').slice(0, 16)}`, null);
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

/** Consume at most RESPONSE_CAP bytes of the answer (only the status matters). */
async function drainCapped(body: AsyncIterable<Buffer>): Promise<void> {
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size >= RESPONSE_CAP) break;
  }
}

