// Upstream forwarding under hostile or broken input: the broker is never an open relay (the host is fixed by the
// policy; traversal, encoded separators, absolute-form targets and Host tricks cannot move it), upstream TLS is
// verified strictly, bodies are capped, and every failure is a refusal with its reason code and one audit event.
// One commented row per case; assertions are on reason codes, statuses and what reached the origins.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Reason } from '../core/errors/index.js';
import { startBrokerHarness, type BrokerHarness } from '../test/support/broker-harness.js';
import { hold, json, makeTestPki, startRecordingOrigin, type RecordingOrigin } from '../test/support/recording-origin.js';

const tag = randomBytes(4).toString('hex');
const ENV_KEY = `GH_UT_BAD_KEY_${tag}`;
const KEY = `sk-bad-input-${randomBytes(20).toString('hex')}`;
const SLOW_TIMEOUT_MS = 600;
/** Failure guard for raw exchanges: a row that gets no answer fails after this long instead of hanging. */
const GUARD_MS = 10_000;

let dir: string;
let caPath: string;
let origin: RecordingOrigin;
/** An HTTPS origin whose certificate a different CA signed: what a MITM or a wrong endpoint would present. */
let stranger: RecordingOrigin;
let closedPort: number;
let h: BrokerHarness;
let token: string;
const secrets: string[] = [KEY];
const clientSaw: string[] = [];

const policy = (originUrl: string, strangerUrl: string): string => {
  const cred = `credential: {type: bearer, value: "env:${ENV_KEY}"}`;
  const ca = `tls: {ca: "file:${caPath}"}`;
  return `version: 1
broker:
  upstreams:
    - {name: model, url: "${originUrl}/model", ${cred}, ${ca}, max_request_bytes: 1KiB}
    - {name: other, url: "${originUrl}/other", ${cred}, ${ca}}
    - {name: v1, url: "${originUrl}/v1-upstream", ${cred}, ${ca}}
    - {name: ungranted, url: "${originUrl}/ungranted", ${cred}, ${ca}}
    - {name: slow, url: "${originUrl}/slow", ${cred}, ${ca}, timeout: ${SLOW_TIMEOUT_MS}ms}
    - {name: stranger, url: "${strangerUrl}/stranger", ${cred}, ${ca}}
    - {name: system-ca, url: "${originUrl}/system-ca", ${cred}}
    - {name: wrong-name, url: "${originUrl}/wrong-name", ${cred}, tls: {ca: "file:${caPath}", server_name: api.example.com}}
    - {name: refused, url: "https://127.0.0.1:${closedPort}/refused", ${cred}, ${ca}}
tenants:
  - name: acme
    broker:
      upstreams: [model, other, v1, ungranted, slow, stranger, system-ca, wrong-name, refused]
  - name: tight
    broker:
      upstreams: [model]
      limits: {per_session: {max_concurrent: 1, burst: 50}}
  - name: trickle
    broker:
      upstreams: [model]
      limits: {per_session: {requests_per_second: 0.01, burst: 2}}
`;
};

interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
  readonly reason: string | undefined;
  readonly id: string;
}

const toReply = (status: number, headers: Reply['headers'], text: string): Reply => {
  clientSaw.push(String(status), JSON.stringify(headers), text);
  let reason: string | undefined;
  try {
    reason = (JSON.parse(text) as { error?: { reason?: string } }).error?.reason;
  } catch {
    reason = undefined;
  }
  return { status, headers, text, reason, id: String(headers['x-gatehouse-correlation-id'] ?? '') };
};

async function call(path: string, init: { method?: string; headers?: Record<string, string>; body?: string | Readable } = {}, bearer = token): Promise<Reply> {
  const res = await request(`${h.url}${path}`, {
    method: (init.method ?? 'GET') as 'GET',
    headers: { authorization: `Bearer ${bearer}`, ...init.headers },
    ...(init.body !== undefined ? { body: init.body } : {}),
    headersTimeout: GUARD_MS,
  });
  return toReply(res.statusCode, res.headers, await res.body.text());
}

/** Send a raw request head (exactly these bytes: no client normalises the target) and read the whole answer. */
function raw(head: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const port = Number(new URL(h.url).port);
    const socket = connect({ host: '127.0.0.1', port }, () => socket.write(head));
    let text = '';
    socket.setEncoding('latin1');
    socket.setTimeout(GUARD_MS, () => {
      socket.destroy();
      reject(new Error(`no answer within ${GUARD_MS} ms to ${JSON.stringify(head.slice(0, 80))}`));
    });
    socket.on('data', (c: string) => (text += c));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      const end = text.indexOf('\r\n\r\n');
      if (end === -1) return resolve(toReply(0, {}, text));
      const [status = '', ...lines] = text.slice(0, end).split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
      resolve(toReply(Number(status.split(' ')[1]), headers, text.slice(end + 4)));
    });
  });
}

