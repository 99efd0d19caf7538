import { createHmac } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { base64url, calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, UnsecuredJWT, type CryptoKey, type JWTHeaderParameters } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CachedVerifier } from './cached-verifier.js';
import { Keystore, TOKEN_ALG } from './keystore.js';
import { AUDIENCE, DEFAULT_ISSUER, issueSessionToken, MAX_TOKEN_LENGTH, TOKEN_TYP, TokenError, verifySessionToken, type VerifyOptions } from './session-token.js';

// A fixed clock: every time claim below is relative to it, so no row depends on when the suite runs.
const NOW = Date.UTC(2030, 0, 1);
const NOW_S = NOW / 1000;
const SKEW_MS = 30_000;
const MAX_TTL_MS = 15 * 60_000;

type Claims = Record<string, unknown>;
type SigningKey = Keystore['signingKey']['key'];

const dirs: string[] = [];
async function openKeystore(retainRetiredMs = 60_000): Promise<Keystore> {
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-tokens-'));
  dirs.push(dir);
  return Keystore.open(dir, { retainRetiredMs, now: new Date(NOW) });
}

const options = (keys: Keystore, over: Partial<VerifyOptions> = {}): VerifyOptions => ({
  keys,
  issuer: DEFAULT_ISSUER,
  audience: AUDIENCE.egress,
  clockSkewMs: () => SKEW_MS,
  maxTtlMs: () => MAX_TTL_MS,
  now: () => NOW,
  ...over,
});

/** What the issuer would put in an egress token, as a starting point for every forgery. */
const claims = (over: Claims = {}, omit: readonly string[] = []): Claims => {
  const base: Claims = { iss: DEFAULT_ISSUER, aud: AUDIENCE.egress, sub: 's-1', tenant: 'acme', jti: 'j-1', iat: NOW_S, nbf: NOW_S, exp: NOW_S + 300, egress: ['origin.test:443'], ...over };
  for (const name of omit) delete base[name];
  return base;
};

const json64 = (value: unknown): string => base64url.encode(JSON.stringify(value));
const sign = (payload: Claims, header: JWTHeaderParameters, key: CryptoKey | SigningKey | Uint8Array): Promise<string> =>
  new SignJWT(payload).setProtectedHeader(header).sign(key);

/** Keys and helpers each forgery row builds on. */
interface Forge {
  readonly keys: Keystore;
  readonly kid: string;
  /** Signed with the legitimate key, so only the named deviation can be the reason for a refusal. */
  legit(payload?: Claims, header?: Partial<JWTHeaderParameters>): Promise<string>;
  readonly attackerEd: { readonly key: CryptoKey; readonly kid: string; readonly jwk: Record<string, unknown> };
  readonly attackerRs: CryptoKey;
  readonly attackerEc: CryptoKey;
}

type Expect = { readonly accept: true } | { readonly reason: TokenError['reason']; readonly detail?: string | RegExp };
type Row = readonly [name: string, make: (f: Forge) => Promise<string> | string, expect: Expect];

const ok: Expect = { accept: true };
const invalid = (detail?: string | RegExp): Expect => (detail === undefined ? { reason: 'auth_invalid' } : { reason: 'auth_invalid', detail });

