import { readFile } from 'node:fs/promises';
import { pipeline, Transform, type Readable } from 'node:stream';
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { Agent, request, errors as undiciErrors, type Dispatcher } from 'undici';
import { downstreamResponseHeaders } from '../core/http/hop-by-hop.js';
import { decideUpstream } from '../core/policy/broker-decide.js';
import type { UpstreamSettings } from '../core/policy/compile-broker.js';
import { KEY_HEADERS } from './broker-auth.js';
import type { BrokerRequest } from './broker-request.js';
import type { Credentials } from './credentials.js';
import { redactStream, redactText } from './redact-stream.js';
import { Refusal } from './refusal.js';

// Request headers never forwarded: connection-specific ones (RFC 9110 §7.6.1), every header a client may carry
// a credential in, and Gatehouse's own.
const DROP_REQUEST = new Set([
  'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host', 'expect',
  ...KEY_HEADERS, 'cookie', 'x-amz-security-token', 'x-amz-date', 'x-amz-content-sha256',
  // The broker reads the body as identity bytes and may redact the response: ask the upstream for identity too.
  'accept-encoding', 'content-length',
]);

/** The path after `/v1/upstreams/<name>`, refused if it has a dot segment that would climb out of the base path. */
export function upstreamPath(rawUrl: string, name: string): { path: string; query: string } {
  const prefix = `/v1/upstreams/${name}`;
  // The name was cut from the raw target by position: an absolute-form target (`GET http://host/v1/...`, which
  // the router still matches on its path) would otherwise yield a name and a path that are not the ones it names.
  if (!rawUrl.startsWith(prefix)) throw new Refusal('malformed_request', 'expected /v1/upstreams/<name>/<path>');
  const rest = rawUrl.slice(prefix.length);
  const q = rest.indexOf('?');
  const path = q === -1 ? rest : rest.slice(0, q);
  const query = q === -1 ? '' : rest.slice(q + 1);
  if (path !== '' && !path.startsWith('/')) throw new Refusal('malformed_request', 'expected /v1/upstreams/<name>/<path>');
  for (const segment of path.split('/')) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      throw new Refusal('path_invalid', 'the upstream path is not valid percent-encoding');
    }
    // A URL parser resolves these: /v1/upstreams/x/../../admin would leave the configured base path.
    if (decoded === '.' || decoded === '..' || /[\\/]/.test(decoded)) throw new Refusal('path_invalid', 'dot segments and encoded separators are not allowed in an upstream path');
  }
  return { path, query };
}

/**
 * The client's query without `key` (a credential some SDKs put there) and, for a SigV4 upstream, without the
 * X-Amz-* parameters of a presigned URL: a presign made in the sandbox (placeholder credentials) is never
 * forwarded, the broker signs the request itself (anchors A.3 #7, #13).
 */
const cleanQuery = (query: string, sigv4: boolean): string => {
  const params = new URLSearchParams(query);
  params.delete('key');
  if (sigv4) for (const k of [...params.keys()]) if (/^x-amz-/i.test(k)) params.delete(k);
  const s = params.toString();
  return s ? `?${s}` : '';
};

export class UpstreamRoutes {
  private readonly agents = new Map<string, { key: string; agent: Promise<Agent> }>();

  constructor(private readonly credentials: Credentials) {}

  private agentFor(u: UpstreamSettings): Promise<Agent> {
    const key = JSON.stringify(u.tls ?? {});
    const hit = this.agents.get(u.name);
    if (hit && hit.key === key) return hit.agent;
    if (hit) void hit.agent.then((a) => a.close()).catch(() => undefined);
    const agent = (async () => {
      const ca = u.tls?.ca ? await readFile(u.tls.ca.slice('file:'.length), 'utf8') : undefined;
      // Upstream certificates are always verified; a custom CA replaces the system ones for this upstream.
      return new Agent({ connections: 128, keepAliveTimeout: 30_000, connect: { rejectUnauthorized: true, ...(ca ? { ca } : {}), ...(u.tls?.serverName ? { servername: u.tls.serverName } : {}) } });
    })();
    agent.catch(() => {
      if (this.agents.get(u.name)?.agent === agent) this.agents.delete(u.name);
    });
    this.agents.set(u.name, { key, agent });
    return agent;
  }

