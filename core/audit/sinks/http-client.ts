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
