import { describe, expect, it } from 'vitest';
import { classifyAddress } from './classify-address.js';
import { canonicalizeHost } from './canonical-host.js';
import { cidrContains, formatIp, parseCidr, parseIp } from './ip-address.js';

const classOf = (text: string): string => {
  const host = canonicalizeHost(text);
  if (host?.kind !== 'ip') throw new Error(`not an address: ${text}`);
  return classifyAddress(host.ip).class;
};

describe('classifyAddress', () => {
  // [address (any spelling canonicalizeHost accepts), class]
  const table: ReadonlyArray<readonly [string, string, string]> = [
    ['8.8.8.8', 'public', 'ordinary public IPv4'],
    ['1.1.1.1', 'public', 'ordinary public IPv4'],
    ['127.0.0.1', 'loopback', 'loopback'],
    ['127.255.255.254', 'loopback', 'all of 127/8'],
    ['127.1', 'loopback', 'loopback shorthand'],
    ['2130706433', 'loopback', 'loopback as a number'],
    ['0x7f.0.0.1', 'loopback', 'loopback in hex'],
    ['0177.0.0.1', 'loopback', 'loopback in octal'],
    ['0.0.0.0', 'unspecified', 'unspecified (reaches localhost on Linux)'],
    ['0.1.2.3', 'unspecified', '0/8'],
    ['10.1.2.3', 'private', 'RFC 1918 10/8'],
    ['172.16.0.1', 'private', 'RFC 1918 172.16/12'],
    ['172.31.255.255', 'private', 'top of 172.16/12'],
    ['172.32.0.1', 'public', 'just outside 172.16/12'],
    ['192.168.1.1', 'private', 'RFC 1918 192.168/16'],
    ['100.64.0.1', 'cgnat', 'CGNAT 100.64/10'],
    ['100.127.255.255', 'cgnat', 'top of CGNAT'],
    ['100.128.0.1', 'public', 'just outside CGNAT'],
    ['169.254.1.1', 'link_local', 'IPv4 link-local'],
    ['169.254.169.254', 'metadata', 'AWS/GCP/Azure IMDS'],
    ['169.254.170.2', 'metadata', 'AWS ECS task metadata'],
    ['100.100.100.200', 'metadata', 'Alibaba metadata (inside CGNAT)'],
    ['168.63.129.16', 'metadata', 'Azure WireServer (a public address)'],
    ['192.0.0.192', 'metadata', 'Oracle Cloud metadata'],
    ['224.0.0.1', 'multicast', 'multicast'],
    ['239.255.255.250', 'multicast', 'SSDP multicast'],
    ['255.255.255.255', 'broadcast', 'limited broadcast'],
    ['240.0.0.1', 'reserved', 'class E'],
    ['192.0.2.1', 'reserved', 'TEST-NET-1'],
    ['198.51.100.7', 'reserved', 'TEST-NET-2'],
    ['203.0.113.9', 'reserved', 'TEST-NET-3'],
    ['198.18.0.1', 'reserved', 'benchmarking'],
    ['192.0.0.8', 'reserved', 'IETF protocol assignments'],
    // IPv6
    ['[2606:4700::1111]', 'public', 'public IPv6'],
    ['[::]', 'unspecified', 'IPv6 unspecified'],
    ['[::1]', 'loopback', 'IPv6 loopback'],
    ['[fe80::1]', 'link_local', 'IPv6 link-local'],
    ['[fe80::1%25eth0]', 'link_local', 'link-local with a zone id'],
    ['[fc00::1]', 'ula', 'ULA fc00::/7'],
    ['[fd12:3456::1]', 'ula', 'ULA fd00::/8'],
    ['[fd00:ec2::254]', 'metadata', 'AWS IMDS IPv6'],
    ['[fd20:ce::254]', 'metadata', 'GCP metadata IPv6'],
    ['[ff02::1]', 'multicast', 'IPv6 multicast'],
    ['[2001:db8::1]', 'reserved', 'IPv6 documentation'],
    ['[3fff::1]', 'reserved', 'IPv6 documentation (RFC 9637)'],
    ['[100::1]', 'reserved', 'discard-only'],
    ['[fec0::1]', 'reserved', 'deprecated site-local'],
    ['[4000::1]', 'reserved', 'outside 2000::/3'],
    // IPv4 embedded in IPv6
    ['[::ffff:127.0.0.1]', 'loopback', 'mapped loopback is judged as IPv4'],
    ['[::ffff:169.254.169.254]', 'metadata', 'mapped metadata'],
    ['[::ffff:8.8.8.8]', 'public', 'mapped public is that public address'],
    ['[::127.0.0.1]', 'loopback', 'IPv4-compatible loopback'],
    ['[::a9fe:a9fe]', 'metadata', 'IPv4-compatible metadata (hex)'],
    ['[::8.8.8.8]', 'ipv4_embedded', 'IPv4-compatible public: refused outright'],
    ['[64:ff9b::a9fe:a9fe]', 'metadata', 'NAT64 metadata'],
    ['[64:ff9b::10.0.0.1]', 'private', 'NAT64 private'],
    ['[64:ff9b::8.8.8.8]', 'ipv4_embedded', 'NAT64 public: refused outright'],
    ['[64:ff9b:1:a9fe:a9:fe00::]', 'metadata', 'local-use NAT64 /48 embedding 169.254.169.254'],
    ['[64:ff9b:1:808:8:800::]', 'ipv4_embedded', 'local-use NAT64 carrying 8.8.8.8'],
    ['[2002:a9fe:a9fe::]', 'metadata', '6to4 metadata'],
    ['[2002:7f00:1::]', 'loopback', '6to4 loopback'],
    ['[2002:808:808::]', 'ipv4_embedded', '6to4 public: refused outright'],
    ['[2001:0:4136:e378:8000:63bf:80ff:fffe]', 'loopback', 'Teredo carrying 127.0.0.1 (inverted)'],
    ['[2001:0:4136:e378:8000:63bf:f7f7:f7f7]', 'ipv4_embedded', 'Teredo carrying a public client (8.8.8.8)'],
    ['[2001:0:4136:e378:8000:63bf:3fff:fdd2]', 'reserved', 'Teredo carrying 192.0.2.45 (RFC 4380 example)'],
  ];
  it.each(table)('%s is %s (%s)', (address, expected) => {
    expect(classOf(address)).toBe(expected);
  });
});

