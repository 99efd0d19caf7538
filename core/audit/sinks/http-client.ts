import { readFile } from 'node:fs/promises';
import { Agent } from 'undici';
import { trustedConnect } from '../../netguard/trusted-connect.js';

export interface HttpSinkTarget {
  readonly url: string;
  /** `file:PATH` of a PEM CA bundle; absent: the system CAs. */
  readonly ca?: string;
  readonly serverName?: string;
  readonly timeoutMs: number;
}

/**
 * An undici Agent for one HTTP sink. Connections go through netguard's trusted connect (system resolver,
 * verified TLS with the configured CA), keep-alive, one at a time per origin: deliveries are sequential.
 */
export async function createSinkAgent(target: HttpSinkTarget): Promise<Agent> {
  const ca = target.ca ? await readFile(target.ca.slice('file:'.length), 'utf8') : undefined;
  const url = new URL(target.url);
  const tls = url.protocol === 'https:';
  return new Agent({
    connections: 2,
    keepAliveTimeout: 30_000,
    headersTimeout: target.timeoutMs,
    bodyTimeout: target.timeoutMs,
    connect: (options, callback) => {
      trustedConnect({
        host: options.hostname,
        port: Number(options.port) || (tls ? 443 : 80),
        timeoutMs: target.timeoutMs,
        ...(tls ? { tls: { ...(ca ? { ca } : {}), ...(target.serverName ? { serverName: target.serverName } : {}) } } : {}),
      }).then((socket) => callback(null, socket), (err: Error) => callback(err, null));
    },
  });
}

/** Retry-After (RFC 9110 §10.2.3) as milliseconds: delay-seconds or an HTTP date; undefined when absent or bad. */
export function retryAfterMs(header: string | string[] | undefined, now = Date.now()): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/**
 * A response body as JSON, reading at most `cap` bytes so a receiver cannot make the sink buffer without bound.
 * Undefined when it is not JSON or runs over the cap: a truncated answer is never misread, the batch is retried.
 */
export async function readJsonCapped(body: AsyncIterable<Buffer>, cap: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > cap) return undefined;
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/** A network failure as a short reason: the error code only, never a message (which may carry a URL or header). */
export function describeFailure(err: unknown, closed: boolean, timeoutMs: number): string {
  if (closed) return 'sink closed';
  const name = err instanceof Error ? err.name : '';
  if (name === 'TimeoutError' || name === 'AbortError') return `no answer within ${timeoutMs} ms`;
  // undici's parser error has no code: without this a receiver answering garbage read as "connection failed (error)".
  if (name === 'HTTPParserError') return 'the receiver did not answer in HTTP/1.1';
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  // The agent's headers/body timeouts equal the request's: whichever fires first, the receiver did not answer.
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return `no answer within ${timeoutMs} ms`;
  return `connection failed (${typeof code === 'string' && /^[A-Za-z0-9_]{1,64}$/.test(code) ? code : 'error'})`;
}