  /** The credential values for an upstream (also what responses are scrubbed of). */
  private async secrets(u: UpstreamSettings): Promise<{ values: string[]; apply: (headers: Record<string, string | string[]>, url: URL, method: string, body: Buffer | null) => Promise<void> }> {
    const c = u.credential;
    try {
      if (c.type === 'header') {
        const value = await this.credentials.get(c.value);
        return { values: [value], apply: async (h) => void (h[c.header] = value) };
      }
      if (c.type === 'bearer') {
        const value = await this.credentials.get(c.value);
        return { values: [value], apply: async (h) => void (h['authorization'] = `Bearer ${value}`) };
      }
      const accessKeyId = await this.credentials.get(c.accessKeyId);
      const secretAccessKey = await this.credentials.get(c.secretAccessKey);
      const sessionToken = c.sessionToken ? await this.credentials.get(c.sessionToken) : undefined;
      // S3 signs the wire path exactly as sent, encoded once; escaping it again (right for other services) makes
      // every key with a space, '+', '%', '=' or non-ASCII fail with SignatureDoesNotMatch (anchors A.3 #1, #2).
      const uriEscapePath = c.service !== 's3' && c.service !== 's3-object-lambda';
      const signer = new SignatureV4({ service: c.service, region: c.region, credentials: { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) }, sha256: Hash.bind(null, 'sha256'), uriEscapePath, applyChecksum: true });
      return {
        values: [secretAccessKey, ...(sessionToken ? [sessionToken] : [])],
        apply: async (h, url, method, body) => {
          const query: Record<string, string | string[]> = {};
          for (const [k, v] of url.searchParams) {
            const prev = query[k];
            query[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
          }
          const flat: Record<string, string> = {};
          for (const [k, v] of Object.entries(h)) flat[k] = Array.isArray(v) ? v.join(', ') : v;
          const signed = await signer.sign(
            new HttpRequest({ method, protocol: url.protocol, hostname: url.hostname, ...(url.port ? { port: Number(url.port) } : {}), path: url.pathname, query, headers: { ...flat, host: url.host }, ...(body ? { body } : {}) }),
          );
          for (const [k, v] of Object.entries(signed.headers)) h[k.toLowerCase()] = v;
        },
      };
    } catch {
      throw new Refusal('credential_unavailable', `the credential for upstream ${u.name} could not be loaded`);
    }
  }

