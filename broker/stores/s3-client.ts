import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { Agent, request, type Dispatcher } from 'undici';
import { StoreError } from './store.js';

export interface S3Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string | undefined;
}

export interface S3Target {
  /** scheme://host[:port] */
  readonly endpoint: string;
  readonly region: string;
  readonly bucket: string;
  readonly addressing: 'path' | 'virtual';
  /** file:PATH of a PEM bundle to verify the endpoint with. */
  readonly ca?: string | undefined;
  readonly serverName?: string | undefined;
  /** Connect, response headers, and the gap between two body chunks (the policy's `timeout`). */
  readonly timeoutMs?: number | undefined;
}

export interface S3Response {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Dispatcher.ResponseData['body'];
}

export const EMPTY_SHA256 = createHash('sha256').update('').digest('hex');

/** RFC 3986 unreserved characters stay; everything else is %XX (the encoding SigV4 canonicalises with). */
export const uriEncode = (text: string): string => encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** An S3 key as it goes on the wire: each segment encoded once, the slashes kept (empty segments too). */
export const encodeKey = (key: string): string => key.split('/').map(uriEncode).join('/');

/**
 * Signs and sends S3 requests. @smithy/signature-v4 traps handled here (docs: anchors A.2): it does not add
 * `host` (we set it, as sent), it signs the path verbatim (we give it the exact single-encoded wire path and
 * turn off its own escaping, which S3 does not want), it drops null query values (we never pass any), and it
 * would trust an `x-amz-content-sha256` from a caller (only we set it, from the bytes we send).
 */
export class S3Client {
  private readonly agent: Agent;
  private readonly url: URL;

  private constructor(
    private readonly target: S3Target,
    private readonly credentials: () => Promise<S3Credentials>,
    ca: string | undefined,
  ) {
    this.url = new URL(target.endpoint);
    this.agent = new Agent({
      connections: 64,
      keepAliveTimeout: 30_000,
      connect: { ...(ca ? { ca } : {}), ...(target.serverName ? { servername: target.serverName } : {}), rejectUnauthorized: true, timeout: target.timeoutMs ?? 30_000 },
    });
  }

  get bucket(): string {
    return this.target.bucket;
  }

  static async create(target: S3Target, credentials: () => Promise<S3Credentials>): Promise<S3Client> {
    let ca: string | undefined;
    if (target.ca) {
      try {
        ca = await readFile(target.ca.slice('file:'.length), 'utf8');
      } catch (err) {
        throw new StoreError('credential', `cannot read the CA bundle (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
    }
    return new S3Client(target, credentials, ca);
  }

  private hostAndPath(key: string | null): { host: string; path: string } {
    const port = this.url.port ? `:${this.url.port}` : '';
    const object = key === null ? '' : encodeKey(key);
    if (this.target.addressing === 'virtual') return { host: `${this.target.bucket}.${this.url.hostname}${port}`, path: `/${object}` };
    return { host: `${this.url.hostname}${port}`, path: `/${this.target.bucket}${key === null ? '' : `/${object}`}` };
  }

  /** One signed request. `body` is sent as is; its SHA-256 is what the signature covers. */
  async send(method: string, key: string | null, options: { query?: Record<string, string>; headers?: Record<string, string>; body?: Buffer; signal?: AbortSignal; timeoutMs?: number } = {}): Promise<S3Response> {
    let creds: S3Credentials;
    try {
      creds = await this.credentials();
    } catch (err) {
      throw new StoreError('credential', (err as Error).message);
    }
    const { host, path } = this.hostAndPath(key);
    const body = options.body;
    const payloadHash = body ? createHash('sha256').update(body).digest('hex') : EMPTY_SHA256;
    const query = options.query ?? {};
    const signer = new SignatureV4({ service: 's3', region: this.target.region, credentials: creds, sha256: Hash.bind(null, 'sha256'), uriEscapePath: false, applyChecksum: false });
    const unsigned = new HttpRequest({
      method,
      protocol: this.url.protocol,
      hostname: host.replace(/:\d+$/, ''),
      ...(this.url.port ? { port: Number(this.url.port) } : {}),
      path,
      query,
      headers: { ...options.headers, host, 'x-amz-content-sha256': payloadHash, ...(body ? { 'content-length': String(body.length) } : {}) },
    });
    const signed = await signer.sign(unsigned);
    const qs = Object.keys(query)
      .sort()
      .map((k) => `${uriEncode(k)}=${uriEncode(query[k] as string)}`)
      .join('&');
    const url = `${this.url.protocol}//${host}${path}${qs ? `?${qs}` : ''}`;
    try {
      const res = await request(url, {
        method: method as Dispatcher.HttpMethod,
        headers: signed.headers,
        ...(body ? { body } : {}),
        dispatcher: this.agent,
        headersTimeout: options.timeoutMs ?? this.target.timeoutMs ?? 30_000,
        bodyTimeout: options.timeoutMs ?? this.target.timeoutMs ?? 30_000,
        ...(options.signal ? { signal: options.signal } : {}),
      });
      return { status: res.statusCode, headers: res.headers, body: res.body };
    } catch (err) {
      // Network failures name their code only: a message could carry the URL.
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).name;
      if (TIMEOUTS.has(code)) throw new S3Timeout(`S3 ${method} timed out (${code})`);
      throw new StoreError('unavailable', `S3 ${method} failed (${code})`);
    }
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

const TIMEOUTS = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/**
 * A request the endpoint did not answer within its timeout. Not retried: the attempt already used the whole
 * budget, and three of them held a sandbox's request (and its concurrency slot) for minutes on a hung backend.
 */
export class S3Timeout extends StoreError {
  constructor(detail: string) {
    super('unavailable', detail);
  }
}

/** The S3 error code in an error body (`<Code>NoSuchKey</Code>`), or the status when there is none. */
export async function errorCode(res: S3Response): Promise<string> {
  const text = await res.body.text().catch(() => '');
  return /<Code>([A-Za-z0-9.]{1,64})<\/Code>/.exec(text)?.[1] ?? `HTTP ${res.status}`;
}

/** Map an S3 failure to a store error: the operation and S3's code, never the request or its signature. */
export async function failure(op: string, res: S3Response): Promise<StoreError> {
  const code = await errorCode(res);
  if (res.status === 404 && code !== 'NoSuchBucket') return new StoreError('not_found', `${op}: ${code}`);
  if (res.status === 416) return new StoreError('range', `${op}: ${code}`);
  if (res.status >= 500 || code === 'SlowDown' || res.status === 429) return new StoreError('unavailable', `${op}: ${code}`);
  return new StoreError('rejected', `${op}: ${code}`);
}
