import { formatDuration } from '../../util/duration.js';
import { formatSize } from '../../util/size.js';
import type { BrokerLimits, CredentialSettings, StoreSettings, TenantBrokerSettings, TlsSettings, UpstreamSettings } from '../compile-broker.js';
import type { CompiledPolicy } from '../compiled-policy.js';
import type { DiffEntry } from './section.js';
import { secretShape } from './secrets-lint.js';

type Entry = (change: DiffEntry['change'], subject: string, extra?: Partial<DiffEntry>) => void;

/** Where a store keeps files: what a tenant moved to another store now writes to. */
export function describeStore(s: StoreSettings): string {
  return s.type === 'local' ? `local ${s.path ?? '<state>/files'}` : `s3 ${s.endpoint}/${s.bucket}/${s.prefix}`;
}

/** A credential by type and reference names (`env:NAME`, `file:PATH`): the schema admits nothing else, never a value. */
export function describeCredential(c: CredentialSettings): string {
  if (c.type === 'header') return `header ${c.header} ${c.value}`;
  if (c.type === 'bearer') return `bearer ${c.value}`;
  return `sigv4 ${c.service}/${c.region} ${c.accessKeyId} ${c.secretAccessKey}${c.sessionToken ? ` ${c.sessionToken}` : ''}`;
}

const tlsText = (t: TlsSettings | undefined): string => (t && (t.ca || t.serverName) ? [t.ca ? `ca ${t.ca}` : '', t.serverName ? `server_name ${t.serverName}` : ''].filter(Boolean).join(', ') : '(system CAs)');
// A fixed header's value is policy text, but one that looks like a credential is not repeated (secrets-lint flags it).
const headerValue = (v: string): string => (secretShape(v) ? '(looks like a secret; not shown)' : v);

const STORE_FIELDS: ReadonlyArray<readonly [string, (s: StoreSettings) => string]> = [
  ['type', (s) => s.type],
  ['path', (s) => (s.type === 'local' ? (s.path ?? '<state>/files') : '')],
  ['endpoint', (s) => (s.type === 's3' ? s.endpoint : '')],
  ['region', (s) => (s.type === 's3' ? s.region : '')],
  ['bucket', (s) => (s.type === 's3' ? s.bucket : '')],
  ['prefix', (s) => (s.type === 's3' ? s.prefix : '')],
  ['addressing', (s) => (s.type === 's3' ? s.addressing : '')],
  ['credential', (s) => (s.type === 's3' ? [s.accessKeyId, s.secretAccessKey, s.sessionToken].filter(Boolean).join(' ') : '')],
  ['part_size', (s) => (s.type === 's3' ? formatSize(s.partSize) : '')],
  ['timeout', (s) => (s.type === 's3' ? formatDuration(s.timeoutMs) : '')],
  ['tls', (s) => (s.type === 's3' ? tlsText(s.tls) : '')],
];

const UPSTREAM_FIELDS: ReadonlyArray<readonly [string, (u: UpstreamSettings) => string]> = [
  ['url', (u) => u.url],
  ['credential', (u) => describeCredential(u.credential)],
  ['timeout', (u) => formatDuration(u.timeoutMs)],
  ['max_request_bytes', (u) => formatSize(u.maxRequestBytes)],
  ['tls', (u) => tlsText(u.tls)],
];

const LIMITS: ReadonlyArray<readonly [keyof BrokerLimits, string]> = [
  ['requestsPerSecond', 'requests_per_second'],
  ['burst', 'burst'],
  ['maxConcurrent', 'max_concurrent'],
];

function mountsDiff(before: TenantBrokerSettings | null, after: TenantBrokerSettings | null, entry: Entry): void {
  const prev = before?.mounts ?? new Map();
  const next = after?.mounts ?? new Map();
  for (const [path, m] of next) {
    const old = prev.get(path);
    if (!old) entry('newly-allowed', `mount ${path} (${m.mode})`, { after: after?.rules.mounts.get(path)?.id ?? m.mode });
    else if (old.mode !== m.mode) entry(m.mode === 'rw' ? 'newly-allowed' : 'no-longer-allowed', `write ${path}`, { before: old.mode, after: m.mode });
    if (old && old.maxObjectBytes !== m.maxObjectBytes && m.mode === 'rw') entry('changed', `mount ${path} max_object_bytes`, { before: formatSize(old.maxObjectBytes), after: formatSize(m.maxObjectBytes) });
  }
  for (const [path, m] of prev) if (!next.has(path)) entry('no-longer-allowed', `mount ${path} (${m.mode})`, { before: before?.rules.mounts.get(path)?.id ?? m.mode });
}

