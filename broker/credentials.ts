import { stat } from 'node:fs/promises';
import { resolveSecret } from '../core/util/secret-ref.js';

interface Entry {
  value: string;
  /** For file: references, the file's mtime and size when read. */
  version: string;
  checkedAt: number;
}

/**
 * The broker's credentials, by reference (env:NAME, file:PATH). Read when first needed, then a file reference is
 * re-read when its file changes (checked at most once a second), so rotating a mounted Secret needs no restart.
 * Values live only here and in the requests they sign: never logged, never in errors (which name the reference).
 */
export class Credentials {
  private readonly cache = new Map<string, Entry>();

  constructor(private readonly now: () => number = Date.now) {}

  async get(ref: string): Promise<string> {
    const hit = this.cache.get(ref);
    if (hit && (ref.startsWith('env:') || this.now() - hit.checkedAt < 1000)) return hit.value;
    const version = ref.startsWith('file:') ? await fileVersion(ref.slice(5)) : 'env';
    if (hit && hit.version === version) {
      hit.checkedAt = this.now();
      return hit.value;
    }
    let value: string;
    try {
      value = await resolveSecret(ref);
    } catch (err) {
      // A file being replaced mid-rotation may be briefly missing or empty: keep serving the last good value.
      if (hit) return hit.value;
      throw new Error(`credential ${ref}: ${(err as Error).message}`);
    }
    this.cache.set(ref, { value, version, checkedAt: this.now() });
    return value;
  }

  /** Forget everything (a policy reload may point at other references). */
  clear(): void {
    this.cache.clear();
  }
}

async function fileVersion(path: string): Promise<string> {
  const s = await stat(path).catch(() => null);
  return s ? `${s.mtimeMs}:${s.size}:${s.ino}` : 'missing';
}
