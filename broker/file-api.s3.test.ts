// The file API suite on an S3 store backed by a throwaway Ceph RADOS Gateway on loopback, which verifies every
// SigV4 signature and payload hash strictly; then what only S3 has: multipart uploads, aborted uploads, the
// broker's own credentials being wrong or missing, and a bucket that does not exist. One Ceph for the file.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCephRgw, type CephRgw } from '../test/peers/ceph-rgw.js';
import { startBrokerHarness, type BrokerHarness } from '../test/support/broker-harness.js';
import { waitUntil } from '../test/support/wait.js';
import { fileApiSuite } from './file-api.suite.js';
import { expectAllowed, expectNoSecrets, expectRefused, filePolicy, manualUpload, patternDigest, patternStream, raw, type RawResponse } from './file-test-kit.js';

let ceph: Promise<CephRgw> | null = null;
/** The file's one Ceph, started by whichever describe needs it first. */
const rgw = (): Promise<CephRgw> => (ceph ??= startCephRgw());
afterAll(async () => {
  await (await ceph?.catch(() => null))?.stop();
});

const xmlText = (s: string): string => s.replace(/&(amp|lt|gt|quot|apos|#\d+|#x[0-9a-f]+);/gi, (_, e: string) => (e[0] === '#' ? String.fromCodePoint(Number(e[1] === 'x' || e[1] === 'X' ? `0${e.slice(1)}` : e.slice(1))) : ({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" } as Record<string, string>)[e] ?? ''));
const xmlAll = (xml: string, tag: string): string[] => [...xml.matchAll(new RegExp(`<${tag}>([^<]*)</${tag}>`, 'g'))].map((m) => xmlText(m[1] ?? ''));

/** Keys in `bucket` under `prefix`, as RGW lists them (plain XML, no url encoding to undo). */
async function bucketKeys(r: CephRgw, bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  for (let page = 0; page < 100; page++) {
    const res = await r.s3({ method: 'GET', bucket, query: { 'list-type': '2', prefix, ...(token ? { 'continuation-token': token } : {}) } });
    if (res.status !== 200) throw new Error(`list ${bucket}: ${res.status} ${res.errorCode ?? ''}`);
    const xml = res.body.toString();
    keys.push(...xmlAll(xml, 'Key'));
    token = xmlAll(xml, 'IsTruncated')[0] === 'true' ? xmlAll(xml, 'NextContinuationToken')[0] : undefined;
    if (!token) return keys.sort();
  }
  throw new Error('more than 100 pages');
}

/** Multipart uploads RGW still holds open in `bucket` (an aborted or completed one is gone). */
async function openUploads(r: CephRgw, bucket: string): Promise<string[]> {
  const res = await r.s3({ method: 'GET', bucket, query: { uploads: '' } });
  if (res.status !== 200) throw new Error(`list uploads: ${res.status}`);
  return [...res.body.toString().matchAll(/<Upload>([\s\S]*?)<\/Upload>/g)].map((m) => xmlAll(m[1] ?? '', 'Key')[0] ?? '?');
}

const storeYaml = (r: CephRgw, o: { name: string; bucket: string; access?: string; secret?: string }): string => `    - name: ${o.name}
      type: s3
      endpoint: ${r.endpoint}
      region: ${r.region}
      bucket: ${o.bucket}
      prefix: gatehouse/
      access_key_id: env:${o.access ?? 'GH_TEST_S3_ACCESS_KEY'}
      secret_access_key: env:${o.secret ?? 'GH_TEST_S3_SECRET_KEY'}
      part_size: 5MiB
`;

fileApiSuite('an S3 store (Ceph RGW)', async () => {
  const r = await rgw();
  await r.createBucket('gh-suite');
  process.env['GH_TEST_S3_ACCESS_KEY'] = r.accessKeyId;
  process.env['GH_TEST_S3_SECRET_KEY'] = r.secretAccessKey;
  return {
    stores: storeYaml(r, { name: 'ceph', bucket: 'gh-suite' }),
    store: 'ceph',
    physicalKeys: async (_h, prefix) => (await bucketKeys(r, 'gh-suite', `gatehouse/${prefix}`)).map((k) => k.slice('gatehouse/'.length)),
    leftovers: () => openUploads(r, 'gh-suite'),
    secrets: [r.secretAccessKey],
    close: async () => undefined,
  };
});

describe('S3 store specifics (Ceph RGW)', () => {
  let r: CephRgw;
  let h: BrokerHarness;
  let token: string;
  const seen: string[] = [];
  const keep = (res: RawResponse): RawResponse => {
    seen.push(res.text, JSON.stringify(res.headers));
    return res;
  };

  beforeAll(async () => {
    r = await rgw();
    await r.createBucket('gh-specifics');
    process.env['GH_TEST_S3_ACCESS_KEY'] = r.accessKeyId;
    process.env['GH_TEST_S3_SECRET_KEY'] = r.secretAccessKey;
    process.env['GH_TEST_S3_WRONG_SECRET'] = `${r.secretAccessKey.slice(0, -4)}AAAA`;
    process.env['GH_TEST_S3_WRONG_ACCESS'] = 'GHNOSUCHACCESSKEY000';
    delete process.env['GH_TEST_S3_UNSET'];
    const stores = [
      storeYaml(r, { name: 'good', bucket: 'gh-specifics' }),
      storeYaml(r, { name: 'wrong-secret', bucket: 'gh-specifics', secret: 'GH_TEST_S3_WRONG_SECRET' }),
      storeYaml(r, { name: 'wrong-access', bucket: 'gh-specifics', access: 'GH_TEST_S3_WRONG_ACCESS' }),
      storeYaml(r, { name: 'unset-secret', bucket: 'gh-specifics', secret: 'GH_TEST_S3_UNSET' }),
      storeYaml(r, { name: 'no-bucket', bucket: 'gh-never-created' }),
    ].join('');
    // One tenant per store: the store is the tenant's, never the token's choice.
    const policy = filePolicy({ stores, store: 'good' }).concat(
      ['wrong-secret', 'wrong-access', 'unset-secret', 'no-bucket'].map((s) => `  - name: t-${s}\n    broker:\n      store: ${s}\n      mounts: [{path: /outputs, mode: rw}]\n`).join(''),
    );
    h = await startBrokerHarness(policy);
    token = await h.token({ session: 's3-main' });
  }, 90_000);

  afterAll(async () => {
    await h?.close();
  });

  it('uploads a multi-part object (3 parts of 5 MiB), each part signed over its real hash, and reads it back', async () => {
    const size = 12 * 1024 * 1024 + 7;
    const res = keep(await raw(h.url, 'PUT', '/v1/files/outputs/multi.bin', { token, body: patternStream(size), headers: { 'content-length': size }, timeoutMs: 60_000 }));
    expect([res.status, res.json['size']]).toEqual([200, size]);
    await expectAllowed(h, res, { operation: 'PutFile', paths: ['/outputs/multi.bin'], bytesUp: size });
    // A multipart object's ETag is the hash of the part hashes with the part count: three parts, as configured.
    const head = await r.s3({ method: 'HEAD', bucket: 'gh-specifics', key: 'gatehouse/acme/fs-1/outputs/multi.bin' });
    expect([head.status, head.headers['content-length'], String(head.headers['etag'])]).toEqual([200, String(size), expect.stringMatching(/-3"$/)]);
    const got = await raw(h.url, 'GET', '/v1/files/outputs/multi.bin', { token, timeoutMs: 60_000 });
    expect([got.status, got.body.length, createHash('sha256').update(got.body).digest('hex')]).toEqual([200, size, await patternDigest(size)]);
    const tail = await raw(h.url, 'GET', '/v1/files/outputs/multi.bin', { token, headers: { range: 'bytes=-7' } });
    expect([tail.status, tail.headers['content-range']]).toEqual([206, `bytes ${size - 7}-${size - 1}/${size}`]);
    expect(await openUploads(r, 'gh-specifics')).toEqual([]);
  });

  it('aborts the multipart upload when the client goes away after the first part: no object, no open upload', async () => {
    const up = manualUpload(h.url, '/v1/files/outputs/cut.bin', token, { 'content-length': 20 * 1024 * 1024 });
    await up.accepted;
    await up.write(Buffer.alloc(6 * 1024 * 1024, 1));
    await waitUntil(async () => (await openUploads(r, 'gh-specifics')).length > 0, 'the multipart upload to start', 20_000);
    up.abort();
    expect(await up.response).toBeInstanceOf(Error);
    const event = await h.waitForEvent((e) => (e['resources'] as Array<{ name: string }> | undefined)?.[0]?.name === '/outputs/cut.bin');
    expect([event['status_detail'], (event['api'] as { operation: string }).operation]).toEqual(['body_incomplete', 'PutFile']);
    await waitUntil(async () => (await openUploads(r, 'gh-specifics')).length === 0, 'the multipart upload to be aborted', 10_000);
    expect(await bucketKeys(r, 'gh-specifics', 'gatehouse/acme/fs-1/outputs/cut')).toEqual([]);
  });

  it('stores nothing when a one-part upload stops short of its Content-Length', async () => {
    const up = manualUpload(h.url, '/v1/files/outputs/short.bin', token, { 'content-length': 1000 });
    await up.accepted;
    await up.write(Buffer.alloc(400, 2));
    up.abort();
    await up.response;
    const event = await h.waitForEvent((e) => (e['resources'] as Array<{ name: string }> | undefined)?.[0]?.name === '/outputs/short.bin');
    expect(event['status_detail']).toBe('body_incomplete');
    expect(await bucketKeys(r, 'gh-specifics', 'gatehouse/acme/fs-1/outputs/short')).toEqual([]);
  });

  // The broker's own credential is wrong: the sandbox gets a clear reason and the S3 error code, never the secret.
  it.each([
    ['t-wrong-secret', 'backend_rejected', /SignatureDoesNotMatch/],
    ['t-wrong-access', 'backend_rejected', /InvalidAccessKeyId/],
    ['t-no-bucket', 'backend_rejected', /NoSuchBucket/],
    ['t-unset-secret', 'credential_unavailable', /credential/],
  ] as const)('tenant %s: %s', async (tenant, reason, detail) => {
    const t = await h.token({ tenant, session: `s3-${tenant}` });
    for (const [method, body] of [['PUT', 'data'], ['GET', undefined], ['DELETE', undefined]] as const) {
      const res = keep(await raw(h.url, method, '/v1/files/outputs/x.txt', { token: t, ...(body ? { body, headers: { 'content-length': body.length } } : {}) }));
      const event = await expectRefused(h, res, reason, `${tenant} ${method}`);
      // A DELETE looks first (HEAD): a HEAD answer has no body, so only its status can be named.
      expect(res.json.error?.message).toMatch(method === 'DELETE' && reason === 'backend_rejected' ? /HeadObject: HTTP 403|NoSuchBucket/ : detail);
      expect(event.unmapped.gatehouse.store).toBe(tenant.slice(2));
    }
    const listed = keep(await raw(h.url, 'GET', '/v1/list?prefix=/outputs/', { token: t }));
    await expectRefused(h, listed, reason, `${tenant} list`);
  });

  it('never lets the S3 secrets or tokens out, in responses or events', () => {
    expectNoSecrets([...seen, ...h.events.map((e) => JSON.stringify(e))], [r.secretAccessKey, process.env['GH_TEST_S3_WRONG_SECRET'] as string, token]);
  });
});
