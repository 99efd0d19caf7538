// Hostile and broken input to the file API, one commented row per case: paths (traversal in every spelling,
// encoded separators, control characters, invalid UTF-8, lengths), ranges, uploads that stop short or run over a
// limit, clients that go away, a backend that is unreachable or never answers, and sessions over their limits.
// Each must end in a clear reason code and one audit event, with nothing half-written, nothing leaked and other
// sessions unaffected.
import { readdir, readlink } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Reason } from '../core/errors/index.js';
import { AUDIENCE, DEFAULT_ISSUER, issueSessionToken, MAX_TOKEN_LENGTH } from '../core/tokens/index.js';
import { startBrokerHarness, type BrokerHarness } from '../test/support/broker-harness.js';
import { waitUntil } from '../test/support/wait.js';
import { eventOf, expectAllowed, expectNoSecrets, expectRefused, filePolicy, localKeys, manualUpload, MOUNTS, patternStream, raw, type RawResponse } from './file-test-kit.js';

const DEAD_SECRET = 'dead-store-secret-value-0123456789';
/**
 * How long the hung store gets. An S3 store's timeout is not a policy key (the client's 30 s default holds), so
 * the test lends it this one where the store calls its client: a hung row takes two seconds, not thirty.
 */
const STORE_TIMEOUT_MS = 2000;
let h: BrokerHarness;
let token: string;
let hung: { server: Server; port: number; connections: number; sockets: Set<Socket>; received: string[] };
let deadPort: number;
const responses: string[] = [];
const tokens: string[] = [];
const keep = (res: RawResponse): RawResponse => {
  responses.push(res.text, JSON.stringify(res.headers));
  return res;
};
const files = (): string => join(h.dir, 'files');
const tmpFiles = (): Promise<string[]> => readdir(join(files(), '.tmp')).catch(() => []);
const issue = async (o: Parameters<BrokerHarness['token']>[0]): Promise<string> => {
  const t = await h.token(o);
  tokens.push(t);
  return t;
};

