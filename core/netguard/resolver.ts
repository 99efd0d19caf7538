import { promises as dns } from 'node:dns';
import { canonicalizeHost } from './canonical-host.js';
import { parseIp, type IpAddress } from './ip-address.js';

/**
 * Name resolution owned by Gatehouse. Only netguard uses it; nothing else in the codebase resolves names.
 * Every answer is canonicalised (IPv4-mapped IPv6 becomes IPv4) before anyone classifies or dials it.
 */
export interface HostResolver {
  /** All addresses for a canonical name. Rejects with a ResolveError when there are none. */
  resolve(name: string): Promise<readonly IpAddress[]>;
  /** A fresh answer already at hand, or undefined: lets the data plane decide without a round trip. */
  peek?(name: string): readonly IpAddress[] | undefined;
}

export class ResolveError extends Error {
  readonly code: string;
  constructor(code: string) {
    super(`resolution failed: ${code}`);
    this.name = 'ResolveError';
    this.code = code;
  }
}

function toAddresses(texts: readonly string[]): IpAddress[] {
  const out: IpAddress[] = [];
  for (const text of texts) {
    const canonical = canonicalizeHost(text);
    if (canonical?.kind === 'ip') out.push(canonical.ip);
    else {
      const ip = parseIp(text);
      if (ip) out.push(ip);
    }
  }
  return out;
}

interface CacheEntry {
  readonly expiresAt: number;
  readonly value: readonly IpAddress[] | ResolveError;
}

/** A bounded TTL cache with in-flight de-duplication, so a burst for one name costs one query. */
class ResolutionCache {
  private readonly entries = new Map<string, CacheEntry>();
  private readonly inflight = new Map<string, Promise<readonly IpAddress[]>>();

  constructor(
    private readonly maxEntries: number,
    private readonly now: () => number,
  ) {}

  peek(name: string): readonly IpAddress[] | undefined {
    const hit = this.entries.get(name);
    if (!hit || hit.expiresAt <= this.now() || hit.value instanceof ResolveError) return undefined;
    return hit.value;
  }

  async get(name: string, load: () => Promise<{ value: readonly IpAddress[] | ResolveError; ttlMs: number }>): Promise<readonly IpAddress[]> {
    const hit = this.entries.get(name);
    if (hit && hit.expiresAt > this.now()) {
      if (hit.value instanceof ResolveError) throw hit.value;
      return hit.value;
    }
    const pending = this.inflight.get(name);
    if (pending) return pending;
    const promise = load()
      .then(({ value, ttlMs }) => {
        this.store(name, value, ttlMs);
        if (value instanceof ResolveError) throw value;
        return value;
      })
      .finally(() => this.inflight.delete(name));
    this.inflight.set(name, promise);
    return promise;
  }

  private store(name: string, value: readonly IpAddress[] | ResolveError, ttlMs: number): void {
    if (ttlMs <= 0) return;
    this.entries.delete(name);
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(name, { expiresAt: this.now() + ttlMs, value });
  }
}

export interface DnsResolverOptions {
  /** DNS servers (`ip` or `ip:port`); absent or empty means the system's resolv.conf servers. */
  readonly servers?: readonly string[];
  readonly timeoutMs?: number;
  readonly minTtlMs?: number;
  readonly maxTtlMs?: number;
  readonly negativeTtlMs?: number;
  readonly maxEntries?: number;
  readonly now?: () => number;
}

/**
 * Queries DNS directly (c-ares via node:dns Resolver), A and AAAA in parallel, honouring answer TTLs within bounds.
 * It does not read /etc/hosts: an operator who wants fixed answers writes them in the policy's resolver.hosts.
 */
export function createDnsResolver(options: DnsResolverOptions = {}): HostResolver {
  const resolver = new dns.Resolver({ timeout: options.timeoutMs ?? 2000, tries: 2 });
  if (options.servers && options.servers.length > 0) resolver.setServers([...options.servers]);
  const minTtl = options.minTtlMs ?? 1000;
  const maxTtl = options.maxTtlMs ?? 300_000;
  const negativeTtl = options.negativeTtlMs ?? 5000;
  const cache = new ResolutionCache(options.maxEntries ?? 10_000, options.now ?? (() => performance.now()));

  return {
    peek: (name) => cache.peek(name),
    resolve: (name) =>
      cache.get(name, async () => {
        const [v4, v6] = await Promise.allSettled([
          resolver.resolve4(name, { ttl: true }),
          resolver.resolve6(name, { ttl: true }),
        ]);
        const records = [
          ...(v4.status === 'fulfilled' ? v4.value : []),
          ...(v6.status === 'fulfilled' ? v6.value : []),
        ];
        if (records.length === 0) {
          const failure = [v4, v6].find((r): r is PromiseRejectedResult => r.status === 'rejected');
          const code = (failure?.reason as { code?: string } | undefined)?.code ?? 'ENODATA';
          return { value: new ResolveError(code), ttlMs: negativeTtl };
        }
        const ttl = Math.min(...records.map((r) => r.ttl)) * 1000;
        return { value: toAddresses(records.map((r) => r.address)), ttlMs: Math.min(maxTtl, Math.max(minTtl, ttl)) };
      }),
  };
}

/**
 * The operating system's resolver (getaddrinfo: /etc/hosts, nsswitch). It carries no TTLs, so answers are cached
 * for a short fixed time.
 */
export function createSystemResolver(options: { cacheMs?: number; now?: () => number } = {}): HostResolver {
  const cache = new ResolutionCache(10_000, options.now ?? (() => performance.now()));
  const ttlMs = options.cacheMs ?? 5000;
  return {
    peek: (name) => cache.peek(name),
    resolve: (name) =>
      cache.get(name, async () => {
        try {
          const answers = await dns.lookup(name, { all: true, verbatim: true });
          const addresses = toAddresses(answers.map((a) => a.address));
          return addresses.length > 0 ? { value: addresses, ttlMs } : { value: new ResolveError('ENODATA'), ttlMs };
        } catch (err) {
          return { value: new ResolveError((err as { code?: string }).code ?? 'ENOTFOUND'), ttlMs: Math.min(ttlMs, 5000) };
        }
      }),
  };
}

/**
 * Fixed answers for some names, checked before `fallback`. Used for the policy's `resolver.hosts` and, in tests,
 * as the injected resolver (no real DNS) that can answer a private address for an allowed name.
 */
export function createStaticResolver(hosts: ReadonlyMap<string, readonly string[]>, fallback?: HostResolver): HostResolver {
  const table = new Map<string, readonly IpAddress[]>();
  for (const [name, texts] of hosts) {
    const canonical = canonicalizeHost(name);
    table.set(canonical?.host ?? name, toAddresses(texts));
  }
  return {
    peek: (name) => table.get(name) ?? fallback?.peek?.(name),
    resolve: async (name) => {
      const fixed = table.get(name);
      if (fixed) return fixed;
      if (fallback) return fallback.resolve(name);
      throw new ResolveError('ENOTFOUND');
    },
  };
}

export interface ResolverSettings {
  readonly mode: 'dns' | 'system';
  readonly servers: readonly string[];
  readonly hosts: ReadonlyMap<string, readonly string[]>;
}

/** The resolver a policy's `egress.resolver` section describes: fixed hosts first, then DNS or the OS. */
export function createResolverFromSettings(settings: ResolverSettings): HostResolver {
  const fallback = settings.mode === 'system' ? createSystemResolver() : createDnsResolver({ servers: settings.servers });
  return settings.hosts.size > 0 ? createStaticResolver(settings.hosts, fallback) : fallback;
}
