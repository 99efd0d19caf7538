import { getDomain } from 'tldts';
import { canonicalizeHost, type CanonicalHost } from '../netguard/canonical-host.js';
import { cidrContains, cidrCovers, parseCidr, type Cidr } from '../netguard/ip-address.js';
import { formatPortSet, parsePortItem, parsePortSpec, portInSet, portSet, WEB_PORTS, type PortSet } from './port-set.js';

/**
 * A destination pattern, as written in the policy (`allow`, `deny`) and in a token's `egress` claim:
 *
 *   api.example.com          exact host, ports 80 and 443
 *   *.example.com:443        any subdomain (never the apex), port 443
 *   db.internal:5432,6432    explicit ports; `8000-8100` ranges; `*` for every port
 *   203.0.113.7  [2001:db8::1]:443   IP literals (match only when the destination is that literal)
 *   10.0.0.0/8  [fd00::/8]:443       CIDRs (match IP-literal destinations; in deny rules also resolved addresses)
 */
export type DestPattern =
  | { readonly kind: 'exact'; readonly host: string; readonly ports: PortSet; readonly text: string }
  | { readonly kind: 'wildcard'; readonly suffix: string; readonly ports: PortSet; readonly text: string }
  | { readonly kind: 'cidr'; readonly cidr: Cidr; readonly ports: PortSet; readonly text: string };

export type PatternProblemCode = 'invalid-host' | 'invalid-ports' | 'over-broad';

export type PatternResult =
  | { readonly ok: true; readonly pattern: DestPattern }
  | { readonly ok: false; readonly code: PatternProblemCode; readonly message: string };

export interface PatternOptions {
  /** Ports from a policy object's `ports:` list, instead of a `:spec` suffix. */
  readonly ports?: ReadonlyArray<string | number>;
  /** Grants (allow rules, token claims) refuse patterns that match half the internet; deny rules may be broad. */
  readonly purpose: 'grant' | 'deny';
}

const fail = (code: PatternProblemCode, message: string): PatternResult => ({ ok: false, code, message });

/** Split `host[:spec]`, honouring brackets around IPv6 addresses and CIDRs. */
function splitPattern(text: string): { host: string; spec: string | null } | null {
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close === -1) return null;
    const rest = text.slice(close + 1);
    if (rest !== '' && !rest.startsWith(':')) return null;
    return { host: text.slice(1, close), spec: rest === '' ? null : rest.slice(1) };
  }
  const colons = text.split(':').length - 1;
  if (colons > 1) return { host: text, spec: null }; // a bare IPv6 address or CIDR, no port
  if (colons === 1) {
    const at = text.indexOf(':');
    return { host: text.slice(0, at), spec: text.slice(at + 1) };
  }
  return { host: text, spec: null };
}

function resolvePorts(spec: string | null, list: PatternOptions['ports']): PortSet | null {
  if (spec !== null && list !== undefined) return null;
  if (list !== undefined) {
    if (list.length === 0) return null;
    const ranges: Array<readonly [number, number]> = [];
    for (const item of list) {
      if (item === '*') return parsePortSpec('*');
      const range = parsePortItem(item);
      if (!range) return null;
      ranges.push(range);
    }
    return portSet(ranges);
  }
  return spec === null ? WEB_PORTS : parsePortSpec(spec);
}

/** The canonical text of a pattern: what tokens carry and what `explain` prints. */
export function formatPattern(hostPart: string, ports: PortSet, bracket: boolean): string {
  const spec = formatPortSet(ports);
  const host = bracket && spec !== null ? `[${hostPart}]` : hostPart;
  return spec === null ? host : `${host}:${spec}`;
}

