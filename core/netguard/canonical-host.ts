import { domainToASCII } from 'node:url';
import { embeddedIpv4 } from './classify-address.js';
import { formatIp, parseIpv4, parseIpv6, type IpAddress } from './ip-address.js';

/**
 * One canonical spelling of a destination host. It is computed once per request and then used for the policy
 * decision, the resolution, the dial and the audit event, so no two parts of Gatehouse can read a host differently.
 */
export type CanonicalHost =
  | { readonly kind: 'name'; readonly host: string }
  | { readonly kind: 'ip'; readonly host: string; readonly ip: IpAddress };

export const MAX_HOST_LENGTH = 253;

// Characters that never belong in a host we will accept, before IDNA: separators a parser elsewhere could read
// differently (userinfo, path, backslash), percent-escapes (decoded by WHATWG, a classic smuggling vector),
// whitespace and controls.
const FORBIDDEN = /[\s%/\\@?#[\]<>^|"`{}\x00-\x1f\x7f]/u;
const LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/;

function ipHost(ip: IpAddress): CanonicalHost {
  // SECURITY: an IPv4-mapped IPv6 address is that IPv4 address on the wire; spell it so, so policy and the
  // address guard see one address, not two spellings of it.
  const mapped = embeddedIpv4(ip);
  const actual = mapped?.form === 'mapped' ? mapped.v4 : ip;
  return { kind: 'ip', host: formatIp(actual), ip: actual };
}

/**
 * Canonicalise a host as it appears in a request target, a CONNECT authority, a policy pattern or a token claim.
 *
 * Names: IDNA (UTS #46, via WHATWG's domainToASCII) to lower-case punycode, one trailing dot removed, labels of
 * letters, digits, `-` and `_` only. IPv4 in any inet_aton spelling (`127.1`, `0x7f.0.0.1`, `2130706433`,
 * `0177.0.0.1`) becomes a dotted quad, following the WHATWG URL host parser, which is what clients implement.
 * IPv6 may come bracketed, with a zone id (`%eth0` or URL-escaped `%25eth0`) which is dropped; the address is
 * written per RFC 5952. Returns null for anything that does not parse.
 */
export function canonicalizeHost(raw: string): CanonicalHost | null {
  if (raw.length === 0 || raw.length > 300) return null;
  let text = raw;
  if (text.startsWith('[')) {
    if (!text.endsWith(']')) return null;
    text = text.slice(1, -1);
  }
  if (text.includes(':')) {
    const zone = text.indexOf('%');
    const bare = zone === -1 ? text : text.slice(0, zone);
    if (zone !== -1 && !/^%(25)?[A-Za-z0-9_.-]{1,32}$/.test(text.slice(zone))) return null;
    const ip = parseIpv6(bare);
    return ip ? ipHost(ip) : null;
  }
  if (FORBIDDEN.test(text)) return null;
  const ascii = domainToASCII(text);
  if (ascii === '') return null;
  // WHATWG has already turned every IPv4 spelling into a dotted quad (and rejected names ending in a number).
  const v4 = parseIpv4(ascii.endsWith('.') ? ascii.slice(0, -1) : ascii);
  if (v4) return ipHost(v4);
  const name = ascii.endsWith('.') ? ascii.slice(0, -1) : ascii;
  if (name.length === 0 || name.length > MAX_HOST_LENGTH) return null;
  const labels = name.split('.');
  if (!labels.every((label) => LABEL.test(label))) return null;
  // A name whose last label is all digits would be an IPv4 address to some parsers and a name to others.
  if (/^\d+$/.test(labels[labels.length - 1] as string)) return null;
  return { kind: 'name', host: name };
}

/** The host as it goes into an authority (`host:port`): IPv6 bracketed. */
export function hostForAuthority(host: CanonicalHost): string {
  return host.kind === 'ip' && host.ip.family === 6 ? `[${host.host}]` : host.host;
}

export interface Authority {
  readonly host: CanonicalHost;
  readonly port: number;
}

const PORT = /^[0-9]{1,5}$/;

export function parsePort(text: string): number | null {
  if (!PORT.test(text)) return null;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : null;
}

/**
 * Parse `host[:port]` (RFC 3986 §3.2.2/§3.2.3). With `defaultPort` null a port is required (CONNECT, RFC 9110
 * §9.3.6). Userinfo is never accepted here: callers reject it before, with their own reason.
 */
export function parseAuthority(text: string, defaultPort: number | null): Authority | null {
  let hostText: string;
  let portText: string | null = null;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close === -1) return null;
    hostText = text.slice(0, close + 1);
    const rest = text.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) return null;
      portText = rest.slice(1);
    }
  } else {
    const colon = text.lastIndexOf(':');
    if (colon !== -1) {
      if (text.indexOf(':') !== colon) return null; // an unbracketed IPv6 literal is ambiguous
      hostText = text.slice(0, colon);
      portText = text.slice(colon + 1);
    } else {
      hostText = text;
    }
  }
  let port: number | null;
  if (portText === null) port = defaultPort;
  else port = parsePort(portText);
  if (port === null) return null;
  const host = canonicalizeHost(hostText);
  return host ? { host, port } : null;
}
