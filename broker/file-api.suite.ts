// The file API's behavioural suite, run unchanged against every store backend (local disk, S3 on Ceph RGW): what a
// sandbox sees must not depend on where its files live. Each backend also says how to look at its storage
// directly, so the tests check the physical key an awkward path lands on and that nothing half-written remains.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../test/support/wait.js';
import { startBrokerHarness, type BrokerHarness } from '../test/support/broker-harness.js';
import { AUDIENCE, DEFAULT_ISSUER, issueSessionToken } from '../core/tokens/index.js';
import { expectAllowed, expectNoSecrets, expectRefused, filePolicy, handBody, raw, urlPath, type RawResponse } from './file-test-kit.js';

export interface FileBackend {
  /** broker.stores list items (YAML, indented for `  stores:`); absent: the default local store. */
  readonly stores?: string;
  /** The store tenants use; absent: the default. */
  readonly store?: string;
  /** Physical keys under `prefix` as the storage itself lists them (without the store's own key prefix). */
  physicalKeys(h: BrokerHarness, prefix: string): Promise<string[]>;
  /** Half-written things: temporary files (local) or unfinished multipart uploads (S3). */
  leftovers(h: BrokerHarness): Promise<string[]>;
  /** Values that must never reach a client or the audit log (the store's secret key). */
  readonly secrets: readonly string[];
  close(): Promise<void>;
}

/**
 * Keys that break a store or a signer that decodes, re-encodes or normalises (anchors A.3 #1): each must come back
 * byte for byte through the URL, stat, list and the physical key. One row per hazard.
 */
export const AWKWARD_KEYS: ReadonlyArray<readonly [string, string]> = [
  ['a space', 'with space.txt'],
  ['a plus, which is not a space', 'plus+sign'],
  ['a literal percent, and an encoded-looking one', 'per%cent%20and%2e%2e'],
  ['a hash (a fragment in a URL)', 'hash#tag'],
  ['a question mark and an equals sign (a query in a URL)', 'q?x=1&y=2'],
  ['a tilde (S3 keeps it unescaped)', 'tilde~name~'],
  ["S3's reserved sub-delimiters", "sub-delims!$'()*,;:@"],
  ['non-ASCII in several scripts', 'ünïcødé/日本語/emoji-😀'],
  ['an empty segment (//)', 'double//slash'],
  ['a leading dot and a trailing dot (not dot segments)', '.hidden/name.'],
  ['three dots (not a dot segment)', '.../x'],
  ['a percent-escape of a slash, as text', 'literally%2Fslash'],
];

/**
 * Register the suite. `setup` starts the backend once for the file; one broker (harness) runs on top of it.
 */
