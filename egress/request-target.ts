import type { Reason } from '../core/errors/index.js';
import { canonicalizeHost, parseAuthority, type Authority, type CanonicalHost } from '../core/netguard/index.js';
import { BoundedCache } from '../core/util/bounded-cache.js';

/** Authority text (with its default port) to its parse; shared by the request handlers of one proxy. */
export type AuthorityCache = BoundedCache<string, Authority | null>;
export const createAuthorityCache = (): AuthorityCache => new BoundedCache(10_000);

const parseCached = (cache: AuthorityCache | undefined, text: string, defaultPort: number | null): Authority | null =>
  cache ? cache.getOrCompute(`${defaultPort ?? ''}|${text}`, () => parseAuthority(text, defaultPort)) : parseAuthority(text, defaultPort);

export interface ProxyTarget {
  readonly host: CanonicalHost;
  readonly port: number;
  /** Origin-form path and query to send upstream (absolute-form only). */
  readonly path: string;
  /** The authority as the client wrote it in the request target, for the upstream Host header. */
  readonly authority: string;
}

export type TargetResult = { readonly ok: true; readonly target: ProxyTarget } | { readonly ok: false; readonly reason: Reason };

const refuse = (reason: Reason): TargetResult => ({ ok: false, reason });

// RFC 3986 §3.3 path and §3.4 query characters, percent-encoded octets included. No spaces, no backslashes, no
// fragments, no controls: anything else is refused so no later parser can read the target differently.
const PATH_AND_QUERY = /^\/[A-Za-z0-9\-._~!$&'()*+,;=:@%/?]*$/;

/**
 * Parse an absolute-form request target (RFC 9112 §3.2.2), as proxies receive it: `http://host[:port]/path?query`.
 * Userinfo is refused (`http://allowed:x@evil/` reads differently to different parsers); so is a Host header that
 * names anything other than the target's authority.
 */
export function parseAbsoluteTarget(url: string, hostHeader: string | undefined | null, cache?: AuthorityCache): TargetResult {
  if (url.startsWith('/')) return refuse('malformed_request'); // origin-form: not a proxy request
  if (hostHeader === null) return refuse('host_mismatch');
  const schemeEnd = url.indexOf('://');
  if (schemeEnd === -1) return refuse('malformed_request');
  const scheme = url.slice(0, schemeEnd).toLowerCase();
  if (scheme !== 'http') return refuse(scheme === 'https' || scheme === 'ws' || scheme === 'wss' || scheme === 'ftp' ? 'unsupported_scheme' : 'malformed_request');
  const rest = url.slice(schemeEnd + 3);
  const slash = rest.search(/[/?#]/);
  const authority = slash === -1 ? rest : rest.slice(0, slash);
  let path = slash === -1 ? '/' : rest.slice(slash);
  if (path.startsWith('?')) path = `/${path}`;
  if (authority.includes('@')) return refuse('host_mismatch');
  if (authority.length === 0) return refuse('invalid_host');
  if (path.includes('#') || !PATH_AND_QUERY.test(path)) return refuse('malformed_request');
  const parsed = parseCached(cache, authority, 80);
  if (!parsed) return refuse('invalid_host');
  if (hostHeader !== undefined && !sameAuthority(hostHeader, parsed.host, parsed.port, 80, cache)) return refuse('host_mismatch');
  return { ok: true, target: { host: parsed.host, port: parsed.port, path, authority } };
}

/**
 * The Host header, or `null` when the request carries more than one: RFC 9112 §3.2 requires a 400 for that, and
 * two Host lines are how a request is made to mean different things to different parsers.
 */
export function singleHostHeader(rawHeaders: readonly string[]): string | undefined | null {
  let found: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    if (name.length === 4 && name.toLowerCase() === 'host') {
      if (found !== undefined) return null;
      found = rawHeaders[i + 1] as string;
    }
  }
  return found;
}

/** A CONNECT target must be authority-form `host:port` (RFC 9110 §9.3.6, RFC 9112 §3.2.3). */
export function parseConnectTarget(url: string, cache?: AuthorityCache): TargetResult {
  if (url.length === 0 || url.includes('/') || url.includes('@')) return refuse('malformed_request');
  const parsed = parseCached(cache, url, null);
  if (!parsed) {
    // Tell a bad host from a missing or bad port: the first is the client's business, the second a protocol error.
    const colon = url.lastIndexOf(':');
    const hostPart = colon === -1 ? url : url.slice(0, colon);
    return refuse(colon !== -1 && canonicalizeHost(hostPart) === null ? 'invalid_host' : 'malformed_request');
  }
  return { ok: true, target: { host: parsed.host, port: parsed.port, path: '', authority: url } };
}

/** Host header vs target, compared canonically (case, trailing dot, IPv4 spellings, default port). */
export function sameAuthority(header: string, host: CanonicalHost, port: number, defaultPort: number, cache?: AuthorityCache): boolean {
  const parsed = parseCached(cache, header.trim(), defaultPort);
  return parsed !== null && parsed.host.host === host.host && parsed.port === port;
}
