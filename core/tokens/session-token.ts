import { randomUUID } from 'node:crypto';
import { decodeProtectedHeader, errors as joseErrors, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import type { Keystore } from './keystore.js';
import { TOKEN_ALG } from './keystore.js';

/** Which edge a token is for (`aud`). A token for one edge is refused by every other. */
export const AUDIENCE = {
  egress: 'gatehouse-egress',
  broker: 'gatehouse-broker',
  gateway: 'gatehouse-gateway',
} as const;
export type Audience = (typeof AUDIENCE)[keyof typeof AUDIENCE];

/** RFC 8725 §3.11 explicit typing, so no other JWT that happens to share a key can pass as a session token. */
export const TOKEN_TYP = 'gatehouse-session+jwt';
export const DEFAULT_ISSUER = 'gatehouse';
/** Longer than any real token; bounds parsing work on hostile input. */
export const MAX_TOKEN_LENGTH = 8192;

export interface SessionClaims {
  readonly iss: string;
  readonly aud: Audience;
  /** Session id. */
  readonly sub: string;
  readonly tenant: string;
  readonly jti: string;
  readonly iat: number;
  readonly nbf: number;
  readonly exp: number;
  /** Destination patterns (egress tokens). */
  readonly egress?: readonly string[];
  /** Edge-specific claims (broker scopes, gateway tools) live beside these. */
  readonly [claim: string]: unknown;
}

export const SESSION_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export interface IssueInput {
  readonly issuer: string;
  readonly audience: Audience;
  readonly session: string;
  readonly tenant: string;
  readonly ttlMs: number;
  readonly claims: Readonly<Record<string, unknown>>;
  readonly now?: number;
}

export interface IssuedToken {
  readonly token: string;
  readonly jti: string;
  readonly issuedAt: number;
  readonly expiresAt: number;
}

export async function issueSessionToken(keys: Keystore, input: IssueInput): Promise<IssuedToken> {
  const nowSec = Math.floor((input.now ?? Date.now()) / 1000);
  const exp = nowSec + Math.max(1, Math.floor(input.ttlMs / 1000));
  const jti = randomUUID();
  const { kid, key } = keys.signingKey;
  const token = await new SignJWT({ ...input.claims, tenant: input.tenant })
    .setProtectedHeader({ alg: TOKEN_ALG, kid, typ: TOKEN_TYP })
    .setIssuer(input.issuer)
    .setAudience(input.audience)
    .setSubject(input.session)
    .setJti(jti)
    .setIssuedAt(nowSec)
    .setNotBefore(nowSec)
    .setExpirationTime(exp)
    .sign(key);
  return { token, jti, issuedAt: nowSec * 1000, expiresAt: exp * 1000 };
}

/** Why a token was refused. `reason` is the public reason code; `detail` is for the audit trail. */
export class TokenError extends Error {
  constructor(
    readonly reason: 'auth_invalid' | 'token_expired' | 'token_not_yet_valid',
    readonly detail: string,
  ) {
    super(`${reason}: ${detail}`);
    this.name = 'TokenError';
  }
}

export interface VerifyOptions {
  readonly keys: Keystore;
  readonly issuer: string;
  readonly audience: Audience;
  /** Read per call, so a policy reload applies at once. */
  readonly clockSkewMs: () => number;
  readonly maxTtlMs: () => number;
  readonly now?: () => number;
}

const str = (v: unknown): v is string => typeof v === 'string' && v.length > 0;

function checkClaims(payload: JWTPayload, audience: Audience): SessionClaims {
  const p = payload as Record<string, unknown>;
  for (const claim of ['iss', 'sub', 'tenant', 'jti'] as const) {
    if (!str(p[claim])) throw new TokenError('auth_invalid', `missing_claim_${claim}`);
  }
  for (const claim of ['iat', 'nbf', 'exp'] as const) {
    if (typeof p[claim] !== 'number') throw new TokenError('auth_invalid', `missing_claim_${claim}`);
  }
  if (!SESSION_ID.test(p['sub'] as string)) throw new TokenError('auth_invalid', 'bad_session_id');
  if (audience === AUDIENCE.egress) {
    const egress = p['egress'];
    if (!Array.isArray(egress) || egress.length > 1000 || !egress.every(str)) throw new TokenError('auth_invalid', 'bad_egress_claim');
  }
  if (audience === AUDIENCE.broker) {
    // Signed by us, but checked anyway: a claim of the wrong shape must not reach path or mount logic.
    if (!str(p['filesystem_id']) || !/^[A-Za-z0-9_-]{1,64}$/.test(p['filesystem_id'])) throw new TokenError('auth_invalid', 'bad_filesystem_claim');
    const mounts = p['mounts'];
    if (mounts === null || typeof mounts !== 'object' || Array.isArray(mounts)) throw new TokenError('auth_invalid', 'bad_mounts_claim');
    const entries = Object.entries(mounts as Record<string, unknown>);
    if (entries.length > 64 || !entries.every(([k, v]) => /^\/[a-z0-9][a-z0-9._-]{0,62}$/.test(k) && (v === 'ro' || v === 'rw'))) throw new TokenError('auth_invalid', 'bad_mounts_claim');
    const upstreams = p['upstreams'];
    if (!Array.isArray(upstreams) || upstreams.length > 64 || !upstreams.every(str)) throw new TokenError('auth_invalid', 'bad_upstreams_claim');
  }
  return p as unknown as SessionClaims;
}

function mapJoseError(err: unknown): TokenError {
  if (err instanceof TokenError) return err;
  if (err instanceof joseErrors.JWTExpired) return new TokenError('token_expired', 'expired');
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    // Only a time check that failed means "not yet valid"; a missing or malformed nbf/iat is a bad token, and
    // telling the client to fix its clock would send it looking in the wrong place.
    if ((err.claim === 'nbf' || err.claim === 'iat') && err.reason === 'check_failed') return new TokenError('token_not_yet_valid', `${err.claim}_in_future`);
    return new TokenError('auth_invalid', err.reason === 'missing' ? `missing_claim_${err.claim}` : `wrong_${err.claim}`);
  }
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return new TokenError('auth_invalid', 'alg_not_allowed');
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return new TokenError('auth_invalid', 'bad_signature');
  if (err instanceof joseErrors.JWKSNoMatchingKey) return new TokenError('auth_invalid', 'unknown_kid');
  return new TokenError('auth_invalid', 'malformed');
}

