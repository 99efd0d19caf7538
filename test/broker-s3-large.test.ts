import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { patternStream } from '../broker/file-test-kit.js';
import { startCephRgw, type CephRgw } from './peers/ceph-rgw.js';
import { startGatehouse, type GatehouseProcess } from './support/gatehouse-process.js';
import { cleanEnv } from './support/run.js';
import { filesUnder } from './support/files-under.js';

/**
 * The credential broker's S3 store as an operator runs it: the built CLI (`gatehouse up`) with an S3 store on a
 * real Ceph RADOS Gateway (which checks every SigV4 signature and payload hash), credentials given as env: refs,
 * a session created through the admin API. A 256 MiB object is streamed up and back through the broker while the
 * Gatehouse process's peak RSS is watched; then a tenant whose store has the wrong secret is refused with a reason,
 * and that secret is nowhere in what Gatehouse answered, logged or stored.
 */

const MiB = 1024 * 1024;
const SIZE = 256 * MiB;
// The store keeps the default part size (8 MiB, core/policy/defaults.ts): the object must arrive in 32 parts.
const PART = 8 * MiB;
const BUCKET = 'gh-e2e-large';
const ENV = { access: 'GH_E2E_S3_ACCESS_KEY', secret: 'GH_E2E_S3_SECRET_KEY', wrong: 'GH_E2E_S3_WRONG_SECRET' } as const;
// A wrong secret of the right shape (40 characters, as AWS's), random so it cannot match anything by chance.
const WRONG_SECRET = randomBytes(30).toString('base64');

let dir: string;
let state: string;
let rgw: CephRgw;
let gh: GatehouseProcess;
let brokerUrl = '';
let adminToken = '';
const clientSaw: string[] = [];

const storeYaml = (name: string, secretEnv: string): string => `    - name: ${name}
      type: s3
      endpoint: ${rgw.endpoint}
      region: ${rgw.region}
      bucket: ${BUCKET}
      prefix: gatehouse/
      access_key_id: env:${ENV.access}
      secret_access_key: env:${secretEnv}
`;

/** Peak (VmHWM) and current (VmRSS) resident memory of a process, in bytes, from /proc. */
async function memoryOf(pid: number): Promise<{ hwm: number; rss: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN) * 1024;
  return { hwm: kb('VmHWM'), rss: kb('VmRSS') };
}

/** A session through the admin API, as an orchestrator creates one; returns its broker token. */
async function brokerSession(tenant: string, filesystem: string): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${gh.adminPort}/v1/sessions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ tenant, broker: { filesystem } }),
  });
  const text = await res.text();
  clientSaw.push(text);
  expect(res.status, text).toBe(201);
  return (JSON.parse(text) as { tokens: { broker?: string } }).tokens.broker ?? '';
}

/** SHA-256 and length of the bytes that pass through, without keeping them. */
function digesting(): { through: Transform; result: () => { bytes: number; sha256: string } } {
  const hash = createHash('sha256');
  let bytes = 0;
  const through = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  return { through, result: () => ({ bytes, sha256: hash.digest('hex') }) };
}

interface Streamed {
  readonly status: number;
  readonly headers: IncomingMessage['headers'];
  readonly bytes: number;
  readonly sha256: string;
  /** The body as text when it is small (an error or a JSON answer); empty for a big body. */
  readonly text: string;
}

/**
 * One request to the broker with the body streamed in (`body`) and the response streamed out into a hash: neither
 * side is ever held in memory by the test. Bounded by `timeoutMs`.
 */