const ROWS: readonly Row[] = [
  // The baseline: a token issued by issueSessionToken with the keystore's key.
  ['valid issued token', async (f) => (await issueSessionToken(f.keys, { issuer: DEFAULT_ISSUER, audience: AUDIENCE.egress, session: 's-1', tenant: 'acme', ttlMs: 60_000, claims: { egress: ['a.test:443'] }, now: NOW })).token, ok],
  // RFC 8725 §3.1: an unsecured JWT (alg none, empty signature) as jose produces it.
  ['alg none (UnsecuredJWT)', () => new UnsecuredJWT(claims()).encode(), invalid('alg_not_allowed')],
  // alg none hand-assembled with the legitimate kid and typ, in the spellings some libraries accept.
  ...(['none', 'None', 'NONE'] as const).map((alg): Row => [`alg ${alg} with legit kid`, (f) => `${json64({ alg, kid: f.kid, typ: TOKEN_TYP })}.${json64(claims())}.`, invalid('alg_not_allowed')]),
  // Key confusion: HS256 keyed with the public key's `x` (as published in the JWKS), both as text and as bytes.
  ['HS256 keyed with JWK x text', (f) => hmacToken(f, new TextEncoder().encode(publicX(f))), invalid('alg_not_allowed')],
  ['HS256 keyed with JWK x bytes', (f) => hmacToken(f, base64url.decode(publicX(f))), invalid('alg_not_allowed')],
  // Another algorithm family signed by an attacker, claiming the legitimate key id.
  ['RS256 by attacker with legit kid', (f) => sign(claims(), { alg: 'RS256', kid: f.kid, typ: TOKEN_TYP }, f.attackerRs), invalid('alg_not_allowed')],
  ['ES256 by attacker with legit kid', (f) => sign(claims(), { alg: 'ES256', kid: f.kid, typ: TOKEN_TYP }, f.attackerEc), invalid('alg_not_allowed')],
  // The right algorithm and the legitimate kid, but the attacker's Ed25519 key: only the signature can tell.
  ['EdDSA by attacker with legit kid', (f) => sign(claims(), { alg: TOKEN_ALG, kid: f.kid, typ: TOKEN_TYP }, f.attackerEd.key), invalid('bad_signature')],
  // The attacker's own key id is not in the keystore.
  ['EdDSA by attacker with own kid', (f) => sign(claims(), { alg: TOKEN_ALG, kid: f.attackerEd.kid, typ: TOKEN_TYP }, f.attackerEd.key), invalid('unknown_kid')],
  // RFC 7515 §4.1.3: an embedded jwk header must never be trusted as the verification key.
  ['embedded attacker jwk, no kid', (f) => sign(claims(), { alg: TOKEN_ALG, jwk: f.attackerEd.jwk, typ: TOKEN_TYP }, f.attackerEd.key), invalid('unknown_kid')],
  ['missing kid, legit key', (f) => f.legit(claims(), { kid: undefined }), invalid('unknown_kid')],
  ['kid not a string', (f) => f.legit(claims(), { kid: 7 as unknown as string }), invalid('unknown_kid')],
  // A valid signature over different bytes: one claim edited after signing.
  ['payload edited after signing', async (f) => swapPart(await f.legit(), 1, json64(claims({ tenant: 'other' }))), invalid('bad_signature')],
  ['header edited after signing', async (f) => swapPart(await f.legit(), 0, json64({ alg: TOKEN_ALG, kid: f.kid, typ: TOKEN_TYP, x: 1 })), invalid('bad_signature')],
  ['signature stripped', async (f) => swapPart(await f.legit(), 2, ''), invalid()],
  // Time: skew is 30s. exp in the past beyond skew is expired; RFC 7519 §4.1.4 makes exp == now - skew expired.
  ['exp 31s ago', (f) => f.legit(claims({ iat: NOW_S - 300, nbf: NOW_S - 300, exp: NOW_S - 31 })), { reason: 'token_expired', detail: 'expired' }],
  ['exp exactly skew ago', (f) => f.legit(claims({ iat: NOW_S - 300, nbf: NOW_S - 300, exp: NOW_S - 30 })), { reason: 'token_expired', detail: 'expired' }],
  ['exp 10s ago (within skew)', (f) => f.legit(claims({ iat: NOW_S - 300, nbf: NOW_S - 300, exp: NOW_S - 10 })), ok],
  ['nbf 60s ahead', (f) => f.legit(claims({ nbf: NOW_S + 60 })), { reason: 'token_not_yet_valid', detail: 'nbf_in_future' }],
  ['nbf 20s ahead (within skew)', (f) => f.legit(claims({ nbf: NOW_S + 20 })), ok],
  ['iat 60s ahead', (f) => f.legit(claims({ iat: NOW_S + 60 })), { reason: 'token_not_yet_valid', detail: 'iat_in_future' }],
  ['iat 20s ahead (within skew)', (f) => f.legit(claims({ iat: NOW_S + 20 })), ok],
  // Audience, issuer and explicit type (RFC 8725 §3.9, §3.11).
  ['broker token at egress', (f) => f.legit(claims({ aud: AUDIENCE.broker })), invalid('wrong_aud')],
  ['wrong issuer', (f) => f.legit(claims({ iss: 'evil' })), invalid('wrong_iss')],
  ['typ JWT', (f) => f.legit(claims(), { typ: 'JWT' }), invalid('wrong_typ')],
  ['typ missing', (f) => f.legit(claims(), { typ: undefined }), invalid('wrong_typ')],
  // RFC 7515 §4.1.9: "application/" may be omitted from typ, so the long form names the same type.
  ['typ with application/ prefix', (f) => f.legit(claims(), { typ: `application/${TOKEN_TYP}` }), ok],
  // Every required claim, removed one at a time, is a malformed token (not a timing problem).
  ...(['iss', 'aud', 'sub', 'tenant', 'jti', 'exp', 'nbf', 'iat'] as const).map((name): Row => [`missing ${name}`, (f) => f.legit(claims({}, [name])), invalid(new RegExp(`_${name}$`))]),
  // Time claims of the wrong type are malformed too.
  ['iat not a number', (f) => f.legit(claims({ iat: String(NOW_S) })), invalid(/_iat$/)],
  ['nbf not a number', (f) => f.legit(claims({ nbf: String(NOW_S) })), invalid(/_nbf$/)],
  ['exp not a number', (f) => f.legit(claims({ exp: String(NOW_S + 300) })), invalid(/_exp$/)],
  ['sub not a session id', (f) => f.legit(claims({ sub: 's 1' })), invalid('bad_session_id')],
  ['tenant empty', (f) => f.legit(claims({ tenant: '' })), invalid('missing_claim_tenant')],
  // The egress claim must be an array of non-empty strings (at most 1000).
  ['egress missing', (f) => f.legit(claims({}, ['egress'])), invalid('bad_egress_claim')],
  ['egress a string', (f) => f.legit(claims({ egress: 'origin.test:443' })), invalid('bad_egress_claim')],
  ['egress with a number', (f) => f.legit(claims({ egress: ['a.test:443', 443] })), invalid('bad_egress_claim')],
  ['egress with an empty string', (f) => f.legit(claims({ egress: [''] })), invalid('bad_egress_claim')],
  ['egress over 1000 entries', (f) => f.legit(claims({ egress: Array.from({ length: 1001 }, (_, i) => `h${i}.test`) })), invalid()],
  // Lifetime: max 15m plus 30s skew.
  ['lifetime 15m + skew', (f) => f.legit(claims({ exp: NOW_S + 900 + 30 })), ok],
  ['lifetime 15m + skew + 1s', (f) => f.legit(claims({ exp: NOW_S + 900 + 31 })), invalid('lifetime_exceeds_policy')],
  ['lifetime of a year', (f) => f.legit(claims({ iat: NOW_S - 86_400 * 365, nbf: NOW_S - 86_400 * 365 })), invalid('lifetime_exceeds_policy')],
  // Length bound: refused before parsing, even when the signature is genuine.
  ['over-long signed token', (f) => f.legit(claims({ pad: 'x'.repeat(MAX_TOKEN_LENGTH) })), invalid('too_long')],
  ['over-long garbage', () => 'a'.repeat(MAX_TOKEN_LENGTH + 1), invalid('too_long')],
  // Garbage that never becomes a JWS.
  ['empty string', () => '', invalid('malformed')],
  ['two parts', () => 'a.b', invalid('malformed')],
  ['three junk parts', () => 'a.b.c', invalid('malformed')],
  ['not base64url', () => '!!!.@@@.###', invalid('malformed')],
  ['header is a JSON array', () => `${json64([TOKEN_ALG])}.${json64(claims())}.AAAA`, invalid('malformed')],
  ['payload not JSON', async (f) => signRaw(f, json64({ alg: TOKEN_ALG, kid: f.kid, typ: TOKEN_TYP }), base64url.encode('not json')), invalid('malformed')],
];