/** A GET with exactly this target and Host; `ORIGIN_PORT` in the target stands for the origin's port. */
const rawGet = (target: string, host = '127.0.0.1', extra = ''): Promise<Reply> =>
  raw(`GET ${target.replace('ORIGIN_PORT', String(origin.port))} HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${token}\r\n${extra}Connection: close\r\n\r\n`);

interface Event {
  readonly status_detail: string;
  readonly api?: { readonly operation: string; readonly response?: { readonly code: number } };
  readonly unmapped: { readonly gatehouse: { readonly upstream?: string } };
}
const eventFor = async (id: string): Promise<Event> => (await h.waitForEvent((e) => (e['metadata'] as { uid: string }).uid === id)) as unknown as Event;

/** A port that refuses connections: bound, noted, closed. */
async function refusingPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** Resolves with true when `p` settles within `ms` (a failure guard, not synchronisation). */
const within = (p: Promise<unknown>, ms: number): Promise<boolean> =>
  new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    void p.then(() => {
      clearTimeout(timer);
      resolve(true);
    });
  });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-upstream-bad-'));
  const [pki, otherPki] = await Promise.all([makeTestPki(join(dir, 'pki')), makeTestPki(join(dir, 'other-pki'), 'Some Other CA')]);
  caPath = pki.caPath;
  origin = await startRecordingOrigin(pki);
  origin.on('/', json(200, { ok: true }));
  origin.on('/slow', hold);
  origin.on('/model/hold', hold);
  stranger = await startRecordingOrigin(otherPki);
  stranger.on('/', json(200, { ok: true }));
  closedPort = await refusingPort();
  process.env[ENV_KEY] = KEY;
  h = await startBrokerHarness(policy(origin.url, stranger.url));
  token = await h.token({ upstreams: ['model', 'other', 'v1', 'slow', 'stranger', 'system-ca', 'wrong-name', 'refused'] });
  secrets.push(token);
}, 60_000);

afterAll(async () => {
  await h?.close();
  await origin?.close();
  await stranger?.close();
  delete process.env[ENV_KEY];
  await rm(dir, { recursive: true, force: true });
});

