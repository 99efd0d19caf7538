// Upstream API forwarding (issue 4) against a real local HTTPS origin that records what it receives: the broker's
// own key arrives, the sandbox's never does (anchors A.3 #18: strip and overwrite, unlike Envoy's default
// overwrite:false), server-sent events stream through unbuffered (A.3 #20), and no key value reaches anything the
// client, the audit log or the metrics see (A.3 #22, the LiteLLM leaks).
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBrokerHarness, type BrokerHarness } from '../test/support/broker-harness.js';
import { echo, hold, json, makeTestPki, sse, startRecordingOrigin, type RecordingOrigin } from '../test/support/recording-origin.js';
import { waitUntil } from '../test/support/wait.js';
import { redactStream, REDACTED } from './redact-stream.js';

const tag = randomBytes(4).toString('hex');
const ENV_ANTHROPIC = `GH_UT_ANTHROPIC_${tag}`;
const ENV_GEMINI = `GH_UT_GEMINI_${tag}`;
const ENV_LATE = `GH_UT_LATE_${tag}`;
// Real-looking keys, each unique to this run so a hit anywhere is this test's leak.
const ANTHROPIC_KEY = `sk-ant-api03-${randomBytes(24).toString('base64url')}`;
const GEMINI_KEY = `AIza${randomBytes(18).toString('base64url')}`;
const AZURE_KEY = randomBytes(16).toString('hex');
const LATE_KEY = `late-${randomBytes(16).toString('hex')}`;
let openaiKey = `sk-proj-${randomBytes(24).toString('base64url')}`;
const OLD_OPENAI_KEYS: string[] = [];
/** What a sandbox might try to smuggle upstream as its own credential. */
const CLIENT_KEY = `sk-client-own-${randomBytes(12).toString('hex')}`;
const CLIENT_COOKIE = `sid=client-cookie-${randomBytes(8).toString('hex')}`;

let dir: string;
let origin: RecordingOrigin;
let h: BrokerHarness;
let token: string;
const tokens: string[] = [];
/** Everything the client side saw: statuses, headers and bodies, for the final secret search. */
const clientSaw: string[] = [];

const policy = (caPath: string, originUrl: string): string => {
  const tls = `tls: {ca: "file:${caPath}"}`;
  return `version: 1
broker:
  upstreams:
    - name: anthropic
      url: ${originUrl}/anthropic
      credential: {type: header, header: x-api-key, value: "env:${ENV_ANTHROPIC}"}
      headers: {anthropic-version: "2023-06-01"}
      ${tls}
    - name: openai
      url: ${originUrl}/openai
      credential: {type: bearer, value: "file:${dir}/openai-key"}
      ${tls}
    - name: azure
      url: ${originUrl}/azure
      credential: {type: header, header: api-key, value: "file:${dir}/azure-key"}
      ${tls}
    - name: gemini
      url: ${originUrl}/gemini
      credential: {type: header, header: x-goog-api-key, value: "env:${ENV_GEMINI}"}
      ${tls}
    - name: late
      url: ${originUrl}/late
      credential: {type: bearer, value: "env:${ENV_LATE}"}
      ${tls}
tenants:
  - name: acme
    broker:
      upstreams: [anthropic, openai, azure, gemini, late]
`;
};

interface Called {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly id: string;
  readonly json: () => { error?: { code: string; reason: string; message: string } } & Record<string, unknown>;
}

const record = (status: number, headers: Headers, text: string): Called => {
  clientSaw.push(String(status), JSON.stringify([...headers]), text);
  return { status, headers, text, id: headers.get('x-gatehouse-correlation-id') ?? '', json: () => JSON.parse(text) as ReturnType<Called['json']> };
};

/**
 * Call the broker with exactly these headers (nothing added), recording what came back. undici's request, not
 * fetch: fetch turns a 407 into a network error, and the auth refusals must be readable (see AUTH_STATUS).
 */