function publicX(f: Forge): string {
  const jwk = f.keys.jwks().keys.find((k) => k.kid === f.kid);
  if (!jwk?.x) throw new Error('legitimate key missing from the JWKS');
  return jwk.x;
}

/** HS256 assembled by hand (jose would refuse to treat an asymmetric key's bytes as an HMAC secret). */
function hmacToken(f: Forge, secret: Uint8Array): string {
  const input = `${json64({ alg: 'HS256', kid: f.kid, typ: TOKEN_TYP })}.${json64(claims())}`;
  return `${input}.${base64url.encode(createHmac('sha256', secret).update(input).digest())}`;
}

function swapPart(token: string, index: number, part: string): string {
  const parts = token.split('.');
  parts[index] = part;
  return parts.join('.');
}

/** Sign arbitrary header and payload segments with the legitimate key (Ed25519 over `header.payload`). */
async function signRaw(f: Forge, header: string, payload: string): Promise<string> {
  const input = `${header}.${payload}`;
  const sig = await crypto.subtle.sign('Ed25519', f.keys.signingKey.key as CryptoKey, new TextEncoder().encode(input));
  return `${input}.${base64url.encode(new Uint8Array(sig))}`;
}

async function refusal(promise: Promise<unknown>): Promise<TokenError> {
  const err: unknown = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TokenError);
  return err as TokenError;
}