/** A TCP server on loopback that accepts connections and never answers: a hung S3 endpoint. */
async function hangingServer(): Promise<typeof hung> {
  const state = { connections: 0, sockets: new Set<Socket>(), received: [] as string[] };
  const server = createServer((socket) => {
    state.connections++;
    state.sockets.add(socket);
    socket.on('data', (c: Buffer) => state.received.push(c.toString('latin1'))); // read the request, answer nothing
    socket.on('close', () => state.sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(state, { server, port: (server.address() as { port: number }).port });
}

/** A loopback port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

const s3Store = (name: string, port: number): string => `    - {name: ${name}, type: s3, endpoint: "http://127.0.0.1:${port}", region: us-east-1, bucket: gh-bad, access_key_id: env:GH_BAD_ACCESS, secret_access_key: env:GH_BAD_SECRET, timeout: ${STORE_TIMEOUT_MS}ms}\n`;

beforeAll(async () => {
  hung = await hangingServer();
  deadPort = await closedPort();
  process.env['GH_BAD_ACCESS'] = 'GHBADINPUTACCESSKEY0';
  process.env['GH_BAD_SECRET'] = DEAD_SECRET;
  const tenant = (name: string, store: string, limits = ''): string => `  - name: ${name}\n    broker:\n      store: ${store}\n      mounts: [{path: /outputs, mode: rw}]\n${limits}`;
  const policy =
    filePolicy({ stores: `    - {name: files, type: local}\n${s3Store('dead', deadPort)}${s3Store('hung', hung.port)}`, store: 'files' }) +
    tenant('t-dead', 'dead') +
    tenant('t-hung', 'hung') +
    tenant('limited', 'files', '      limits: {per_session: {requests_per_second: 0.01, burst: 3, max_concurrent: 2}}\n');
  h = await startBrokerHarness(policy);
  token = await issue({ session: 'bad-main' });
  expect((await raw(h.url, 'PUT', '/v1/files/outputs/range.txt', { token, body: '0123456789', headers: { 'content-length': 10 } })).status).toBe(200);
});

afterAll(async () => {
  await h?.close();
  for (const s of hung?.sockets ?? []) s.destroy();
  await new Promise((resolve) => hung?.server.close(resolve));
  delete process.env['GH_BAD_ACCESS'];
  delete process.env['GH_BAD_SECRET'];
});

describe('paths', () => {
  // Every spelling of a path the broker must refuse, one row each, sent byte for byte after /v1/files. Each is
  // tried as a read, a write, a delete and a stat: the reason is the same, and nothing is ever stored.
  const REFUSED: ReadonlyArray<{ name: string; path: string; reason: Reason }> = [
    // Dot segments, in every encoding: each would name another path once resolved.
    { name: 'dot-dot', path: '/outputs/../inputs/x', reason: 'path_invalid' },
    { name: 'dot-dot, encoded lower case', path: '/outputs/%2e%2e/inputs/x', reason: 'path_invalid' },
    { name: 'dot-dot, encoded upper case', path: '/outputs/%2E%2E/inputs/x', reason: 'path_invalid' },
    { name: 'dot-dot, first dot encoded', path: '/outputs/%2e./inputs/x', reason: 'path_invalid' },
    { name: 'dot-dot, second dot encoded', path: '/outputs/.%2e/inputs/x', reason: 'path_invalid' },
    { name: 'dot-dot as the last segment (names the mount)', path: '/outputs/x/..', reason: 'path_invalid' },
    { name: 'dot-dot climbing out of the filesystem', path: '/outputs/../../fs-2/outputs/x', reason: 'path_invalid' },
    { name: 'a single dot', path: '/outputs/./x', reason: 'path_invalid' },
    { name: 'a single dot, encoded', path: '/outputs/%2e/x', reason: 'path_invalid' },
    // Separators that are not a plain slash: refused, never decoded into one.
    { name: 'encoded slash', path: '/outputs/a%2fb', reason: 'path_invalid' },
    { name: 'encoded slash, upper case', path: '/outputs/a%2Fb', reason: 'path_invalid' },
    { name: 'encoded slash joining dot-dots', path: '/outputs/..%2f..%2finputs%2fx', reason: 'path_invalid' },
    { name: 'encoded slash after the mount name', path: '/outputs%2fx', reason: 'path_invalid' },
    { name: 'encoded backslash', path: '/outputs/a%5cb', reason: 'path_invalid' },
    { name: 'encoded backslash, upper case', path: '/outputs/a%5Cb', reason: 'path_invalid' },
    { name: 'raw backslash', path: '/outputs/a\\b', reason: 'path_invalid' },
    { name: 'backslash dot-dot (a Windows traversal)', path: '/outputs/..\\inputs\\x', reason: 'path_invalid' },
    // Control characters: C0 (NUL included), DEL and C1.
    { name: 'NUL', path: '/outputs/a%00b', reason: 'path_invalid' },
    { name: 'NUL after a name (C string truncation)', path: '/outputs/x.txt%00.png', reason: 'path_invalid' },
    { name: 'line feed (log injection)', path: '/outputs/a%0ab', reason: 'path_invalid' },
    { name: 'carriage return', path: '/outputs/a%0db', reason: 'path_invalid' },
    { name: 'tab', path: '/outputs/a%09b', reason: 'path_invalid' },
    { name: 'escape (terminal injection)', path: '/outputs/a%1b%5b31mb', reason: 'path_invalid' },
    { name: 'DEL', path: '/outputs/a%7fb', reason: 'path_invalid' },
    { name: 'C1 next line (U+0085)', path: '/outputs/a%c2%85b', reason: 'path_invalid' },
    // Percent-encoding that is not UTF-8: the router cannot decode it either (the broker answers, not Fastify).
    { name: 'a % without hex digits', path: '/outputs/%zz', reason: 'path_invalid' },
    { name: 'a % at the end', path: '/outputs/x%', reason: 'path_invalid' },
    { name: 'a % with one hex digit', path: '/outputs/x%4', reason: 'path_invalid' },
    { name: 'a lone continuation byte', path: '/outputs/%80', reason: 'path_invalid' },
    { name: 'a byte that is never UTF-8', path: '/outputs/%ff', reason: 'path_invalid' },
    { name: 'a lead byte without its continuation', path: '/outputs/%c3%28', reason: 'path_invalid' },
    { name: 'an overlong slash (%c0%af)', path: '/outputs/..%c0%af..%c0%afinputs', reason: 'path_invalid' },
    { name: 'an overlong dot (%c0%ae)', path: '/outputs/%c0%ae%c0%ae/inputs/x', reason: 'path_invalid' },
    { name: 'an encoded surrogate (CESU-8)', path: '/outputs/%ed%a0%80', reason: 'path_invalid' },
    { name: 'a code point above U+10FFFF', path: '/outputs/%f4%90%80%80', reason: 'path_invalid' },
    // Lengths, in UTF-8 bytes, not characters.
    { name: 'a 241-byte segment', path: `/outputs/${'a'.repeat(241)}`, reason: 'path_invalid' },
    { name: 'a segment of 81 characters but 243 bytes', path: `/outputs/${'%e2%82%ac'.repeat(81)}`, reason: 'path_invalid' },
    { name: 'a 769-byte path of short segments', path: `/outputs/${`${'p'.repeat(64)}/`.repeat(11)}${'q'.repeat(45)}`, reason: 'path_invalid' },
    // Shapes that name no file in a mount.
    { name: 'a trailing slash (a prefix, not a file)', path: '/outputs/dir/', reason: 'path_invalid' },
    { name: 'the mount itself', path: '/outputs', reason: 'mount_not_granted' },
    { name: 'the mount with a trailing slash', path: '/outputs/', reason: 'path_invalid' },
    { name: 'an empty first segment', path: '//outputs/x', reason: 'mount_not_granted' },
    { name: 'the mount in another case', path: '/OUTPUTS/x', reason: 'mount_not_granted' },
    { name: 'a mount name with a fullwidth letter', path: '/%ef%bd%8futputs/x', reason: 'mount_not_granted' },
  ];
  it.each(REFUSED)('refuses $name ($reason)', async ({ name, path, reason }) => {
    for (const method of ['GET', 'PUT', 'DELETE']) {
      const res = keep(await raw(h.url, method, `/v1/files${path}`, { token, ...(method === 'PUT' ? { body: 'x', headers: { 'content-length': 1 } } : {}) }));
      await expectRefused(h, res, reason, `${method} ${name}`);
    }
    // The stat endpoint decodes the same way.
    await expectRefused(h, keep(await raw(h.url, 'GET', `/v1/stat${path}`, { token })), reason, `stat ${name}`);
  });

  it('the length limits are inclusive: a 240-byte segment and a 768-byte path are files', async () => {
    const rows = [
      // 120 two-byte characters: 240 bytes.
      `/outputs/${'%c3%a9'.repeat(120)}`,
      // 9 + 3 * 241 + 36 = 768 bytes.
      `/outputs/${`${'m'.repeat(240)}/`.repeat(3)}${'n'.repeat(36)}`,
    ];
    for (const path of rows) {
      const put = keep(await raw(h.url, 'PUT', `/v1/files${path}`, { token, body: 'edge', headers: { 'content-length': 4 } }));
      expect(put.status, path.slice(0, 40)).toBe(200);
      expect(keep(await raw(h.url, 'GET', `/v1/files${path}`, { token })).text).toBe('edge');
    }
  });

  // Spellings that look like traversal but are data: stored and read back under exactly the name they spell.
  const DATA: ReadonlyArray<{ name: string; path: string; key: string }> = [
    { name: 'a doubly encoded dot-dot is the literal name %2e%2e', path: '/outputs/%252e%252e/x', key: '/outputs/%2e%2e/x' },
    { name: 'a doubly encoded slash is the literal name a%2fb', path: '/outputs/a%252fb', key: '/outputs/a%2fb' },
    { name: 'fullwidth dots (U+FF0E) are not dots', path: '/outputs/%ef%bc%8e%ef%bc%8e/x', key: '/outputs/\uff0e\uff0e/x' },
    { name: 'three dots are a name', path: '/outputs/.../x', key: '/outputs/.../x' },
    { name: 'a semicolon is a name, not a parameter', path: '/outputs/a;b', key: '/outputs/a;b' },
    { name: 'an empty segment is kept (a//b)', path: '/outputs/a//b', key: '/outputs/a//b' },
    { name: 'a query is not part of the path', path: '/outputs/q.txt?/../../inputs/x', key: '/outputs/q.txt' },
  ];
  it.each(DATA)('$name', async ({ path, key }) => {
    const put = keep(await raw(h.url, 'PUT', `/v1/files${path}`, { token, body: key, headers: { 'content-length': Buffer.byteLength(key) } }));
    await expectAllowed(h, put, { operation: 'PutFile', paths: [key], bytesUp: Buffer.byteLength(key) });
    expect(await localKeys(files(), `acme/fs-1${key}`)).toContain(`acme/fs-1${key}`);
    expect(keep(await raw(h.url, 'GET', `/v1/files${path}`, { token })).text).toBe(key);
  });

  // Paths in a JSON body (move) and a query (list) pass the same rules; a lone surrogate can only arrive this way
  // (in a URL it is invalid UTF-8, refused above).
  const MOVES: ReadonlyArray<{ name: string; body: string; reason: Reason }> = [
    { name: 'a lone high surrogate', body: JSON.stringify({ from: '/outputs/range.txt', to: '/outputs/\ud800' }), reason: 'path_invalid' },
    { name: 'a lone low surrogate', body: JSON.stringify({ from: '/outputs/\udc00x', to: '/outputs/y' }), reason: 'path_invalid' },
    { name: 'dot-dot in the target', body: JSON.stringify({ from: '/outputs/range.txt', to: '/outputs/../inputs/x' }), reason: 'path_invalid' },
    { name: 'NUL in the source', body: JSON.stringify({ from: '/outputs/range.txt\u0000', to: '/outputs/y' }), reason: 'path_invalid' },
    { name: 'a backslash in the target', body: JSON.stringify({ from: '/outputs/range.txt', to: '/outputs\\..\\inputs\\x' }), reason: 'path_invalid' },
    { name: 'a relative target', body: JSON.stringify({ from: '/outputs/range.txt', to: 'outputs/y' }), reason: 'path_invalid' },
    { name: 'a target over 768 bytes', body: JSON.stringify({ from: '/outputs/range.txt', to: `/outputs/${'r/'.repeat(380)}` }), reason: 'path_invalid' },
    { name: 'a body that is not JSON', body: '{"from": "/outputs/range.txt",', reason: 'malformed_request' },
    { name: 'a path that is not a string', body: JSON.stringify({ from: ['/outputs/range.txt'], to: '/outputs/y' }), reason: 'malformed_request' },
    { name: 'an extra key', body: JSON.stringify({ from: '/outputs/range.txt', to: '/outputs/y', overwrite: true }), reason: 'malformed_request' },
    { name: 'a JSON body over 16 KiB', body: JSON.stringify({ from: '/outputs/range.txt', to: `/outputs/${'z'.repeat(17 * 1024)}` }), reason: 'malformed_request' },
  ];
  it.each(MOVES)('move refuses $name ($reason); the source stays', async ({ body, reason }) => {
    const res = keep(await raw(h.url, 'POST', '/v1/move', { token, body, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }));
    await expectRefused(h, res, reason);
    expect(keep(await raw(h.url, 'GET', '/v1/files/outputs/range.txt', { token })).text).toBe('0123456789');
  });

  const LISTS: ReadonlyArray<{ name: string; query: string; reason: Reason }> = [
    { name: 'a dot-dot prefix', query: 'prefix=/outputs/../inputs', reason: 'path_invalid' },
    { name: 'a NUL in the prefix', query: 'prefix=/outputs/%00', reason: 'path_invalid' },
    { name: 'a backslash in the prefix', query: 'prefix=/outputs%5c..%5cinputs', reason: 'path_invalid' },
    { name: 'a dot-dot cursor', query: 'prefix=/outputs&after=/outputs/../inputs/x', reason: 'path_invalid' },
    { name: 'no prefix', query: '', reason: 'path_invalid' },
    { name: 'a prefix outside every mount', query: 'prefix=/', reason: 'mount_not_granted' },
    { name: 'limit 0', query: 'prefix=/outputs&limit=0', reason: 'malformed_request' },
    { name: 'limit 1001', query: 'prefix=/outputs&limit=1001', reason: 'malformed_request' },
    { name: 'a negative limit', query: 'prefix=/outputs&limit=-1', reason: 'malformed_request' },
    { name: 'a limit that is not a number', query: 'prefix=/outputs&limit=1e3', reason: 'malformed_request' },
  ];
  it.each(LISTS)('list refuses $name ($reason)', async ({ query, reason }) => {
    await expectRefused(h, keep(await raw(h.url, 'GET', `/v1/list?${query}`, { token })), reason);
  });

  it('stored nothing under a refused name', async () => {
    const keys = await localKeys(files(), 'acme/fs-1/');
    // No dot segment, backslash, control character or stray file: '...' (a name, stored above) is fine.
    expect(keys.filter((k) => /\/\.\.?(\/|$)|\\|[\u0000-\u001f\u007f-\u009f]|UNEXPECTED/.test(k))).toEqual([]);
    expect(keys.every((k) => k.startsWith('acme/fs-1/outputs/'))).toBe(true);
    expect(await tmpFiles()).toEqual([]);
  });
});

describe('ranges', () => {
  // range.txt holds 0123456789. RFC 9110 §14.2 lets a server ignore a Range it cannot serve; range.ts refuses
  // instead (a client that asked for a slice must not get the whole file unannounced): 400 malformed_request.
  const MALFORMED: ReadonlyArray<{ name: string; range: string }> = [
    { name: 'two ranges (multipart/byteranges is not served)', range: 'bytes=0-1,3-4' },
    { name: 'two ranges with a space', range: 'bytes=0-1, 3-4' },
    { name: 'an inverted range', range: 'bytes=5-2' },
    { name: 'no positions', range: 'bytes=-' },
    { name: 'garbage', range: 'bytes=abc' },
    { name: 'no unit', range: '0-4' },
    { name: 'another unit', range: 'items=0-4' },
    { name: 'no equals sign', range: 'bytes 0-4' },
    { name: 'a plus sign', range: 'bytes=+1-4' },
    { name: 'a hex position', range: 'bytes=0x1-4' },
    { name: 'a negative start', range: 'bytes=-1-4' },
    { name: 'a fraction', range: 'bytes=1.5-4' },
    { name: 'trailing junk', range: 'bytes=0-4;x' },
    { name: 'a 17-digit position', range: 'bytes=12345678901234567-' },
    { name: 'a position above 2^53', range: 'bytes=9999999999999999-' },
    { name: 'an empty header', range: '' },
  ];
  it.each(MALFORMED)('refuses $name: 400 malformed_request, no body', async ({ range }) => {
    const res = keep(await raw(h.url, 'GET', '/v1/files/outputs/range.txt', { token, headers: { range } }));
    const event = await expectRefused(h, res, 'malformed_request', range);
    expect(res.text).not.toContain('0123');
    expect(event.traffic).toBeUndefined();
  });

  // What is not malformed: the unit is case-insensitive (RFC 9110 §14.1), whitespace around the value is not part
  // of it (§5.5), and a HEAD ignores Range.
  const ACCEPTED: ReadonlyArray<{ name: string; method: string; range: string; status: number; body: string }> = [
    { name: 'an upper-case unit', method: 'GET', range: 'BYTES=2-4', status: 206, body: '234' },
    { name: 'a mixed-case unit', method: 'GET', range: 'Bytes=-2', status: 206, body: '89' },
    { name: 'surrounding whitespace', method: 'GET', range: '  bytes=7-  ', status: 206, body: '789' },
    { name: 'a malformed range on HEAD', method: 'HEAD', range: 'bytes=5-2', status: 200, body: '' },
  ];
  it.each(ACCEPTED)('serves $name', async ({ method, range, status, body }) => {
    const res = keep(await raw(h.url, method, '/v1/files/outputs/range.txt', { token, headers: { range } }));
    expect([res.status, res.text]).toEqual([status, body]);
  });
});

describe('structurally broken tokens', () => {
  // Signatures, algorithms and claims are file-auth.test.ts's; these rows break the token's shape. `detail` is
  // the event's auth_detail.
  const b64 = (text: string): string => Buffer.from(text).toString('base64url');
  const part = (i: number): string => token.split('.')[i] as string;
  const ROWS: ReadonlyArray<{ name: string; token: () => string | Promise<string>; detail: string }> = [
    { name: 'one part', token: () => part(0), detail: 'malformed' },
    { name: 'two parts (the signature cut off)', token: () => `${part(0)}.${part(1)}`, detail: 'malformed' },
    { name: 'four parts (a segment appended)', token: () => `${token}.${part(2)}`, detail: 'malformed' },
    { name: 'five parts (the shape of a JWE)', token: () => `${part(0)}.${part(1)}.${part(1)}.${part(2)}.${part(2)}`, detail: 'malformed' },
    { name: 'empty parts', token: () => '..', detail: 'malformed' },
    { name: 'a header that is not base64url', token: () => `***.${part(1)}.${part(2)}`, detail: 'malformed' },
    { name: 'a header in standard base64 (+ and /)', token: () => `${Buffer.from('{"alg":"EdDSA","kid":"?>?>"}').toString('base64')}.${part(1)}.${part(2)}`, detail: 'malformed' },
    { name: 'a header that is not JSON', token: () => `${b64('not json')}.${part(1)}.${part(2)}`, detail: 'malformed' },
    { name: 'a header that is a JSON array', token: () => `${b64('["EdDSA"]')}.${part(1)}.${part(2)}`, detail: 'malformed' },
    { name: 'a header without a kid', token: () => `${b64('{"alg":"EdDSA","typ":"gatehouse-session+jwt"}')}.${part(1)}.${part(2)}`, detail: 'unknown_kid' },
    { name: 'a payload that is not JSON under the real header and signature', token: () => `${part(0)}.${b64('not json')}.${part(2)}`, detail: 'bad_signature' },
    { name: 'a signature that is not base64url', token: () => `${part(0)}.${part(1)}.***`, detail: 'malformed' },
    { name: 'the token in quotes', token: () => `"${token}"`, detail: 'malformed' },
    { name: 'over 8 KiB of garbage', token: () => 'A'.repeat(MAX_TOKEN_LENGTH + 1), detail: 'too_long' },
    { name: 'a valid egress token (audience gatehouse-egress)', token: () => egressToken(), detail: 'wrong_aud' },
  ];
  const egressToken = async (): Promise<string> => {
    const t = (await issueSessionToken(h.keys, { issuer: DEFAULT_ISSUER, audience: AUDIENCE.egress, session: 'bad-egress', tenant: 'acme', ttlMs: 600_000, claims: { egress: ['example.com'] } })).token;
    tokens.push(t);
    return t;
  };
  it.each(ROWS)('refuses $name (auth_invalid, $detail)', async ({ token: make, detail }) => {
    const bad = await make();
    if (bad.length >= 16) tokens.push(bad);
    const res = keep(await raw(h.url, 'GET', '/v1/files/outputs/range.txt', { token: bad }));
    const event = await expectRefused(h, res, 'auth_invalid');
    expect(event.unmapped.gatehouse.auth_detail).toBe(detail);
  });

  it('refuses an Authorization header that is not one bearer token (unrecognised_scheme)', async () => {
    for (const authorization of ['Bearer', `Bearer ${part(0)} ${part(1)}`, `Token ${token}`, token]) {
      const res = keep(await raw(h.url, 'GET', '/v1/files/outputs/range.txt', { headers: { authorization } }));
      expect((await expectRefused(h, res, 'auth_invalid', authorization.slice(0, 12))).unmapped.gatehouse.auth_detail).toBe('unrecognised_scheme');
    }
  });

  it('a header block over Node’s 16 KiB limit is cut off before the broker: 431, nothing echoed', async () => {
    const huge = `${token}${'B'.repeat(20 * 1024)}`;
    tokens.push(huge);
    const before = h.events.length;
    const res = keep(await raw(h.url, 'GET', '/v1/files/outputs/range.txt', { token: huge }));
    expect(res.status).toBe(431);
    expect(res.text).not.toContain(part(2));
    // The broker never saw it: the next request on the same session is served, and its event is the only new one.
    const next = keep(await raw(h.url, 'GET', '/v1/files/outputs/range.txt', { token }));
    expect(next.text).toBe('0123456789');
    const event = await expectAllowed(h, next, { operation: 'GetFile', paths: ['/outputs/range.txt'] });
    expect(h.events.slice(before)).toEqual([event]);
  });
});

describe('uploads that stop short or run over', () => {
  /** The one event of the PUT of `path` that ended `reason` (the client that went away never saw a response). */
  const endedWith = (path: string, reason: Reason) => h.waitForEvent((e) => e['status_detail'] === reason && (e['resources'] as Array<{ name: string }> | undefined)?.[0]?.name === path);

  /** A PUT written on a raw socket: the head declares `declared` bytes, `sent` follow, then a FIN (half-close). */
  const halfClosed = (path: string, declared: number, sent: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port: Number(new URL(h.url).port) }, () => {
        socket.write(`PUT /v1/files${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nContent-Length: ${declared}\r\n\r\n`);
        socket.end(Buffer.alloc(sent, 'h'));
      });
      socket.on('data', (c: Buffer) => responses.push(c.toString('latin1')));
      socket.on('error', () => undefined);
      socket.on('close', () => resolve());
      socket.setTimeout(10_000, () => reject(new Error('the broker kept a half-closed upload open')));
    });

  // Each row replaces an existing file and stops short: the old bytes stay, no temporary file is left, and the one
  // event says body_incomplete.
  const ROWS: ReadonlyArray<{ name: string; cut: (path: string) => Promise<void> }> = [
    {
      name: 'declares 1000 bytes, sends 400 and goes away',
      cut: async (path) => {
        const up = manualUpload(h.url, `/v1/files${path}`, token, { 'content-length': 1000 });
        await up.accepted;
        await up.write(Buffer.alloc(400, 't'));
        up.abort();
        expect(await up.response).toBeInstanceOf(Error);
      },
    },
    { name: 'declares 1000 bytes, sends 400 and half-closes', cut: (path) => halfClosed(path, 1000, 400) },
    {
      name: 'chunked, cut mid-stream',
      cut: async (path) => {
        const up = manualUpload(h.url, `/v1/files${path}`, token, {});
        await up.accepted;
        await up.write(Buffer.alloc(64 * 1024, 'c'));
        up.abort();
        expect(await up.response).toBeInstanceOf(Error);
      },
    },
  ];
  it.each(ROWS)('$name: body_incomplete, the old file stays, nothing half-written', async ({ name, cut }) => {
    const path = `/outputs/cut-${ROWS.findIndex((r) => r.name === name)}.bin`;
    expect(keep(await raw(h.url, 'PUT', `/v1/files${path}`, { token, body: 'old bytes', headers: { 'content-length': 9 } })).status).toBe(200);
    await cut(path);
    await endedWith(path, 'body_incomplete');
    expect(keep(await raw(h.url, 'GET', `/v1/files${path}`, { token })).text).toBe('old bytes');
    expect(await tmpFiles()).toEqual([]);
    expect(h.events.filter((e) => e['status_detail'] === 'body_incomplete' && JSON.stringify(e['resources']).includes(path))).toHaveLength(1);
  });

  it('a new file cut short never appears', async () => {
    const up = manualUpload(h.url, '/v1/files/outputs/never.bin', token, { 'content-length': 4096 });
    await up.accepted;
    await up.write(Buffer.alloc(1024, 'n'));
    up.abort();
    await endedWith('/outputs/never.bin', 'body_incomplete');
    await expectRefused(h, keep(await raw(h.url, 'GET', '/v1/files/outputs/never.bin', { token })), 'file_not_found');
    expect(await localKeys(files(), 'acme/fs-1/outputs/never')).toEqual([]);
  });

  // /scratch allows 1 KiB (MOUNTS). Over it is 413 object_too_large and nothing is stored; a file already there stays.
  const OVER: ReadonlyArray<{ name: string; body: () => Buffer | ReturnType<typeof patternStream>; headers: Record<string, number> }> = [
    { name: 'a declared Content-Length of 1025 (refused before the body is read)', body: () => Buffer.alloc(1025, 'd'), headers: { 'content-length': 1025 } },
    { name: 'a chunked body that reaches 1025 bytes', body: () => patternStream(1025, 256), headers: {} },
    { name: 'a chunked body of 4 MiB', body: () => patternStream(4 * 1024 * 1024), headers: {} },
  ];
  it.each(OVER)('refuses $name: 413 object_too_large, nothing stored', async ({ body, headers }) => {
    expect(MOUNTS).toContain('{path: /scratch, mode: rw, max_object_bytes: 1KiB}');
    expect(keep(await raw(h.url, 'PUT', '/v1/files/scratch/kept.txt', { token, body: 'small', headers: { 'content-length': 5 } })).status).toBe(200);
    await expectRefused(h, keep(await raw(h.url, 'PUT', '/v1/files/scratch/big.bin', { token, body: body(), headers })), 'object_too_large');
    await expectRefused(h, keep(await raw(h.url, 'PUT', '/v1/files/scratch/kept.txt', { token, body: body(), headers })), 'object_too_large');
    expect(await localKeys(files(), 'acme/fs-1/scratch/')).toEqual(['acme/fs-1/scratch/kept.txt']);
    expect(keep(await raw(h.url, 'GET', '/v1/files/scratch/kept.txt', { token })).text).toBe('small');
    expect(await tmpFiles()).toEqual([]);
  });

  it('exactly the limit is stored, declared or chunked', async () => {
    for (const [name, headers] of [['declared.bin', { 'content-length': 1024 }], ['chunked.bin', {}]] as const) {
      const put = keep(await raw(h.url, 'PUT', `/v1/files/scratch/${name}`, { token, body: patternStream(1024, 256), headers }));
      await expectAllowed(h, put, { operation: 'PutFile', paths: [`/scratch/${name}`], bytesUp: 1024 });
    }
  });
});

