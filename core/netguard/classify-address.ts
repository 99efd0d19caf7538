import type { DeniedAddressReason } from '../errors/index.js';
import { cidr, cidrContains, type Cidr, type IpAddress, ipv4FromBytes } from './ip-address.js';

/**
 * Address classes. Everything but `public` is refused unless an `unsafe_allow_private` exception names the host and
 * a CIDR holding the address. Sources: IANA IPv4/IPv6 Special-Purpose Address Registries (RFC 6890 and updates).
 */
export type AddressClass =
  | 'public'
  | 'loopback'
  | 'unspecified'
  | 'private'
  | 'cgnat'
  | 'link_local'
  | 'metadata'
  | 'ula'
  | 'multicast'
  | 'broadcast'
  | 'reserved'
  | 'ipv4_embedded';

export interface Classification {
  readonly class: AddressClass;
  /** For IPv6 forms that carry an IPv4 address, the one they carry. */
  readonly embedded?: IpAddress;
}

type Table = ReadonlyArray<readonly [Cidr, AddressClass]>;

const table = (rows: ReadonlyArray<readonly [string, AddressClass]>): Table => rows.map(([c, k]) => [cidr(c), k] as const);

// Cloud metadata and platform endpoints, checked before the wider ranges that contain some of them, so the
// reason names what was really at stake. Several sit outside link-local on purpose (Azure, Alibaba, OCI).
const METADATA: readonly Cidr[] = [
  '169.254.169.254/32', // AWS, GCP, Azure IMDS, OpenStack, DigitalOcean …
  '169.254.170.2/32', // AWS ECS task metadata
  '169.254.169.253/32', // AWS VPC DNS
  '169.254.169.123/32', // AWS time sync
  '100.100.100.200/32', // Alibaba Cloud
  '168.63.129.16/32', // Azure WireServer (a public address)
  '192.0.0.192/32', // Oracle Cloud
  'fd00:ec2::/32', // AWS IMDS over IPv6
  'fd20:ce::254/128', // GCP
  'fd00:42::42/128', // Scaleway
  'fd00:100::100:200/128', // Alibaba Cloud IPv6
].map(cidr);

const IPV4 = table([
  ['0.0.0.0/8', 'unspecified'], // RFC 791 "this network"; 0.0.0.0 reaches the local host on Linux
  ['10.0.0.0/8', 'private'], // RFC 1918
  ['100.64.0.0/10', 'cgnat'], // RFC 6598
  ['127.0.0.0/8', 'loopback'], // RFC 1122
  ['169.254.0.0/16', 'link_local'], // RFC 3927
  ['172.16.0.0/12', 'private'], // RFC 1918
  ['192.0.0.0/24', 'reserved'], // RFC 6890 IETF protocol assignments
  ['192.0.2.0/24', 'reserved'], // RFC 5737 TEST-NET-1
  ['192.88.99.0/24', 'reserved'], // RFC 7526 deprecated 6to4 relay anycast
  ['192.168.0.0/16', 'private'], // RFC 1918
  ['198.18.0.0/15', 'reserved'], // RFC 2544 benchmarking
  ['198.51.100.0/24', 'reserved'], // RFC 5737 TEST-NET-2
  ['203.0.113.0/24', 'reserved'], // RFC 5737 TEST-NET-3
  ['224.0.0.0/4', 'multicast'], // RFC 5771
  ['255.255.255.255/32', 'broadcast'], // RFC 919
  ['240.0.0.0/4', 'reserved'], // RFC 1112 future use
]);

const IPV6 = table([
  ['::/128', 'unspecified'], // RFC 4291
  ['::1/128', 'loopback'], // RFC 4291
  ['100::/64', 'reserved'], // RFC 6666 discard-only
  ['2001:2::/48', 'reserved'], // RFC 5180 benchmarking
  ['2001:10::/28', 'reserved'], // RFC 4843 ORCHID (deprecated)
  ['2001:20::/28', 'reserved'], // RFC 7343 ORCHIDv2
  ['2001:db8::/32', 'reserved'], // RFC 3849 documentation
  ['3fff::/20', 'reserved'], // RFC 9637 documentation
  ['5f00::/16', 'reserved'], // RFC 9602 SRv6 SIDs
  ['fc00::/7', 'ula'], // RFC 4193
  ['fe80::/10', 'link_local'], // RFC 4291
  ['fec0::/10', 'reserved'], // RFC 3879 deprecated site-local
  ['ff00::/8', 'multicast'], // RFC 4291
]);

