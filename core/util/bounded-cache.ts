/**
 * A size-bounded memo for pure, hot computations (credential decoding, authority parsing). When full, the
 * oldest entry goes: a simple bound on memory that hostile input cannot grow.
 */
export class BoundedCache<K, V> {
  private readonly map = new Map<K, V>();
  // The last key asked for and its value. On the data plane the same key comes back request after request (one
  // token, one destination), and comparing a string with === is a memcmp, where a Map lookup hashes the freshly
  // parsed string first (about 2 us for an 850-character Proxy-Authorization header). Values are pure functions
  // of their keys, so this copy can never disagree with the map.
  private lastKey: K | undefined;
  private lastValue: V | undefined;
  private hasLast = false;

  constructor(private readonly max: number) {}

  getOrCompute(key: K, compute: (key: K) => V): V {
    if (this.hasLast && key === this.lastKey) return this.lastValue as V;
    const value = this.lookup(key, compute);
    this.lastKey = key;
    this.lastValue = value;
    this.hasLast = true;
    return value;
  }

  private lookup(key: K, compute: (key: K) => V): V {
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