describe('clients that go away mid-download', () => {
  /** Files of the store the broker process holds open (it runs in this process). */
  const openStoreFiles = async (): Promise<string[]> => {
    const open: string[] = [];
    for (const fd of await readdir('/proc/self/fd')) {
      const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
      if (target.startsWith(files())) open.push(target);
    }
    return open;
  };

  it('a download cut after its first bytes: the event says client_closed, no file stays open, the next request is served', async () => {
    const size = 8 * 1024 * 1024;
    expect(keep(await raw(h.url, 'PUT', '/v1/files/outputs/big.bin', { token, body: patternStream(size), headers: { 'content-length': size }, timeoutMs: 60_000 })).status).toBe(200);
    for (let i = 0; i < 3; i++) {
      const res = await new Promise<IncomingMessage>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port: new URL(h.url).port, path: '/v1/files/outputs/big.bin', headers: { authorization: `Bearer ${token}` }, agent: false }, resolve);
        req.on('error', reject);
        req.end();
      });
      responses.push(JSON.stringify(res.headers));
      await new Promise<void>((resolve) => res.once('data', () => resolve()));
      res.destroy();
      const event = await h.waitForEvent((e) => (e['metadata'] as { uid: string }).uid === res.headers['x-gatehouse-correlation-id']);
      expect([event['status_detail'], (event['unmapped'] as { gatehouse: { end_reason?: string } }).gatehouse.end_reason]).toEqual(['allowed', 'client_closed']);
    }
    await waitUntil(async () => (await openStoreFiles()).length === 0, 'the broker closing the files of cut downloads');
    const whole = await raw(h.url, 'GET', '/v1/files/outputs/big.bin', { token, timeoutMs: 60_000 });
    expect([whole.status, whole.body.length]).toEqual([200, size]);
  });
});

