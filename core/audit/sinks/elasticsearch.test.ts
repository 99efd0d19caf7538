import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { auditBatch, checkpointFor, FakeElasticsearch } from '../../../test/support/fake-siem.js';
import { sinkKit } from '../../../test/support/sink-kit.js';
import { createElasticsearchSink, recordDocument, type ElasticsearchSettings } from './elasticsearch.js';
import type { Sink } from './sink.js';

const API_KEY = 'VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw-es-secret';
const PASSWORD = 'es-basic-secret-pw';
const BASIC = `Basic ${Buffer.from(`gatehouse:${PASSWORD}`).toString('base64')}`;
const { ctx, results, open, track, closeAll } = sinkKit();

const settings = (url: string, extra: Partial<ElasticsearchSettings> = {}): ElasticsearchSettings => ({
  name: 'elastic',
  type: 'elasticsearch',
  url,
  api_key: 'env:TEST_ES_API_KEY',
  batchMax: 500,
  timeoutMs: 2000,
  resendWindowMs: 10_000,
  ...extra,
});

async function es(auth = `ApiKey ${API_KEY}`): Promise<FakeElasticsearch> {
  const server = await FakeElasticsearch.start({ auth });
  open.push(server);
  return server;
}

async function sink(s: ElasticsearchSettings): Promise<Sink> {
  const created = await createElasticsearchSink(s, ctx);
  open.push(created);
  return created;
}

beforeAll(() => {
  process.env['TEST_ES_API_KEY'] = API_KEY;
  process.env['TEST_ES_PASSWORD'] = PASSWORD;
});

afterEach(closeAll);

