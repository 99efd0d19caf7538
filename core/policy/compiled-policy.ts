import type { AddressGuard, PrivateException } from '../netguard/vet-addresses.js';
import type { AuditSettings } from './compile-audit.js';
import type { BrokerSettings, TenantBrokerSettings } from './compile-broker.js';
import type { DestPattern } from './dest-pattern.js';
import type { RuleIndex } from './rule-index.js';
import type { Problem } from './yaml-source.js';

export type Mode = 'enforce' | 'report';

/** A rule as loaded: where it came from (for `explain` and audit) and what it matches. */
export interface CompiledRule {
  /** Stable id from its place in the file, e.g. `tenants[acme].egress.allow[2]`, `egress.deny[0]`. */
  readonly id: string;
  readonly pattern: DestPattern;
  readonly mode: Mode;
  readonly line: number;
  readonly col: number;
}

export interface SessionLimits {
  readonly maxConnections: number;
  readonly newConnectionsPerSecond: number;
  readonly burst: number;
}

export interface CompiledTenant {
  readonly name: string;
  readonly mode: Mode;
  /** The ceiling. */
  readonly allow: RuleIndex<CompiledRule>;
  /** Global deny rules followed by the tenant's own. */
  readonly deny: RuleIndex<CompiledRule>;
  /** Exceptions and CIDR deny rules for resolved addresses. */
  readonly guard: AddressGuard;
  readonly sessionLimits: SessionLimits;
  /** The broker ceiling; null when the tenant has no broker access. */
  readonly broker: TenantBrokerSettings | null;
  readonly line: number;
}

export interface EgressLimits {
  readonly maxConnections: number;
  readonly maxHeaderBytes: number;
  readonly headerTimeoutMs: number;
  readonly clientIdleTimeoutMs: number;
  readonly tunnelIdleTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly responseTimeoutMs: number;
  readonly endTunnelsAtTokenExpiry: boolean;
}

export interface ResolverSettings {
  readonly mode: 'dns' | 'system';
  readonly servers: readonly string[];
  readonly hosts: ReadonlyMap<string, readonly string[]>;
}

/** A validated, frozen policy. Built only by compilePolicy; everything downstream reads this, never the YAML. */
export interface CompiledPolicy {
  /** Content hash of the file, carried by every audit event. */
  readonly version: string;
  readonly file: string;
  readonly tokens: { readonly maxTtlMs: number; readonly defaultTtlMs: number; readonly clockSkewMs: number };
  readonly egress: {
    readonly mode: Mode;
    readonly limits: EgressLimits;
    readonly resolver: ResolverSettings;
    readonly exceptions: readonly PrivateException[];
  };
  readonly tenants: ReadonlyMap<string, CompiledTenant>;
  readonly broker: BrokerSettings;
  readonly audit: AuditSettings;
  /** Every rule by id, for explain and audit. */
  readonly rules: ReadonlyMap<string, CompiledRule>;
  /** Warnings found while compiling (errors make compilation fail). */
  readonly warnings: readonly Problem[];
}