function tenantDiff(policies: { before: CompiledPolicy; after: CompiledPolicy }, name: string): DiffEntry[] {
  const out: DiffEntry[] = [];
  const entry: Entry = (change, subject, extra = {}) => void out.push({ section: 'broker', tenant: name, change, subject, ...extra });
  const before = policies.before.tenants.get(name)?.broker ?? null;
  const after = policies.after.tenants.get(name)?.broker ?? null;
  const summary = (b: TenantBrokerSettings): string => `store ${b.store}, ${b.mounts.size} mount(s), ${b.upstreams.size} upstream(s)`;
  if (!before && after) entry('added', 'broker access', { after: summary(after) });
  if (before && !after) entry('removed', 'broker access', { before: summary(before) });
  mountsDiff(before, after, entry);
  const prevUp = before?.upstreams ?? new Set<string>();
  const nextUp = after?.upstreams ?? new Set<string>();
  for (const u of [...nextUp].sort()) if (!prevUp.has(u)) entry('newly-allowed', `upstream ${u}`, { after: policies.after.broker.upstreams.get(u)?.url ?? u });
  for (const u of [...prevUp].sort()) if (!nextUp.has(u)) entry('no-longer-allowed', `upstream ${u}`, { before: policies.before.broker.upstreams.get(u)?.url ?? u });
  if (before && after) {
    if (before.store !== after.store) {
      // SECURITY: another store is another place the tenant's files live (and another credential reads them).
      const where = (p: CompiledPolicy, name: string): string => {
        const store = p.broker.stores.get(name);
        return store ? `${name} (${describeStore(store)})` : name;
      };
      entry('changed', 'broker.store', { before: where(policies.before, before.store), after: where(policies.after, after.store) });
    }
    for (const [key, label] of LIMITS) {
      if (before.limits[key] !== after.limits[key]) entry('changed', `broker.per_session.${label}`, { before: String(before.limits[key]), after: String(after.limits[key]) });
    }
  }
  return out;
}

function namedDiff<T>(kind: string, before: ReadonlyMap<string, T>, after: ReadonlyMap<string, T>, fields: ReadonlyArray<readonly [string, (v: T) => string]>, describe: (v: T) => string): DiffEntry[] {
  const out: DiffEntry[] = [];
  for (const [name, b] of after) {
    const a = before.get(name);
    if (!a) {
      out.push({ section: 'broker', change: 'added', subject: `${kind} ${name}`, after: describe(b) });
      continue;
    }
    for (const [field, get] of fields) if (get(a) !== get(b)) out.push({ section: 'broker', change: 'changed', subject: `${kind} ${name} ${field}`, before: get(a) || '(none)', after: get(b) || '(none)' });
  }
  for (const [name, a] of before) if (!after.has(name)) out.push({ section: 'broker', change: 'removed', subject: `${kind} ${name}`, before: describe(a) });
  return out;
}

function headersDiff(before: CompiledPolicy, after: CompiledPolicy): DiffEntry[] {
  const out: DiffEntry[] = [];
  for (const [name, b] of after.broker.upstreams) {
    const a = before.broker.upstreams.get(name);
    if (!a) continue;
    for (const [h, v] of Object.entries(b.headers)) {
      const old = a.headers[h];
      if (old === undefined) out.push({ section: 'broker', change: 'added', subject: `upstream ${name} header ${h}`, after: headerValue(v) });
      else if (old !== v) out.push({ section: 'broker', change: 'changed', subject: `upstream ${name} header ${h}`, before: headerValue(old), after: headerValue(v) });
    }
    for (const [h, v] of Object.entries(a.headers)) if (!(h in b.headers)) out.push({ section: 'broker', change: 'removed', subject: `upstream ${name} header ${h}`, before: headerValue(v) });
  }
  return out;
}

/**
 * What the broker section of a policy change does. Per tenant: mounts granted and no longer granted, writes newly
 * allowed (ro -> rw) or withdrawn, object size limits, the store its files live in, upstreams, per-session limits.
 * Policy-wide: stores and upstreams added, removed or changed, credentials by type and reference name only.
 */
export function diffBroker(before: CompiledPolicy, after: CompiledPolicy): DiffEntry[] {
  const names = [...new Set([...before.tenants.keys(), ...after.tenants.keys()])].sort();
  return [
    ...names.flatMap((name) => tenantDiff({ before, after }, name)),
    ...namedDiff('store', before.broker.stores, after.broker.stores, STORE_FIELDS, describeStore),
    ...namedDiff('upstream', before.broker.upstreams, after.broker.upstreams, UPSTREAM_FIELDS, (u) => `${u.url} (${describeCredential(u.credential)})`),
    ...headersDiff(before, after),
  ];
}
