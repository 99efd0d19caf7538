import type { CanonicalHost } from '../netguard/canonical-host.js';
import { cidrContains } from '../netguard/ip-address.js';
import type { DestPattern } from './dest-pattern.js';
import { portInSet } from './port-set.js';

export interface Patterned {
  readonly pattern: DestPattern;
}

/**
 * Destination patterns indexed for lookup in O(labels): exact hosts in a map, wildcards by suffix, CIDRs in a
 * list. Built once per policy load (for ceilings and deny rules) and once per verified token (for its grant).
 */
export interface RuleIndex<T extends Patterned> {
  readonly all: readonly T[];
  readonly exact: ReadonlyMap<string, readonly T[]>;
  readonly wildcard: ReadonlyMap<string, readonly T[]>;
  readonly cidr: readonly T[];
}

export function buildIndex<T extends Patterned>(items: readonly T[]): RuleIndex<T> {
  const exact = new Map<string, T[]>();
  const wildcard = new Map<string, T[]>();
  const cidr: T[] = [];
  const push = (map: Map<string, T[]>, key: string, item: T): void => {
    const list = map.get(key);
    if (list) list.push(item);
    else map.set(key, [item]);
  };
  for (const item of items) {
    const p = item.pattern;
    if (p.kind === 'exact') push(exact, p.host, item);
    else if (p.kind === 'wildcard') push(wildcard, p.suffix, item);
    else cidr.push(item);
  }
  return { all: items, exact, wildcard, cidr };
}

/** Items whose host part matches, in declaration order within each kind (exact, then wildcards from the nearest). */
export function hostMatches<T extends Patterned>(index: RuleIndex<T>, host: CanonicalHost): T[] {
  const out: T[] = [];
  if (host.kind === 'ip') {
    for (const item of index.cidr) if (item.pattern.kind === 'cidr' && cidrContains(item.pattern.cidr, host.ip)) out.push(item);
    return out;
  }
  const exact = index.exact.get(host.host);
  if (exact) out.push(...exact);
  if (index.wildcard.size > 0) {
    // Walk the proper suffixes: a.b.example.com -> b.example.com -> example.com -> com. Never the host itself.
    let dot = host.host.indexOf('.');
    while (dot !== -1) {
      const suffix = host.host.slice(dot + 1);
      const list = index.wildcard.get(suffix);
      if (list) out.push(...list);
      dot = host.host.indexOf('.', dot + 1);
    }
  }
  return out;
}

export type IndexLookup<T> =
  | { readonly match: 'full'; readonly item: T }
  | { readonly match: 'host-only'; readonly item: T }
  | { readonly match: 'none' };

/** The first item matching host and port; failing that, the first matching the host alone (a port problem). */
export function lookupDest<T extends Patterned>(index: RuleIndex<T>, host: CanonicalHost, port: number): IndexLookup<T> {
  const candidates = hostMatches(index, host);
  for (const item of candidates) if (portInSet(item.pattern.ports, port)) return { match: 'full', item };
  const first = candidates[0];
  return first ? { match: 'host-only', item: first } : { match: 'none' };
}
