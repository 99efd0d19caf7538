import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { getGlobalDispatcher, type Dispatcher } from 'undici';
import { s3Path, Sha256, signedS3Request, type S3Target } from '../test/peers/ceph-rgw.js';

/**
 * The broker benchmark's client, run as its own process pinned to the load core (bench/broker-bench.ts starts it
 * with one JSON job as its argument and reads one JSON line back). It talks to the broker as a sandbox does
 * (Bearer token, plain HTTP on loopback) and to Ceph RGW directly as an S3 client holding the real credentials
 * would (every request SigV4-signed over its payload hash, like the broker's own requests). Bodies are generated
 * from one constant block and never accumulated; downloads are counted (and hashed only when asked, so the
 * timed runs measure transfer, not the client's SHA-256).
 */

/** Where a client reaches RGW directly: the endpoint and credentials, and the bucket the broker's store uses. */
export interface DirectTarget extends S3Target {
  readonly bucket: string;
}

/** A file on the broker, through a session's token. */
export interface BrokerFile {
  readonly url: string;
  readonly token: string;
  /** Logical path, e.g. /data/big.bin. */
  readonly path: string;
}

export type ClientJob =
  | { readonly mode: 'upload'; readonly via: 'broker'; readonly file: BrokerFile; readonly bytes: number }
  | { readonly mode: 'upload'; readonly via: 'direct'; readonly target: DirectTarget; readonly key: string; readonly bytes: number; readonly partSize: number }
  | { readonly mode: 'download'; readonly via: 'broker'; readonly file: BrokerFile; readonly hash?: boolean }
  | { readonly mode: 'download'; readonly via: 'direct'; readonly target: DirectTarget; readonly key: string; readonly hash?: boolean }
  | { readonly mode: 'latency'; readonly targets: readonly LatencyTarget[]; readonly perBlock: number; readonly rounds: number; readonly deadlineSeconds: number };

/** One side of the small-request comparison: a 1 KiB file read (GET) and its metadata (stat, or HEAD for S3). */
export type LatencyTarget = { readonly name: string; readonly via: 'broker'; readonly file: BrokerFile } | { readonly name: string; readonly via: 'direct'; readonly target: DirectTarget; readonly key: string };

export interface TransferResult {
  readonly bytes: number;
  readonly seconds: number;
  readonly sha256?: string;
}

export interface LatencyResult {
  /** Latencies in ms per target name and operation (`get`, `stat`), in the order measured. */
  readonly samples: Record<string, { get: number[]; stat: number[] }>;
  readonly errors: number;
  readonly timedOut: boolean;
}

const BLOCK = Buffer.alloc(1024 * 1024, 0x5a);
const dispatcher = (): Dispatcher => getGlobalDispatcher();

/** `bytes` bytes as 1 MiB chunks of one constant block (pushing the same, never mutated, buffer is safe). */
function generated(bytes: number): Readable {
  let left = bytes;
  return new Readable({
    read() {
      if (left <= 0) return void this.push(null);
      const n = Math.min(left, BLOCK.length);
      left -= n;
      this.push(n === BLOCK.length ? BLOCK : BLOCK.subarray(0, n));
    },
  });
}

async function drain(body: Dispatcher.ResponseData['body'], hash: boolean): Promise<{ bytes: number; sha256?: string }> {
  const h = hash ? createHash('sha256') : null;
  let bytes = 0;
  for await (const c of body as AsyncIterable<Buffer>) {
    bytes += c.length;
    h?.update(c);
  }
  return h ? { bytes, sha256: h.digest('hex') } : { bytes };
}

function check(status: number, what: string, ok: readonly number[] = [200]): void {
  if (!ok.includes(status)) throw new Error(`${what}: HTTP ${status}`);
}

async function brokerRequest(file: BrokerFile, method: 'GET' | 'PUT', route: 'files' | 'stat', body?: Readable, length?: number): Promise<Dispatcher.ResponseData> {
  const url = new URL(file.url);
  const headers: Record<string, string> = { authorization: `Bearer ${file.token}` };
  if (length !== undefined) headers['content-length'] = String(length);
  return dispatcher().request({ origin: url.origin, method, path: `/v1/${route}${file.path}`, headers, ...(body ? { body } : {}), headersTimeout: 120_000, bodyTimeout: 120_000 });
}

/** A signed GET or HEAD straight to RGW, the body left to the caller to stream (signedS3Request reads it whole). */
async function directStream(target: DirectTarget, key: string, method: 'GET' | 'HEAD'): Promise<Dispatcher.ResponseData> {
  const url = new URL(target.endpoint);
  const path = s3Path(target.bucket, key);
  const signer = new SignatureV4({ service: 's3', region: target.region, credentials: target, sha256: Sha256, uriEscapePath: false });
  const signed = await signer.sign(new HttpRequest({ method, protocol: url.protocol, hostname: url.hostname, port: Number(url.port), path, headers: { host: url.host } }));
  const headers = { ...(signed.headers as Record<string, string>) };
  delete headers.host; // undici writes the same Host itself
  return dispatcher().request({ origin: url.origin, method, path, headers, headersTimeout: 120_000, bodyTimeout: 120_000 });
}

