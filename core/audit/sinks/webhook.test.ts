import { createHmac } from 'node:crypto';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { auditBatch, checkpointFor, FakeWebhook } from '../../../test/support/fake-siem.js';
import { sinkKit } from '../../../test/support/sink-kit.js';
import { composeLine, GENESIS_HASH, type AuditRecord } from '../record-format.js';
import type { ShippedRecord, Sink } from './sink.js';
import { createWebhookSink, WEBHOOK_MAX_BODY_BYTES, webhookSignature, type WebhookSettings } from './webhook.js';

const SECRET = 'whsec-shared-secret-3f9a1c7e';
const { ctx, results, open, track, closeAll } = sinkKit();

const settings = (url: string, extra: Partial<WebhookSettings> = {}): WebhookSettings => ({
  name: 'hook',
  type: 'webhook',
  url,
  secret: 'env:TEST_WEBHOOK_SECRET',
  batchMax: 500,
  timeoutMs: 2000,
  resendWindowMs: 10_000,
  ...extra,
});

async function receiver(secret = SECRET): Promise<FakeWebhook> {
  const server = await FakeWebhook.start({ secret });
  open.push(server);
  return server;
}

async function sink(s: WebhookSettings): Promise<Sink> {
  const created = await createWebhookSink(s, ctx);
  open.push(created);
  return created;
}

beforeAll(() => {
  process.env['TEST_WEBHOOK_SECRET'] = SECRET;
});

afterEach(closeAll);

describe('webhook sink', () => {
  it('signature is hex HMAC-SHA256(secret, timestamp + "." + body)', () => {
    const body = '{"records":[]}';
    const expected = createHmac('sha256', 'k').update(`1700000000.${body}`).digest('hex');
    expect(webhookSignature('k', 1700000000, body)).toBe(expected);
    expect(webhookSignature('k', '1700000000', Buffer.from(body))).toBe(expected);
    expect(webhookSignature('k2', 1700000000, body)).not.toBe(expected);
  });

  it('posts the records as signed JSON the receiver verifies, with an idempotency key', async () => {
    const server = await receiver();
    const s = await sink(settings(server.url));
    const batch = auditBatch('egress', 4, 3);
    const before = Math.floor(Date.now() / 1000);
    expect(await track(s.send(batch))).toEqual({ status: 'delivered' });
    expect(server.badSignatures).toBe(0);
    expect(server.deliveries).toHaveLength(1);
    const d = server.deliveries[0]!;
    expect(d.batch).toBe('egress-4-6');
    expect(d.records).toEqual(batch.map((r) => r.record));
    // The exact log lines travel, so a receiver can re-hash the chain.
    expect(d.body).toBe(`{"records":[${batch.map((r) => r.line).join(',')}]}`);
    expect(d.timestamp).toBeGreaterThanOrEqual(before);
    const req = server.requests[0]!;
    expect(req.url).toBe('/hooks/audit');
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.headers['x-gatehouse-signature']).toBe(`sha256=${webhookSignature(SECRET, d.timestamp, d.body)}`);
  });

  it('a receiver with another secret refuses the signature: retried, not dead-lettered', async () => {
    const server = await receiver('some-other-secret');
    const s = await sink(settings(server.url));
    const r = await track(s.send(auditBatch('egress', 1, 1)));
    expect(server.badSignatures).toBe(1);
    expect(r).toMatchObject({ status: 'retry', kept: 0 });
    expect(r.status === 'retry' && r.error).toMatch(/\(401\)/);
  });

  it('retries a 500 honouring Retry-After, then delivers with the same batch key', async () => {
    const server = await receiver();
    server.failures = 1;
    server.retryAfter = '2';
    const s = await sink(settings(server.url));
    const batch = auditBatch('broker', 1, 2);
    expect(await track(s.send(batch))).toMatchObject({ status: 'retry', kept: 0, retryAfterMs: 2000 });
    expect(server.deliveries).toHaveLength(0);
    expect(await track(s.send(batch))).toEqual({ status: 'delivered' });
    expect(server.requests.map((r) => r.headers['x-gatehouse-batch'])).toEqual(['broker-1-2', 'broker-1-2']);
  });

  it('dead-letters the batch when the receiver refuses it for good (400)', async () => {
    const server = await receiver();
    server.refuse = true;
    const s = await sink(settings(server.url));
    const batch = auditBatch('egress', 1, 2);
    const r = await track(s.send(batch));
    expect(r.status === 'delivered' && r.deadLetter).toEqual(batch);
    expect(r).toMatchObject({ reason: expect.stringMatching(/\(400\)/) });
  });

  it('never sends a body over 10 MiB: the batch is dead-lettered with a clear reason', async () => {
    const server = await receiver();
    const s = await sink(settings(server.url));
    const event = { class_uid: 4002, time: Date.now(), pad: 'x'.repeat(WEBHOOK_MAX_BODY_BYTES) };
    const line = composeLine('egress', 1, GENESIS_HASH, JSON.stringify(event));
    const big: ShippedRecord[] = [{ source: 'egress', seq: 1, line, record: JSON.parse(line) as AuditRecord }];
    const r = await track(s.send(big));
    expect(r.status === 'delivered' && r.deadLetter).toEqual(big);
    expect(r).toMatchObject({ reason: expect.stringMatching(/10 MiB/) });
    expect(server.requests).toHaveLength(0);
  });

  it('retries on a network error', async () => {
    const server = await receiver();
    const url = server.url;
    await server.close();
    const s = await sink(settings(url));
    const r = await track(s.send(auditBatch('egress', 1, 1)));
    expect(r).toMatchObject({ status: 'retry', kept: 0 });
    expect(r.status === 'retry' && r.error).toMatch(/^connection failed \(/);
  });

  it('sends checkpoints as {"checkpoints":[...]}, signed', async () => {
    const server = await receiver();
    const s = await sink(settings(server.url));
    const cp = checkpointFor(auditBatch('control', 1, 2));
    expect(await track(s.sendCheckpoints([cp]))).toEqual({ status: 'delivered' });
    expect(server.badSignatures).toBe(0);
    expect(server.deliveries[0]?.checkpoints).toEqual([cp]);
    expect(server.deliveries[0]?.batch).toMatch(/^checkpoints-[0-9a-f]{16}$/);
  });

  it('never puts the secret or a signature in anything it returned in this file', () => {
    expect(results.length).toBeGreaterThanOrEqual(8);
    const all = JSON.stringify(results);
    expect(all).not.toContain(SECRET);
    expect(all).not.toContain('sha256=');
  });
});
