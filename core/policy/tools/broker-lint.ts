import type { Problem } from '../yaml-source.js';
import type { LintContext } from './section.js';

export const BROKER_LINT_CODES = {
  'unused-upstream': 'A broker upstream no tenant may be granted: its credential is configured (and loaded) for nothing. Grant it in tenants[].broker.upstreams or remove it.',
  'unused-store': 'A broker store no tenant keeps its files in (tenants name theirs in tenants[].broker.store; absent means "files").',
  'empty-broker-ceiling': 'A tenant with a broker section but no mounts and no upstreams: a broker token can be issued for it, and can do nothing.',
  'ineffective-object-limit': 'max_object_bytes on a read-only (ro) mount: it limits writes, which the mount never allows.',
} as const;

interface RawTenant {
  readonly name?: unknown;
  readonly broker?: { readonly mounts?: ReadonlyArray<{ readonly mode?: unknown; readonly max_object_bytes?: unknown } | null> } | null;
}

/** Broker lint rules beyond what the compiler already refuses (duplicates, unknown names, plaintext URLs). */
export function lintBroker(ctx: LintContext): Problem[] {
  const out: Problem[] = [];
  const tenants = [...ctx.policy.tenants.values()];
  const raw = ((ctx.source.data as { tenants?: unknown }).tenants ?? []) as ReadonlyArray<RawTenant | null>;
  const rawBroker = ((ctx.source.data as { broker?: { stores?: unknown; upstreams?: unknown } | null }).broker ?? {}) as { stores?: unknown; upstreams?: unknown };
  const listed = (list: unknown): Array<{ name?: unknown }> => (Array.isArray(list) ? (list as Array<{ name?: unknown }>) : []);

  listed(rawBroker.upstreams).forEach((u, i) => {
    if (typeof u?.name !== 'string' || !ctx.policy.broker.upstreams.has(u.name)) return;
    const name = u.name;
    if (!tenants.some((t) => t.broker?.upstreams.has(name))) {
      out.push(ctx.atPath(['broker', 'upstreams', i, 'name'], 'warning', 'unused-upstream', `no tenant may be granted upstream "${name}": remove it, or add it to a tenant's broker.upstreams`));
    }
  });
  listed(rawBroker.stores).forEach((s, i) => {
    if (typeof s?.name !== 'string' || !ctx.policy.broker.stores.has(s.name)) return;
    const name = s.name;
    if (!tenants.some((t) => t.broker?.store === name)) {
      out.push(ctx.atPath(['broker', 'stores', i, 'name'], 'warning', 'unused-store', `no tenant keeps its files in store "${name}" (tenants[].broker.store)`));
    }
  });
  raw.forEach((t, i) => {
    if (!t || typeof t.name !== 'string') return;
    const ceiling = ctx.policy.tenants.get(t.name)?.broker;
    if (!ceiling) return;
    if (ceiling.mounts.size === 0 && ceiling.upstreams.size === 0) {
      out.push(ctx.atPath(['tenants', i, 'broker'], 'warning', 'empty-broker-ceiling', `tenant ${t.name} has broker access but no mounts and no upstreams: its broker tokens can do nothing`));
    }
    (t.broker?.mounts ?? []).forEach((m, j) => {
      if (m?.mode === 'ro' && m.max_object_bytes !== undefined) {
        out.push(ctx.atPath(['tenants', i, 'broker', 'mounts', j, 'max_object_bytes'], 'warning', 'ineffective-object-limit', 'this mount is read-only: max_object_bytes limits writes, which it never allows'));
      }
    });
  });
  return out;
}
