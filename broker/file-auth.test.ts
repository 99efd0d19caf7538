// Who may touch which files: every way a broker token can be missing, malformed, forged, meant for another edge,
// out of its time window or revoked (also in the middle of a transfer), and what a valid token still cannot do:
// name another filesystem or tenant, write a read-only mount, use a mount it was not given, or keep rights a
// policy reload took away. Each refusal is checked on the wire (reason, code) and in its one audit event.
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUDIENCE, DEFAULT_ISSUER, issueSessionToken, Keystore, MAX_TOKEN_LENGTH } from '../core/tokens/index.js';
import { startBrokerHarness, type BrokerHarness } from '../test/support/broker-harness.js';
import { waitUntil } from '../test/support/wait.js';
import { eventOf, expectAllowed, expectNoSecrets, expectRefused, filePolicy, localKeys, manualUpload, MOUNTS, patternStream, raw, type RawResponse } from './file-test-kit.js';

let h: BrokerHarness;
let token: string;
const responses: string[] = [];
const tokens: string[] = [];
const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
const BROKER_CLAIMS = { filesystem_id: 'fs-1', mounts: { '/outputs': 'rw', '/inputs': 'ro' }, upstreams: [] };

/** A token signed with the broker's own key, with the fields a test changes. */
const signed = async (o: { audience?: (typeof AUDIENCE)[keyof typeof AUDIENCE]; issuer?: string; now?: number; ttlMs?: number; claims?: Record<string, unknown>; tenant?: string; keys?: Keystore; session?: string }) => {
  const t = (
    await issueSessionToken(o.keys ?? h.keys, {
      issuer: o.issuer ?? DEFAULT_ISSUER,
      audience: o.audience ?? AUDIENCE.broker,
      session: o.session ?? 'auth-crafted',
      tenant: o.tenant ?? 'acme',
      ttlMs: o.ttlMs ?? 600_000,
      ...(o.now !== undefined ? { now: o.now } : {}),
      claims: o.claims ?? BROKER_CLAIMS,
    })
  ).token;
  tokens.push(t);
  return t;
};
const get = async (t: string | null, path = '/v1/files/outputs/hello.txt', headers: Record<string, string> = {}): Promise<RawResponse> => {
  const res = await raw(h.url, 'GET', path, { token: t, headers });
  responses.push(res.text, JSON.stringify(res.headers));
  return res;
};
const writePolicy = async (text: string): Promise<void> => {
  await writeFile(join(h.dir, 'policy.yaml'), text);
  const outcome = await h.store.reload('api');
  expect(outcome.status).toBe('applied');
};

beforeAll(async () => {
  h = await startBrokerHarness(filePolicy());
  token = await h.token({ session: 'auth-main' });
  tokens.push(token);
  const put = await raw(h.url, 'PUT', '/v1/files/outputs/hello.txt', { token, body: 'hello', headers: { 'content-length': 5 } });
  expect(put.status).toBe(200);
});

afterAll(async () => {
  await h?.close();
});

