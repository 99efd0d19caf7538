import { request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fetch, ProxyAgent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Reason } from '../core/errors/index.js';
import { startEgressHarness, type EgressHarness } from '../test/support/egress-harness.js';
import { startOrigin, type Origin } from '../test/support/origin.js';

const policy = (limits = ''): string => `version: 1
egress:
  unsafe_allow_private:
    - {host: origin.test, cidr: 127.0.0.1/32}
${limits}tenants:
  - name: acme
    egress:
      allow: ["origin.test:*"]
`;
const HOSTS = { 'origin.test': ['127.0.0.1'] };
/** Failure guard only: a row that gets no answer fails after this long instead of hanging the suite. */
const GUARD_MS = 10_000;

interface RawResponse {
  readonly status: number;
  readonly headers: ReadonlyMap<string, readonly string[]>;
  readonly body: string;
  readonly raw: string;
}

/** Decode a chunked body (RFC 9112 §7.1); null while the last chunk has not arrived. */
function dechunk(text: string): string | null {
  let out = '';
  let at = 0;
  for (;;) {
    const lineEnd = text.indexOf('\r\n', at);
    if (lineEnd === -1) return null;
    const size = parseInt(text.slice(at, lineEnd), 16);
    if (Number.isNaN(size)) throw new Error(`bad chunk size: ${JSON.stringify(text.slice(at, lineEnd))}`);
    if (size === 0) return text.indexOf('\r\n', lineEnd + 2) === -1 ? null : out;
    if (text.length < lineEnd + 2 + size + 2) return null;
    out += text.slice(lineEnd + 2, lineEnd + 2 + size);
    at = lineEnd + 2 + size + 2;
  }
}

/** Parse one HTTP/1.1 response from the start of `text` (latin1); null while it is incomplete. */
function parseResponse(text: string): RawResponse | null {
  const headEnd = text.indexOf('\r\n\r\n');
  if (headEnd === -1) return null;
  const [statusLine = '', ...lines] = text.slice(0, headEnd).split('\r\n');
  const match = /^HTTP\/1\.[01] (\d{3}) /.exec(statusLine);
  if (!match) throw new Error(`not an HTTP response: ${JSON.stringify(statusLine)}`);
  const headers = new Map<string, string[]>();
  for (const line of lines) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).trim().toLowerCase();
    headers.set(name, [...(headers.get(name) ?? []), line.slice(colon + 1).trim()]);
  }
  const rest = text.slice(headEnd + 4);
  let body: string | null;
  if (headers.get('transfer-encoding')?.some((v) => v.toLowerCase().includes('chunked'))) body = dechunk(rest);
  else body = rest.length < Number(headers.get('content-length')?.[0] ?? 0) ? null : rest;
  return body === null ? null : { status: Number(match[1]), headers, body, raw: text };
}

/**
 * Send raw bytes to the proxy and resolve with the first complete response (or the bytes received when the
 * proxy closes). `end` half-closes the client side after writing, as `shutdown(SHUT_WR)` would.
 */
function exchange(port: number, data: string | Buffer, options: { end?: boolean } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let received = '';
    const settle = (): boolean => {
      try {
        const parsed = parseResponse(received);
        if (!parsed) return false;
        socket.destroy();
        resolve(parsed);
      } catch (err) {
        socket.destroy();
        reject(err as Error);
      }
      return true;
    };
    socket.setTimeout(GUARD_MS, () => {
      socket.destroy();
      reject(new Error(`no complete response within ${GUARD_MS}ms; got ${JSON.stringify(received.slice(0, 200))}`));
    });
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      received += chunk;
      settle();
    });
    socket.on('error', () => undefined); // a reset after the response is fine; 'close' decides
    socket.on('close', () => {
      if (!settle()) reject(new Error(`connection closed without a complete response: ${JSON.stringify(received.slice(0, 200))}`));
    });
    socket.on('connect', () => {
      socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
      if (options.end) socket.end();
    });
  });
}

interface AuditEvent {
  readonly status_detail: string;
  readonly metadata: { readonly uid: string };
  readonly unmapped: { readonly gatehouse: { readonly kind: string } };
}

