import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { auditBatch, checkpointFor, FakeHec, selfSignedCert, type TlsFiles } from '../../../test/support/fake-siem.js';
import { sinkKit } from '../../../test/support/sink-kit.js';
import type { Sink } from './sink.js';
import { createSplunkHecSink, type SplunkHecSettings } from './splunk-hec.js';

const TOKEN = 'a1b2c3d4-hec-secret-token-5e6f7a8b9c0d';
/** Every result a sink returned in this file, checked for the token at the end. */
const { ctx, results, open, track, closeAll } = sinkKit();

const settings = (url: string, extra: Partial<SplunkHecSettings> = {}): SplunkHecSettings => ({
  name: 'splunk',
  type: 'splunk_hec',
  url,
  token: 'env:TEST_HEC_TOKEN',
  batchMax: 500,
  timeoutMs: 2000,
  resendWindowMs: 10_000,
  ...extra,
});

async function hec(options: { ack?: boolean; tls?: TlsFiles } = {}): Promise<FakeHec> {
  const server = await FakeHec.start({ token: TOKEN, ...options });
  open.push(server);
  return server;
}

async function sink(s: SplunkHecSettings): Promise<Sink> {
  const created = await createSplunkHecSink(s, ctx, { ackPollIntervalMs: 10 });
  open.push(created);
  return created;
}

beforeAll(() => {
  process.env['TEST_HEC_TOKEN'] = TOKEN;
  process.env['TEST_HEC_WRONG_TOKEN'] = 'ffffffff-wrong-secret-token-00000000';
});

afterEach(closeAll);

