import { canonicalizeHost } from '../netguard/canonical-host.js';
import { parseDuration } from '../util/duration.js';
import { parseSize } from '../util/size.js';
import type { BrokerSectionInput, TenantBrokerInput } from './broker-schema.js';
import { POLICY_DEFAULTS as D } from './defaults.js';
import type { PathItem, Problem } from './yaml-source.js';

export interface TlsSettings {
  /** A file:PATH reference to a PEM CA bundle. */
  readonly ca?: string | undefined;
  readonly serverName?: string | undefined;
}

export type StoreSettings =
  | { readonly name: string; readonly type: 'local'; readonly path: string | null }
  | {
      readonly name: string;
      readonly type: 's3';
      /** Origin only (scheme://host[:port]), no trailing slash. */
      readonly endpoint: string;
      readonly region: string;
      readonly bucket: string;
      readonly addressing: 'path' | 'virtual';
      readonly prefix: string;
      /** Secret references (env:NAME, file:PATH), resolved by the broker at start and on change. */
      readonly accessKeyId: string;
      readonly secretAccessKey: string;
      readonly sessionToken?: string | undefined;
      readonly partSize: number;
      readonly timeoutMs: number;
      readonly tls?: TlsSettings | undefined;
    };

export type CredentialSettings =
  | { readonly type: 'header'; readonly header: string; readonly value: string }
  | { readonly type: 'bearer'; readonly value: string }
  | { readonly type: 'sigv4'; readonly service: string; readonly region: string; readonly accessKeyId: string; readonly secretAccessKey: string; readonly sessionToken?: string | undefined };

export interface UpstreamSettings {
  readonly name: string;
  /** Base URL without a trailing slash; the client's path is appended to it. */
  readonly url: string;
  readonly credential: CredentialSettings;
  /** Lower-case header names. */
  readonly headers: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  readonly maxRequestBytes: number;
  readonly tls?: TlsSettings | undefined;
}

export interface BrokerLimits {
  readonly requestsPerSecond: number;
  readonly burst: number;
  readonly maxConcurrent: number;
}

export interface MountSettings {
  readonly path: string;
  readonly mode: 'ro' | 'rw';
  readonly maxObjectBytes: number;
}

/** Where a ceiling entry is written: its stable id (`tenants[acme].broker.mounts[1]`) and position, for explain. */
export interface BrokerRuleRef {
  readonly id: string;
  readonly line: number;
  readonly col: number;
}

export interface TenantBrokerSettings {
  readonly store: string;
  /** The ceiling, by mount path. */
  readonly mounts: ReadonlyMap<string, MountSettings>;
  readonly upstreams: ReadonlySet<string>;
  readonly limits: BrokerLimits;
  /** The entry of the file that grants each mount and upstream (the first, for an upstream listed twice). */
  readonly rules: { readonly mounts: ReadonlyMap<string, BrokerRuleRef>; readonly upstreams: ReadonlyMap<string, BrokerRuleRef> };
}

export interface BrokerSettings {
  readonly stores: ReadonlyMap<string, StoreSettings>;
  readonly upstreams: ReadonlyMap<string, UpstreamSettings>;
}

type Report = (path: readonly PathItem[], severity: Problem['severity'], code: string, message: string) => void;

const ms = (text: string | undefined, fallback: string): number => parseDuration(text ?? fallback) ?? (parseDuration(fallback) as number);
const bytes = (text: string | undefined, fallback: string): number => parseSize(text ?? fallback) ?? (parseSize(fallback) as number);
const tlsOf = (t: { ca?: string | undefined; server_name?: string | undefined } | undefined): TlsSettings | undefined => (t ? { ca: t.ca, serverName: t.server_name } : undefined);

/** Loopback hosts may be reached over plain http (a local S3 server, a test origin); nothing else may. */
const isLoopback = (url: URL): boolean => {
  const host = canonicalizeHost(url.hostname);
  if (!host) return false;
  if (host.kind === 'name') return host.host === 'localhost';
  return host.ip.family === 4 ? host.host.startsWith('127.') : host.host === '::1';
};