describe('broker tokens that are refused', () => {
  it('refuses a request without a token, and one with another scheme', async () => {
    const none = await get(null);
    const event = await expectRefused(h, none, 'auth_missing');
    expect([event.class_uid, event.user, event.unmapped.gatehouse.auth_detail]).toEqual([3002, { name: 'unknown', type_id: 0, type: 'Unknown' }, 'no_token']);
    expect(none.json.error?.code).toBe('GH_ERR_BROKER_UNAUTHORIZED');
    const basic = await raw(h.url, 'GET', '/v1/files/outputs/hello.txt', { headers: { authorization: `Basic ${Buffer.from(`x:${token}`).toString('base64')}` } });
    expect((await expectRefused(h, basic, 'auth_invalid')).unmapped.gatehouse.auth_detail).toBe('unrecognised_scheme');
    // A file request takes the token from Authorization only, never from the headers an SDK puts API keys in.
    const inKeyHeader = await raw(h.url, 'GET', '/v1/files/outputs/hello.txt', { headers: { 'x-api-key': token } });
    await expectRefused(h, inKeyHeader, 'auth_missing');
    const inQuery = await raw(h.url, 'GET', `/v1/files/outputs/hello.txt?key=${token}`);
    await expectRefused(h, inQuery, 'auth_missing');
  });

  const realKid = (): string => JSON.parse(Buffer.from(token.split('.')[0] as string, 'base64url').toString()).kid as string;
  const forgedFs = (): string => {
    const [head, payload, sig] = token.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
    return `${head}.${b64({ ...claims, filesystem_id: 'fs-2', tenant: 'globex' })}.${sig}`;
  };
  // One row per way a token can be bad; `detail` is what the audit event says failed (auth_detail).
  const MALFORMED: Array<{ name: string; token: () => Promise<string> | string; detail: string }> = [
    { name: 'not a JWT at all', token: () => 'not-a-token', detail: 'malformed' },
    { name: 'three parts of garbage', token: () => 'aaa.bbb.ccc', detail: 'malformed' },
    { name: 'alg none, no signature', token: () => `${b64({ alg: 'none', typ: 'gatehouse-session+jwt', kid: realKid() })}.${token.split('.')[1]}.`, detail: 'alg_not_allowed' },
    { name: 'HS256 (key confusion)', token: () => `${b64({ alg: 'HS256', typ: 'gatehouse-session+jwt', kid: realKid() })}.${token.split('.')[1]}.${'A'.repeat(43)}`, detail: 'alg_not_allowed' },
    { name: 'claims changed after signing (another filesystem and tenant)', token: forgedFs, detail: 'bad_signature' },
    { name: 'the signature of another valid token', token: async () => `${token.split('.').slice(0, 2).join('.')}.${(await signed({ session: 'auth-donor' })).split('.')[2]}`, detail: 'bad_signature' },
    { name: 'longer than any real token', token: () => `${token}${'A'.repeat(MAX_TOKEN_LENGTH)}`, detail: 'too_long' },
    { name: 'an egress token (wrong audience), even with broker claims', token: () => signed({ audience: AUDIENCE.egress, claims: { ...BROKER_CLAIMS, egress: ['example.com'] } }), detail: 'wrong_aud' },
    { name: 'a gateway token (wrong audience)', token: () => signed({ audience: AUDIENCE.gateway }), detail: 'wrong_aud' },
    { name: 'another issuer', token: () => signed({ issuer: 'not-gatehouse' }), detail: 'wrong_iss' },
    { name: 'a lifetime above the policy max_ttl', token: () => signed({ ttlMs: 2 * 3_600_000 }), detail: 'lifetime_exceeds_policy' },
    { name: 'a filesystem claim that could climb out of its prefix', token: () => signed({ claims: { ...BROKER_CLAIMS, filesystem_id: '../fs-2' } }), detail: 'bad_filesystem_claim' },
    { name: 'a mount claim that is not one segment', token: () => signed({ claims: { ...BROKER_CLAIMS, mounts: { '/outputs/../inputs': 'rw' } } }), detail: 'bad_mounts_claim' },
    { name: 'a mount mode that is not ro or rw', token: () => signed({ claims: { ...BROKER_CLAIMS, mounts: { '/outputs': 'admin' } } }), detail: 'bad_mounts_claim' },
    { name: 'a tenant without broker access in the policy', token: () => signed({ tenant: 'nobody' }), detail: 'tenant_without_broker' },
  ];
  it.each(MALFORMED)('refuses $name (auth_invalid, $detail)', async ({ token: make, detail }) => {
    const bad = await make();
    const res = await get(bad);
    const event = await expectRefused(h, res, 'auth_invalid');
    expect([event.class_uid, event.unmapped.gatehouse.auth_detail, res.json.error?.code]).toEqual([3002, detail, 'GH_ERR_BROKER_UNAUTHORIZED']);
  });

  it('refuses a token signed by another Gatehouse (unknown key)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gatehouse-other-keys-'));
    try {
      const other = await Keystore.open(dir, { retainRetiredMs: 60_000 });
      const res = await get(await signed({ keys: other }));
      expect((await expectRefused(h, res, 'auth_invalid')).unmapped.gatehouse.auth_detail).toBe('unknown_kid');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses an expired and a not-yet-valid token, naming the session in the event', async () => {
    const expired = await get(await signed({ session: 'auth-old', now: Date.now() - 3_600_000, ttlMs: 60_000 }));
    const e1 = await expectRefused(h, expired, 'token_expired');
    expect(e1.user?.uid ?? e1.unmapped.gatehouse.auth_detail).toBeTruthy();
    const future = await get(await signed({ session: 'auth-future', now: Date.now() + 600_000 }));
    const e2 = await expectRefused(h, future, 'token_not_yet_valid');
    expect(e2.unmapped.gatehouse.auth_detail).toMatch(/_in_future$/);
  });
});