let forge: Forge;

beforeAll(async () => {
  const keys = await openKeystore();
  const kid = keys.signingKey.kid;
  const ed = await generateKeyPair('EdDSA', { extractable: true });
  const edJwk = await exportJWK(ed.publicKey);
  forge = {
    keys,
    kid,
    legit: (payload = claims(), header = {}) => {
      const h: JWTHeaderParameters = { alg: TOKEN_ALG, kid, typ: TOKEN_TYP, ...header };
      for (const k of Object.keys(h) as Array<keyof JWTHeaderParameters>) if (h[k] === undefined) delete h[k];
      return sign(payload, h, keys.signingKey.key);
    },
    attackerEd: { key: ed.privateKey, kid: await calculateJwkThumbprint(edJwk), jwk: { ...edJwk } },
    attackerRs: (await generateKeyPair('RS256')).privateKey,
    attackerEc: (await generateKeyPair('ES256')).privateKey,
  };
});

afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('verifySessionToken: forgery and validity', () => {
  it.each(ROWS.map((r) => ({ name: r[0], make: r[1], expected: r[2] })))('$name', async ({ make, expected }) => {
    const token = await make(forge);
    const result = verifySessionToken(token, options(forge.keys));
    if ('accept' in expected) {
      const verified = await result;
      expect(verified.tenant).toBe('acme');
      return;
    }
    const err = await refusal(result);
    expect(err.reason).toBe(expected.reason);
    if (typeof expected.detail === 'string') expect(err.detail).toBe(expected.detail);
    else if (expected.detail) expect(err.detail).toMatch(expected.detail);
  });

  it('accepts an issued broker token only at the broker audience', async () => {
    const { token } = await issueSessionToken(forge.keys, { issuer: DEFAULT_ISSUER, audience: AUDIENCE.broker, session: 's-2', tenant: 'acme', ttlMs: 60_000, claims: { filesystem_id: 'fs-1', mounts: { '/outputs': 'rw' }, upstreams: [] }, now: NOW });
    await expect(verifySessionToken(token, options(forge.keys, { audience: AUDIENCE.broker }))).resolves.toMatchObject({ sub: 's-2' });
    expect((await refusal(verifySessionToken(token, options(forge.keys)))).detail).toBe('wrong_aud');
  });
});

describe('Keystore rotation and verification', () => {
  const issue = async (keys: Keystore): Promise<string> =>
    (await issueSessionToken(keys, { issuer: DEFAULT_ISSUER, audience: AUDIENCE.egress, session: 's-rot', tenant: 'acme', ttlMs: 60_000, claims: { egress: ['a.test:443'] }, now: NOW })).token;

  it('keeps verifying a token signed by a retired key, and signs new ones with the new key', async () => {
    const keys = await openKeystore(60_000);
    const token = await issue(keys);
    const { kid, retired } = await keys.rotate(new Date(NOW + 1000));
    expect(retired).not.toBe(kid);
    expect(keys.signingKey.kid).toBe(kid);
    expect(keys.jwks().keys.map((k) => k.kid).sort()).toEqual([kid, retired].sort());
    await expect(verifySessionToken(token, options(keys))).resolves.toMatchObject({ sub: 's-rot' });
    const fresh = await issue(keys);
    await expect(verifySessionToken(fresh, options(keys))).resolves.toMatchObject({ sub: 's-rot' });
  });

  it('drops a retired key after its retention, and then refuses its tokens as unknown_kid', async () => {
    const keys = await openKeystore(1000);
    const token = await issue(keys);
    await keys.rotate(new Date(NOW + 1000));
    await keys.rotate(new Date(NOW + 5000)); // the first key retired 4s ago, retention is 1s
    const err = await refusal(verifySessionToken(token, options(keys)));
    expect([err.reason, err.detail]).toEqual(['auth_invalid', 'unknown_kid']);
  });

  it('verifies after reopening the same directory, but not with a fresh keystore elsewhere', async () => {
    const keys = await openKeystore();
    const token = await issue(keys);
    const reopened = await Keystore.open(dirs[dirs.length - 1] as string, { retainRetiredMs: 60_000 });
    await expect(verifySessionToken(token, options(reopened))).resolves.toMatchObject({ sub: 's-rot' });
    const other = await openKeystore();
    const err = await refusal(verifySessionToken(token, options(other)));
    expect([err.reason, err.detail]).toEqual(['auth_invalid', 'unknown_kid']);
  });
});