export function compileBroker(input: BrokerSectionInput | undefined, report: Report): BrokerSettings {
  const stores = new Map<string, StoreSettings>();
  (input?.stores ?? []).forEach((s, i) => {
    const path = ['broker', 'stores', i];
    if (stores.has(s.name)) return report([...path, 'name'], 'error', 'duplicate-store', `store "${s.name}" is defined more than once`);
    if (s.type === 'local') {
      stores.set(s.name, { name: s.name, type: 'local', path: s.path ?? null });
      return;
    }
    const url = new URL(s.endpoint);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') report([...path, 'endpoint'], 'error', 'invalid-url', `"${s.endpoint}" is not an http(s) URL`);
    if (url.protocol === 'http:' && !isLoopback(url)) report([...path, 'endpoint'], 'error', 'plaintext-upstream', `${s.name} would send signed requests and file contents over plain http; use https`);
    if (url.pathname !== '/' || url.search || url.username) report([...path, 'endpoint'], 'error', 'invalid-url', 'the endpoint is scheme://host[:port] only (the bucket and prefix have their own keys)');
    const host = canonicalizeHost(url.hostname);
    const partSize = bytes(s.part_size, D.broker.partSize);
    if (partSize < 5 * 1024 ** 2 || partSize > 5 * 1024 ** 3) report([...path, 'part_size'], 'error', 'out-of-range', 'S3 parts are 5MiB to 5GiB');
    stores.set(s.name, {
      name: s.name,
      type: 's3',
      endpoint: url.origin,
      region: s.region,
      bucket: s.bucket,
      // Virtual-hosted addressing needs a DNS name to put the bucket in front of.
      addressing: s.addressing ?? (host?.kind === 'ip' || host?.host === 'localhost' ? 'path' : 'virtual'),
      prefix: s.prefix ?? '',
      accessKeyId: s.access_key_id,
      secretAccessKey: s.secret_access_key,
      sessionToken: s.session_token,
      partSize,
      timeoutMs: ms(s.timeout, D.broker.storeTimeout),
      tls: tlsOf(s.tls),
    });
    if (s.addressing === 'virtual' && host?.kind === 'ip') report([...path, 'addressing'], 'error', 'invalid-value', 'virtual-hosted addressing needs a host name endpoint, not an IP address');
  });
  // With no store configured, tenants use the embedded local one.
  if ((input?.stores ?? []).length === 0) stores.set(D.broker.store, { name: D.broker.store, type: 'local', path: null });

  const upstreams = new Map<string, UpstreamSettings>();
  (input?.upstreams ?? []).forEach((u, i) => {
    const path = ['broker', 'upstreams', i];
    if (upstreams.has(u.name)) return report([...path, 'name'], 'error', 'duplicate-upstream', `upstream "${u.name}" is defined more than once`);
    const url = new URL(u.url);
    if (url.protocol === 'http:' && !isLoopback(url)) report([...path, 'url'], 'error', 'plaintext-upstream', `${u.name} would send its credential over plain http; use https`);
    else if (url.protocol !== 'https:' && url.protocol !== 'http:') report([...path, 'url'], 'error', 'invalid-url', `"${u.url}" is not an https URL`);
    if (url.search || url.hash || url.username || url.password) report([...path, 'url'], 'error', 'invalid-url', 'the upstream URL is scheme://host[:port][/base-path], without query, fragment or user info');
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(u.headers ?? {})) headers[k.toLowerCase()] = v;
    const c = u.credential;
    const credential: CredentialSettings =
      c.type === 'header'
        ? { type: 'header', header: c.header.toLowerCase(), value: c.value }
        : c.type === 'bearer'
          ? { type: 'bearer', value: c.value }
          : { type: 'sigv4', service: c.service, region: c.region, accessKeyId: c.access_key_id, secretAccessKey: c.secret_access_key, sessionToken: c.session_token };
    if (credential.type === 'header' && credential.header in headers) report([...path, 'headers'], 'error', 'invalid-value', `fixed header ${credential.header} would overwrite the credential`);
    upstreams.set(u.name, {
      name: u.name,
      url: `${url.origin}${url.pathname.replace(/\/+$/, '')}`,
      credential,
      headers,
      timeoutMs: ms(u.timeout, D.broker.upstreamTimeout),
      maxRequestBytes: bytes(u.max_request_bytes, D.broker.maxRequestBytes),
      tls: tlsOf(u.tls),
    });
  });
  return { stores, upstreams };
}

export const brokerLimits = (base: BrokerLimits, input: TenantBrokerInput['limits'] | BrokerSectionInput['limits']): BrokerLimits => {
  const p = input?.per_session;
  return { requestsPerSecond: p?.requests_per_second ?? base.requestsPerSecond, burst: p?.burst ?? base.burst, maxConcurrent: p?.max_concurrent ?? base.maxConcurrent };
};

export const DEFAULT_BROKER_LIMITS: BrokerLimits = {
  requestsPerSecond: D.broker.perSession.requestsPerSecond,
  burst: D.broker.perSession.burst,
  maxConcurrent: D.broker.perSession.maxConcurrent,
};

/** Names a tenant's ceiling entries and finds them in the file. */
export interface RuleSite {
  readonly tenant: string;
  locate(path: readonly PathItem[]): { line: number; col: number };
}

/** A tenant's broker ceiling, checked against the stores and upstreams that exist. */
export function compileTenantBroker(tenantPath: readonly PathItem[], input: TenantBrokerInput | undefined, broker: BrokerSettings, base: BrokerLimits, report: Report, site: RuleSite): TenantBrokerSettings | null {
  if (!input) return null;
  const path = [...tenantPath, 'broker'];
  const ruleAt = (key: 'mounts' | 'upstreams', i: number): BrokerRuleRef => ({ id: `tenants[${site.tenant}].broker.${key}[${i}]`, ...site.locate([...path, key, i]) });
  const mountRules = new Map<string, BrokerRuleRef>();
  const upstreamRules = new Map<string, BrokerRuleRef>();
  const store = input.store ?? D.broker.store;
  if (!broker.stores.has(store)) report([...path, 'store'], 'error', 'unknown-store', `store "${store}" is not defined in broker.stores`);
  const mounts = new Map<string, MountSettings>();
  (input.mounts ?? []).forEach((m, i) => {
    if (mounts.has(m.path)) return report([...path, 'mounts', i, 'path'], 'error', 'duplicate-mount', `mount ${m.path} is listed more than once`);
    mounts.set(m.path, { path: m.path, mode: m.mode, maxObjectBytes: bytes(m.max_object_bytes, D.broker.maxObjectBytes) });
    mountRules.set(m.path, ruleAt('mounts', i));
  });
  const upstreams = new Set<string>();
  (input.upstreams ?? []).forEach((u, i) => {
    if (!broker.upstreams.has(u)) report([...path, 'upstreams', i], 'error', 'unknown-upstream', `upstream "${u}" is not defined in broker.upstreams`);
    upstreams.add(u);
    if (!upstreamRules.has(u)) upstreamRules.set(u, ruleAt('upstreams', i));
  });
  return { store, mounts, upstreams, limits: brokerLimits(base, input.limits), rules: { mounts: mountRules, upstreams: upstreamRules } };
}