async function auditText(h: EgressHarness): Promise<string> {
  await h.audit.flush();
  return readFile(join(h.dir, 'audit', 'egress', '000000000001.jsonl'), 'utf8');
}

async function auditEvents(h: EgressHarness, correlationId: string): Promise<AuditEvent[]> {
  const lines = (await auditText(h)).split('\n').filter((l) => l.length > 0);
  return lines.map((l) => (JSON.parse(l) as { event: AuditEvent }).event).filter((e) => e.metadata.uid === correlationId);
}

const basic = (token: string): string => `Proxy-Authorization: Basic ${Buffer.from(`gatehouse:${token}`).toString('base64')}\r\n`;

interface Ctx {
  /** A Proxy-Authorization header line carrying a valid token. */
  readonly auth: string;
  readonly revokedAuth: string;
  readonly expiredAuth: string;
  /** The origin's authority, as granted, and its port. */
  readonly at: string;
  readonly port: number;
}

/** [name, request bytes, status, reason (null: allowed, the origin answers)] */
type Row = readonly [name: string, send: (c: Ctx) => string, status: number, reason: Reason | null];

const ROWS: readonly Row[] = [
  // Not HTTP at all: the parser refuses it before any handler runs.
  ['garbage request line', () => 'GARBAGE\r\n\r\n', 400, 'malformed_request'],
  // RFC 9112 §2.3: HTTP-version is "HTTP/" DIGIT "." DIGIT.
  ['bad HTTP version', (c) => `GET http://${c.at}/ HTTP/1.x\r\n${c.auth}\r\n`, 400, 'malformed_request'],
  ['unknown HTTP major version', (c) => `GET http://${c.at}/ HTTP/7.1\r\n${c.auth}\r\n`, 400, 'malformed_request'],
  // Userinfo in the target: "origin.test:x" is userinfo to a URL parser, evil.test the host.
  ['absolute-form with userinfo', (c) => `GET http://origin.test:x@evil.test/ HTTP/1.1\r\n${c.auth}\r\n`, 400, 'host_mismatch'],
  // Host header naming another authority than the target: a fronting attempt.
  ['Host disagrees with target', (c) => `GET http://${c.at}/ HTTP/1.1\r\nHost: evil.test\r\n${c.auth}\r\n`, 400, 'host_mismatch'],
  ['Host disagrees on the port', (c) => `GET http://${c.at}/ HTTP/1.1\r\nHost: origin.test:1\r\n${c.auth}\r\n`, 400, 'host_mismatch'],
  // RFC 9112 §3.2: more than one Host field line is a 400; the second one here names another authority.
  ['two Host headers', (c) => `GET http://${c.at}/ HTTP/1.1\r\nHost: ${c.at}\r\nHost: evil.test\r\n${c.auth}\r\n`, 400, 'host_mismatch'],
  // The same authority spelled differently is the same authority (case, one trailing dot).
  ['Host in upper case with trailing dot', (c) => `GET http://${c.at}/spelling HTTP/1.1\r\nHost: ORIGIN.Test.:${c.port}\r\n${c.auth}\r\n`, 200, null],
  ['target in upper case with trailing dot', (c) => `GET http://ORIGIN.TEST.:${c.port}/spelling HTTP/1.1\r\nHost: ${c.at}\r\n${c.auth}\r\n`, 200, null],
  // Targets that do not name one host and port, or carry a fragment (RFC 9112 §3.2.2, RFC 3986 §3.5).
  ['absolute-form with an empty host', (c) => `GET http://:80/ HTTP/1.1\r\n${c.auth}\r\n`, 400, 'invalid_host'],
  ['absolute-form with port 65536', (c) => `GET http://origin.test:65536/ HTTP/1.1\r\n${c.auth}\r\n`, 400, 'invalid_host'],
  ['absolute-form with a fragment', (c) => `GET http://${c.at}/a#b HTTP/1.1\r\n${c.auth}\r\n`, 400, 'malformed_request'],
  // Request smuggling framing (RFC 9112 §6.3): conflicting lengths are refused, never guessed.
  ['two Content-Length values', (c) => `POST http://${c.at}/ HTTP/1.1\r\n${c.auth}Content-Length: 1\r\nContent-Length: 2\r\n\r\nab`, 400, 'malformed_request'],
  ['Content-Length with Transfer-Encoding', (c) => `POST http://${c.at}/ HTTP/1.1\r\n${c.auth}Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400, 'malformed_request'],
  // Origin-form is a request to the proxy itself, not a proxy request (RFC 9112 §3.2.2).
  ['origin-form to the proxy', (c) => `GET / HTTP/1.1\r\nHost: ${c.at}\r\n${c.auth}\r\n`, 400, 'malformed_request'],
  // https:// must arrive as CONNECT; an absolute https URL would mean the proxy speaks TLS for the client.
  ['https absolute-form', (c) => `GET https://${c.at}/ HTTP/1.1\r\n${c.auth}\r\n`, 400, 'unsupported_scheme'],
  // RFC 9110 §9.3.6: a CONNECT target is host ":" port, nothing more and nothing less.
  ['CONNECT without a port', (c) => `CONNECT origin.test HTTP/1.1\r\n${c.auth}\r\n`, 400, 'malformed_request'],
  ['CONNECT with a path', (c) => `CONNECT ${c.at}/x HTTP/1.1\r\n${c.auth}\r\n`, 400, 'malformed_request'],
  ['CONNECT to an unparseable host', (c) => `CONNECT exa..mple.test:443 HTTP/1.1\r\n${c.auth}\r\n`, 400, 'invalid_host'],
  ['CONNECT followed by garbage instead of headers', (c) => `CONNECT ${c.at} HTTP/1.1\r\n\x01\x02\xff\xfe junk\r\n\r\n`, 400, 'malformed_request'],
  // Default max_header_bytes is 32 KiB.
  ['headers over 32 KiB', (c) => `GET http://${c.at}/ HTTP/1.1\r\n${c.auth}X-Pad: ${'a'.repeat(40 * 1024)}\r\n\r\n`, 431, 'header_too_large'],
  // Authentication (RFC 9110 §11.7.1).
  ['no Proxy-Authorization', (c) => `GET http://${c.at}/ HTTP/1.1\r\n\r\n`, 407, 'auth_missing'],
  ['unknown auth scheme', (c) => `GET http://${c.at}/ HTTP/1.1\r\nProxy-Authorization: Digest username="gatehouse"\r\n\r\n`, 407, 'auth_invalid'],
  ['Basic without a colon', (c) => `GET http://${c.at}/ HTTP/1.1\r\nProxy-Authorization: Basic ${Buffer.from('no-colon-here').toString('base64')}\r\n\r\n`, 407, 'auth_invalid'],
  ['Bearer with a forged token', (c) => `GET http://${c.at}/ HTTP/1.1\r\nProxy-Authorization: Bearer eyJhbGciOiJub25lIn0.e30.\r\n\r\n`, 407, 'auth_invalid'],
  ['expired token', (c) => `GET http://${c.at}/ HTTP/1.1\r\n${c.expiredAuth}\r\n`, 407, 'token_expired'],
  ['revoked session', (c) => `GET http://${c.at}/ HTTP/1.1\r\n${c.revokedAuth}\r\n`, 403, 'session_revoked'],
  ['CONNECT for a revoked session', (c) => `CONNECT ${c.at} HTTP/1.1\r\n${c.revokedAuth}\r\n`, 403, 'session_revoked'],
];

describe('egress proxy: bad input', () => {
  let h: EgressHarness;
  let origin: Origin;
  let ctx: Ctx;
  const tokens: string[] = [];
  const bodies: string[] = [];

  beforeAll(async () => {
    origin = await startOrigin();
    h = await startEgressHarness(policy(), HOSTS);
    const grant = [`origin.test:${origin.port}`];
    const valid = await h.token(grant);
    const revoked = await h.token(grant, { session: 'revoked-1' });
    const expired = await h.token(grant, { ttlMs: 60_000, now: Date.now() - 10 * 60_000 });
    tokens.push(valid, revoked, expired);
    await h.revocations.revoke('revoked-1');
    ctx = { auth: basic(valid), revokedAuth: basic(revoked), expiredAuth: basic(expired), at: `origin.test:${origin.port}`, port: origin.port };
  });

  afterAll(async () => {
    await origin?.close();
    await h?.close();
  });

  it.each(ROWS.map(([name, send, status, reason]) => ({ name, send, status, reason })))('$name', async ({ send, status, reason }) => {
    const seenBefore = origin.seen.length;
    const res = await exchange(h.port, send(ctx));
    bodies.push(res.raw);
    expect(res.status).toBe(status);
    if (reason === null) {
      expect(res.headers.has('x-gatehouse-deny')).toBe(false);
      expect(res.body).toBe('hello GET /spelling');
      expect(origin.seen.length).toBe(seenBefore + 1);
      return;
    }
    expect(res.headers.get('x-gatehouse-deny')).toEqual([reason]);
    expect(origin.seen.length).toBe(seenBefore); // a refusal never reaches the origin
    if (status === 407) expect(res.headers.get('proxy-authenticate')?.some((v) => v.startsWith('Basic '))).toBe(true);
    // Exactly one audit event for this decision, carrying the same reason.
    const correlationId = res.headers.get('x-gatehouse-correlation-id')?.[0] ?? '';
    const events = await auditEvents(h, correlationId);
    expect(events).toHaveLength(1);
    expect(events[0]?.status_detail).toBe(reason);
  });

  it('answers a refusal to a client that half-closes', async () => {
    const res = await exchange(h.port, `GET http://${ctx.at}/ HTTP/1.1\r\n\r\n`, { end: true });
    expect(res.status).toBe(407);
    expect(res.headers.get('x-gatehouse-deny')).toEqual(['auth_missing']);
  });

  it('survives clients that connect and vanish', async () => {
    // [what the client does before it goes away]
    const rows: ReadonlyArray<readonly [string, string]> = [
      ['nothing', ''], // connect, close at once
      ['half a request line', 'GET http://orig'], // mid-request-line
      ['binary noise', '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03'], // a TLS ClientHello sent to the plain port
    ];
    for (const [, bytes] of rows) {
      await new Promise<void>((resolve, reject) => {
        const socket = connect({ host: '127.0.0.1', port: h.port });
        socket.setTimeout(GUARD_MS, () => reject(new Error('socket did not close')));
        socket.on('error', () => undefined);
        socket.on('connect', () => {
          if (bytes.length > 0) socket.write(bytes);
          socket.destroy();
        });
        socket.on('close', () => resolve());
      });
    }
    const res = await exchange(h.port, `GET http://${ctx.at}/after HTTP/1.1\r\n${ctx.auth}\r\n`);
    expect(res.status).toBe(200);
  });

  it('keeps serving real clients after the bad input (absolute-form and CONNECT)', async () => {
    const token = tokens[0] as string;
    // Node's http client in absolute-form, as curl with http_proxy would send it.
    const viaHttp = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: h.port, method: 'GET', path: `http://${ctx.at}/node`, headers: { host: ctx.at, 'proxy-authorization': `Bearer ${token}` } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.setTimeout(GUARD_MS, () => req.destroy(new Error('no response')));
      req.on('error', reject);
      req.end();
    });
    expect(viaHttp).toEqual({ status: 200, body: 'hello GET /node' });
    // undici's ProxyAgent tunnels through CONNECT with the token as the proxy URL's password.
    const agent = new ProxyAgent(h.proxyUrl(token));
    try {
      const res = await fetch(`http://${ctx.at}/undici`, { dispatcher: agent, signal: AbortSignal.timeout(GUARD_MS) });
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('hello GET /undici');
    } finally {
      await agent.close();
    }
  });

  it('never echoes a token in a response or the audit log', async () => {
    // Refusals that carry a real token: origin-form, a disagreeing Host, a CONNECT with a path.
    for (const req of [`GET / HTTP/1.1\r\n${ctx.auth}\r\n`, `GET http://${ctx.at}/ HTTP/1.1\r\nHost: evil.test\r\n${ctx.auth}\r\n`, `CONNECT ${ctx.at}/x HTTP/1.1\r\n${ctx.auth}\r\n`]) {
      bodies.push((await exchange(h.port, req)).raw);
    }
    const audit = await auditText(h);
    expect(bodies.length).toBeGreaterThanOrEqual(3);
    for (const token of tokens) {
      const signature = token.split('.')[2] as string;
      expect(signature.length).toBeGreaterThan(40);
      for (const text of [...bodies, audit]) expect(text.includes(signature)).toBe(false);
    }
  });
});

