// SigV4 upstreams against a real Ceph RGW on loopback, which verifies every signature strictly: the broker signs
// with its own AWS-style credential, the sandbox holds only its broker token. Anchors A.3: the S3 canonical URI is
// the wire path encoded once (#1), the client's auth material is stripped before signing (#7), a wrong secret is
// the upstream's own 403, passed through (and never a leak of the secret).
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBrokerHarness, type BrokerHarness } from '../test/support/broker-harness.js';
import { s3Path, startCephRgw, type CephRgw } from '../test/peers/ceph-rgw.js';

const tag = randomBytes(4).toString('hex');
const ENV_ID = `GH_UT_S3_ID_${tag}`;
const ENV_WRONG = `GH_UT_S3_WRONG_${tag}`;
const BUCKET = `gh-broker-${tag}`;
const WRONG_SECRET = randomBytes(30).toString('base64');

let dir: string;
let rgw: CephRgw;
let h: BrokerHarness;
let token: string;
const clientSaw: string[] = [];

interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
  readonly text: string;
  readonly id: string;
}

async function call(path: string, init: { method?: string; headers?: Record<string, string>; body?: string | Buffer | Readable } = {}): Promise<Reply> {
  const res = await request(`${h.url}${path}`, { method: (init.method ?? 'GET') as 'GET', headers: { authorization: `Bearer ${token}`, ...init.headers }, ...(init.body !== undefined ? { body: init.body } : {}) });
  const body = Buffer.from(await res.body.arrayBuffer());
  clientSaw.push(String(res.statusCode), JSON.stringify(res.headers), body.toString('latin1'));
  return { status: res.statusCode, headers: res.headers, body, text: body.toString('utf8'), id: String(res.headers['x-gatehouse-correlation-id'] ?? '') };
}

const errorCode = (text: string): string | undefined => /<Code>([^<]+)<\/Code>/.exec(text)?.[1];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-upstream-sigv4-'));
  rgw = await startCephRgw();
  await rgw.createBucket(BUCKET);
  process.env[ENV_ID] = rgw.accessKeyId;
  process.env[ENV_WRONG] = WRONG_SECRET;
  // The secret from a file with a trailing newline, as a mounted Secret often has.
  await writeFile(join(dir, 's3-secret'), `${rgw.secretAccessKey}\n`);
  const cred = (secret: string): string => `{type: sigv4, service: s3, region: ${rgw.region}, access_key_id: "env:${ENV_ID}", secret_access_key: "${secret}"}`;
  h = await startBrokerHarness(`version: 1
broker:
  upstreams:
    - {name: s3, url: "${rgw.endpoint}", credential: ${cred(`file:${dir}/s3-secret`)}, max_request_bytes: 64KiB}
    - {name: s3-wrong, url: "${rgw.endpoint}", credential: ${cred(`env:${ENV_WRONG}`)}}
tenants:
  - name: acme
    broker:
      upstreams: [s3, s3-wrong]
`);
  token = await h.token({ upstreams: ['s3', 's3-wrong'] });
}, 90_000);

afterAll(async () => {
  await h?.close();
  await rgw?.stop();
  delete process.env[ENV_ID];
  delete process.env[ENV_WRONG];
  await rm(dir, { recursive: true, force: true });
});