describe('revocation', () => {
  it('refuses every request of a revoked session, with every token it holds', async () => {
    const a = await h.token({ session: 'auth-revoke-1' });
    const b = await h.token({ session: 'auth-revoke-1', mounts: { '/inputs': 'ro' } });
    tokens.push(a, b);
    expect((await get(a)).status).toBe(200);
    await h.revocations.revoke('auth-revoke-1');
    for (const t of [a, b]) {
      const event = await expectRefused(h, await get(t), 'session_revoked');
      expect([event.severity_id, event.user?.uid]).toEqual([3, 'auth-revoke-1']);
    }
    // Another session of the same tenant and filesystem is unaffected.
    expect((await get(token)).text).toBe('hello');
  });

  it('cuts a download in flight when its session is revoked', async () => {
    const size = 48 * 1024 * 1024;
    const t = await h.token({ session: 'auth-revoke-stream' });
    tokens.push(t);
    const put = await raw(h.url, 'PUT', '/v1/files/outputs/big.bin', { token: t, body: patternStream(size), headers: { 'content-length': size }, timeoutMs: 60_000 });
    expect(put.status).toBe(200);
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: new URL(h.url).port, path: '/v1/files/outputs/big.bin', headers: { authorization: `Bearer ${t}` }, agent: false }, resolve);
      req.on('error', reject).end();
    });
    expect(res.statusCode).toBe(200);
    let received = 0;
    const ended = new Promise<string>((resolve) => {
      res.on('end', () => resolve('end'));
      res.on('aborted', () => resolve('aborted'));
      res.on('error', () => resolve('error'));
    });
    // Read the first bytes, then stop reading: the broker is held mid-stream by backpressure.
    await new Promise<void>((resolve) =>
      res.once('data', (c: Buffer) => {
        received += c.length;
        res.pause();
        resolve();
      }),
    );
    await h.revocations.revoke('auth-revoke-stream');
    res.on('data', (c: Buffer) => (received += c.length));
    res.resume();
    expect(await ended).not.toBe('end');
    expect(received).toBeLessThan(size);
    const event = await h.waitForEvent((e) => (e['api'] as { operation?: string } | undefined)?.operation === 'GetFile' && (e['actor'] as { session?: { uid: string } }).session?.uid === 'auth-revoke-stream');
    expect((event['traffic'] as { bytes_in: number }).bytes_in).toBeLessThan(size);
    expect((event['unmapped'] as { gatehouse: { end_reason?: string } }).gatehouse.end_reason).toBeDefined();
    await expectRefused(h, await get(t, '/v1/files/outputs/big.bin'), 'session_revoked');
  });

  it('cuts an upload in flight when its session is revoked: nothing is stored, no temporary file stays', async () => {
    const t = await h.token({ session: 'auth-revoke-upload' });
    tokens.push(t);
    const up = manualUpload(h.url, '/v1/files/outputs/cut-by-revoke.bin', t, { 'content-length': 10 * 1024 * 1024 });
    await up.accepted;
    await up.write(Buffer.alloc(1024 * 1024, 7));
    await waitUntil(async () => (await readdir(join(h.dir, 'files', '.tmp')).catch(() => [])).length > 0, 'the temporary file');
    await h.revocations.revoke('auth-revoke-upload');
    expect(await up.response).toBeInstanceOf(Error);
    const event = await h.waitForEvent((e) => (e['resources'] as Array<{ name: string }> | undefined)?.[0]?.name === '/outputs/cut-by-revoke.bin');
    expect(event['status_detail']).toBe('body_incomplete');
    await waitUntil(async () => (await readdir(join(h.dir, 'files', '.tmp')).catch(() => [])).length === 0, 'the temporary file to be removed');
    expect(await localKeys(join(h.dir, 'files'), 'acme/fs-1/outputs/cut-by-revoke')).toEqual([]);
  });
});