/**
 * Verify a session token: EdDSA only, a known `kid`, the expected `typ`, issuer and audience, times within the
 * clock skew, and a lifetime no longer than the policy allows. Throws TokenError.
 */
export async function verifySessionToken(token: string, options: VerifyOptions): Promise<SessionClaims> {
  if (token.length > MAX_TOKEN_LENGTH) throw new TokenError('auth_invalid', 'too_long');
  let kid: unknown;
  try {
    const header = decodeProtectedHeader(token);
    // SECURITY: decide the algorithm before touching a key: `none`, HS256-with-the-public-key and friends end here.
    if (header.alg !== TOKEN_ALG) throw new TokenError('auth_invalid', 'alg_not_allowed');
    kid = header.kid;
  } catch (err) {
    throw err instanceof TokenError ? err : new TokenError('auth_invalid', 'malformed');
  }
  const key = typeof kid === 'string' ? options.keys.verificationKey(kid) : undefined;
  if (!key) throw new TokenError('auth_invalid', 'unknown_kid');
  const skewSec = Math.ceil(options.clockSkewMs() / 1000);
  const nowMs = options.now?.() ?? Date.now();
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, key, {
      algorithms: [TOKEN_ALG],
      issuer: options.issuer,
      audience: options.audience,
      typ: TOKEN_TYP,
      clockTolerance: skewSec,
      currentDate: new Date(nowMs),
      requiredClaims: ['iss', 'aud', 'sub', 'jti', 'iat', 'nbf', 'exp'],
    }));
  } catch (err) {
    throw mapJoseError(err);
  }
  const claims = checkClaims(payload, options.audience);
  const nowSec = nowMs / 1000;
  if (claims.iat > nowSec + skewSec) throw new TokenError('token_not_yet_valid', 'iat_in_future');
  if (claims.exp - claims.iat > options.maxTtlMs() / 1000 + skewSec) throw new TokenError('auth_invalid', 'lifetime_exceeds_policy');
  return claims;
}