async function call(path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Called> {
  const res = await request(`${h.url}${path}`, { method: (init.method ?? 'GET') as 'GET', headers: init.headers ?? {}, ...(init.body !== undefined ? { body: init.body } : {}) });
  const headers = new Headers();
  for (const [k, v] of Object.entries(res.headers)) for (const one of Array.isArray(v) ? v : [v ?? '']) headers.append(k, one);
  return record(res.statusCode, headers, await res.body.text());
}

/** What an SDK does: plain fetch with its API key header set to the broker token. */
async function sdkFetch(path: string, init: RequestInit): Promise<Called> {
  const res = await fetch(`${h.url}${path}`, init);
  return record(res.status, res.headers, await res.text());
}

/** Status of an auth refusal: 401 with a Bearer challenge (a 407 would be a network error to fetch-based SDKs). */
const AUTH_STATUS = 401;

interface UpstreamEvent {
  readonly status_detail: string;
  readonly metadata: { readonly uid: string; readonly tenant_uid?: string };
  readonly api?: { readonly operation: string; readonly response?: { readonly code: number } };
  readonly http_request?: { readonly url: { readonly path: string } };
  readonly traffic?: { readonly bytes_out: number; readonly bytes_in: number; readonly bytes: number };
  readonly actor?: { readonly session: { readonly uid: string } };
  readonly duration: number;
  readonly unmapped: { readonly gatehouse: { readonly upstream?: string; readonly end_reason?: string } };
}

const eventFor = async (id: string): Promise<UpstreamEvent> => (await h.waitForEvent((e) => (e['metadata'] as { uid: string }).uid === id)) as unknown as UpstreamEvent;

/** A streamed response body read incrementally: `until` waits for text to arrive, bounded. */
function streamReader(body: ReadableStream<Uint8Array>) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  let done = false;
  return {
    text: () => text,
    async until(needle: string, timeoutMs = 5000): Promise<string> {
      const deadline = performance.now() + timeoutMs;
      while (!text.includes(needle)) {
        if (done) throw new Error(`stream ended without "${needle}"; got ${JSON.stringify(text.slice(-200))}`);
        const left = deadline - performance.now();
        if (left <= 0) throw new Error(`"${needle}" not received within ${timeoutMs} ms; got ${JSON.stringify(text.slice(-200))}`);
        let timer: NodeJS.Timeout | undefined;
        const next = await Promise.race([reader.read(), new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), left)))]);
        clearTimeout(timer);
        if (next === null) continue;
        if (next.done) done = true;
        else text += decoder.decode(next.value, { stream: true });
      }
      clientSaw.push(text);
      return text;
    },
    async rest(timeoutMs = 5000): Promise<string> {
      const deadline = performance.now() + timeoutMs;
      while (!done) {
        if (performance.now() > deadline) throw new Error('stream did not end');
        const next = await reader.read();
        if (next.done) done = true;
        else text += decoder.decode(next.value, { stream: true });
      }
      clientSaw.push(text);
      return text;
    },
    cancel: () => reader.cancel(),
  };
}

/** Resolves with true when `p` settles within `ms`, false otherwise (a failure guard, not synchronisation). */
const within = (p: Promise<unknown>, ms: number): Promise<boolean> =>
  new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    void p.then(() => {
      clearTimeout(timer);
      resolve(true);
    });
  });

/** Every string the origin received, for searching. */
const originSaw = (): string => origin.history.map((r) => `${r.method} ${r.url}\n${r.rawHeaders.join('\n')}\n${r.body.toString('latin1')}`).join('\n');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-upstream-'));
  const pki = await makeTestPki(join(dir, 'pki'));
  origin = await startRecordingOrigin(pki);
  origin.on('/', json(200, { ok: true }));
  // Streams the tests write themselves, event by event.
  for (const u of ['anthropic', 'openai']) origin.on(`/${u}/stream`, hold);
  process.env[ENV_ANTHROPIC] = ANTHROPIC_KEY;
  process.env[ENV_GEMINI] = `${GEMINI_KEY}\n`;
  delete process.env[ENV_LATE];
  // A key saved with echo ends in a newline (anchors A.3 #19): the broker must send it without.
  await writeFile(join(dir, 'openai-key'), `${openaiKey}\n`);
  await writeFile(join(dir, 'azure-key'), `${AZURE_KEY} \r\n\n`);
  h = await startBrokerHarness(policy(pki.caPath, origin.url));
  token = await h.token({ upstreams: ['anthropic', 'openai', 'azure', 'gemini', 'late'] });
  tokens.push(token);
}, 60_000);