describe('never an open relay', () => {
  // Request targets sent byte for byte. Each is refused with its reason, or (when `reaches` is set) lands on the
  // configured origin at exactly that path: never another host, never above the upstream's base path.
  const rows: ReadonlyArray<{ name: string; target: string; reason?: Reason; reaches?: string; host?: string; extra?: string }> = [
    { name: 'dot-dot climbing to a sibling upstream', target: '/v1/upstreams/model/../other/x', reason: 'path_invalid' },
    { name: 'dot-dot climbing out of the broker API', target: '/v1/upstreams/x/../../other', reason: 'path_invalid' },
    { name: 'percent-encoded dot-dot', target: '/v1/upstreams/model/%2e%2e/other/x', reason: 'path_invalid' },
    { name: 'upper-case encoded dot-dot', target: '/v1/upstreams/model/%2E%2E/%2E%2E/admin', reason: 'path_invalid' },
    { name: 'half-encoded dot-dot', target: '/v1/upstreams/model/.%2e/other', reason: 'path_invalid' },
    { name: 'a single dot segment', target: '/v1/upstreams/model/./x', reason: 'path_invalid' },
    { name: 'encoded slash inside a segment', target: '/v1/upstreams/model/..%2fother/x', reason: 'path_invalid' },
    { name: 'encoded backslash', target: '/v1/upstreams/model/%5c..%5cother', reason: 'path_invalid' },
    { name: 'encoded slash in the upstream name', target: '/v1/upstreams/model%2f..%2fother/x', reason: 'upstream_not_granted' },
    { name: 'encoded dots as the upstream name', target: '/v1/upstreams/%2e%2e/model/x', reason: 'upstream_not_granted' },
    { name: 'raw backslashes in the name', target: '/v1/upstreams/model\\..\\other/x', reason: 'upstream_not_granted' },
    { name: 'userinfo-looking name', target: '/v1/upstreams/model@evil.example/x', reason: 'upstream_not_granted' },
    { name: 'percent-encoded letter in the name (names are not decoded)', target: '/v1/upstreams/mod%65l/x', reason: 'upstream_not_granted' },
    { name: 'name not defined in the policy', target: '/v1/upstreams/nope/x', reason: 'upstream_not_granted' },
    { name: 'defined and in the ceiling, but not in the token', target: '/v1/upstreams/ungranted/x', reason: 'upstream_not_granted' },
    { name: 'absolute-form target at another host', target: 'http://evil.example/v1/upstreams/model/x', reason: 'malformed_request' },
    // 'http://' plus a 9-character host puts a '/' exactly where the name "v1" would end if cut by position.
    { name: 'absolute-form target crafted to line up with an upstream named v1', target: 'http://evil.test/v1/upstreams/v1/x', reason: 'malformed_request' },
    { name: 'absolute-form target naming the origin itself', target: 'https://127.0.0.1:ORIGIN_PORT/v1/upstreams/model/x', reason: 'malformed_request' },
    { name: 'Host header naming another host', target: '/v1/upstreams/model/x', host: 'evil.example', reaches: '/model/x' },
    { name: 'Host header naming the stranger origin', target: '/v1/upstreams/model/x', host: 'STRANGER', reaches: '/model/x' },
    { name: 'X-Forwarded-Host and Forwarded naming another host', target: '/v1/upstreams/model/x', extra: 'X-Forwarded-Host: evil.example\r\nForwarded: host=evil.example\r\n', reaches: '/model/x' },
    { name: 'a network-path-looking path stays on the configured host', target: '/v1/upstreams/model//evil.example/x', reaches: '/model//evil.example/x' },
    { name: 'a doubly encoded dot-dot is data, forwarded encoded once more never', target: '/v1/upstreams/model/%252e%252e/x', reaches: '/model/%252e%252e/x' },
  ];
  it.each(rows)('$name', async (row) => {
    origin.reset();
    stranger.reset();
    const r = await rawGet(row.target, row.host === 'STRANGER' ? `127.0.0.1:${stranger.port}` : row.host, row.extra);
    expect(stranger.requests).toHaveLength(0);
    if (row.reaches !== undefined) {
      expect(r.status).toBe(200);
      expect(origin.requests.map((q) => q.path)).toEqual([row.reaches]);
      expect(origin.requests[0]?.headers.host).toBe(`127.0.0.1:${origin.port}`);
      return;
    }
    expect(r.reason).toBe(row.reason);
    expect(origin.requests).toHaveLength(0);
    expect((await eventFor(r.id)).status_detail).toBe(row.reason);
  });

  // Fastify used to answer a target it cannot decode itself (FST_ERR_BAD_URL): not the broker's error shape, no
  // correlation id, no audit event, and the whole target echoed, a ?key=<broker token> included.
  it('broken percent-encoding is path_invalid with its event; nothing is forwarded or echoed', async () => {
    origin.reset();
    const r = await rawGet(`/v1/upstreams/model/%zz?key=${token}`);
    expect([r.status, r.reason]).toEqual([400, 'path_invalid']);
    expect(r.text).not.toContain(token);
    expect(origin.requests).toHaveLength(0);
    expect((await eventFor(r.id)).status_detail).toBe('path_invalid');
  });

  it('CONNECT is not a broker method: nothing is tunnelled', async () => {
    origin.reset();
    const before = origin.connections();
    const r = await raw(`CONNECT 127.0.0.1:${origin.port} HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\nAuthorization: Bearer ${token}\r\n\r\n`);
    // Node's server has no CONNECT handler here: the socket is closed without a 2xx.
    expect(r.status === 0 || r.status >= 400).toBe(true);
    expect(r.text).not.toContain('200');
    expect(origin.connections()).toBe(before);
    expect(origin.requests).toHaveLength(0);
  });
});

describe('upstream TLS is verified strictly', () => {
  const rows: ReadonlyArray<{ name: string; upstream: string; target: () => RecordingOrigin }> = [
    // The configured CA did not sign the stranger's certificate (a MITM, a wrong endpoint).
    { name: 'a certificate the configured CA did not sign', upstream: 'stranger', target: () => stranger },
    // No tls.ca: the system CAs, which do not know the test CA.
    { name: 'no CA configured: the system CAs refuse a private CA', upstream: 'system-ca', target: () => origin },
    // tls.server_name names a host the certificate is not for.
    { name: 'a server_name the certificate does not cover', upstream: 'wrong-name', target: () => origin },
  ];
  it.each(rows)('refuses $name: upstream_error, no request reached it', async (row) => {
    row.target().reset();
    const r = await call(`/v1/upstreams/${row.upstream}/v1/models`);
    expect(r.status).toBe(502);
    expect(r.reason).toBe('upstream_error');
    expect(row.target().requests).toHaveLength(0);
    // The wire error names no host, port, URL or file.
    for (const leak of ['127.0.0.1', String(row.target().port), caPath, 'https://']) expect(r.text).not.toContain(leak);
    expect((await eventFor(r.id)).unmapped.gatehouse.upstream).toBe(row.upstream);
  });
});