describe('backends that are down or hung', () => {
  // Every operation against a store whose endpoint refuses connections: 503 backend_unavailable after the
  // store's short retries, naming neither the endpoint nor the bucket.
  const OPS: ReadonlyArray<{ op: string; method: string; url: string; body?: string }> = [
    { op: 'GetFile', method: 'GET', url: '/v1/files/outputs/x' },
    { op: 'StatFile (HEAD)', method: 'HEAD', url: '/v1/files/outputs/x' },
    { op: 'StatFile', method: 'GET', url: '/v1/stat/outputs/x' },
    { op: 'PutFile', method: 'PUT', url: '/v1/files/outputs/x', body: 'payload' },
    { op: 'DeleteFile', method: 'DELETE', url: '/v1/files/outputs/x' },
    { op: 'ListFiles', method: 'GET', url: '/v1/list?prefix=/outputs' },
    { op: 'MoveFile', method: 'POST', url: '/v1/move', body: JSON.stringify({ from: '/outputs/x', to: '/outputs/y' }) },
  ];
  let dead: string;
  beforeAll(async () => {
    dead = await issue({ tenant: 't-dead', session: 'bad-dead' });
  });
  it.each(OPS)('$op on an unreachable store: 503 backend_unavailable', async ({ method, url, body }) => {
    const res = keep(await raw(h.url, method, url, { token: dead, ...(body !== undefined ? { body, headers: { 'content-length': Buffer.byteLength(body) } } : {}) }));
    if (method === 'HEAD') {
      // A HEAD answer has no body: the status and the event carry the reason.
      expect(res.status).toBe(503);
      expect((await eventOf(h, res)).status_detail).toBe('backend_unavailable');
    } else {
      const event = await expectRefused(h, res, 'backend_unavailable');
      expect(event.unmapped.gatehouse.store).toBe('dead');
    }
    for (const leak of [`:${deadPort}`, 'gh-bad', 'http://', 'GHBADINPUTACCESSKEY0']) expect(res.text).not.toContain(leak);
  });

  it(`a store that accepts and never answers: 503 backend_unavailable after ${STORE_TIMEOUT_MS} ms; other sessions are served meanwhile`, async () => {
    const t = await issue({ tenant: 't-hung', session: 'bad-hung' });
    const before = hung.connections;
    const started = performance.now();
    let settled = 0;
    const calls = [
      raw(h.url, 'GET', '/v1/files/outputs/x', { token: t }),
      raw(h.url, 'PUT', '/v1/files/outputs/x', { token: t, body: 'payload', headers: { 'content-length': 7 } }),
      raw(h.url, 'GET', '/v1/stat/outputs/x', { token: t }),
    ].map((p) => p.then((r) => (settled++, keep(r))));
    await waitUntil(() => hung.connections >= before + 3, 'three requests reaching the hung store');
    // While those wait: the local store and the unreachable one answer other sessions at once.
    expect(keep(await raw(h.url, 'GET', '/v1/files/outputs/range.txt', { token })).text).toBe('0123456789');
    await expectRefused(h, keep(await raw(h.url, 'GET', '/v1/files/outputs/x', { token: await issue({ tenant: 't-dead', session: 'bad-dead-2' }) })), 'backend_unavailable');
    expect(settled).toBe(0);
    const results = await Promise.all(calls);
    const took = performance.now() - started;
    for (const r of results) expect((await expectRefused(h, r, 'backend_unavailable')).unmapped.gatehouse.store).toBe('hung');
    expect(took).toBeGreaterThanOrEqual(STORE_TIMEOUT_MS - 50);
    expect(took).toBeLessThan(STORE_TIMEOUT_MS + 4000); // generous: a loaded CI machine
    // Not retried (a timeout already used the whole budget), and the broker hangs up on the hung store.
    expect(hung.connections).toBe(before + 3);
    await waitUntil(() => hung.sockets.size === 0, 'the broker closing its connections to the hung store');
  });
});