describe('CachedVerifier', () => {
  const issue = async (keys: Keystore, ttlMs = 60_000): Promise<string> =>
    (await issueSessionToken(keys, { issuer: DEFAULT_ISSUER, audience: AUDIENCE.egress, session: 's-c', tenant: 'acme', ttlMs, claims: { egress: ['a.test:443'] }, now: NOW })).token;

  it('answers a second verify from the cache, without a signature check', async () => {
    const keys = await openKeystore(0);
    const token = await issue(keys);
    let derived = 0;
    const cache = new CachedVerifier(options(keys), () => ++derived);
    expect(cache.peek(token)).toBeUndefined();
    const first = await cache.verify(token);
    // Rotate twice with no retention: the signing key is gone, so a fresh verification now fails...
    await keys.rotate(new Date(NOW + 1000));
    await keys.rotate(new Date(NOW + 2000));
    expect((await refusal(verifySessionToken(token, options(keys)))).detail).toBe('unknown_kid');
    // ...while the cached result is returned as is.
    expect(cache.peek(token)).toBe(first);
    await expect(cache.verify(token)).resolves.toBe(first);
    expect(derived).toBe(1);
  });

  it('shares one verification between concurrent first uses', async () => {
    const keys = await openKeystore();
    const token = await issue(keys);
    let derived = 0;
    const cache = new CachedVerifier(options(keys), () => ++derived);
    const [a, b] = await Promise.all([cache.verify(token), cache.verify(token)]);
    expect(a).toBe(b);
    expect(derived).toBe(1);
  });

  it('does not cache a refusal', async () => {
    const cache = new CachedVerifier(options(forge.keys), () => 0);
    const token = await sign(claims(), { alg: TOKEN_ALG, kid: forge.kid, typ: TOKEN_TYP }, forge.attackerEd.key);
    expect((await refusal(cache.verify(token))).detail).toBe('bad_signature');
    expect(cache.peek(token)).toBeUndefined();
    expect((await refusal(cache.verify(token))).detail).toBe('bad_signature');
  });

  it('expires a cached token: peek throws token_expired once exp + skew has passed', async () => {
    const keys = await openKeystore();
    const token = await issue(keys, 60_000); // exp = NOW + 60s
    let clock = NOW;
    const cache = new CachedVerifier(options(keys, { now: () => clock }), () => 0);
    const entry = await cache.verify(token);
    // [clock, expected] one row per instant around exp + skew = NOW + 90s.
    const table: ReadonlyArray<readonly [number, 'cached' | 'token_expired']> = [
      [NOW + 60_000, 'cached'], // at exp, still within skew
      [NOW + 89_000, 'cached'], // 1s before exp + skew
      [NOW + 90_000, 'token_expired'], // exp + skew reached
    ];
    for (const [at, expected] of table) {
      clock = at;
      if (expected === 'cached') expect(cache.peek(token)).toBe(entry);
      else expect((await refusal(Promise.resolve().then(() => cache.peek(token)))).reason).toBe('token_expired');
    }
    // The expired entry is gone, and a fresh verification agrees it has expired.
    expect(cache.peek(token)).toBeUndefined();
    expect((await refusal(cache.verify(token))).reason).toBe('token_expired');
  });
});