/** Multipart upload straight to RGW, parts sent one after the other, each signed over its SHA-256 (as the broker does). */
async function directUpload(target: DirectTarget, key: string, bytes: number, partSize: number): Promise<void> {
  const created = await signedS3Request(target, { method: 'POST', bucket: target.bucket, key, query: { uploads: '' } });
  check(created.status, 'CreateMultipartUpload');
  const uploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(created.body.toString())?.[1] ?? '';
  const part = Buffer.alloc(partSize, 0x5a);
  const etags: string[] = [];
  for (let offset = 0, n = 1; offset < bytes; offset += partSize, n++) {
    const body = offset + partSize <= bytes ? part : part.subarray(0, bytes - offset);
    const res = await signedS3Request(target, { method: 'PUT', bucket: target.bucket, key, query: { partNumber: String(n), uploadId }, body });
    check(res.status, `UploadPart ${n}`);
    etags.push(String(res.headers['etag']));
  }
  const xml = `<CompleteMultipartUpload>${etags.map((e, i) => `<Part><PartNumber>${i + 1}</PartNumber><ETag>${e}</ETag></Part>`).join('')}</CompleteMultipartUpload>`;
  const done = await signedS3Request(target, { method: 'POST', bucket: target.bucket, key, query: { uploadId }, body: xml });
  check(done.status, 'CompleteMultipartUpload');
  if (done.body.toString().includes('<Error>')) throw new Error(`CompleteMultipartUpload: ${done.body.toString().slice(0, 200)}`);
}

async function transfer(job: Exclude<ClientJob, { mode: 'latency' }>): Promise<TransferResult> {
  const started = performance.now();
  const seconds = (): number => (performance.now() - started) / 1000;
  if (job.mode === 'upload' && job.via === 'broker') {
    const res = await brokerRequest(job.file, 'PUT', 'files', generated(job.bytes), job.bytes);
    const text = await res.body.text();
    check(res.statusCode, `broker PUT ${text.slice(0, 300)}`);
    return { bytes: job.bytes, seconds: seconds() };
  }
  if (job.mode === 'upload') {
    await directUpload(job.target, job.key, job.bytes, job.partSize);
    return { bytes: job.bytes, seconds: seconds() };
  }
  const res = job.via === 'broker' ? await brokerRequest(job.file, 'GET', 'files') : await directStream(job.target, job.key, 'GET');
  check(res.statusCode, `${job.via} GET`);
  const got = await drain(res.body, job.hash === true);
  return { ...got, seconds: seconds() };
}

/** One small request, timed from sending to the last byte of the answer. */
async function small(t: LatencyTarget, op: 'get' | 'stat'): Promise<number> {
  const started = performance.now();
  const res = t.via === 'broker' ? await brokerRequest(t.file, 'GET', op === 'get' ? 'files' : 'stat') : await directStream(t.target, t.key, op === 'get' ? 'GET' : 'HEAD');
  await res.body.dump({ limit: 1024 * 1024 });
  check(res.statusCode, `${t.name} ${op}`);
  return performance.now() - started;
}

/**
 * Blocks of `perBlock` GETs then `perBlock` stats per target, in ABBA order over the targets (A B C, C B A, ...),
 * one request at a time over a kept-alive connection. Bounded by rounds and by the deadline.
 */
async function latency(job: Extract<ClientJob, { mode: 'latency' }>): Promise<LatencyResult> {
  const deadline = performance.now() + job.deadlineSeconds * 1000;
  const samples: LatencyResult['samples'] = Object.fromEntries(job.targets.map((t) => [t.name, { get: [], stat: [] }]));
  let errors = 0;
  // Untimed warm-up: connections, the broker's token cache and JIT.
  for (const t of job.targets) for (let i = 0; i < 20; i++) for (const op of ['get', 'stat'] as const) await small(t, op).catch(() => errors++);
  for (let r = 0; r < job.rounds; r++) {
    const order = r % 2 === 0 ? job.targets : [...job.targets].reverse();
    for (const t of order) {
      for (const op of ['get', 'stat'] as const) {
        for (let i = 0; i < job.perBlock; i++) {
          if (performance.now() > deadline) return { samples, errors, timedOut: true };
          try {
            (samples[t.name] as { get: number[]; stat: number[] })[op].push(await small(t, op));
          } catch {
            errors++;
          }
        }
      }
    }
  }
  return { samples, errors, timedOut: false };
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? '{}') as ClientJob;
  const result = job.mode === 'latency' ? await latency(job) : await transfer(job);
  process.stdout.write(`${JSON.stringify(result)}\n`);
  await getGlobalDispatcher().close();
}

await main();