describe('splunk_hec sink', () => {
  it('sends concatenated event envelopes and counts them delivered once the indexer acknowledges', async () => {
    const server = await hec();
    const s = await sink(settings(server.url, { index: 'security' }));
    const batch = auditBatch('egress', 1, 3);
    expect(await track(s.send(batch))).toEqual({ status: 'delivered' });

    const req = server.requests[0];
    expect(req?.url).toBe('/services/collector/event');
    expect(req?.headers.authorization).toBe(`Splunk ${TOKEN}`);
    expect(req?.body.startsWith('[')).toBe(false);
    expect(server.events).toHaveLength(3);
    expect(server.events[0]).toEqual({
      time: batch[0]!.record.event['time'] as number / 1000,
      host: 'gh-test-host',
      source: 'gatehouse:egress',
      sourcetype: 'ocsf:gatehouse',
      index: 'security',
      event: batch[0]!.record,
    });
    expect(server.events.map((e) => (e['event'] as { seq: number }).seq)).toEqual([1, 2, 3]);
    // One channel per sink instance, a UUID, used for the ack query too.
    expect(server.ackPolls).toBe(1);
    const ackReq = server.requests[1];
    expect(ackReq?.url).toMatch(/^\/services\/collector\/ack\?channel=[0-9a-f-]{36}$/);
    expect(ackReq?.headers['x-splunk-request-channel']).toBe(req?.headers['x-splunk-request-channel']);
    expect(JSON.parse(ackReq?.body ?? '')).toEqual({ acks: [0] });
  });

  it('keeps the same channel across sends, and a custom sourcetype', async () => {
    const server = await hec();
    const s = await sink(settings(server.url, { sourcetype: 'gatehouse:ocsf' }));
    await track(s.send(auditBatch('broker', 1, 1)));
    await track(s.send(auditBatch('broker', 2, 1)));
    expect(server.channels).toHaveLength(2);
    expect(server.channels[0]).toBe(server.channels[1]);
    expect(server.events.map((e) => e['sourcetype'])).toEqual(['gatehouse:ocsf', 'gatehouse:ocsf']);
    expect(server.events[0]).not.toHaveProperty('index');
  });

  it('waits through pending acknowledgements, then delivers', async () => {
    const server = await hec();
    server.pendingPolls = 3;
    const s = await sink(settings(server.url));
    expect(await track(s.send(auditBatch('egress', 1, 2)))).toEqual({ status: 'delivered' });
    expect(server.ackPolls).toBe(4);
  });

  it('returns retry (nothing kept) when the acknowledgement never comes, and the resend is delivered', async () => {
    const server = await hec();
    server.neverAck = true;
    const s = await sink(settings(server.url, { timeoutMs: 200 }));
    const batch = auditBatch('egress', 1, 2);
    const first = await track(s.send(batch));
    expect(first).toMatchObject({ status: 'retry', kept: 0 });
    expect(first.status === 'retry' && first.error).toMatch(/acknowledgement/);
    expect(server.ackPolls).toBeGreaterThanOrEqual(3);

    server.neverAck = false;
    expect(await track(s.send(batch))).toEqual({ status: 'delivered' });
    // At least once: the resent batch is indexed again (the seq lets the SIEM dedupe).
    expect(server.events).toHaveLength(4);
  });

  it('by default polls at least three times within the timeout, and stays inside the shipper\'s hang guard', async () => {
    const server = await hec();
    server.neverAck = true;
    const timeoutMs = 300;
    const s = await createSplunkHecSink(settings(server.url, { timeoutMs }), ctx);
    open.push(s);
    const started = performance.now();
    expect(await track(s.send(auditBatch('egress', 1, 1)))).toMatchObject({ status: 'retry', kept: 0 });
    expect(server.ackPolls).toBeGreaterThanOrEqual(3);
    // core/audit/shipper/sink-runner.ts gives a send 3 x timeout + 1 s before it gives up on it.
    expect(performance.now() - started).toBeLessThan(3 * timeoutMs + 1000);
  });

  it('close() ends a wait for an acknowledgement with retry', async () => {
    const server = await hec();
    server.neverAck = true;
    const s = await createSplunkHecSink(settings(server.url, { timeoutMs: 20_000 }), ctx, { ackPollIntervalMs: 10 });
    const polled = server.nextAckPoll();
    const pending = track(s.send(auditBatch('egress', 1, 1)));
    await polled;
    await s.close();
    const r = await pending;
    expect(r).toMatchObject({ status: 'retry', kept: 0 });
    expect(r.status === 'retry' && r.error).toMatch(/closed/);
  });

  it('retries a busy HEC (503) honouring Retry-After, then delivers', async () => {
    const server = await hec();
    server.busy = 1;
    server.retryAfter = '7';
    const s = await sink(settings(server.url));
    const batch = auditBatch('gateway', 10, 2);
    const first = await track(s.send(batch));
    expect(first).toMatchObject({ status: 'retry', kept: 0, retryAfterMs: 7000 });
    expect(server.events).toHaveLength(0);
    expect(await track(s.send(batch))).toEqual({ status: 'delivered' });
    expect(server.events).toHaveLength(2);
  });

  it('dead-letters the whole batch on 400 code 6 (invalid data) instead of retrying it forever', async () => {
    const server = await hec();
    server.invalidData = true;
    const s = await sink(settings(server.url));
    const batch = auditBatch('egress', 1, 3);
    const r = await track(s.send(batch));
    expect(r.status).toBe('delivered');
    expect(r.status === 'delivered' && r.deadLetter).toEqual(batch);
    expect(r).toMatchObject({ reason: expect.stringMatching(/code 6/) });
  });

  it('retries when the channel is missing (400 code 10): a configuration problem, not bad data', async () => {
    const server = await hec();
    const s = await sink(settings(server.url, { ack: false }));
    const r = await track(s.send(auditBatch('egress', 1, 1)));
    expect(r).toMatchObject({ status: 'retry', kept: 0 });
    expect(r.status === 'retry' && r.error).toMatch(/code 10/);
  });

  it('without ack, a 200 is delivered and no channel or ack query is used', async () => {
    const server = await hec({ ack: false });
    const s = await sink(settings(server.url, { ack: false }));
    expect(await track(s.send(auditBatch('sds', 1, 2)))).toEqual({ status: 'delivered' });
    expect(server.requests).toHaveLength(1);
    expect(server.requests[0]?.headers['x-splunk-request-channel']).toBeUndefined();
  });

  it('retries with "token rejected" on 403 and never returns the token', async () => {
    const server = await hec();
    const s = await sink(settings(server.url, { token: 'env:TEST_HEC_WRONG_TOKEN' }));
    const r = await track(s.send(auditBatch('egress', 1, 1)));
    expect(r).toMatchObject({ status: 'retry', kept: 0 });
    expect(r.status === 'retry' && r.error).toMatch(/token rejected \(403\)/);
    // The fake echoes the token it got in its 403 body; none of it may come back.
    expect(JSON.stringify(r)).not.toContain('wrong-secret');
  });

  it('retries on a network error with a short reason', async () => {
    const server = await hec();
    const url = server.url;
    await server.close();
    const s = await sink(settings(url));
    const r = await track(s.send(auditBatch('egress', 1, 1)));
    expect(r).toMatchObject({ status: 'retry', kept: 0 });
    expect(r.status === 'retry' && r.error).toMatch(/^connection failed \(/);
  });

  it('retries a 200 that is not HEC\'s JSON answer, and names a receiver that does not speak HTTP', async () => {
    // A cut-off answer or a middlebox page says nothing about the events: counting it delivered would lose them.
    const page = createHttpServer((req, res) => req.resume().on('end', () => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>ok</html>')));
    // Bytes that are not an HTTP response at all.
    const garbage = createNetServer((socket) => socket.once('data', () => socket.end('\x00\x17not http\r\n\r\n')));
    for (const server of [page, garbage]) {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      open.push({ close: () => new Promise<void>((resolve) => server.close(() => resolve())) });
    }
    const url = (server: { address(): unknown }): string => `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const fromPage = await track((await sink(settings(url(page), { ack: false }))).send(auditBatch('egress', 1, 1)));
    expect(fromPage).toEqual({ status: 'retry', kept: 0, error: 'HEC answered 200 without its JSON reply; the batch is sent again' });
    const fromGarbage = await track((await sink(settings(url(garbage)))).send(auditBatch('egress', 1, 1)));
    expect(fromGarbage).toEqual({ status: 'retry', kept: 0, error: 'the receiver did not answer in HTTP/1.1' });
  });

  it('sends checkpoints as gatehouse:checkpoint events, acknowledged', async () => {
    const server = await hec();
    const s = await sink(settings(server.url));
    const cp = checkpointFor(auditBatch('egress', 1, 5));
    expect(await track(s.sendCheckpoints([cp]))).toEqual({ status: 'delivered' });
    expect(server.events).toEqual([
      { time: Date.parse(cp.time) / 1000, host: 'gh-test-host', source: 'gatehouse:egress', sourcetype: 'gatehouse:checkpoint', event: cp },
    ]);
    expect(server.ackPolls).toBe(1);
    expect(s.healthy()).toBe(true);
  });

  describe('over HTTPS', () => {
    let dir: string;
    let tls: TlsFiles;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'gh-hec-tls-'));
      tls = selfSignedCert(dir);
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('verifies the receiver with tls.ca and refuses it without', async () => {
      const server = await hec({ tls });
      const trusting = await sink(settings(server.url, { tls: { ca: `file:${tls.certPath}` } }));
      expect(await track(trusting.send(auditBatch('egress', 1, 1)))).toEqual({ status: 'delivered' });
      const sent = server.requests.length;

      const untrusting = await sink(settings(server.url));
      const r = await track(untrusting.send(auditBatch('egress', 2, 1)));
      expect(r).toMatchObject({ status: 'retry', kept: 0 });
      expect(r.status === 'retry' && r.error).toMatch(/SELF_SIGNED|CERT|certificate/i);
      expect(server.requests.length).toBe(sent);
    });
  });

  it('never puts the token in anything it returned in this file', () => {
    expect(results.length).toBeGreaterThanOrEqual(17);
    const all = JSON.stringify(results);
    expect(all).not.toContain(TOKEN);
    expect(all).not.toContain('secret-token');
    expect(all).not.toContain('wrong-secret');
  });
});