describe('per-session limits (tenant limited: burst 3, max_concurrent 2, a token every 100 s)', () => {
  it('a third request while two uploads are in flight: 429 too_many_requests; other sessions are served', async () => {
    const t = await issue({ tenant: 'limited', session: 'lim-conc' });
    // Verified once first (burst 1 of 3), so each upload below holds its slot once the broker has its head.
    await expectRefused(h, keep(await raw(h.url, 'GET', '/v1/files/outputs/held-a.txt', { token: t })), 'file_not_found');
    const uploads = ['a', 'b'].map((n) => manualUpload(h.url, `/v1/files/outputs/held-${n}.txt`, t, { 'content-length': 4 }));
    await Promise.all(uploads.map((u) => u.accepted));
    const third = keep(await raw(h.url, 'GET', '/v1/files/outputs/range.txt', { token: t }));
    await expectRefused(h, third, 'too_many_requests');
    expect(third.headers['retry-after']).toBe('1');
    // The same tenant's other session and another tenant are not held up.
    const other = await issue({ tenant: 'limited', session: 'lim-conc-other' });
    expect(keep(await raw(h.url, 'PUT', '/v1/files/outputs/other.txt', { token: other, body: 'ok', headers: { 'content-length': 2 } })).status).toBe(200);
    expect(keep(await raw(h.url, 'GET', '/v1/files/outputs/range.txt', { token })).status).toBe(200);
    for (const u of uploads) {
      await u.write('data');
      u.end();
      expect((keep((await u.response) as RawResponse)).status).toBe(200);
    }
    // The slots are free again, but the burst is spent: now the rate refuses.
    await expectRefused(h, keep(await raw(h.url, 'GET', '/v1/files/outputs/held-a.txt', { token: t })), 'rate_limited');
  });

  it('a fourth request at once: 429 rate_limited with Retry-After; another session is unaffected', async () => {
    const t = await issue({ tenant: 'limited', session: 'lim-rate' });
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push(keep(await raw(h.url, 'GET', '/v1/files/outputs/none', { token: t })).status);
    expect(statuses).toEqual([404, 404, 404]);
    const fourth = keep(await raw(h.url, 'GET', '/v1/files/outputs/none', { token: t }));
    const event = await expectRefused(h, fourth, 'rate_limited');
    expect([fourth.headers['retry-after'], event.actor?.session?.uid]).toEqual(['1', 'lim-rate']);
    const other = await issue({ tenant: 'limited', session: 'lim-rate-other' });
    await expectRefused(h, keep(await raw(h.url, 'GET', '/v1/files/outputs/none', { token: other })), 'file_not_found');
  });
});

describe('nothing leaks', () => {
  it('no store secret and no token in any response, header, audit event or metric; nothing half-written', async () => {
    const events = h.events.map((e) => JSON.stringify(e));
    expect(responses.length).toBeGreaterThan(300);
    expectNoSecrets([...responses, ...events, await h.registry.metrics()], [DEAD_SECRET, ...new Set(tokens)]);
    // The secret signed the requests to the hung store but never travelled: its access key id did (the control).
    const wire = hung.received.join('');
    expect(wire).toContain('GHBADINPUTACCESSKEY0');
    expectNoSecrets([wire], [DEAD_SECRET]);
    expect(await tmpFiles()).toEqual([]);
  });
});
