import { describe, expect, it } from 'vitest';
import { BoundedCache } from './bounded-cache.js';

describe('BoundedCache', () => {
  it('computes each key once while it is held, null and undefined values included', () => {
    const cache = new BoundedCache<string, string | null | undefined>(10);
    const calls: string[] = [];
    const compute = (k: string): string | null | undefined => {
      calls.push(k);
      return k === 'n' ? null : k === 'u' ? undefined : k.toUpperCase();
    };
    const asked = ['a', 'a', 'b', 'a', 'n', 'n', 'u', 'u', 'b', 'n'];
    // Keys built at run time, as parsed headers are: equal contents, distinct string objects.
    expect(asked.map((k) => cache.getOrCompute(`${k}`.slice(0), compute))).toEqual(['A', 'A', 'B', 'A', null, null, undefined, undefined, 'B', null]);
    expect(calls).toEqual(['a', 'b', 'n', 'u']);
  });

  it('stays within its bound, dropping the oldest entry, and recomputes what it dropped', () => {
    const cache = new BoundedCache<number, number>(2);
    let computed = 0;
    const square = (k: number): number => (computed++, k * k);
    for (const k of [1, 2, 3]) cache.getOrCompute(k, square);
    expect(cache.size).toBe(2);
    expect(cache.getOrCompute(1, square)).toBe(1); // 1 was evicted: computed again
    expect(computed).toBe(4);
    expect(cache.getOrCompute(3, square)).toBe(9);
    expect(computed).toBe(4);
  });
});