  async call(r: BrokerRequest, name: string): Promise<void> {
    // A client that goes away before the upstream answered must not leave the upstream call running (a model
    // still generating, a concurrency slot held) until the upstream timeout. After the head, the pipeline below
    // sees the close and ends the upstream body itself.
    const gone = new AbortController();
    const onClose = (): void => {
      if (!r.res.writableFinished) gone.abort();
    };
    r.res.once('close', onClose);
    if (r.res.closed) onClose();
    r.upstream = name;
    const { path, query } = upstreamPath(r.req.url ?? '', name);
    r.upstreamPath = path || '/';
    const granted = decideUpstream(r.deps.policy().broker.upstreams, r.session.grant, name);
    if (!granted.allow) throw new Refusal(granted.reason, granted.detail);
    const u = granted.upstream;
    const declared = r.req.headers['content-length'];
    if (declared !== undefined && Number(declared) > u.maxRequestBytes) throw new Refusal('object_too_large', `the request body is larger than the ${u.maxRequestBytes} bytes upstream ${name} allows`);
    const url = new URL(`${u.url}${path}${cleanQuery(query, u.credential.type === 'sigv4')}`);
    const secrets = await this.secrets(u);
    const headers: Record<string, string | string[]> = {};
    const raw = r.req.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      const lower = (raw[i] as string).toLowerCase();
      if (DROP_REQUEST.has(lower) || lower.startsWith('x-gatehouse-')) continue;
      const prev = headers[lower];
      headers[lower] = prev === undefined ? (raw[i + 1] as string) : [...(Array.isArray(prev) ? prev : [prev]), raw[i + 1] as string];
    }
    headers['accept-encoding'] = 'identity';
    // Fixed headers and the credential overwrite whatever the client sent (Envoy's injector would not, by default).
    for (const [k, v] of Object.entries(u.headers)) headers[k] = v;
    const hasBody = r.req.method !== 'GET' && r.req.method !== 'HEAD' && (declared !== undefined ? Number(declared) > 0 : r.req.headers['transfer-encoding'] !== undefined);
    let body: Readable | Buffer | null = null;
    if (hasBody) {
      const counted = r.countIn();
      let seen = 0;
      const limit = new Transform({
        transform(chunk: Buffer, _e, done) {
          seen += chunk.length;
          if (seen > u.maxRequestBytes) done(new Refusal('object_too_large', `the request body is larger than the ${u.maxRequestBytes} bytes upstream ${name} allows`));
          else done(null, chunk);
        },
      });
      pipeline(r.req, counted, limit, () => undefined);
      // SigV4 signs the payload hash, so an AWS upstream needs the (bounded) body in hand; others stream.
      body = u.credential.type === 'sigv4' ? await collect(limit) : limit;
      if (declared !== undefined) headers['content-length'] = declared;
    }
    await secrets.apply(headers, url, r.req.method ?? 'GET', Buffer.isBuffer(body) ? body : null);
    const agent = await this.agentFor(u).catch(() => {
      throw new Refusal('credential_unavailable', `the CA bundle for upstream ${name} could not be read`);
    });
    await r.decided();
    let res: Dispatcher.ResponseData;
    try {
      res = await request(url, {
        method: (r.req.method ?? 'GET') as Dispatcher.HttpMethod,
        headers,
        ...(body ? { body } : {}),
        dispatcher: agent,
        headersTimeout: u.timeoutMs,
        bodyTimeout: u.timeoutMs,
        signal: gone.signal,
      });
    } catch (err) {
      if (gone.signal.aborted && !(err instanceof Refusal)) throw new Refusal('body_incomplete', 'the client went away before the upstream answered');
      throw upstreamRefusal(err, name);
    }
    const out = downstreamResponseHeaders(res.headers);
    delete out['content-length']; // the body may be redacted: length changes
    for (const [k, v] of Object.entries(out)) out[k] = Array.isArray(v) ? v.map((x) => redactText(x, secrets.values)) : redactText(v, secrets.values);
    r.res.writeHead(res.statusCode, { ...out, 'x-gatehouse-correlation-id': r.correlationId });
    // Headers go out at once: a streamed (SSE) answer must not wait for its first chunk to be buffered.
    r.res.flushHeaders();
    await new Promise<void>((resolve) => pipeline(res.body, redactStream(secrets.values), r.countOut(), r.res, () => resolve()));
    // Forwarded is allowed, whatever the upstream answered: its status is in the event.
    r.finish(true, 'allowed', res.statusCode);
  }

  async close(): Promise<void> {
    const all = [...this.agents.values()];
    this.agents.clear();
    await Promise.all(all.map(async (a) => (await a.agent.catch(() => null))?.close()));
  }
}

async function collect(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) parts.push(chunk);
  } catch (err) {
    if (err instanceof Refusal) throw err;
    throw new Refusal('body_incomplete', 'the client went away mid-request');
  }
  return Buffer.concat(parts);
}

function upstreamRefusal(err: unknown, name: string): Refusal {
  if (err instanceof Refusal) return err;
  if (err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.ConnectTimeoutError) return new Refusal('upstream_timeout', `upstream ${name} did not answer in time`);
  const code = (err as NodeJS.ErrnoException).code ?? (err as Error).name;
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'ECONNRESET') return new Refusal('upstream_connect_failed', `upstream ${name} could not be reached (${code})`);
  // TLS verification failures and the rest: the code only, never a message that could quote a URL.
  return new Refusal('upstream_error', `upstream ${name} failed (${code})`);
}
