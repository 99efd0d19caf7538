import type { DeniedAddressReason } from '../errors/index.js';
import type { CanonicalHost } from './canonical-host.js';
import { classifyAddress, denyReasonFor } from './classify-address.js';
import { cidrContains, type Cidr, type IpAddress } from './ip-address.js';
import type { SelfAddresses } from './self-addresses.js';

/** An `unsafe_allow_private` exception: this exact canonical host may reach addresses in this CIDR. */
export interface PrivateException {
  readonly host: string;
  readonly cidr: Cidr;
  readonly ruleId: string;
}

/** A policy deny rule that applies to addresses (a CIDR, optionally limited to some ports). */
export interface AddressDenyRule {
  readonly cidr: Cidr;
  readonly matchesPort: (port: number) => boolean;
  readonly ruleId: string;
  /** Report mode: record that it would deny, but do not. */
  readonly report: boolean;
}

export interface AddressGuard {
  readonly exceptions: readonly PrivateException[];
  readonly denyRules: readonly AddressDenyRule[];
}

export interface AddressDenial {
  readonly reason: DeniedAddressReason;
  readonly address: IpAddress;
  readonly ruleId?: string;
}

export type VetResult =
  | { readonly ok: true; readonly addresses: readonly IpAddress[]; readonly exceptionRuleId?: string; readonly wouldDeny?: AddressDenial }
  | ({ readonly ok: false } & AddressDenial);

/**
 * Decide whether the addresses a host resolved to may be dialled.
 *
 * SECURITY: if any one address is refused, the whole destination is refused. A name that answers both public and
 * private addresses is the shape of a rebinding attack, and dialling "a surviving one" makes the outcome depend on
 * answer order.
 */
export function vetAddresses(
  host: CanonicalHost,
  port: number,
  addresses: readonly IpAddress[],
  guard: AddressGuard,
  self: SelfAddresses,
): VetResult {
  let exceptionRuleId: string | undefined;
  let wouldDeny: AddressDenial | undefined;
  for (const address of addresses) {
    // SECURITY: never dial ourselves, whatever the policy says (request loops, admin API exposure).
    if (self.has(address, port)) return { ok: false, reason: 'ip_denied_self', address };
    const rule = guard.denyRules.find((r) => cidrContains(r.cidr, address) && r.matchesPort(port));
    if (rule) {
      const denial: AddressDenial = { reason: 'ip_denied_rule', address, ruleId: rule.ruleId };
      if (!rule.report) return { ok: false, ...denial };
      wouldDeny ??= denial;
    }
    const { class: kind } = classifyAddress(address);
    if (kind === 'public') continue;
    const exception = guard.exceptions.find((e) => e.host === host.host && cidrContains(e.cidr, address));
    if (!exception) return { ok: false, reason: denyReasonFor(kind), address };
    exceptionRuleId ??= exception.ruleId;
  }
  return {
    ok: true,
    addresses,
    ...(exceptionRuleId ? { exceptionRuleId } : {}),
    ...(wouldDeny ? { wouldDeny } : {}),
  };
}
