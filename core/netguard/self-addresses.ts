import { networkInterfaces } from 'node:os';
import { canonicalizeHost } from './canonical-host.js';
import { classifyAddress } from './classify-address.js';
import { formatIp, type IpAddress } from './ip-address.js';

/**
 * Gatehouse's own listening addresses. A destination that lands on one of them would loop back into Gatehouse
 * (or reach its admin API), so it is refused whatever exceptions the policy holds.
 */
export class SelfAddresses {
  private readonly exact = new Set<string>();
  /** The ports in `exact`: a destination on any other port (nearly all of them) needs no address text built. */
  private readonly exactPorts = new Set<number>();
  private readonly wildcardPorts = new Set<number>();

  /** Record a bound listener (`address` as reported by `server.address()`). */
  add(address: string, port: number): void {
    const host = canonicalizeHost(address);
    if (host?.kind !== 'ip') return;
    const kind = classifyAddress(host.ip).class;
    if (kind === 'unspecified') this.wildcardPorts.add(port);
    else {
      this.exact.add(`${host.host}|${port}`);
      this.exactPorts.add(port);
    }
  }

  has(ip: IpAddress, port: number): boolean {
    if (this.exactPorts.has(port) && this.exact.has(`${formatIp(ip)}|${port}`)) return true;
    if (!this.wildcardPorts.has(port)) return false;
    // A wildcard listener answers on every local address, loopback included.
    const kind = classifyAddress(ip).class;
    if (kind === 'loopback' || kind === 'unspecified') return true;
    return localInterfaceAddresses().has(formatIp(ip));
  }
}

function localInterfaceAddresses(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(networkInterfaces())) {
    for (const entry of list ?? []) {
      const host = canonicalizeHost(entry.address);
      if (host?.kind === 'ip') out.add(host.host);
    }
  }
  return out;
}