afterAll(async () => {
  await h?.close();
  await origin?.close();
  delete process.env[ENV_ANTHROPIC];
  delete process.env[ENV_GEMINI];
  delete process.env[ENV_LATE];
  await rm(dir, { recursive: true, force: true });
});

describe('credential injection', () => {
  it('Anthropic SDK style: the broker token as x-api-key; the real key and the fixed anthropic-version arrive', async () => {
    origin.reset();
    const body = JSON.stringify({ model: 'claude', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] });
    const r = await sdkFetch('/v1/upstreams/anthropic/v1/messages', {
      method: 'POST',
      headers: { 'x-api-key': token, 'anthropic-version': '2020-01-01', 'content-type': 'application/json', 'user-agent': 'Anthropic/JS 0.50.0' },
      body,
    });
    expect(r.status).toBe(200);
    const [seen] = origin.requests;
    expect(seen?.method).toBe('POST');
    expect(seen?.path).toBe('/anthropic/v1/messages');
    expect(seen?.headers['x-api-key']).toBe(ANTHROPIC_KEY);
    // Fixed headers overwrite the client's (one value, the policy's).
    expect(seen?.rawHeaders.filter((_, i, a) => i % 2 === 0 && a[i]?.toLowerCase() === 'anthropic-version')).toHaveLength(1);
    expect(seen?.headers['anthropic-version']).toBe('2023-06-01');
    expect(seen?.headers['user-agent']).toBe('Anthropic/JS 0.50.0');
    expect(seen?.headers.host).toBe(`127.0.0.1:${origin.port}`);
    expect(seen?.body.toString()).toBe(body);
    expect(seen?.headers.authorization).toBeUndefined();
  });

  it('OpenAI SDK style: Authorization: Bearer <broker token> becomes Bearer <real key>, trailing newline trimmed', async () => {
    origin.reset();
    const r = await sdkFetch('/v1/upstreams/openai/v1/chat/completions', {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '{"model":"gpt"}',
    });
    expect(r.status).toBe(200);
    expect(origin.requests[0]?.headers.authorization).toBe(`Bearer ${openaiKey}`);
    expect(origin.requests[0]?.path).toBe('/openai/v1/chat/completions');
  });

  it('a key file ending in spaces, CR and LF is sent without them (api-key header, Azure style)', async () => {
    origin.reset();
    const r = await call('/v1/upstreams/azure/openai/deployments/d/chat/completions?api-version=2024-06-01', { method: 'POST', headers: { 'api-key': token }, body: '{}' });
    expect(r.status).toBe(200);
    expect(origin.requests[0]?.headers['api-key']).toBe(AZURE_KEY);
    expect(origin.requests[0]?.query).toBe('api-version=2024-06-01');
  });

  // Every place a client can put a credential: none of it may reach the upstream, whatever the upstream's own
  // credential header is. The broker token may sit in all key headers at once (one value, no conflict).
  const strips: ReadonlyArray<{ name: string; upstream: string; path: (t: string) => string; headers: (t: string) => Record<string, string>; query: string }> = [
    {
      name: 'the token in every SDK key header and ?key=, plus a cookie and proxy/AWS auth headers',
      upstream: 'gemini',
      path: (t) => `/v1/upstreams/gemini/v1beta/models/m:streamGenerateContent?key=${t}&alt=sse`,
      headers: (t) => ({ authorization: `Bearer ${t}`, 'x-api-key': t, 'api-key': t, 'x-goog-api-key': t, cookie: CLIENT_COOKIE, 'proxy-authorization': `Basic ${Buffer.from(`u:${CLIENT_KEY}`).toString('base64')}`, 'x-amz-security-token': CLIENT_KEY, 'x-amz-date': '20250101T000000Z' }),
      query: 'alt=sse',
    },
    {
      // Two ?key= values are not a token (extractToken wants exactly one), but both are still removed.
      name: 'repeated ?key= values next to a Bearer token',
      upstream: 'openai',
      path: () => `/v1/upstreams/openai/v1/models?key=${CLIENT_KEY}&key=${CLIENT_KEY}x&limit=2`,
      headers: (t) => ({ authorization: `Bearer ${t}` }),
      query: 'limit=2',
    },
    {
      name: 'Gemini SDK style: only ?key=<broker token>',
      upstream: 'gemini',
      path: (t) => `/v1/upstreams/gemini/v1beta/models?key=${t}`,
      headers: () => ({}),
      query: '',
    },
    {
      name: 'the token as x-goog-api-key with a Gatehouse header the upstream must not see',
      upstream: 'anthropic',
      path: () => '/v1/upstreams/anthropic/v1/models',
      headers: (t) => ({ 'x-goog-api-key': t, 'x-gatehouse-session': 'forged' }),
      query: '',
    },
  ];
  it.each(strips)('strips what the client sent: $name', async (row) => {
    origin.reset();
    const r = await call(row.path(token), { headers: row.headers(token) });
    expect(r.status).toBe(200);
    const seen = origin.requests[0];
    expect(seen?.query).toBe(row.query);
    const own = { anthropic: ['x-api-key', ANTHROPIC_KEY], openai: ['authorization', `Bearer ${openaiKey}`], gemini: ['x-goog-api-key', GEMINI_KEY] }[row.upstream] as [string, string];
    expect(seen?.headers[own[0]]).toBe(own[1]);
    for (const name of ['authorization', 'x-api-key', 'api-key', 'x-goog-api-key', 'cookie', 'proxy-authorization', 'x-amz-security-token', 'x-amz-date', 'x-gatehouse-session']) {
      if (name !== own[0]) expect(seen?.headers[name], name).toBeUndefined();
    }
    const everything = originSaw();
    expect(everything).not.toContain(token);
    expect(everything).not.toContain(CLIENT_KEY);
    expect(everything).not.toContain(CLIENT_COOKIE);
  });

  // A second, different credential next to the broker token is refused outright: the broker never guesses which
  // one counts, and never forwards the client's own key (the Envoy overwrite:false exfiltration path).
  const conflicts: ReadonlyArray<{ name: string; path: string; headers: (t: string) => Record<string, string> }> = [
    { name: 'Bearer token plus a client x-api-key', path: '/v1/upstreams/anthropic/v1/messages', headers: (t) => ({ authorization: `Bearer ${t}`, 'x-api-key': CLIENT_KEY }) },
    { name: 'x-api-key token plus a client Authorization', path: '/v1/upstreams/anthropic/v1/messages', headers: (t) => ({ 'x-api-key': t, authorization: `Bearer ${CLIENT_KEY}` }) },
    { name: 'Bearer token plus a client ?key=', path: `/v1/upstreams/gemini/v1beta/models?key=${CLIENT_KEY}`, headers: (t) => ({ authorization: `Bearer ${t}` }) },
    { name: 'api-key token plus a client x-goog-api-key', path: '/v1/upstreams/azure/x', headers: (t) => ({ 'api-key': t, 'x-goog-api-key': CLIENT_KEY }) },
    { name: 'only the client\'s own key', path: '/v1/upstreams/anthropic/v1/messages', headers: () => ({ 'x-api-key': CLIENT_KEY }) },
  ];
  it.each(conflicts)('refuses a client credential next to (or instead of) the broker token: $name', async (row) => {
    origin.reset();
    const r = await call(row.path, { headers: row.headers(token) });
    expect(r.status).toBe(AUTH_STATUS);
    expect(r.json().error?.reason).toBe('auth_invalid');
    expect(r.json().error?.code).toBe('GH_ERR_BROKER_UNAUTHORIZED');
    expect(r.text).not.toContain(CLIENT_KEY);
    expect(origin.requests).toHaveLength(0);
  });
});