describe('what a valid token still cannot do', () => {
  it('cannot name another filesystem or tenant: headers, query and path only ever reach its own', async () => {
    const other = await h.token({ session: 'auth-other-fs', filesystem: 'fs-2' });
    tokens.push(other);
    const put = await raw(h.url, 'PUT', '/v1/files/outputs/only-fs-2.txt', { token: other, body: 'fs-2', headers: { 'content-length': 4 } });
    expect(put.status).toBe(200);
    // Nothing the client sends besides the token chooses the filesystem.
    for (const [path, headers] of [
      ['/v1/files/outputs/only-fs-2.txt?fs=fs-2&tenant=acme&filesystem=fs-2', {}],
      ['/v1/files/outputs/only-fs-2.txt', { 'x-gatehouse-filesystem': 'fs-2', 'x-gatehouse-tenant': 'acme', 'x-amz-bucket': 'x' }],
    ] as const) {
      const res = await get(token, path, headers);
      const event = await expectRefused(h, res, 'file_not_found', path);
      expect(event.unmapped.gatehouse.filesystem).toBe('fs-1');
    }
    // The physical layout (<tenant>/<fs>/...) is not addressable as a logical path.
    await expectRefused(h, await get(token, '/v1/files/acme/fs-2/outputs/only-fs-2.txt'), 'mount_not_granted');
    await expectRefused(h, await get(token, '/v1/files/outputs/../../fs-2/outputs/only-fs-2.txt'), 'path_invalid');
    const list = await raw(h.url, 'GET', '/v1/list?prefix=/outputs/', { token });
    expect((list.json['files'] as Array<{ path: string }>).map((f) => f.path)).not.toContain('/outputs/only-fs-2.txt');
  });

  it.each([
    ['PUT', '/v1/files/inputs/x', 'mount_read_only'],
    ['DELETE', '/v1/files/inputs/x', 'mount_read_only'],
    ['GET', '/v1/files/private/x', 'mount_not_granted'],
    ['GET', '/v1/stat/secret/x', 'mount_not_granted'],
    ['GET', '/v1/list?prefix=/private/', 'mount_not_granted'],
    ['GET', '/v1/files/outputs', 'mount_not_granted'], // the mount itself is not a file
  ] as const)('a token granted /outputs rw and /inputs ro: %s %s is %s', async (method, path, reason) => {
    const t = await h.token({ session: 'auth-narrow', mounts: { '/outputs': 'rw', '/inputs': 'ro' } });
    tokens.push(t);
    const res = await raw(h.url, method, path, { token: t, ...(method === 'PUT' ? { body: 'x', headers: { 'content-length': 1 } } : {}) });
    responses.push(res.text);
    await expectRefused(h, res, reason, `${method} ${path}`);
  });

  it('a move cannot take a file out of a read-only mount or into one outside the grant', async () => {
    const t = await h.token({ session: 'auth-move', mounts: { '/outputs': 'rw', '/inputs': 'ro' } });
    tokens.push(t);
    const move = (from: string, to: string) => raw(h.url, 'POST', '/v1/move', { token: t, body: JSON.stringify({ from, to }), headers: { 'content-type': 'application/json' } });
    await expectRefused(h, await move('/inputs/a', '/outputs/a'), 'mount_read_only');
    await expectRefused(h, await move('/outputs/hello.txt', '/private/hello.txt'), 'mount_not_granted');
    expect((await get(token)).text).toBe('hello');
  });

  it('applies a policy reload that narrows the ceiling to live tokens at once', async () => {
    const t = await h.token({ session: 'auth-reload' });
    tokens.push(t);
    const put = (path: string) => raw(h.url, 'PUT', `/v1/files${path}`, { token: t, body: 'v', headers: { 'content-length': 1 } });
    expect((await put('/outputs/reload.txt')).status).toBe(200);
    expect((await put('/private/reload.txt')).status).toBe(200);
    try {
      // /outputs becomes read-only and /private goes away; the token still says rw for both.
      await writePolicy(filePolicy({ mounts: MOUNTS.replace('{path: /outputs, mode: rw, max_object_bytes: 64MiB}', '{path: /outputs, mode: ro}').replace('\n        - {path: /private, mode: rw}', '') }));
      const ro = await put('/outputs/reload.txt');
      const event = await expectRefused(h, ro, 'mount_read_only', 'after narrowing to ro');
      expect(event.metadata).toMatchObject({ tenant_uid: 'acme' });
      expect((await raw(h.url, 'GET', '/v1/files/outputs/reload.txt', { token: t })).text).toBe('v');
      await expectRefused(h, await raw(h.url, 'GET', '/v1/files/private/reload.txt', { token: t }), 'mount_not_granted', 'after the mount is removed');
      // A tenant that loses broker access loses it for tokens already issued.
      await writePolicy(filePolicy().replace(/  - name: acme\n    broker:\n      mounts:[\s\S]*?(?=  - name: globex)/, '  - name: acme\n'));
      const gone = await raw(h.url, 'GET', '/v1/files/outputs/reload.txt', { token: t });
      expect((await expectRefused(h, gone, 'auth_invalid')).unmapped.gatehouse.auth_detail).toBe('tenant_without_broker');
    } finally {
      await writePolicy(filePolicy());
    }
    // Widening back restores what the token grants, no more.
    const restored = await put('/outputs/reload.txt');
    await expectAllowed(h, restored, { operation: 'PutFile', paths: ['/outputs/reload.txt'], bytesUp: 1 });
  });

  it('never writes a token into a response or an audit event', async () => {
    // Let the last events land before searching them.
    await eventOf(h, await get(token));
    expectNoSecrets([...responses, ...h.events.map((e) => JSON.stringify(e))], tokens);
  });
});
