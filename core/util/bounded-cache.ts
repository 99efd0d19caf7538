/**
 * A size-bounded memo for pure, hot computations (credential decoding, authority parsing). When full, the
 * oldest entry goes: a simple bound on memory that hostile input cannot grow.
 */
export class BoundedCache<K, V> {
  private readonly map = new Map<K, V>();

  constructor(private readonly max: number) {}

  getOrCompute(key: K, compute: (key: K) => V): V {
    const hit = this.map.get(key);
    if (hit !== undefined || this.map.has(key)) return hit as V;
    const value = compute(key);
    if (this.map.size >= this.max) {
      const oldest = this.map.keys().next();
      if (!oldest.done) this.map.delete(oldest.value);
    }
    this.map.set(key, value);
    return value;
  }

  get size(): number {
    return this.map.size;
  }
}