describe('streaming', () => {
  it('server-sent events arrive one by one: event 1 reaches the client before the origin sends event 2', async () => {
    origin.reset();
    const pending = fetch(`${h.url}/v1/upstreams/anthropic/stream/v1/messages`, { method: 'POST', headers: { 'x-api-key': token, accept: 'text/event-stream' }, body: '{"stream":true}' });
    const upstream = await origin.waitForRequest((r) => r.path === '/anthropic/stream/v1/messages');
    const stream = sse(upstream.res);
    // fetch resolves with the head while the origin has not written a byte of body: headers are flushed at once.
    const res = await pending;
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    expect(res.headers.get('content-length')).toBeNull();
    const read = streamReader(res.body as ReadableStream<Uint8Array>);
    stream.send('{"type":"message_start"}', 'message_start');
    // Gate: the origin sends event 2 only once the client has event 1. A buffering broker deadlocks here.
    await read.until('message_start"}\n\n');
    expect(read.text()).not.toContain('content_block_delta');
    stream.send('{"type":"content_block_delta","delta":{"text":"Hel"}}', 'content_block_delta');
    await read.until('"Hel"');
    stream.send('{"type":"message_stop"}', 'message_stop');
    stream.end();
    const all = await read.rest();
    expect(all).toBe(
      'event: message_start\ndata: {"type":"message_start"}\n\nevent: content_block_delta\ndata: {"type":"content_block_delta","delta":{"text":"Hel"}}\n\nevent: message_stop\ndata: {"type":"message_stop"}\n\n',
    );
    const event = await eventFor(res.headers.get('x-gatehouse-correlation-id') ?? '');
    expect(event.status_detail).toBe('allowed');
    expect(event.traffic?.bytes_in).toBe(Buffer.byteLength(all));
    expect(event.traffic?.bytes_out).toBe(Buffer.byteLength('{"stream":true}'));
    expect(event.unmapped.gatehouse.end_reason).toBeUndefined();
  });

  it('a client that goes away mid-stream aborts the upstream request', async () => {
    origin.reset();
    const abort = new AbortController();
    const pending = fetch(`${h.url}/v1/upstreams/openai/stream/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: '{"stream":true}', signal: abort.signal });
    const upstream = await origin.waitForRequest((r) => r.path === '/openai/stream/v1/chat/completions');
    const stream = sse(upstream.res);
    const res = await pending;
    const read = streamReader(res.body as ReadableStream<Uint8Array>);
    stream.send('{"choices":[{"delta":{"content":"a"}}]}');
    await read.until('"a"');
    abort.abort();
    expect(await within(upstream.req.aborted, 5000)).toBe(true);
    const event = await eventFor(res.headers.get('x-gatehouse-correlation-id') ?? '');
    expect(event.status_detail).toBe('allowed');
    expect(event.unmapped.gatehouse.end_reason).toBe('client_closed');
  });

  it('a client that gives up before the upstream answered aborts the upstream request too', async () => {
    origin.reset();
    const abort = new AbortController();
    const pending = fetch(`${h.url}/v1/upstreams/openai/stream/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: '{}', signal: abort.signal });
    const upstream = await origin.waitForRequest((r) => r.path === '/openai/stream/v1/chat/completions');
    abort.abort();
    await expect(pending).rejects.toThrow();
    // Without this the upstream call would run on (a model still generating) until the upstream timeout.
    expect(await within(upstream.req.aborted, 5000)).toBe(true);
    const event = (await h.waitForEvent((e) => e['status_detail'] === 'body_incomplete' && (e['unmapped'] as UpstreamEvent['unmapped']).gatehouse.upstream === 'openai')) as unknown as UpstreamEvent;
    expect(event.http_request?.url.path).toBe('/stream/v1/chat/completions');
  });

  it('revoking the session cuts its stream in flight (client and upstream) and refuses the token afterwards', async () => {
    origin.reset();
    const session = `revoke-${tag}`;
    const revocable = await h.token({ session, upstreams: ['anthropic'] });
    tokens.push(revocable);
    const pending = fetch(`${h.url}/v1/upstreams/anthropic/stream/v1/messages`, { method: 'POST', headers: { 'x-api-key': revocable }, body: '{}' });
    const upstream = await origin.waitForRequest((r) => r.path === '/anthropic/stream/v1/messages');
    const stream = sse(upstream.res);
    const res = await pending;
    const read = streamReader(res.body as ReadableStream<Uint8Array>);
    stream.send('"before"');
    await read.until('"before"');
    await h.revocations.revoke(session, 'test');
    await expect(read.rest()).rejects.toThrow();
    expect(await within(upstream.req.aborted, 5000)).toBe(true);
    const after = await call('/v1/upstreams/anthropic/v1/messages', { method: 'POST', headers: { 'x-api-key': revocable }, body: '{}' });
    expect(after.status).toBe(403);
    expect(after.json().error?.reason).toBe('session_revoked');
    expect(origin.requests).toHaveLength(1);
  });
});