function brokerCall(method: string, path: string, token: string, options: { body?: Readable; length?: number; timeoutMs?: number } = {}): Promise<Streamed> {
  const url = new URL(brokerUrl);
  const headers: Record<string, string | number> = { authorization: `Bearer ${token}` };
  if (options.length !== undefined) headers['content-length'] = options.length;
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, method, path, headers, agent: false });
    const timer = setTimeout(() => req.destroy(new Error(`${method} ${path}: not done within ${options.timeoutMs ?? 15_000} ms`)), options.timeoutMs ?? 15_000);
    req.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.once('response', (res) => {
      const d = digesting();
      let text = '';
      d.through.on('data', (c: Buffer) => void (text.length < 64 * 1024 && (text += c.toString('utf8'))));
      pipeline(res, d.through).then(
        () => {
          clearTimeout(timer);
          clientSaw.push(text, JSON.stringify(res.headers));
          resolve({ status: res.statusCode ?? 0, headers: res.headers, ...d.result(), text: text.length < 64 * 1024 ? text : '' });
        },
        (err: Error) => {
          clearTimeout(timer);
          reject(err);
        },
      );
    });
    if (options.body) options.body.pipe(req);
    else req.end();
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-e2e-s3-large-'));
  state = join(dir, 'state');
  // memstore keeps objects in the OSD's RAM and RGW refuses writes near 95 % full: room for the 256 MiB object,
  // a few small ones and RADOS overhead.
  rgw = await startCephRgw({ memstoreBytes: 768 * MiB });
  await rgw.createBucket(BUCKET);
  const policyFile = join(dir, 'policy.yaml');
  await writeFile(
    policyFile,
    `version: 1
broker:
  stores:
${storeYaml('ceph', ENV.secret)}${storeYaml('ceph-wrong', ENV.wrong)}
tenants:
  - name: acme
    broker:
      store: ceph
      mounts: [{path: /outputs, mode: rw, max_object_bytes: 1GiB}]
  # Same endpoint and bucket, but the broker's secret for it is wrong (a stale rotation, a copy-paste error).
  - name: wrongco
    broker:
      store: ceph-wrong
      mounts: [{path: /outputs, mode: rw}]
`,
  );
  gh = await startGatehouse(
    ['--state', state, '--policy', policyFile, '--egress-listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--broker-listen', '127.0.0.1:0', '--log-level', 'debug', '--drain-timeout', '2s'],
    cleanEnv({ [ENV.access]: rgw.accessKeyId, [ENV.secret]: rgw.secretAccessKey, [ENV.wrong]: WRONG_SECRET }),
  );
  brokerUrl = /broker\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(gh.stdout())?.[1] ?? '';
  adminToken = (await readFile(join(state, 'admin-token'), 'utf8')).trim();
}, 90_000);

