import type { IncomingHttpHeaders } from 'node:http';

// RFC 9110 §7.6.1 connection-specific fields, plus the proxy's own: never forwarded in either direction.
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  // Expect: 100-continue is answered by Gatehouse's own server to the client (RFC 9110 §10.1.1); the body is
  // then relayed as it arrives, so the upstream never needs to see the expectation.
  'expect',
]);

/** Names listed in the Connection header are hop-by-hop too (RFC 9110 §7.6.1). */
const NONE: ReadonlySet<string> = new Set();
function connectionTokens(value: string | string[] | undefined): ReadonlySet<string> {
  if (value === undefined) return NONE;
  // Most messages say only `keep-alive` or `close` (options, not header names): answer those without splitting.
  if (typeof value === 'string' && OPTIONS_ONLY.has(value)) return NONE;
  let tokens: Set<string> | null = null;
  for (const part of Array.isArray(value) ? value : [value]) {
    for (const t of part.split(',')) {
      const name = t.trim().toLowerCase();
      // keep-alive and close are connection options, not header names; nothing to strip for them
      if (name && name !== 'keep-alive' && name !== 'close') (tokens ??= new Set()).add(name);
    }
  }
  return tokens ?? NONE;
}
const OPTIONS_ONLY: ReadonlySet<string> = new Set(['keep-alive', 'Keep-Alive', 'close', 'Close', '']);

/**
 * Request headers to send upstream, from the raw header list (so repeated fields and their order survive):
 * hop-by-hop fields and Proxy-Authorization removed, Host set to the target authority. `keepUpgrade` keeps
 * Connection/Upgrade for a WebSocket handshake.
 */
export function upstreamRequestHeaders(raw: readonly string[], connection: string | string[] | undefined, authority: string, keepUpgrade: boolean): string[] {
  const listed = connectionTokens(connection);
  // SECURITY: the session token travels in Proxy-Authorization and must never reach the origin.
  const out: string[] = ['host', authority];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || listed.has(lower)) continue;
    out.push(name, raw[i + 1] as string);
  }
  if (keepUpgrade) out.push('connection', 'upgrade', 'upgrade', String(raw[raw.findIndex((v, i) => i % 2 === 0 && v.toLowerCase() === 'upgrade') + 1] ?? 'websocket'));
  return out;
}

/** Response headers to send back to the client: hop-by-hop fields removed. */
export function downstreamResponseHeaders(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const listed = connectionTokens(headers['connection']);
  const out: Record<string, string | string[]> = {};
  // Object.keys rather than Object.entries: one array per response, not one pair array per header.
  for (const name of Object.keys(headers)) {
    const value = headers[name];
    if (value === undefined) continue;
    const lower = name.toLowerCase();
    if ((HOP_BY_HOP.has(lower) && lower !== 'host') || listed.has(lower)) continue;
    out[name] = value;
  }
  return out;
}