describe('egress proxy: clients that leave early', () => {
  let h: EgressHarness;
  let origin: Origin;

  beforeAll(async () => {
    origin = await startOrigin();
    h = await startEgressHarness(policy(), HOSTS);
  });

  afterAll(async () => {
    await origin?.close();
    // An exchange the proxy left hanging keeps h.close() from ever resolving (see the last test). Bound the wait
    // (a failure guard, not synchronisation) and remove the state directory ourselves if it does not finish.
    let guard: NodeJS.Timeout | undefined;
    const closed = await Promise.race([h.close().then(() => true), new Promise<false>((resolve) => (guard = setTimeout(() => resolve(false), 2_000)))]);
    clearTimeout(guard);
    if (!closed) await rm(h.dir, { recursive: true, force: true });
  });

  it('answers a client that half-closes after a complete request', async () => {
    const at = `origin.test:${origin.port}`;
    const token = await h.token([at]);
    const res = await exchange(h.port, `GET http://${at}/half HTTP/1.1\r\nHost: ${at}\r\n${basic(token)}\r\n`, { end: true });
    expect(res.status).toBe(200);
    expect(res.body).toBe('hello GET /half');
  });

  // Last in this block: it closes the proxy.
  it('finishes abandoned exchanges, so the proxy still drains and closes', async () => {
    const at = `origin.test:${origin.port}`;
    // [how the client leaves right after a complete request head] The window is the asynchronous decision
    // (token check, resolution, upstream dial), so each way is tried several times with fresh tokens.
    const rows: ReadonlyArray<readonly [string, (s: Socket, head: string) => void]> = [
      ['half-close', (s, head) => s.end(head)], // FIN after the head, still reading
      ['close after flush', (s, head) => s.end(head, () => s.destroy())], // FIN, then gone
      ['destroy at once', (s, head) => { s.write(head); s.destroy(); }], // gone with the bytes in flight
    ];
    for (let round = 0; round < 8; round++) {
      for (const [, leave] of rows) {
        const token = await h.token([at]);
        await new Promise<void>((resolve, reject) => {
          const socket = connect({ host: '127.0.0.1', port: h.port });
          socket.setTimeout(GUARD_MS, () => reject(new Error('socket did not close')));
          socket.on('error', () => undefined);
          socket.resume(); // read whatever answer comes, so the socket can reach 'close'
          socket.on('connect', () => leave(socket, `GET http://${at}/gone HTTP/1.1\r\n${basic(token)}\r\n`));
          socket.on('close', () => resolve());
        });
      }
    }
    // close(drainMs) waits at most drainMs for in-flight work, then cuts what is left: it must resolve.
    let guard: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      h.proxy.close(500).then(() => 'closed' as const),
      new Promise<'hung'>((resolve) => (guard = setTimeout(() => resolve('hung'), 5_000))),
    ]);
    clearTimeout(guard);
    expect(outcome).toBe('closed');
    expect(h.proxy.sessions().filter((s) => s.active > 0)).toEqual([]);
  });
});

describe('egress proxy: slow request head', () => {
  let h: EgressHarness;

  beforeAll(async () => {
    h = await startEgressHarness(policy('  limits:\n    header_timeout: 1s\n'), HOSTS);
  });

  afterAll(async () => {
    await h?.close();
  });

  it('answers 408 header_timeout to a client that never finishes its head', async () => {
    const token = await h.token(['origin.test:8080']);
    // Part of a head, then nothing: the proxy must answer (and close) on its own.
    const res = await exchange(h.port, `GET http://origin.test:8080/ HTTP/1.1\r\n${basic(token)}X-Slow: `);
    expect(res.status).toBe(408);
    expect(res.headers.get('x-gatehouse-deny')).toEqual(['header_timeout']);
    const events = await auditEvents(h, res.headers.get('x-gatehouse-correlation-id')?.[0] ?? '');
    expect(events.map((e) => [e.status_detail, e.unmapped.gatehouse.kind])).toEqual([['header_timeout', 'refused']]);
  });
});
