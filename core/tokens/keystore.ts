import { randomBytes } from 'node:crypto';
import { link, open, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import { GatehouseError } from '../errors/index.js';
import { parseStateJson, readFileIfExists, writeFileAtomic } from '../state/files.js';

/** RFC 8037: Ed25519 keys, JWS `alg` "EdDSA". */
export const TOKEN_ALG = 'EdDSA';

interface StoredKey {
  kid: string;
  created_at: string;
  status: 'active' | 'retired';
  retired_at: string | null;
  private_jwk: JWK | null;
  public_jwk: JWK;
}

interface KeyFile {
  version: 1;
  keys: StoredKey[];
}

const isKeyFile = (v: unknown): v is KeyFile =>
  typeof v === 'object' &&
  v !== null &&
  (v as KeyFile).version === 1 &&
  Array.isArray((v as KeyFile).keys) &&
  (v as KeyFile).keys.every((k) => typeof k.kid === 'string' && typeof k.public_jwk === 'object' && (k.status === 'active' || k.status === 'retired')) &&
  (v as KeyFile).keys.filter((k) => k.status === 'active' && k.private_jwk).length === 1;

export interface PublicJwk extends JWK {
  readonly kid: string;
  readonly alg: string;
  readonly use: 'sig';
}

type Key = Awaited<ReturnType<typeof importJWK>>;

async function newKey(now: Date): Promise<StoredKey> {
  const { privateKey, publicKey } = await generateKeyPair(TOKEN_ALG, { extractable: true });
  const public_jwk = await exportJWK(publicKey);
  const private_jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(public_jwk); // RFC 7638: the kid names the key's content
  return { kid, created_at: now.toISOString(), status: 'active', retired_at: null, private_jwk, public_jwk };
}

/** Write a file only if it does not exist yet, atomically (two first runs racing end up with one key). */
async function createExclusive(file: string, text: string): Promise<boolean> {
  const tmp = join(dirname(file), `.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(tmp, 'wx', 0o600);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await link(tmp, file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

/**
 * The token signing keys (`keys.json` in the state directory, mode 0600). One key signs; retired keys keep
 * verifying tokens they signed until those can no longer be valid, so rotation never cuts live sessions.
 */
export class Keystore {
  private signing!: { kid: string; key: Key };
  private verifying = new Map<string, Key>();
  private stored: KeyFile = { version: 1, keys: [] };

  private constructor(
    readonly file: string,
    private readonly retainRetiredMs: number,
  ) {}

  static async open(stateDir: string, options: { retainRetiredMs: number; now?: Date }): Promise<Keystore> {
    const store = new Keystore(join(stateDir, 'keys.json'), options.retainRetiredMs);
    let text = await readFileIfExists(store.file);
    if (text === null) {
      const initial: KeyFile = { version: 1, keys: [await newKey(options.now ?? new Date())] };
      await createExclusive(store.file, `${JSON.stringify(initial, null, 2)}\n`);
      text = (await readFileIfExists(store.file)) as string;
    }
    await store.load(text);
    return store;
  }

  private async load(text: string): Promise<void> {
    const parsed = parseStateJson(this.file, text, isKeyFile);
    const verifying = new Map<string, Key>();
    let signing: { kid: string; key: Key } | null = null;
    for (const k of parsed.keys) {
      verifying.set(k.kid, await importJWK(k.public_jwk, TOKEN_ALG));
      if (k.status === 'active' && k.private_jwk) signing = { kid: k.kid, key: await importJWK(k.private_jwk, TOKEN_ALG) };
    }
    if (!signing) throw new GatehouseError('GH_ERR_STATE_CORRUPT', { file: this.file, detail: 'no active signing key' });
    this.stored = parsed;
    this.verifying = verifying;
    this.signing = signing;
  }

  /** Re-read keys.json (another process may have rotated). */
  async reload(): Promise<void> {
    const text = await readFileIfExists(this.file);
    if (text !== null) await this.load(text);
  }

  get signingKey(): { readonly kid: string; readonly key: Key } {
    return this.signing;
  }

  verificationKey(kid: string): Key | undefined {
    return this.verifying.get(kid);
  }

  /** RFC 7517 JWK Set of every key that may still verify a token. Public parts only. */
  jwks(): { keys: PublicJwk[] } {
    return {
      keys: this.stored.keys.map((k) => ({ ...k.public_jwk, kid: k.kid, alg: TOKEN_ALG, use: 'sig' as const })),
    };
  }

  /** Start signing with a new key; the old one verifies for `retainRetiredMs` more, then is dropped. */
  async rotate(now = new Date()): Promise<{ kid: string; retired: string }> {
    const fresh = await newKey(now);
    const previous = this.signing.kid;
    const horizon = now.getTime() - this.retainRetiredMs;
    const keys = this.stored.keys
      .filter((k) => k.status === 'active' || (k.retired_at !== null && Date.parse(k.retired_at) > horizon))
      .map((k) => (k.status === 'active' ? { ...k, status: 'retired' as const, retired_at: now.toISOString(), private_jwk: null } : k));
    const next: KeyFile = { version: 1, keys: [fresh, ...keys] };
    await writeFileAtomic(this.file, `${JSON.stringify(next, null, 2)}\n`);
    await this.load(JSON.stringify(next));
    return { kid: fresh.kid, retired: previous };
  }
}
