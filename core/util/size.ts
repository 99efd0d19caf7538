const UNITS: Readonly<Record<string, number>> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4 };
const SIZE = /^(\d{1,9})(B|KiB|MiB|GiB|TiB)$/;

/** `512KiB`, `64MiB`, `1GiB` to bytes; null when it does not parse. Binary units only, so `1GiB` means one thing. */
export function parseSize(text: string): number | null {
  const match = SIZE.exec(text.trim());
  if (!match) return null;
  return Number(match[1]) * (UNITS[match[2] as string] as number);
}

/** The shortest exact spelling: 1073741824 -> `1GiB`. */
export function formatSize(bytes: number): string {
  for (const unit of ['TiB', 'GiB', 'MiB', 'KiB'] as const) {
    const size = UNITS[unit] as number;
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return `${bytes}B`;
}

export const SIZE_PATTERN = SIZE.source;
