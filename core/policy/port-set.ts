/**
 * A set of TCP ports as sorted, merged, inclusive ranges. A destination rule without ports allows 80 and 443 only:
 * naming any other port is a deliberate act, so `db.internal` never silently opens 5432.
 */
export interface PortSet {
  readonly ranges: ReadonlyArray<readonly [number, number]>;
}

export const WEB_PORTS: PortSet = { ranges: [[80, 80], [443, 443]] };
export const ALL_PORTS: PortSet = { ranges: [[1, 65535]] };

export function portSet(ranges: ReadonlyArray<readonly [number, number]>): PortSet {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const merged: Array<[number, number]> = [];
  for (const [lo, hi] of sorted) {
    const last = merged[merged.length - 1];
    if (last && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else merged.push([lo, hi]);
  }
  return { ranges: merged };
}

export function portInSet(set: PortSet, port: number): boolean {
  for (const [lo, hi] of set.ranges) if (port >= lo && port <= hi) return true;
  return false;
}

/** Every port of `inner` is in the union of `outers`. */
export function portSetCovered(inner: PortSet, outers: readonly PortSet[]): boolean {
  const union = portSet(outers.flatMap((o) => o.ranges));
  return inner.ranges.every(([lo, hi]) => union.ranges.some(([ulo, uhi]) => lo >= ulo && hi <= uhi));
}

export const isAllPorts = (set: PortSet): boolean =>
  set.ranges.length === 1 && set.ranges[0]?.[0] === 1 && set.ranges[0]?.[1] === 65535;

const isWebPorts = (set: PortSet): boolean =>
  set.ranges.length === 2 && set.ranges[0]?.[0] === 80 && set.ranges[0]?.[1] === 80 && set.ranges[1]?.[0] === 443 && set.ranges[1]?.[1] === 443;

/** `*`, `443`, `80,443`, `8000-8100`; null for the default web ports (80 and 443), which are written as nothing. */
export function formatPortSet(set: PortSet): string | null {
  if (isWebPorts(set)) return null;
  if (isAllPorts(set)) return '*';
  return set.ranges.map(([lo, hi]) => (lo === hi ? `${lo}` : `${lo}-${hi}`)).join(',');
}

/** Parse one port item: a number, `N`, `N-M`. */
export function parsePortItem(item: string | number): readonly [number, number] | null {
  if (typeof item === 'number') return Number.isInteger(item) && item >= 1 && item <= 65535 ? [item, item] : null;
  const match = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(item.trim());
  if (!match) return null;
  const lo = Number(match[1]);
  const hi = match[2] === undefined ? lo : Number(match[2]);
  if (lo < 1 || hi > 65535 || lo > hi) return null;
  return [lo, hi];
}

/** Parse `*` or a comma list of port items. */
export function parsePortSpec(spec: string): PortSet | null {
  if (spec === '*') return ALL_PORTS;
  const ranges: Array<readonly [number, number]> = [];
  for (const item of spec.split(',')) {
    const range = parsePortItem(item);
    if (!range) return null;
    ranges.push(range);
  }
  return ranges.length > 0 ? portSet(ranges) : null;
}
