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
  /** Synchronous when the answer is already cached (the common case on the data plane). */
  resolveAndVet(host: CanonicalHost, port: number, guard: AddressGuard): GuardResult | Promise<GuardResult>;
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
    resolveAndVet(host, port, guard) {
      if (host.kind === 'ip') return vetAddresses(host, port, [host.ip], guard, self);
      const cached = resolver.peek?.(host.host);
      if (cached) return vetAddresses(host, port, cached, guard, self);
      return resolver.resolve(host.host).then(
        (addresses) => vetAddresses(host, port, addresses, guard, self),
        (err: unknown): GuardResult => ({ ok: false, reason: 'dns_failed', code: err instanceof ResolveError ? err.code : 'ERROR' }),
      );
    },
    dial: (addresses, port, dialOptions) => dialVetted(addresses, port, dialOptions),
  };
}