export function parseDestPattern(raw: string, options: PatternOptions): PatternResult {
  const text = raw.trim();
  if (text === '' || text === '*' || text === '*.*') {
    return fail('over-broad', `"${raw}" would match every host; list the hosts this tenant needs`);
  }
  const parts = splitPattern(text);
  if (!parts) return fail('invalid-host', `"${raw}" is not host[:port]`);
  const ports = resolvePorts(parts.spec, options.ports);
  if (!ports) {
    return fail('invalid-ports', `"${raw}": ports must be 1-65535, ranges N-M, or *, given once (either ":ports" or a ports list)`);
  }
  const host = parts.host;

  if (host.includes('/')) {
    const range = parseCidr(host);
    if (!range) return fail('invalid-host', `"${host}" is not a CIDR (address/prefix with the host bits zero)`);
    const minPrefix = range.family === 4 ? 8 : 16;
    if (options.purpose === 'grant' && range.prefix < minPrefix) {
      return fail('over-broad', `"${host}" is broader than /${minPrefix}; grant narrower ranges`);
    }
    if (range.prefix === (range.family === 4 ? 32 : 128)) {
      return { ok: true, pattern: { kind: 'cidr', cidr: range, ports, text: formatPattern(range.text.replace(/\/\d+$/, ''), ports, range.family === 6) } };
    }
    return { ok: true, pattern: { kind: 'cidr', cidr: range, ports, text: formatPattern(range.text, ports, range.family === 6) } };
  }

  if (host.startsWith('*.')) {
    const suffix = canonicalizeHost(host.slice(2));
    if (!suffix || suffix.kind !== 'name') return fail('invalid-host', `"${host}": only a leading "*." label may be a wildcard`);
    // SECURITY: `*.com` or `*.co.uk` would admit every registrable domain under a public suffix.
    if (options.purpose === 'grant' && getDomain(suffix.host, { allowPrivateDomains: false }) === null) {
      return fail('over-broad', `"${host}" covers a whole public suffix; name the registrable domain, e.g. *.example.${suffix.host}`);
    }
    return { ok: true, pattern: { kind: 'wildcard', suffix: suffix.host, ports, text: formatPattern(`*.${suffix.host}`, ports, false) } };
  }
  if (host.includes('*')) return fail('invalid-host', `"${host}": only a leading "*." label may be a wildcard`);

  const canonical = canonicalizeHost(host);
  if (!canonical) return fail('invalid-host', `"${host}" is not a valid host name or address`);
  if (canonical.kind === 'ip') {
    const bits = canonical.ip.family === 4 ? 32 : 128;
    const range = parseCidr(`${canonical.host}/${bits}`) as Cidr;
    return { ok: true, pattern: { kind: 'cidr', cidr: range, ports, text: formatPattern(canonical.host, ports, canonical.ip.family === 6) } };
  }
  return { ok: true, pattern: { kind: 'exact', host: canonical.host, ports, text: formatPattern(canonical.host, ports, false) } };
}

/** Does the pattern's host part match this canonical host (ports aside)? Names never match IP patterns. */
export function matchHost(pattern: DestPattern, host: CanonicalHost): boolean {
  switch (pattern.kind) {
    case 'exact':
      return host.kind === 'name' && host.host === pattern.host;
    case 'wildcard':
      // Subdomains at any depth, never the apex itself.
      return host.kind === 'name' && host.host.length > pattern.suffix.length + 1 && host.host.endsWith(`.${pattern.suffix}`);
    case 'cidr':
      return host.kind === 'ip' && cidrContains(pattern.cidr, host.ip);
  }
}

export function matchDest(pattern: DestPattern, host: CanonicalHost, port: number): boolean {
  return matchHost(pattern, host) && portInSet(pattern.ports, port);
}

/** Does every host `inner` can match also match `outer` (ports aside)? Used when issuing tokens under a ceiling. */
export function hostCovers(outer: DestPattern, inner: DestPattern): boolean {
  switch (inner.kind) {
    case 'exact':
      return outer.kind !== 'cidr' && matchHost(outer, { kind: 'name', host: inner.host });
    case 'wildcard':
      if (outer.kind !== 'wildcard') return false;
      return inner.suffix === outer.suffix || inner.suffix.endsWith(`.${outer.suffix}`);
    case 'cidr':
      return outer.kind === 'cidr' && cidrCovers(outer.cidr, inner.cidr);
  }
}