describe('failing upstreams', () => {
  it('an origin that never answers: 504 upstream_timeout within the configured timeout, and the call is dropped', async () => {
    origin.reset();
    const started = performance.now();
    const r = await call('/v1/upstreams/slow/v1/messages', { method: 'POST', body: '{}' });
    const took = performance.now() - started;
    expect(r.status).toBe(504);
    expect(r.reason).toBe('upstream_timeout');
    expect(took).toBeGreaterThanOrEqual(SLOW_TIMEOUT_MS - 50);
    expect(took).toBeLessThan(SLOW_TIMEOUT_MS + 4000); // generous: a loaded CI machine
    expect(await within(origin.requests[0]?.aborted ?? Promise.reject(new Error('no request')), 5000)).toBe(true);
  });

  it('an origin that refuses the connection: 502 upstream_connect_failed, no address in the error', async () => {
    const r = await call('/v1/upstreams/refused/v1/models');
    expect(r.status).toBe(502);
    expect(r.reason).toBe('upstream_connect_failed');
    expect(r.text).not.toContain(String(closedPort));
    expect((await eventFor(r.id)).status_detail).toBe('upstream_connect_failed');
  });

  it('the upstream status is passed through and the call is still "allowed" in the audit', async () => {
    origin.on('/model/missing', json(404, { error: 'no such model' }));
    const r = await call('/v1/upstreams/model/missing');
    expect(r.status).toBe(404);
    const e = await eventFor(r.id);
    expect(e.status_detail).toBe('allowed');
    expect(e.api?.response?.code).toBe(404);
  });
});

describe('request body limits (max_request_bytes: 1KiB)', () => {
  it('a declared Content-Length over the limit: 413 before the upstream is contacted', async () => {
    origin.reset();
    const r = await call('/v1/upstreams/model/v1/messages', { method: 'POST', body: 'x'.repeat(2048) });
    expect(r.status).toBe(413);
    expect(r.reason).toBe('object_too_large');
    expect(origin.requests).toHaveLength(0);
  });

  it('a chunked body that grows over the limit: 413, and the upstream never gets a complete request', async () => {
    origin.reset();
    const chunks = Array.from({ length: 8 }, () => Buffer.alloc(256, 'y'));
    const r = await call('/v1/upstreams/model/v1/messages', { method: 'POST', body: Readable.from(chunks) });
    expect(r.status).toBe(413);
    expect(r.reason).toBe('object_too_large');
    for (const q of origin.requests) {
      expect(await within(q.aborted, 5000)).toBe(true);
      expect(q.body.length).toBeLessThanOrEqual(1024);
    }
  });

  it('exactly the limit passes, chunked or declared', async () => {
    origin.reset();
    expect((await call('/v1/upstreams/model/v1/messages', { method: 'POST', body: 'z'.repeat(1024) })).status).toBe(200);
    expect((await call('/v1/upstreams/model/v1/messages', { method: 'POST', body: Readable.from([Buffer.alloc(512, 'z'), Buffer.alloc(512, 'z')]) })).status).toBe(200);
    expect(origin.requests.map((q) => q.body.length)).toEqual([1024, 1024]);
  });
});

describe('per-session limits', () => {
  it('max_concurrent: a second call while one is in flight is a 429 too_many_requests with Retry-After', async () => {
    const t = await h.token({ tenant: 'tight', upstreams: ['model'] });
    secrets.push(t);
    origin.reset();
    const first = call('/v1/upstreams/model/hold/a', {}, t);
    const upstream = await origin.waitForRequest((q) => q.path === '/model/hold/a');
    const second = await call('/v1/upstreams/model/v1/models', {}, t);
    expect(second.status).toBe(429);
    expect(second.reason).toBe('too_many_requests');
    expect(second.headers['retry-after']).toBe('1');
    upstream.res.end('done');
    expect((await first).status).toBe(200);
    expect((await call('/v1/upstreams/model/v1/models', {}, t)).status).toBe(200);
  });

  it('requests_per_second with burst 2: the third call at once is a 429 rate_limited', async () => {
    const t = await h.token({ tenant: 'trickle', upstreams: ['model'] });
    secrets.push(t);
    const statuses: number[] = [];
    const reasons: (string | undefined)[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await call('/v1/upstreams/model/v1/models', {}, t);
      statuses.push(r.status);
      reasons.push(r.reason);
    }
    expect(statuses).toEqual([200, 200, 429]);
    expect(reasons[2]).toBe('rate_limited');
  });
});

describe('secrets stay secret under bad input', () => {
  it('no key or broker token in any response, audit event or metric', async () => {
    const haystacks = { responses: clientSaw.join('\n'), events: JSON.stringify(h.events), metrics: await h.registry.metrics() };
    expect(haystacks.events).toContain('upstream_not_granted');
    for (const [where, text] of Object.entries(haystacks)) for (const [i, s] of secrets.entries()) expect(text.includes(s), `secret ${i} in ${where}`).toBe(false);
    // The bearer key did reach the configured origin (the positive control for the search above).
    expect(origin.history.some((q) => q.headers.authorization === `Bearer ${KEY}`)).toBe(true);
  });
});
