import { join } from 'node:path';
import type { StoreSettings } from '../core/policy/compile-broker.js';
import type { Credentials } from './credentials.js';
import { LocalStore } from './stores/local-store.js';
import { S3Store } from './stores/s3-store.js';
import type { Store } from './stores/store.js';

/**
 * The stores the policy defines, built on first use and rebuilt when a reload changes a store's settings (an
 * unchanged store keeps its connections). Credentials are resolved per request through `Credentials`, so a
 * rotated secret file applies without rebuilding anything.
 */
export class StoreRegistry {
  private readonly built = new Map<string, { key: string; store: Promise<Store> }>();

  constructor(
    private readonly stateDir: string,
    private readonly credentials: Credentials,
  ) {}

  get(settings: StoreSettings): Promise<Store> {
    const key = JSON.stringify(settings);
    const hit = this.built.get(settings.name);
    if (hit && hit.key === key) return hit.store;
    if (hit) void hit.store.then((s) => s.close()).catch(() => undefined);
    const store = this.build(settings);
    this.built.set(settings.name, { key, store });
    // A store that failed to build (an unreadable CA file) is retried on the next request, not cached broken.
    store.catch(() => {
      if (this.built.get(settings.name)?.store === store) this.built.delete(settings.name);
    });
    return store;
  }

  private async build(s: StoreSettings): Promise<Store> {
    if (s.type === 'local') return new LocalStore(s.name, s.path ?? join(this.stateDir, 'files'));
    const creds = this.credentials;
    return S3Store.create(
      s.name,
      { endpoint: s.endpoint, region: s.region, bucket: s.bucket, addressing: s.addressing, ca: s.tls?.ca, serverName: s.tls?.serverName, timeoutMs: s.timeoutMs },
      async () => ({
        accessKeyId: await creds.get(s.accessKeyId),
        secretAccessKey: await creds.get(s.secretAccessKey),
        ...(s.sessionToken ? { sessionToken: await creds.get(s.sessionToken) } : {}),
      }),
      s.partSize,
    );
  }

  async close(): Promise<void> {
    const all = [...this.built.values()];
    this.built.clear();
    await Promise.all(all.map(async (b) => (await b.store.catch(() => null))?.close()));
  }
}