const GLOBAL_UNICAST = cidr('2000::/3'); // RFC 4291 §2.4: everything else is not (yet) globally routable
const MAPPED = cidr('::ffff:0:0/96'); // RFC 4291 §2.5.5.2
const COMPATIBLE = cidr('::/96'); // RFC 4291 §2.5.5.1 (deprecated)
const NAT64 = cidr('64:ff9b::/96'); // RFC 6052
const NAT64_LOCAL = cidr('64:ff9b:1::/48'); // RFC 8215
const SIX_TO_FOUR = cidr('2002::/16'); // RFC 3056
const TEREDO = cidr('2001::/32'); // RFC 4380

const lookup = (table: Table, ip: IpAddress): AddressClass | null => {
  for (const [range, kind] of table) if (cidrContains(range, ip)) return kind;
  return null;
};

const isMetadata = (ip: IpAddress): boolean => METADATA.some((range) => cidrContains(range, ip));

function classifyIpv4(ip: IpAddress): AddressClass {
  if (isMetadata(ip)) return 'metadata';
  return lookup(IPV4, ip) ?? 'public';
}

/** The IPv4 address an IPv6 address carries, for the forms that carry one. */
export function embeddedIpv4(ip: IpAddress): { form: 'mapped' | 'compatible' | 'nat64' | '6to4' | 'teredo'; v4: IpAddress } | null {
  if (ip.family !== 6) return null;
  const b = ip.bytes;
  if (cidrContains(MAPPED, ip)) return { form: 'mapped', v4: ipv4FromBytes(b.slice(12, 16)) };
  if (cidrContains(NAT64, ip)) return { form: 'nat64', v4: ipv4FromBytes(b.slice(12, 16)) };
  // RFC 6052 §2.2 with a /48 prefix: the IPv4 bytes sit at 6..8 and 9..10, skipping the "u" octet at 8.
  if (cidrContains(NAT64_LOCAL, ip)) return { form: 'nat64', v4: ipv4FromBytes(Uint8Array.of(b[6] as number, b[7] as number, b[9] as number, b[10] as number)) };
  if (cidrContains(SIX_TO_FOUR, ip)) return { form: '6to4', v4: ipv4FromBytes(b.slice(2, 6)) };
  // RFC 4380 §4: the client's IPv4 address is the last 32 bits, inverted.
  if (cidrContains(TEREDO, ip)) return { form: 'teredo', v4: ipv4FromBytes(b.slice(12, 16).map((x) => x ^ 0xff)) };
  if (cidrContains(COMPATIBLE, ip)) return { form: 'compatible', v4: ipv4FromBytes(b.slice(12, 16)) };
  return null;
}

/**
 * Classify one address. IPv4-mapped IPv6 is judged as the IPv4 address it is (the kernel dials that address);
 * every other embedding is refused outright, with the embedded address's own class when that is more telling.
 */
export function classifyAddress(ip: IpAddress): Classification {
  if (ip.family === 4) return { class: classifyIpv4(ip) };
  if (isMetadata(ip)) return { class: 'metadata' };
  const direct = lookup(IPV6, ip);
  if (direct) return { class: direct };
  const embedded = embeddedIpv4(ip);
  if (embedded) {
    const inner = classifyIpv4(embedded.v4);
    if (embedded.form === 'mapped') return { class: inner, embedded: embedded.v4 };
    return { class: inner === 'public' ? 'ipv4_embedded' : inner, embedded: embedded.v4 };
  }
  if (!cidrContains(GLOBAL_UNICAST, ip)) return { class: 'reserved' };
  return { class: 'public' };
}

export function denyReasonFor(kind: Exclude<AddressClass, 'public'>): DeniedAddressReason {
  return `ip_denied_${kind}`;
}
