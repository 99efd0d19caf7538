import { describe, expect, it } from 'vitest';
import { parseIp, type IpAddress } from './ip-address.js';
import { SelfAddresses } from './self-addresses.js';

const ip = (text: string): IpAddress => parseIp(text) as IpAddress;

describe('SelfAddresses', () => {
  const self = new SelfAddresses();
  self.add('127.0.0.1', 3128); // the proxy
  self.add('::1', 9112); // an IPv6 listener
  self.add('0.0.0.0', 9090); // a wildcard listener

  it.each([
    // An exact listener: its address and port only.
    { address: '127.0.0.1', port: 3128, self: true },
    { address: '127.0.0.1', port: 80, self: false },
    { address: '127.0.0.2', port: 3128, self: false },
    // IPv6 exact listener, compared in canonical form.
    { address: '::1', port: 9112, self: true },
    { address: '::1', port: 3128, self: false },
    // A wildcard listener answers on loopback and unspecified addresses of its port.
    { address: '127.0.0.5', port: 9090, self: true },
    { address: '0.0.0.0', port: 9090, self: true },
    { address: '127.0.0.5', port: 9091, self: false },
    // Public addresses are not ours (this machine has none of these).
    { address: '203.0.113.9', port: 3128, self: false },
  ])('$address port $port: $self', ({ address, port, self: expected }) => {
    expect(self.has(ip(address), port)).toBe(expected);
  });
});
