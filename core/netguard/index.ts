import type { Socket } from 'node:net';
import type { CanonicalHost } from './canonical-host.js';
import { dialVetted, type DialOptions } from './dial.js';
import type { IpAddress } from './ip-address.js';
import { ResolveError, type HostResolver } from './resolver.js';
import { SelfAddresses } from './self-addresses.js';
import { vetAddresses, type AddressGuard, type VetResult } from './vet-addresses.js';

export * from './canonical-host.js';
export * from './classify-address.js';
export * from './ip-address.js';
export * from './resolver.js';
export * from './self-addresses.js';
export * from './vet-addresses.js';
export { DialError, dialVetted, type DialOptions } from './dial.js';

export type GuardResult = VetResult | { readonly ok: false; readonly reason: 'dns_failed'; readonly code: string };

/**
 * The only door to the network: resolve with Gatehouse's own resolver, classify every answer, and dial the vetted
 * address. A component that needs to reach a destination goes through one of these.
 */
export interface Netguard {
  readonly self: SelfAddresses;
  /** Swap the resolver (policy reload changes servers or fixed hosts). In-flight lookups finish on the old one. */
  setResolver(resolver: HostResolver): void;
  resolveAndVet(host: CanonicalHost, port: number, guard: AddressGuard): Promise<GuardResult>;
  dial(addresses: readonly IpAddress[], port: number, options: DialOptions): Promise<Socket>;
}

export function createNetguard(options: { resolver: HostResolver; self?: SelfAddresses }): Netguard {
  let resolver = options.resolver;
  const self = options.self ?? new SelfAddresses();
  return {
    self,
    setResolver(next) {
      resolver = next;
    },
    async resolveAndVet(host, port, guard) {
      let addresses: readonly IpAddress[];
      if (host.kind === 'ip') addresses = [host.ip];
      else {
        try {
          addresses = await resolver.resolve(host.host);
        } catch (err) {
          return { ok: false, reason: 'dns_failed', code: err instanceof ResolveError ? err.code : 'ERROR' };
        }
      }
      return vetAddresses(host, port, addresses, guard, self);
    },
    dial: (addresses, port, dialOptions) => dialVetted(addresses, port, dialOptions),
  };
}