export function fileApiSuite(label: string, setup: () => Promise<FileBackend>): void {
  describe(`file API on ${label}`, () => {
    let backend: FileBackend;
    let h: BrokerHarness;
    let token: string;
    const seen: string[] = [];
    const tokens: string[] = [];

    const issue = async (o: Parameters<BrokerHarness['token']>[0] = {}): Promise<string> => {
      const t = await h.token(o);
      tokens.push(t);
      return t;
    };
    /** A request with the suite's token (or another), its response text kept for the secret search. */
    const call = async (method: string, logical: string, o: Parameters<typeof raw>[3] & { route?: string } = {}): Promise<RawResponse> => {
      const res = await raw(h.url, method, `${o.route ?? '/v1/files'}${urlPath(logical)}`, { token, ...o });
      seen.push(res.text, JSON.stringify(res.headers));
      return res;
    };
    const put = (logical: string, body: Buffer | string, o: Parameters<typeof raw>[3] = {}) => call('PUT', logical, { body, headers: { 'content-length': Buffer.byteLength(body) }, ...o });
    const list = async (query: string, t = token): Promise<RawResponse> => {
      const res = await raw(h.url, 'GET', `/v1/list?${query}`, { token: t });
      seen.push(res.text);
      return res;
    };
    const move = async (from: string, to: string, t = token): Promise<RawResponse> => {
      const res = await raw(h.url, 'POST', '/v1/move', { token: t, body: JSON.stringify({ from, to }), headers: { 'content-type': 'application/json' } });
      seen.push(res.text);
      return res;
    };
    const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

    beforeAll(async () => {
      backend = await setup();
      h = await startBrokerHarness(filePolicy({ ...(backend.stores ? { stores: backend.stores } : {}), ...(backend.store ? { store: backend.store } : {}) }));
      token = await issue({ session: 'suite-main', filesystem: 'fs-1' });
    }, 90_000);

    afterAll(async () => {
      await h?.close();
      await backend?.close();
    });

    it('writes, stats, reads and deletes a file, with one audit event per operation', async () => {
      const body = Buffer.from('hello, broker\n');
      const created = await put('/outputs/basic/hello.txt', body);
      expect(created.status).toBe(200);
      expect(created.json).toMatchObject({ path: '/outputs/basic/hello.txt', size: body.length });
      await expectAllowed(h, created, { operation: 'PutFile', paths: ['/outputs/basic/hello.txt'], bytesUp: body.length });

      const stat = await call('GET', '/outputs/basic/hello.txt', { route: '/v1/stat' });
      expect(stat.status).toBe(200);
      expect(stat.json).toMatchObject({ path: '/outputs/basic/hello.txt', size: body.length, etag: created.json['etag'] });
      expect(Date.parse(stat.json['modified'] as string)).toBeGreaterThan(Date.now() - 600_000);
      await expectAllowed(h, stat, { operation: 'StatFile', paths: ['/outputs/basic/hello.txt'] });

      const head = await call('HEAD', '/outputs/basic/hello.txt');
      expect([head.status, head.headers['content-length'], head.body.length, head.headers['etag']]).toEqual([200, String(body.length), 0, created.json['etag']]);
      await expectAllowed(h, head, { operation: 'StatFile', paths: ['/outputs/basic/hello.txt'] });

      const got = await call('GET', '/outputs/basic/hello.txt');
      expect([got.status, got.body.equals(body), got.headers['content-type'], got.headers['accept-ranges']]).toEqual([200, true, 'application/octet-stream', 'bytes']);
      await expectAllowed(h, got, { operation: 'GetFile', paths: ['/outputs/basic/hello.txt'], bytesDown: body.length });

      const del = await call('DELETE', '/outputs/basic/hello.txt');
      expect(del.status).toBe(204);
      await expectAllowed(h, del, { operation: 'DeleteFile', paths: ['/outputs/basic/hello.txt'] });
      await expectRefused(h, await call('GET', '/outputs/basic/hello.txt'), 'file_not_found', 'get after delete');
      await expectRefused(h, await call('GET', '/outputs/basic/hello.txt', { route: '/v1/stat' }), 'file_not_found', 'stat after delete');
      await expectRefused(h, await call('DELETE', '/outputs/basic/hello.txt'), 'file_not_found', 'second delete');
      expect(await backend.physicalKeys(h, 'acme/fs-1/outputs/basic/')).toEqual([]);
    });

    it('writes a chunked upload (no Content-Length) and an empty file', async () => {
      const body = handBody();
      const pending = call('PUT', '/outputs/chunked.bin', { body: body.stream, headers: { 'transfer-encoding': 'chunked' } });
      for (let i = 0; i < 5; i++) body.push(Buffer.alloc(100_000, i));
      body.end();
      const res = await pending;
      expect([res.status, res.json['size']]).toEqual([200, 500_000]);
      await expectAllowed(h, res, { operation: 'PutFile', paths: ['/outputs/chunked.bin'], bytesUp: 500_000 });
      const got = await call('GET', '/outputs/chunked.bin');
      expect(got.body.length).toBe(500_000);
      expect(got.body.subarray(400_000).every((b) => b === 4)).toBe(true);

      const empty = await put('/outputs/empty', '');
      expect([empty.status, empty.json['size']]).toEqual([200, 0]);
      const gotEmpty = await call('GET', '/outputs/empty');
      expect([gotEmpty.status, gotEmpty.headers['content-length'], gotEmpty.body.length]).toEqual([200, '0', 0]);
    });

    it('replaces a file atomically: readers get the old bytes until the whole new upload has landed', async () => {
      const path = '/outputs/atomic.bin';
      const old = Buffer.alloc(1000, 'o');
      expect((await put(path, old)).status).toBe(200);
      // More than one S3 part (5 MiB here), so the S3 store is mid-multipart while the client is still sending.
      const size = 6 * 1024 * 1024 + 123;
      const body = handBody();
      const pending = call('PUT', path, { body: body.stream, headers: { 'content-length': size } });
      body.push(Buffer.alloc(6 * 1024 * 1024, 'n'));
      await waitUntil(async () => (await backend.leftovers(h)).length > 0, 'the upload to be in progress in the store', 20_000);
      const during = await call('GET', path);
      expect([during.status, during.body.length, during.body.equals(old)]).toEqual([200, old.length, true]);
      body.push(Buffer.alloc(123, 'n'));
      body.end();
      const done = await pending;
      expect([done.status, done.json['size']]).toEqual([200, size]);
      const after = await call('GET', path);
      expect([after.body.length, sha(after.body)]).toEqual([size, sha(Buffer.alloc(size, 'n'))]);
      expect(await backend.leftovers(h)).toEqual([]);
      await expectAllowed(h, done, { operation: 'PutFile', paths: [path], bytesUp: size });
    });

    it('serves one byte range: 206 with Content-Range (bounded, open-ended, suffix, clamped); 416 with bytes */size', async () => {
      const path = '/outputs/range.txt';
      const body = Buffer.from('0123456789abcdefghij'); // 20 bytes
      expect((await put(path, body)).status).toBe(200);
      const cases: Array<[string, string, string]> = [
        ['bytes=0-4', '01234', 'bytes 0-4/20'],
        ['bytes=15-', 'fghij', 'bytes 15-19/20'],
        ['bytes=-3', 'hij', 'bytes 17-19/20'],
        ['bytes=18-1000', 'ij', 'bytes 18-19/20'], // RFC 9110 §14.1.2: an end past the file is clamped
        ['bytes=-1000', body.toString(), 'bytes 0-19/20'], // a suffix longer than the file is the whole file
        ['bytes=19-19', 'j', 'bytes 19-19/20'],
      ];
      for (const [range, want, contentRange] of cases) {
        const res = await call('GET', path, { headers: { range } });
        expect({ range, status: res.status, body: res.text, cr: res.headers['content-range'], cl: res.headers['content-length'] }).toEqual({ range, status: 206, body: want, cr: contentRange, cl: String(want.length) });
        await expectAllowed(h, res, { operation: 'GetFile', paths: [path], bytesDown: want.length });
      }
      for (const range of ['bytes=20-', 'bytes=20-25', 'bytes=-0']) {
        const res = await call('GET', path, { headers: { range } });
        await expectRefused(h, res, 'range_not_satisfiable', range);
        expect(res.headers['content-range']).toBe('bytes */20');
      }
      expect((await put('/outputs/range-empty', '')).status).toBe(200);
      const onEmpty = await call('GET', '/outputs/range-empty', { headers: { range: 'bytes=0-' } });
      await expectRefused(h, onEmpty, 'range_not_satisfiable', 'range on an empty file');
      expect(onEmpty.headers['content-range']).toBe('bytes */0');
    });

    it('lists by prefix in byte order, paginates with limit and after, and never lists a sibling mount', async () => {
      const names = ['/outputs/list/b.txt', '/outputs/list/a.txt', '/outputs/list/sub/c.txt', '/outputs/list/B.txt', '/outputs/list/ä.txt', '/outputs/list-other/x'];
      for (const n of names) expect((await put(n, n)).status).toBe(200);
      expect((await put('/outputs2/not-in-outputs', 'x')).status).toBe(200);
      const all = await list('prefix=/outputs/list/');
      expect(all.status).toBe(200);
      // Byte order (UTF-8): upper case before lower case, ä (0xC3...) last.
      expect((all.json['files'] as Array<{ path: string; size: number }>).map((f) => [f.path, f.size])).toEqual(
        ['/outputs/list/B.txt', '/outputs/list/a.txt', '/outputs/list/b.txt', '/outputs/list/sub/c.txt', '/outputs/list/ä.txt'].map((p) => [p, Buffer.byteLength(p)]),
      );
      expect(all.json['next']).toBeUndefined();
      await expectAllowed(h, all, { operation: 'ListFiles', paths: ['/outputs/list/'] });

      const pages: string[][] = [];
      let after: string | undefined;
      for (let i = 0; i < 5; i++) {
        const page = await list(`prefix=/outputs/list/&limit=2${after ? `&after=${encodeURIComponent(after)}` : ''}`);
        expect(page.status).toBe(200);
        pages.push((page.json['files'] as Array<{ path: string }>).map((f) => f.path));
        after = page.json['next'] as string | undefined;
        if (!after) break;
      }
      expect(pages).toEqual([['/outputs/list/B.txt', '/outputs/list/a.txt'], ['/outputs/list/b.txt', '/outputs/list/sub/c.txt'], ['/outputs/list/ä.txt']]);

      const partial = await list('prefix=/outputs/list/s');
      expect((partial.json['files'] as Array<{ path: string }>).map((f) => f.path)).toEqual(['/outputs/list/sub/c.txt']);
      const bare = await list('prefix=/outputs');
      const bareNames = (bare.json['files'] as Array<{ path: string }>).map((f) => f.path);
      expect(bareNames).toContain('/outputs/list-other/x');
      expect(bareNames.filter((p) => !p.startsWith('/outputs/'))).toEqual([]);
      const none = await list('prefix=/outputs/nothing-here/');
      expect([none.status, none.json['files']]).toEqual([200, []]);
      await expectRefused(h, await list('prefix=/elsewhere/'), 'mount_not_granted', 'list outside the mounts');
    });

    it('moves a file within and across rw mounts, replacing the target; a missing source is file_not_found', async () => {
      expect((await put('/outputs/mv/src', 'source')).status).toBe(200);
      expect((await put('/outputs/mv/dst', 'old target')).status).toBe(200);
      const moved = await move('/outputs/mv/src', '/outputs/mv/dst');
      expect([moved.status, moved.json['path'], moved.json['size']]).toEqual([200, '/outputs/mv/dst', 6]);
      await expectAllowed(h, moved, { operation: 'MoveFile', paths: ['/outputs/mv/src', '/outputs/mv/dst'] });
      expect((await call('GET', '/outputs/mv/dst')).text).toBe('source');
      await expectRefused(h, await call('GET', '/outputs/mv/src'), 'file_not_found', 'source after move');

      const across = await move('/outputs/mv/dst', '/outputs2/moved here');
      expect(across.status).toBe(200);
      expect((await call('GET', '/outputs2/moved here')).text).toBe('source');
      const same = await move('/outputs2/moved here', '/outputs2/moved here');
      expect([same.status, (await call('GET', '/outputs2/moved here')).text]).toEqual([200, 'source']);

      await expectRefused(h, await move('/outputs/mv/none', '/outputs/mv/x'), 'file_not_found', 'missing source');
      await expectRefused(h, await move('/outputs2/moved here', '/inputs/x'), 'mount_read_only', 'into a ro mount');
      await expectRefused(h, await move('/outputs2/moved here', '/nowhere/x'), 'mount_not_granted', 'outside the mounts');
      // /scratch allows 1 KiB: a move must not smuggle a bigger file past that limit.
      expect((await put('/outputs/mv/big', Buffer.alloc(2048))).status).toBe(200);
      await expectRefused(h, await move('/outputs/mv/big', '/scratch/big'), 'object_too_large', 'over the target mount limit');
      expect((await call('GET', '/outputs/mv/big', { route: '/v1/stat' })).status).toBe(200);
    });

    describe('awkward keys round-trip exactly', () => {
      it.each(AWKWARD_KEYS)('%s', async (_what, name) => {
        const logical = `/outputs/odd/${name}`;
        const body = `body of ${name}`;
        const created = await put(logical, body);
        expect([created.status, created.json['path']]).toEqual([200, logical]);
        await expectAllowed(h, created, { operation: 'PutFile', paths: [logical], bytesUp: Buffer.byteLength(body) });
        expect((await call('GET', logical)).text).toBe(body);
        expect((await call('GET', logical, { route: '/v1/stat' })).json['path']).toBe(logical);
        // The store holds exactly this key: not decoded again, not re-encoded, not normalised.
        expect(await backend.physicalKeys(h, 'acme/fs-1/outputs/odd/')).toEqual([`acme/fs-1${logical}`]);
        const listed = await list(`prefix=${encodeURIComponent('/outputs/odd/')}`);
        expect((listed.json['files'] as Array<{ path: string }>).map((f) => f.path)).toEqual([logical]);
        const prefixOfItself = await list(`prefix=${encodeURIComponent(logical)}`);
        expect((prefixOfItself.json['files'] as Array<{ path: string }>).map((f) => f.path)).toEqual([logical]);
        const moved = await move(logical, `${logical}.moved`);
        expect(moved.status).toBe(200);
        expect((await call('GET', `${logical}.moved`)).text).toBe(body);
        expect((await call('DELETE', `${logical}.moved`)).status).toBe(204);
        expect(await backend.physicalKeys(h, 'acme/fs-1/outputs/odd/')).toEqual([]);
      });

      it('a plus is a plus and a space is a space: two different files', async () => {
        expect((await put('/outputs/pm/a+b', 'plus')).status).toBe(200);
        expect((await put('/outputs/pm/a b', 'space')).status).toBe(200);
        const viaLiteralPlus = await raw(h.url, 'GET', '/v1/files/outputs/pm/a+b', { token });
        const viaEncodedPlus = await raw(h.url, 'GET', '/v1/files/outputs/pm/a%2Bb', { token });
        const viaSpace = await raw(h.url, 'GET', '/v1/files/outputs/pm/a%20b', { token });
        expect([viaLiteralPlus.text, viaEncodedPlus.text, viaSpace.text]).toEqual(['plus', 'plus', 'space']);
      });

      it('normalises Unicode once (NFC): the NFD and NFC spellings of a name are one file', async () => {
        const nfd = '/outputs/nfc/cafe\u0301';
        const nfc = '/outputs/nfc/caf\u00e9';
        expect((await put(nfd, 'decomposed')).status).toBe(200);
        expect((await call('GET', nfc)).text).toBe('decomposed');
        expect(await backend.physicalKeys(h, 'acme/fs-1/outputs/nfc/')).toEqual([`acme/fs-1${nfc}`]);
        const listed = await list(`prefix=${encodeURIComponent('/outputs/nfc/cafe\u0301')}`);
        expect((listed.json['files'] as Array<{ path: string }>).map((f) => f.path)).toEqual([nfc]);
        const moved = await move(nfd, '/outputs/nfc/moved-\u0041\u030a');
        expect([moved.status, moved.json['path']]).toEqual([200, '/outputs/nfc/moved-\u00c5']);
      });
    });

    it('keeps filesystems and tenants apart: the same logical path is a different file for each', async () => {
      const path = '/outputs/shared-name.txt';
      expect((await put(path, 'fs-1 of acme')).status).toBe(200);
      const otherFs = await issue({ session: 'suite-other-fs', filesystem: 'fs-2' });
      const otherTenant = await issue({ tenant: 'globex', session: 'suite-globex', filesystem: 'fs-1' });
      await expectRefused(h, await raw(h.url, 'GET', `/v1/files${path}`, { token: otherFs }), 'file_not_found', 'other filesystem');
      await expectRefused(h, await raw(h.url, 'GET', `/v1/files${path}`, { token: otherTenant }), 'file_not_found', 'other tenant');
      expect((await list('prefix=/outputs/', otherFs)).json['files']).toEqual([]);
      const globexPut = await raw(h.url, 'PUT', `/v1/files${path}`, { token: otherTenant, body: 'globex', headers: { 'content-length': 6 } });
      await expectAllowed(h, globexPut, { operation: 'PutFile', paths: [path], tenant: 'globex', bytesUp: 6 });
      expect((await call('GET', path)).text).toBe('fs-1 of acme');
      expect(await backend.physicalKeys(h, 'globex/')).toEqual(['globex/fs-1/outputs/shared-name.txt']);
      // Nothing in a path can climb out of the filesystem: the tenant and filesystem come from the signed token.
      for (const escape of ['/outputs/../../fs-2/outputs/x', '/outputs/%2e%2e/%2e%2e/globex/fs-1/outputs/shared-name.txt', '/outputs/..%2f..%2fglobex']) {
        await expectRefused(h, await raw(h.url, 'GET', `/v1/files${escape}`, { token }), 'path_invalid', escape);
      }
      // globex's token grants only /outputs: acme's other mounts do not exist for it.
      await expectRefused(h, await raw(h.url, 'GET', '/v1/files/inputs/x', { token: otherTenant }), 'mount_not_granted', 'mount of another tenant');
    });

    it('refuses a write on a read-only mount, a path outside every mount, an expired and a revoked token', async () => {
      const ro = await put('/inputs/new.txt', 'x');
      const event = await expectRefused(h, ro, 'mount_read_only', 'ro mount');
      expect(event.resources?.map((r) => r.name)).toEqual(['/inputs/new.txt']);
      await expectRefused(h, await call('DELETE', '/inputs/anything'), 'mount_read_only', 'delete on ro');
      await expectRefused(h, await call('GET', '/private2/x'), 'mount_not_granted', 'no such mount');
      const narrow = await issue({ session: 'suite-narrow', mounts: { '/outputs': 'ro' } });
      await expectRefused(h, await raw(h.url, 'GET', '/v1/files/private/x', { token: narrow }), 'mount_not_granted', 'mount not in the token');
      await expectRefused(h, await raw(h.url, 'PUT', '/v1/files/outputs/x', { token: narrow, body: 'x', headers: { 'content-length': 1 } }), 'mount_read_only', 'rw mount granted ro');

      const expired = await issueSessionToken(h.keys, {
        issuer: DEFAULT_ISSUER,
        audience: AUDIENCE.broker,
        session: 'suite-expired',
        tenant: 'acme',
        ttlMs: 60_000,
        now: Date.now() - 3_600_000,
        claims: { filesystem_id: 'fs-1', mounts: { '/outputs': 'rw' }, upstreams: [] },
      });
      tokens.push(expired.token);
      await expectRefused(h, await raw(h.url, 'GET', '/v1/files/outputs/range.txt', { token: expired.token }), 'token_expired', 'expired');

      const doomed = await issue({ session: 'suite-revoked' });
      expect((await raw(h.url, 'GET', '/v1/files/outputs/range.txt', { token: doomed })).status).toBe(200);
      await h.revocations.revoke('suite-revoked');
      const revoked = await raw(h.url, 'GET', '/v1/files/outputs/range.txt', { token: doomed });
      const revokedEvent = await expectRefused(h, revoked, 'session_revoked', 'revoked');
      expect(revokedEvent.user?.uid).toBe('suite-revoked');
    });

    it('leaves nothing half-written behind and never lets a secret or a token out', async () => {
      expect(await backend.leftovers(h)).toEqual([]);
      const events = h.events.map((e) => JSON.stringify(e));
      expect(events.length).toBeGreaterThan(50);
      expectNoSecrets([...seen, ...events], [...backend.secrets, ...tokens]);
      // Every event is for this broker's operations and names the store (never a physical key).
      for (const e of h.events) {
        const text = JSON.stringify(e);
        expect(text).not.toContain('acme/fs-1/');
      }
    });
  });
}
