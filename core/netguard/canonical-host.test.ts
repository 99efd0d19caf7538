import { describe, expect, it } from 'vitest';
import { canonicalizeHost, parseAuthority } from './canonical-host.js';

describe('canonicalizeHost', () => {
  // [input, expected canonical host or null when it must be refused]
  const table: ReadonlyArray<readonly [string, string | null, string]> = [
    ['example.com', 'example.com', 'plain name'],
    ['Api.Example.COM', 'api.example.com', 'case folded'],
    ['api.example.com.', 'api.example.com', 'one trailing dot dropped'],
    ['api.example.com..', null, 'two trailing dots'],
    ['.example.com', null, 'leading dot'],
    ['a..b.com', null, 'empty label'],
    ['münchen.de', 'xn--mnchen-3ya.de', 'IDNA to punycode'],
    ['MÜNCHEN.de', 'xn--mnchen-3ya.de', 'IDNA maps case first'],
    ['ｅｘａｍｐｌｅ.com', 'example.com', 'fullwidth letters map to ASCII'],
    ['xn--zz.com', null, 'invalid punycode'],
    ['_acme.example.com', '_acme.example.com', 'underscore label'],
    ['-bad.example.com', null, 'label starting with a hyphen'],
    ['bad-.example.com', null, 'label ending with a hyphen'],
    [`${'a'.repeat(64)}.com`, null, 'label over 63 octets'],
    [`${'a.'.repeat(127)}com`, null, 'name over 253 octets'],
    ['ex%41mple.com', null, 'percent escapes are refused, not decoded'],
    ['exa mple.com', null, 'space'],
    ['evil.com\\@good.com', null, 'backslash'],
    ['user@example.com', null, 'userinfo'],
    ['example.com/path', null, 'slash'],
    ['exa\u0000mple.com', null, 'NUL'],
    ['', null, 'empty'],
    // IPv4 in every inet_aton spelling becomes one dotted quad
    ['127.0.0.1', '127.0.0.1', 'dotted quad'],
    ['127.1', '127.0.0.1', 'two-part shorthand'],
    ['127.0.1', '127.0.0.1', 'three-part shorthand'],
    ['0x7f.0.0.1', '127.0.0.1', 'hex octet'],
    ['0x7f.1', '127.0.0.1', 'hex shorthand'],
    ['2130706433', '127.0.0.1', 'one decimal number'],
    ['0x7f000001', '127.0.0.1', 'one hex number'],
    ['0177.0.0.1', '127.0.0.1', 'octal octet'],
    ['017700000001', '127.0.0.1', 'one octal number'],
    ['127.0.0.1.', '127.0.0.1', 'trailing dot on an address'],
    ['127。0。0。1', '127.0.0.1', 'ideographic full stops'],
    ['169.254.169.254', '169.254.169.254', 'metadata address stays itself'],
    ['1.2.3.256', null, 'octet out of range'],
    ['4294967296', null, 'number out of range'],
    ['08.0.0.1', null, 'invalid octal digit'],
    ['1.2.3.4.5', null, 'five parts'],
    ['example.123', null, 'name ending in a number'],
    ['example.0x1', null, 'name ending in a hex number'],
    // IPv6
    ['[::1]', '::1', 'bracketed loopback'],
    ['::1', '::1', 'bare IPv6'],
    ['[2001:DB8:0:0:0:0:0:1]', '2001:db8::1', 'RFC 5952 compression and case'],
    ['[2001:db8:0:0:1:0:0:1]', '2001:db8::1:0:0:1', 'first longest zero run'],
    ['[::ffff:127.0.0.1]', '127.0.0.1', 'IPv4-mapped becomes IPv4'],
    ['[::ffff:7f00:1]', '127.0.0.1', 'IPv4-mapped in hex'],
    ['[::ffff:169.254.169.254]', '169.254.169.254', 'mapped metadata'],
    ['[fe80::1%eth0]', 'fe80::1', 'zone id dropped'],
    ['[fe80::1%25eth0]', 'fe80::1', 'URL-escaped zone id dropped'],
    ['[fe80::1%]', null, 'empty zone id'],
    ['[::1', null, 'unclosed bracket'],
    ['[1::2::3]', null, 'two double colons'],
    ['[1:2:3:4:5:6:7:8:9]', null, 'nine groups'],
    ['[12345::]', null, 'group over four digits'],
    ['[::1.2.3]', null, 'bad embedded IPv4'],
  ];
  it.each(table)('%s -> %s (%s)', (input, expected) => {
    expect(canonicalizeHost(input)?.host ?? null).toBe(expected);
  });

  it('tells names from addresses', () => {
    expect(canonicalizeHost('example.com')?.kind).toBe('name');
    expect(canonicalizeHost('127.1')?.kind).toBe('ip');
    expect(canonicalizeHost('[::1]')?.kind).toBe('ip');
  });
});

describe('parseAuthority', () => {
  const table: ReadonlyArray<readonly [string, number | null, string | null, number | null]> = [
    ['example.com:443', null, 'example.com', 443],
    ['example.com', 80, 'example.com', 80],
    ['example.com', null, null, null], // CONNECT needs a port
    ['[::1]:8080', null, '::1', 8080],
    ['[::1]', 80, '::1', 80],
    ['::1:80', null, null, null], // unbracketed IPv6 is ambiguous
    ['example.com:0', null, null, null],
    ['example.com:65536', null, null, null],
    ['example.com:+80', null, null, null],
    ['example.com:080', null, 'example.com', 80],
    ['example.com:', null, null, null],
    ['example.com:443:443', null, null, null],
    ['[::1]x', null, null, null],
    ['127.1:22', null, '127.0.0.1', 22],
  ];
  it.each(table)('%s (default %s) -> %s:%s', (input, defaultPort, host, port) => {
    const parsed = parseAuthority(input, defaultPort);
    expect(parsed?.host.host ?? null).toBe(host);
    expect(parsed?.port ?? null).toBe(port);
  });
});