describe('elasticsearch sink', () => {
  it('creates one document per record with a deterministic _id, @timestamp and the chain fields', async () => {
    const server = await es();
    const s = await sink(settings(server.url, { index: 'audit-x' }));
    const batch = auditBatch('egress', 1, 3);
    const before = JSON.stringify(batch);
    expect(await track(s.send(batch))).toEqual({ status: 'delivered' });

    const req = server.requests[0];
    expect(req?.headers['content-type']).toBe('application/x-ndjson');
    expect(req?.body.endsWith('\n')).toBe(true);
    expect(JSON.parse(req?.body.split('\n')[0] ?? '')).toEqual({ create: { _index: 'audit-x', _id: 'egress-1' } });
    expect([...server.docs.keys()]).toEqual(['audit-x/egress-1', 'audit-x/egress-2', 'audit-x/egress-3']);
    const first = batch[0]!;
    expect(server.docs.get('audit-x/egress-1')?.doc).toEqual({
      ...first.record.event,
      '@timestamp': new Date(first.record.event['time'] as number).toISOString(),
      gatehouse: { source: 'egress', seq: 1, prev: first.record.prev },
    });
    // The input is not mutated.
    expect(JSON.stringify(batch)).toBe(before);
    expect(recordDocument(first)).not.toBe(first.record.event);
  });

  it('authenticates with Basic when username and password are set', async () => {
    const server = await es(BASIC);
    const s = await sink(settings(server.url, { api_key: undefined, username: 'gatehouse', password: 'env:TEST_ES_PASSWORD' }));
    expect(await track(s.send(auditBatch('broker', 1, 1)))).toEqual({ status: 'delivered' });
    expect(server.docs.has('gatehouse-audit/broker-1')).toBe(true);
  });

  it('retries a whole-request 503 honouring Retry-After, then delivers', async () => {
    const server = await es();
    server.busy = 1;
    server.retryAfter = '3';
    const s = await sink(settings(server.url));
    const batch = auditBatch('egress', 1, 2);
    expect(await track(s.send(batch))).toMatchObject({ status: 'retry', kept: 0, retryAfterMs: 3000 });
    expect(server.docs.size).toBe(0);
    expect(await track(s.send(batch))).toEqual({ status: 'delivered' });
    expect(server.docs.size).toBe(2);
  });

  it('on a partial 429 keeps the leading ok records; the replay of the rest answers 409 for what landed and is ok', async () => {
    const server = await es();
    server.failIds.set('egress-3', { kind: 'rejected', times: 1 });
    const s = await sink(settings(server.url));
    const batch = auditBatch('egress', 1, 5);
    const first = await track(s.send(batch));
    expect(first).toMatchObject({ status: 'retry', kept: 2 });
    expect(first.status === 'retry' && first.error).toMatch(/429 es_rejected_execution_exception/);
    // Items 4 and 5 landed after the rejected one.
    expect(server.docs.has('gatehouse-audit/egress-4')).toBe(true);

    // What the shipper does: send the records after the kept ones again.
    const second = await track(s.send(batch.slice(2)));
    expect(second).toEqual({ status: 'delivered' });
    expect(server.docs.size).toBe(5);
    const replay = server.requests[1]?.body ?? '';
    expect(replay.split('\n').filter((l) => l.startsWith('{"create"'))).toHaveLength(3);
  });

  it('a full replay of an already indexed batch (all 409) is delivered', async () => {
    const server = await es();
    const s = await sink(settings(server.url));
    const batch = auditBatch('sds', 1, 3);
    await track(s.send(batch));
    expect(await track(s.send(batch))).toEqual({ status: 'delivered' });
    expect(server.docs.size).toBe(3);
  });

  it('dead-letters records with mapping errors and counts the batch handled, without quoting the document', async () => {
    const server = await es();
    server.failIds.set('egress-2', { kind: 'mapping', times: 0 });
    const s = await sink(settings(server.url));
    const batch = auditBatch('egress', 1, 3);
    const r = await track(s.send(batch));
    expect(r.status).toBe('delivered');
    expect(r.status === 'delivered' && r.deadLetter).toEqual([batch[1]]);
    expect(r).toMatchObject({ reason: expect.stringMatching(/400 document_parsing_exception/) });
    expect(JSON.stringify(r)).not.toContain('failed to parse');
    expect(server.docs.size).toBe(2);
  });

  it('a mapping error before a retryable item is not kept: it is dead-lettered on the replay', async () => {
    const server = await es();
    server.failIds.set('egress-2', { kind: 'mapping', times: 0 });
    server.failIds.set('egress-3', { kind: 'rejected', times: 1 });
    const s = await sink(settings(server.url));
    const batch = auditBatch('egress', 1, 4);
    expect(await track(s.send(batch))).toMatchObject({ status: 'retry', kept: 1 });
    const r = await track(s.send(batch.slice(1)));
    expect(r.status === 'delivered' && r.deadLetter).toEqual([batch[1]]);
    expect(server.docs.size).toBe(3);
  });

  it('retries with a clear error when the credentials are rejected, never echoing them', async () => {
    const server = await es('ApiKey something-else');
    const s = await sink(settings(server.url));
    const r = await track(s.send(auditBatch('egress', 1, 1)));
    expect(r).toMatchObject({ status: 'retry', kept: 0 });
    expect(r.status === 'retry' && r.error).toMatch(/credentials \(401\)/);
  });

  it('retries a whole-request 4xx saying the body may be too large', async () => {
    const server = await es();
    const s = await sink(settings(server.url, { url: `${server.url}/no-such-path` }));
    const r = await track(s.send(auditBatch('egress', 1, 1)));
    expect(r.status === 'retry' && r.error).toMatch(/refused \(404\): the body may be too large/);
  });

  it('indexes checkpoints into <index>-checkpoints with a deterministic _id', async () => {
    const server = await es();
    const s = await sink(settings(server.url));
    const cp = checkpointFor(auditBatch('gateway', 1, 7));
    expect(await track(s.sendCheckpoints([cp]))).toEqual({ status: 'delivered' });
    expect(server.docs.get('gatehouse-audit-checkpoints/gateway-checkpoint-7')?.doc).toEqual({ ...cp, '@timestamp': cp.time });
    expect(await track(s.sendCheckpoints([cp]))).toEqual({ status: 'delivered' });
  });

  it('never puts the API key or password in anything it returned in this file', () => {
    expect(results.length).toBeGreaterThanOrEqual(14);
    const all = JSON.stringify(results);
    for (const secret of [API_KEY, PASSWORD, BASIC.slice('Basic '.length), 'es-secret']) expect(all).not.toContain(secret);
  });
});