describe('SigV4 upstream (Ceph RGW, strict verification)', () => {
  it('a PUT and a GET through /v1/upstreams are signed by the broker and accepted', async () => {
    const body = `hello from the sandbox ${tag}\n`;
    const put = await call(`/v1/upstreams/s3/${BUCKET}/notes/hello.txt`, { method: 'PUT', headers: { 'content-type': 'text/plain' }, body });
    expect(put.status, put.text).toBe(200);
    const get = await call(`/v1/upstreams/s3/${BUCKET}/notes/hello.txt`);
    expect(get.status).toBe(200);
    expect(get.text).toBe(body);
    // Checked independently, with the peer's own client: the object is really there.
    const direct = await rgw.s3({ method: 'GET', bucket: BUCKET, key: 'notes/hello.txt' });
    expect(direct.body.toString()).toBe(body);
  });

  // S3 signs the wire path encoded once (anchors A.3 #1): a space, a plus, a percent, unicode, '=' and '~'.
  it.each(['a b+c.txt', '100% done.txt', 'ünï/cödé.txt', 'k=v~1.txt'])('an object key with special characters: %s', async (key) => {
    const wire = s3Path(BUCKET, key);
    const put = await call(`/v1/upstreams/s3${wire}`, { method: 'PUT', body: key });
    expect(put.status, errorCode(put.text)).toBe(200);
    expect((await rgw.s3({ method: 'GET', bucket: BUCKET, key })).body.toString()).toBe(key);
    const get = await call(`/v1/upstreams/s3${wire}`);
    expect(get.text).toBe(key);
  });

  it('a signed query (ListObjectsV2 with a prefix) and a chunked upload (buffered, then signed)', async () => {
    const put = await call(`/v1/upstreams/s3/${BUCKET}/chunked/one.bin`, { method: 'PUT', body: Readable.from([Buffer.alloc(3000, 1), Buffer.alloc(3000, 2)]) });
    expect(put.status, errorCode(put.text)).toBe(200);
    const list = await call(`/v1/upstreams/s3/${BUCKET}?list-type=2&prefix=chunked%2F`);
    expect(list.status, errorCode(list.text)).toBe(200);
    expect(list.text).toContain('<Key>chunked/one.bin</Key>');
    expect(list.text).toContain('<Size>6000</Size>');
    // A space and a plus in a query value: the canonical query (RFC 3986, %20) must match what RGW decodes.
    const spaced = await call(`/v1/upstreams/s3/${BUCKET}?list-type=2&prefix=a%20b%2Bc`);
    expect(spaced.status, errorCode(spaced.text)).toBe(200);
    expect(spaced.text).toContain('<Key>a b+c.txt</Key>');
  });

  it("the client's own AWS auth material is stripped before signing (a bogus hash, date and token)", async () => {
    const put = await call(`/v1/upstreams/s3/${BUCKET}/stripped.txt`, {
      method: 'PUT',
      headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', 'x-amz-date': '20000101T000000Z', 'x-amz-security-token': 'client-placeholder-token' },
      body: 'payload',
    });
    expect(put.status, errorCode(put.text)).toBe(200);
    expect((await rgw.s3({ method: 'GET', bucket: BUCKET, key: 'stripped.txt' })).body.toString()).toBe('payload');
  });

  // What an unmodified AWS SDK sends when configured as docs/integrators.md says: endpoint the broker's upstream
  // URL, placeholder keys, the broker token as its session token. The SDK's own signature is never checked (the
  // broker replaces it); the token in x-amz-security-token is what authenticates the session.
  const sdkRequest = async (method: string, key: string, sessionToken: string, body?: string): Promise<Reply> => {
    const url = new URL(h.url);
    const path = `/v1/upstreams/s3/${BUCKET}/${key}`;
    const signer = new SignatureV4({ service: 's3', region: rgw.region, credentials: { accessKeyId: 'AKIDPLACEHOLDER', secretAccessKey: 'placeholder-secret', sessionToken }, sha256: Hash.bind(null, 'sha256'), uriEscapePath: false });
    const signed = await signer.sign(new HttpRequest({ method, protocol: url.protocol, hostname: url.hostname, port: Number(url.port), path, headers: { host: url.host }, ...(body !== undefined ? { body } : {}) }));
    const headers = { ...(signed.headers as Record<string, string>) };
    delete headers['host'];
    const res = await request(`${h.url}${path}`, { method: method as 'GET', headers, ...(body !== undefined ? { body } : {}) });
    const bytes = Buffer.from(await res.body.arrayBuffer());
    clientSaw.push(String(res.statusCode), JSON.stringify(res.headers), bytes.toString('latin1'));
    return { status: res.statusCode, headers: res.headers, body: bytes, text: bytes.toString('utf8'), id: String(res.headers['x-gatehouse-correlation-id'] ?? '') };
  };

  it('an AWS SDK with placeholder keys and the broker token as its session token works unmodified', async () => {
    const put = await sdkRequest('PUT', 'sdk/object.txt', token, 'from an sdk');
    expect(put.status, errorCode(put.text)).toBe(200);
    expect((await rgw.s3({ method: 'GET', bucket: BUCKET, key: 'sdk/object.txt' })).body.toString()).toBe('from an sdk');
    expect((await sdkRequest('GET', 'sdk/object.txt', token)).text).toBe('from an sdk');
  });

  it('an AWS SDK request whose session token is not a broker token is refused before anything is sent', async () => {
    const put = await sdkRequest('PUT', 'sdk/refused.txt', 'not-a-broker-token', 'x');
    expect(put.status).toBe(401);
    expect(JSON.parse(put.text)).toMatchObject({ error: { reason: 'auth_invalid' } });
    expect(put.headers['www-authenticate']).toBe('Bearer realm="gatehouse-broker", error="invalid_token"');
    expect((await rgw.s3({ method: 'HEAD', bucket: BUCKET, key: 'sdk/refused.txt' })).status).toBe(404);
    // Without any session token, the SDK signature alone authenticates nothing.
    const bare = await sdkRequest('GET', 'sdk/object.txt', '');
    expect(bare.status).toBe(401);
    expect(JSON.parse(bare.text)).toMatchObject({ error: { reason: 'auth_missing' } });
    expect(bare.headers['www-authenticate']).toBe('Bearer realm="gatehouse-broker"');
  });

  // Anchors A.3 #13: a presign the sandbox made with placeholder credentials is never forwarded as such; the
  // broker drops its X-Amz-* query parameters and signs the request itself.
  it("a client's presigned-URL query (placeholder credentials) is dropped and the request re-signed", async () => {
    const presign = new URLSearchParams({
      'X-Amz-Algorithm': 'AWS4-HMAC-SHA256',
      'X-Amz-Credential': 'AKIAPLACEHOLDER/20250101/us-east-1/s3/aws4_request',
      'X-Amz-Date': '20250101T000000Z',
      'X-Amz-Expires': '300',
      'X-Amz-SignedHeaders': 'host',
      'X-Amz-Security-Token': 'client-placeholder-token',
      'X-Amz-Signature': 'deadbeef'.repeat(8),
    });
    const r = await call(`/v1/upstreams/s3/${BUCKET}/notes/hello.txt?${presign}`);
    expect(r.status, errorCode(r.text)).toBe(200);
    expect(r.text).toBe(`hello from the sandbox ${tag}\n`);
  });

  it("a wrong secret gets the upstream's own 403, passed through; the call is audited as forwarded", async () => {
    const r = await call(`/v1/upstreams/s3-wrong/${BUCKET}/notes/hello.txt`);
    expect(r.status).toBe(403);
    expect(errorCode(r.text)).toBe('SignatureDoesNotMatch');
    const event = (await h.waitForEvent((e) => (e['metadata'] as { uid: string }).uid === r.id)) as { status_detail: string; api: { response: { code: number } }; unmapped: { gatehouse: { upstream: string } } };
    expect(event.status_detail).toBe('allowed');
    expect(event.api.response.code).toBe(403);
    expect(event.unmapped.gatehouse.upstream).toBe('s3-wrong');
  });

  it('a chunked body over max_request_bytes is refused with 413 before anything is signed or sent', async () => {
    const r = await call(`/v1/upstreams/s3/${BUCKET}/too-big.bin`, { method: 'PUT', body: Readable.from(Array.from({ length: 20 }, () => Buffer.alloc(4096, 7))) });
    expect(r.status).toBe(413);
    expect(JSON.parse(r.text)).toMatchObject({ error: { reason: 'object_too_large' } });
    expect((await rgw.s3({ method: 'HEAD', bucket: BUCKET, key: 'too-big.bin' })).status).toBe(404);
  });

  it('neither secret nor the broker token appears in a response, an audit event or a metric', async () => {
    const haystacks = { responses: clientSaw.join('\n'), events: JSON.stringify(h.events), metrics: await h.registry.metrics() };
    for (const [where, text] of Object.entries(haystacks)) {
      for (const [what, secret] of Object.entries({ secret: rgw.secretAccessKey, wrong: WRONG_SECRET, token })) expect(text.includes(secret), `${what} in ${where}`).toBe(false);
    }
  });
});