describe('CIDR', () => {
  it('parses, refuses host bits and checks containment', () => {
    const ten = parseCidr('10.0.0.0/8');
    expect(ten?.text).toBe('10.0.0.0/8');
    expect(parseCidr('10.0.0.1/8')).toBeNull();
    expect(parseCidr('10.0.0.0/33')).toBeNull();
    expect(parseCidr('fd00:ec2::/32')?.text).toBe('fd00:ec2::/32');
    expect(parseCidr('[::1]/128')?.text).toBe('::1/128');
    const ip = parseIp('10.200.3.4');
    expect(ip && ten && cidrContains(ten, ip)).toBe(true);
    const other = parseIp('11.0.0.1');
    expect(other && ten && cidrContains(ten, other)).toBe(false);
    const v6 = parseIp('::ffff:10.0.0.1');
    expect(v6 && ten && cidrContains(ten, v6)).toBe(false);
  });

  it('formats IPv6 per RFC 5952', () => {
    const cases: ReadonlyArray<readonly [string, string]> = [
      ['0:0:0:0:0:0:0:0', '::'],
      ['2001:db8:0:0:0:0:2:1', '2001:db8::2:1'],
      ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
      ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
    ];
    for (const [input, expected] of cases) {
      const ip = parseIp(input);
      expect(ip && formatIp(ip)).toBe(expected);
    }
  });
});
