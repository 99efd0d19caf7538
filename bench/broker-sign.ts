import { createHash, createHmac } from 'node:crypto';
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';

/**
 * SigV4 signing cost per request, in its own process pinned to the proxy core (bench/broker-bench.ts runs it):
 * `@smithy/signature-v4` configured exactly as the broker's S3 client configures it (broker/stores/s3-client.ts,
 * `S3Client.send`: a new SignatureV4 per request, node's hash, `uriEscapePath: false`, `applyChecksum: false`,
 * host and x-amz-content-sha256 set by the caller), against baselines measured in the same process, variant by
 * variant in ABBA order:
 * - `smithy, signer reused`: one SignatureV4 for every request (its signing key is then derived once a day);
 * - `node:crypto by hand`: the same SigV4 written directly on node:crypto (canonical request, its SHA-256, the
 *   key derived per request, the HMAC), checked to produce the same signature as smithy;
 * - `HMAC of string-to-sign`: one HMAC-SHA256 of the same string-to-sign with a precomputed key, the floor.
 * Every loop is bounded by a count and a deadline.
 */

export interface SignJob {
  readonly iterations: number;
  readonly rounds: number;
  readonly deadlineSeconds: number;
}

export const SIGN_VARIANTS = ['smithy, as the broker', 'smithy, signer reused', 'node:crypto by hand', 'HMAC of string-to-sign'] as const;
export type SignVariant = (typeof SIGN_VARIANTS)[number];

export interface SignRun {
  readonly variant: SignVariant;
  readonly ops: number;
  readonly seconds: number;
}

export interface SignResult {
  readonly runs: readonly SignRun[];
  /** The hand-written signer produced smithy's signature for the same request and time. */
  readonly handMatchesSmithy: boolean;
  readonly timedOut: boolean;
}

const CREDENTIALS = { accessKeyId: 'GHBENCHACCESSKEY0000', secretAccessKey: 'bench/secret+key/of/forty/characters/xx' };
const REGION = 'us-east-1';
const HOST = '127.0.0.1:7480';
const PATH = '/gh-bench/gatehouse/bench-s3/fs-bench/data/small%20file.bin';
const EMPTY_SHA256 = createHash('sha256').update('').digest('hex');
const hex = (data: string): string => createHash('sha256').update(data).digest('hex');
const hmac = (key: Buffer | string, data: string): Buffer => createHmac('sha256', key).update(data).digest();

/** The request the broker signs for a 1 KiB GET (S3Client.send with no body). */
const request = (): HttpRequest =>
  new HttpRequest({ method: 'GET', protocol: 'http:', hostname: '127.0.0.1', port: 7480, path: PATH, query: {}, headers: { host: HOST, 'x-amz-content-sha256': EMPTY_SHA256 } });

const brokerSigner = (): SignatureV4 =>
  new SignatureV4({ service: 's3', region: REGION, credentials: CREDENTIALS, sha256: Hash.bind(null, 'sha256'), uriEscapePath: false, applyChecksum: false });

const amzDate = (d: Date): string => d.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');

/** SigV4 for the same request on node:crypto alone (AWS SigV4 spec: canonical request, string to sign, signature). */
function handSign(date: Date): { signature: string; stringToSign: string } {
  const stamp = amzDate(date);
  const day = stamp.slice(0, 8);
  const signedHeaders = 'host;x-amz-content-sha256;x-amz-date';
  const canonical = ['GET', PATH, '', `host:${HOST}`, `x-amz-content-sha256:${EMPTY_SHA256}`, `x-amz-date:${stamp}`, '', signedHeaders, EMPTY_SHA256].join('\n');
  const scope = `${day}/${REGION}/s3/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', stamp, scope, hex(canonical)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${CREDENTIALS.secretAccessKey}`, day), REGION), 's3'), 'aws4_request');
  return { signature: hmac(key, stringToSign).toString('hex'), stringToSign };
}

async function measure(variant: SignVariant, iterations: number, deadline: number): Promise<SignRun> {
  const reused = brokerSigner();
  const date = new Date();
  const { stringToSign } = handSign(date);
  const key = hmac(hmac(hmac(hmac(`AWS4${CREDENTIALS.secretAccessKey}`, amzDate(date).slice(0, 8)), REGION), 's3'), 'aws4_request');
  let sink = 0;
  const started = performance.now();
  let ops = 0;
  // Checking the deadline every 256 operations keeps the clock out of the loop.
  for (; ops < iterations && ((ops & 255) !== 0 || performance.now() < deadline); ops++) {
    if (variant === 'smithy, as the broker') sink += ((await brokerSigner().sign(request())).headers['authorization'] as string).length;
    else if (variant === 'smithy, signer reused') sink += ((await reused.sign(request())).headers['authorization'] as string).length;
    else if (variant === 'node:crypto by hand') sink += handSign(new Date()).signature.length;
    else sink += hmac(key, stringToSign).length;
  }
  const seconds = (performance.now() - started) / 1000;
  if (sink === 0) throw new Error('nothing signed');
  return { variant, ops, seconds };
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? '{}') as SignJob;
  const deadline = performance.now() + job.deadlineSeconds * 1000;
  const date = new Date();
  const smithy = (await brokerSigner().sign(request(), { signingDate: date })).headers['authorization'] as string;
  const handMatchesSmithy = smithy.endsWith(`Signature=${handSign(date).signature}`);
  // Untimed warm-up of every variant (JIT).
  for (const v of SIGN_VARIANTS) await measure(v, Math.min(2000, job.iterations), deadline);
  const runs: SignRun[] = [];
  for (let r = 0; r < job.rounds && performance.now() < deadline; r++) {
    const order = r % 2 === 0 ? SIGN_VARIANTS : [...SIGN_VARIANTS].reverse();
    for (const v of order) runs.push(await measure(v, job.iterations, deadline));
  }
  process.stdout.write(`${JSON.stringify({ runs, handMatchesSmithy, timedOut: performance.now() >= deadline } satisfies SignResult)}\n`);
}

await main();