afterAll(async () => {
  if (gh?.proc.exitCode === null) await gh.stop('SIGKILL');
  await rgw?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('gatehouse up: broker S3 store on Ceph RGW, large objects and wrong credentials', () => {
  const correlation: Record<string, string> = {};

  it(
    'streams a 256 MiB object up and back through the broker: same SHA-256, multipart in RGW, bounded RSS growth',
    async () => {
      expect(brokerUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const token = await brokerSession('acme', 'fs-large');
      // Warm-up: the S3 connection pool, the JIT and the audit writer are running before the baseline is read.
      const small = await brokerCall('PUT', '/v1/files/outputs/warm.txt', token, { body: patternStream(4096), length: 4096 });
      expect(small.status, small.text).toBe(200);
      expect((await brokerCall('GET', '/v1/files/outputs/warm.txt', token)).bytes).toBe(4096);
      const pid = gh.proc.pid as number;
      const before = await memoryOf(pid);

      const sent = digesting();
      const put = await brokerCall('PUT', '/v1/files/outputs/big.bin', token, { body: patternStream(SIZE).pipe(sent.through), length: SIZE, timeoutMs: 150_000 });
      const up = sent.result();
      expect([put.status, (JSON.parse(put.text || '{}') as { size?: number }).size], put.text).toEqual([200, SIZE]);
      expect(up.bytes).toBe(SIZE);
      correlation['put'] = String(put.headers['x-gatehouse-correlation-id']);

      // In RGW: the whole object, uploaded as multipart (the ETag of a multipart object ends in -<parts>).
      const head = await rgw.s3({ method: 'HEAD', bucket: BUCKET, key: 'gatehouse/acme/fs-large/outputs/big.bin' });
      expect([head.status, head.headers['content-length'], String(head.headers['etag'])]).toEqual([200, String(SIZE), expect.stringMatching(new RegExp(`-${SIZE / PART}"$`))]);
      const uploads = await rgw.s3({ method: 'GET', bucket: BUCKET, query: { uploads: '' } });
      expect(uploads.body.toString()).not.toContain('<Upload>');

      const got = await brokerCall('GET', '/v1/files/outputs/big.bin', token, { timeoutMs: 150_000 });
      expect([got.status, got.bytes, got.sha256]).toEqual([200, SIZE, up.sha256]);
      correlation['get'] = String(got.headers['x-gatehouse-correlation-id']);

      const after = await memoryOf(pid);
      const growth = after.hwm - before.hwm;
      const mb = (n: number): string => `${(n / MiB).toFixed(1)} MiB`;
      console.log(`gatehouse peak RSS (VmHWM) ${mb(before.hwm)} -> ${mb(after.hwm)} (+${mb(growth)}) over a ${mb(SIZE)} upload and download; VmRSS now ${mb(after.rss)}`);
      // A broker that buffered the whole object would grow by at least 256 MiB. The bound is deliberately generous
      // (two 8 MiB parts in flight, stream buffers and garbage the GC has not collected yet: 64-74 MiB measured on
      // a quiet 2-core machine, 92 MiB at a load average of 10); the issue's target ("a 1 GiB upload must not grow
      // RSS by more than 64 MB") is checked precisely by the broker benchmark (`npm run bench -- broker`), which
      // resets the peak before each transfer; not in a test.
      expect(growth, `VmHWM grew by ${mb(growth)}`).toBeLessThan(160 * MiB);
    },
    240_000,
  );

  it('a store whose secret is wrong: 502 backend_rejected with the S3 error code, for writes and reads', async () => {
    const token = await brokerSession('wrongco', 'fs-wrong');
    for (const [method, body] of [['PUT', 'some data'], ['GET', undefined]] as const) {
      const res = await brokerCall(method, '/v1/files/outputs/x.txt', token, body ? { body: patternStream(body.length), length: body.length } : {});
      const err = (JSON.parse(res.text) as { error?: { code: string; reason: string; message: string; correlation_id: string } }).error;
      expect([method, res.status, err?.code, err?.reason]).toEqual([method, 502, 'GH_ERR_BROKER_BACKEND', 'backend_rejected']);
      // The operation and RGW's own code say what went wrong (broker/stores/s3-client.ts failure()).
      expect(err?.message).toMatch(method === 'PUT' ? /PutObject: SignatureDoesNotMatch/ : /GetObject: SignatureDoesNotMatch/);
      expect(err?.correlation_id).toBe(res.headers['x-gatehouse-correlation-id']);
      correlation[`wrong-${method}`] = err?.correlation_id ?? '';
    }
  });

  it('after a clean stop: the audit log has each call with its outcome, and no S3 secret or token is anywhere', async () => {
    expect(await gh.stop('SIGTERM')).toBe(0);
    const files = await filesUnder(state);
    const stored = await Promise.all(files.map(async (f) => [f, await readFile(f, 'latin1')] as const));
    const events = stored
      .filter(([f]) => f.startsWith(join(state, 'audit')) && f.endsWith('.jsonl'))
      .flatMap(([, t]) => t.split('\n').filter((l) => l.startsWith('{')))
      // One record per line (core/audit/record-format.ts), the event inside it.
      .map((l) => (JSON.parse(l) as { event: { metadata?: { uid?: string }; status_detail?: string; traffic?: { bytes_out: number; bytes_in: number } } }).event);
    const eventOf = (id: string | undefined): (typeof events)[number] | undefined => events.find((e) => e.metadata?.uid === id);
    expect([eventOf(correlation['put'])?.status_detail, eventOf(correlation['put'])?.traffic?.bytes_out]).toEqual(['allowed', SIZE]);
    expect([eventOf(correlation['get'])?.status_detail, eventOf(correlation['get'])?.traffic?.bytes_in]).toEqual(['allowed', SIZE]);
    expect(eventOf(correlation['wrong-PUT'])?.status_detail).toBe('backend_rejected');
    expect(eventOf(correlation['wrong-GET'])?.status_detail).toBe('backend_rejected');
    const haystacks: Array<readonly [string, string]> = [['stdout', gh.stdout()], ['stderr', gh.stderr()], ['client', clientSaw.join('\n')], ...stored];
    for (const [where, text] of haystacks) {
      expect(text.includes(WRONG_SECRET), `wrong secret in ${where}`).toBe(false);
      expect(text.includes(rgw.secretAccessKey), `S3 secret in ${where}`).toBe(false);
    }
  });
});
