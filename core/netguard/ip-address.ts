/**
 * IP addresses as bytes: strict parsing of canonical text forms, RFC 5952 formatting and CIDR containment.
 * Lenient spellings (`127.1`, `0x7f.0.0.1`) are handled by canonical-host.ts before anything reaches here.
 */

export interface IpAddress {
  readonly family: 4 | 6;
  /** 4 or 16 bytes, network order. */
  readonly bytes: Uint8Array;
}

const DOTTED_QUAD = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** Strict dotted quad, no leading zeros (`010.0.0.1` is not accepted here: it is ambiguous). */
export function parseIpv4(text: string): IpAddress | null {
  if (!DOTTED_QUAD.test(text)) return null;
  const bytes = new Uint8Array(4);
  const parts = text.split('.');
  for (let i = 0; i < 4; i++) bytes[i] = Number(parts[i]);
  return { family: 4, bytes };
}

const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

/** RFC 4291 §2.2 text forms, including a trailing dotted quad. No zone id, no brackets. */
export function parseIpv6(text: string): IpAddress | null {
  if (text.length < 2 || text.length > 45) return null;
  const doubleColon = text.indexOf('::');
  if (doubleColon !== -1 && text.indexOf('::', doubleColon + 1) !== -1) return null;
  const [headText, tailText] = doubleColon === -1 ? [text, null] : [text.slice(0, doubleColon), text.slice(doubleColon + 2)];
  const head = headText === '' ? [] : headText.split(':');
  const tail = tailText === null || tailText === '' ? [] : tailText.split(':');
  const groups: number[] = [];
  const pushGroups = (parts: string[], isLast: boolean): boolean => {
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i] as string;
      if (isLast && i === parts.length - 1 && part.includes('.')) {
        const v4 = parseIpv4(part);
        if (!v4) return false;
        groups.push(((v4.bytes[0] as number) << 8) | (v4.bytes[1] as number));
        groups.push(((v4.bytes[2] as number) << 8) | (v4.bytes[3] as number));
        continue;
      }
      if (!HEX_GROUP.test(part)) return false;
      groups.push(parseInt(part, 16));
    }
    return true;
  };
  if (tailText === null) {
    if (!pushGroups(head, true) || groups.length !== 8) return null;
  } else {
    if (!pushGroups(head, tail.length === 0)) return null;
    const headCount = groups.length;
    if (!pushGroups(tail, true)) return null;
    const missing = 8 - groups.length;
    // RFC 4291: "::" stands for one or more groups of zeros.
    if (missing < 1) return null;
    groups.splice(headCount, 0, ...new Array<number>(missing).fill(0));
  }
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => {
    bytes[i * 2] = g >> 8;
    bytes[i * 2 + 1] = g & 0xff;
  });
  return { family: 6, bytes };
}

export function parseIp(text: string): IpAddress | null {
  return text.includes(':') ? parseIpv6(text) : parseIpv4(text);
}

/** RFC 5952 §4: lower case, no leading zeros, the longest run (first on a tie) of 2+ zero groups as "::". */
export function formatIp(ip: IpAddress): string {
  const b = ip.bytes;
  if (ip.family === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i] as number) << 8) | (b[i + 1] as number));
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart === -1) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

export interface Cidr {
  readonly family: 4 | 6;
  readonly bytes: Uint8Array;
  readonly prefix: number;
  /** Canonical text, e.g. `10.0.0.0/8`, `fd00:ec2::/32`. */
  readonly text: string;
}

/** `addr/prefix` (or a bare address as a host route). Host bits must be zero, so a typo cannot widen a rule. */
export function parseCidr(text: string): Cidr | null {
  const slash = text.indexOf('/');
  const addrText = slash === -1 ? text : text.slice(0, slash);
  const ip = parseIp(addrText.startsWith('[') && addrText.endsWith(']') ? addrText.slice(1, -1) : addrText);
  if (!ip) return null;
  const max = ip.family === 4 ? 32 : 128;
  let prefix = max;
  if (slash !== -1) {
    const p = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p)) return null;
    prefix = Number(p);
    if (prefix > max) return null;
  }
  for (let bit = prefix; bit < max; bit++) {
    if (((ip.bytes[bit >> 3] as number) >> (7 - (bit & 7))) & 1) return null;
  }
  return { family: ip.family, bytes: ip.bytes, prefix, text: `${formatIp(ip)}/${prefix}` };
}

export function cidrContains(cidr: Cidr, ip: IpAddress): boolean {
  if (cidr.family !== ip.family) return false;
  const full = cidr.prefix >> 3;
  for (let i = 0; i < full; i++) if (cidr.bytes[i] !== ip.bytes[i]) return false;
  const rest = cidr.prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return ((cidr.bytes[full] as number) & mask) === ((ip.bytes[full] as number) & mask);
}

/** True when every address of `inner` is inside `outer`. */
export function cidrCovers(outer: Cidr, inner: Cidr): boolean {
  return outer.family === inner.family && outer.prefix <= inner.prefix && cidrContains(outer, inner);
}

/** A CIDR literal that must parse (for the built-in tables). */
export function cidr(text: string): Cidr {
  const parsed = parseCidr(text);
  if (!parsed) throw new Error(`built-in CIDR does not parse: ${text}`);
  return parsed;
}

export function ipv4FromBytes(bytes: Uint8Array): IpAddress {
  return { family: 4, bytes };
}