describe('redaction of an upstream that echoes the key', () => {
  it('replaces the key in response headers and body (header credential and Bearer)', async () => {
    origin.on('/anthropic/echo', echo);
    origin.on('/openai/echo', echo);
    const a = await call('/v1/upstreams/anthropic/echo', { headers: { 'x-api-key': token } });
    expect(a.status).toBe(200);
    expect(a.headers.get('x-echo-x-api-key')).toBe(REDACTED);
    expect((JSON.parse(a.text) as { headers: Record<string, string> }).headers['x-api-key']).toBe(REDACTED);
    const o = await call('/v1/upstreams/openai/echo', { headers: { authorization: `Bearer ${token}` } });
    expect(o.headers.get('x-echo-authorization')).toBe(`Bearer ${REDACTED}`);
    expect(o.text).toContain(`"authorization":"Bearer ${REDACTED}"`);
    for (const r of [a, o]) {
      expect(r.text).not.toContain(ANTHROPIC_KEY);
      expect(r.text).not.toContain(openaiKey);
      expect(JSON.stringify([...r.headers])).not.toContain(ANTHROPIC_KEY);
    }
  });

  it('replaces a key split across chunks without holding back more than the possible partial match', async () => {
    origin.reset();
    const pending = fetch(`${h.url}/v1/upstreams/anthropic/stream/v1/messages`, { method: 'POST', headers: { 'x-api-key': token }, body: '{}' });
    const upstream = await origin.waitForRequest((r) => r.path === '/anthropic/stream/v1/messages');
    upstream.res.writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': `x-api-key key="${ANTHROPIC_KEY}"` });
    const cut = [7, 20];
    // Each piece is written only after the client has everything before the (held) partial key: separate chunks.
    upstream.res.write(`invalid x-api-key ${ANTHROPIC_KEY.slice(0, cut[0])}`);
    const res = await pending;
    const read = streamReader(res.body as ReadableStream<Uint8Array>);
    await read.until('invalid x-api-key ');
    expect(read.text()).toBe('invalid x-api-key ');
    upstream.res.write(ANTHROPIC_KEY.slice(cut[0], cut[1]));
    upstream.res.write(`${ANTHROPIC_KEY.slice(cut[1])} was refused; a near miss: ${ANTHROPIC_KEY.slice(0, 12)}!\n`);
    upstream.res.end();
    const all = await read.rest();
    expect(all).toBe(`invalid x-api-key ${REDACTED} was refused; a near miss: ${ANTHROPIC_KEY.slice(0, 12)}!\n`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe(`x-api-key key="${REDACTED}"`);
  });

  // Unit rows: every split point of a key inside a stream, and a stream made of one-byte chunks.
  it('redactStream finds the key at every split point and at one byte per chunk', async () => {
    const secret = `sk-${randomBytes(12).toString('hex')}`;
    const text = `a ${secret} b ${secret.slice(0, 5)} c ${secret}`;
    const want = `a ${REDACTED} b ${secret.slice(0, 5)} c ${REDACTED}`;
    const through = async (chunks: string[]): Promise<string> => {
      const out: Buffer[] = [];
      for await (const c of Readable.from(chunks.map((s) => Buffer.from(s))).pipe(redactStream([secret, 'short']))) out.push(c as Buffer);
      return Buffer.concat(out).toString();
    };
    for (let i = 0; i <= text.length; i++) expect(await through([text.slice(0, i), text.slice(i)]), `split at ${i}`).toBe(want);
    expect(await through([...text])).toBe(want);
  });
});

describe('credentials', () => {
  it('a rotated key file (file: reference, replaced by rename) applies without a restart', async () => {
    const before = openaiKey;
    OLD_OPENAI_KEYS.push(before);
    openaiKey = `sk-proj-rotated-${randomBytes(20).toString('base64url')}`;
    // As a Kubernetes Secret volume rotates: a new file renamed over the old one.
    await writeFile(join(dir, 'openai-key.new'), `${openaiKey}\n`);
    await rename(join(dir, 'openai-key.new'), join(dir, 'openai-key'));
    // The broker re-checks a file at most once a second: wait until the new key arrives (bounded).
    await waitUntil(async () => {
      origin.reset();
      const r = await call('/v1/upstreams/openai/v1/models', { headers: { authorization: `Bearer ${token}` } });
      return r.status === 200 && origin.requests[0]?.headers.authorization === `Bearer ${openaiKey}`;
    }, 'the rotated key to reach the upstream', 5000, 100);
    expect(origin.requests[0]?.headers.authorization).not.toContain(before);
  });

  it('an unset env credential is a 503 credential_unavailable naming the upstream only; the broker keeps serving', async () => {
    origin.reset();
    const r = await call('/v1/upstreams/late/v1/models', { headers: { authorization: `Bearer ${token}` } });
    expect(r.status).toBe(503);
    expect(r.json().error?.reason).toBe('credential_unavailable');
    expect(r.text).not.toContain(ENV_LATE);
    expect(origin.requests).toHaveLength(0);
    const event = await eventFor(r.id);
    expect(event.status_detail).toBe('credential_unavailable');
    expect(event.unmapped.gatehouse.upstream).toBe('late');
    // Still alive, and the failure was not cached: once the variable exists, the upstream works.
    expect((await call('/v1/upstreams/anthropic/v1/models', { headers: { 'x-api-key': token } })).status).toBe(200);
    process.env[ENV_LATE] = LATE_KEY;
    const ok = await call('/v1/upstreams/late/v1/models', { headers: { authorization: `Bearer ${token}` } });
    expect(ok.status).toBe(200);
    expect(origin.requests.at(-1)?.headers.authorization).toBe(`Bearer ${LATE_KEY}`);
  });
});

describe('audit', () => {
  it('one CallUpstream event per call: session, tenant, upstream, path without query, status, bytes, duration', async () => {
    origin.on('/openai/v1/files', json(201, { id: 'file-1' }));
    const session = `audit-${tag}`;
    const t = await h.token({ session, upstreams: ['openai'] });
    tokens.push(t);
    const body = 'x'.repeat(1234);
    const r = await call(`/v1/upstreams/openai/v1/files?purpose=batch&key=${t}`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body });
    expect(r.status).toBe(201);
    const event = await eventFor(r.id);
    expect(event.api?.operation).toBe('CallUpstream');
    expect(event.api?.response?.code).toBe(201);
    expect(event.status_detail).toBe('allowed');
    expect(event.metadata.tenant_uid).toBe('acme');
    expect(event.actor?.session.uid).toBe(session);
    expect(event.unmapped.gatehouse.upstream).toBe('openai');
    expect(event.http_request?.url.path).toBe('/v1/files');
    expect(event.traffic).toEqual({ bytes_out: 1234, bytes_in: Buffer.byteLength(r.text), bytes: 1234 + Buffer.byteLength(r.text) });
    expect(event.duration).toBeGreaterThanOrEqual(0);
    expect(h.events.filter((e) => (e['metadata'] as { uid: string }).uid === r.id)).toHaveLength(1);
  });

  it('no key, broker token or client credential appears in responses, audit events, the audit files or metrics', async () => {
    await h.audit.flush();
    const files: string[] = [];
    const walk = async (d: string): Promise<void> => {
      for (const e of await readdir(d, { withFileTypes: true })) {
        if (e.isDirectory()) await walk(join(d, e.name));
        else files.push(await readFile(join(d, e.name), 'latin1'));
      }
    };
    await walk(join(h.dir, 'audit'));
    const haystacks = { responses: clientSaw.join('\n'), events: JSON.stringify(h.events), auditFiles: files.join('\n'), metrics: await h.registry.metrics() };
    expect(haystacks.events).toContain('CallUpstream'); // the search looks at real content
    const secrets = { ANTHROPIC_KEY, GEMINI_KEY, AZURE_KEY, LATE_KEY, openaiKey, ...Object.fromEntries(OLD_OPENAI_KEYS.map((k, i) => [`old openai key ${i}`, k])), CLIENT_KEY, CLIENT_COOKIE, ...Object.fromEntries(tokens.map((t, i) => [`broker token ${i}`, t])) };
    for (const [where, text] of Object.entries(haystacks)) for (const [what, secret] of Object.entries(secrets)) expect(text.includes(secret), `${what} in ${where}`).toBe(false);
    // And the upstream never saw any broker token or client credential.
    for (const [what, secret] of Object.entries({ CLIENT_KEY, CLIENT_COOKIE, ...Object.fromEntries(tokens.map((t, i) => [`broker token ${i}`, t])) })) expect(originSaw().includes(secret), `${what} upstream`).toBe(false);
  });
});
