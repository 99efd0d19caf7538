import type { IncomingHttpHeaders } from 'node:http';
import type { CompiledPolicy } from '../core/policy/index.js';
import { narrowBrokerGrant } from '../core/policy/broker-decide.js';
import type { TenantBrokerSettings } from '../core/policy/compile-broker.js';
import { CachedVerifier, TokenError, type BrokerGrant, type MountMode, type SessionClaims } from '../core/tokens/index.js';
import { Refusal } from './refusal.js';

export interface BrokerSession {
  readonly claims: SessionClaims;
  /** The token's grant narrowed to the tenant's current ceiling (a policy reload applies to live tokens). */
  readonly grant: BrokerGrant;
  readonly ceiling: TenantBrokerSettings;
}

/** Headers an SDK may carry its API key in: the broker token travels there, and none of them is ever forwarded. */
export const KEY_HEADERS = ['authorization', 'x-api-key', 'api-key', 'x-goog-api-key'] as const;

const one = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? (v.length === 1 ? v[0] : undefined) : v);

/**
 * The broker token from a request. File operations take `Authorization: Bearer` only. Upstream calls also take
 * the headers model SDKs put their key in (and `?key=`), so an unmodified SDK works with the broker token as its
 * API key, and `x-amz-security-token`, so an AWS SDK works with it as its session token. Null when none is present; a refusal when several disagree (no guessing which one counts).
 */
export function extractToken(headers: IncomingHttpHeaders, query: URLSearchParams | null, sdkHeaders: boolean): string | null {
  const found = new Set<string>();
  const auth = one(headers.authorization);
  // An unmodified AWS SDK signs every request itself: with placeholder keys and the broker token as its session
  // token, the token arrives in x-amz-security-token and the SDK's own signature (never checked, always replaced)
  // in Authorization.
  const sdkSignature = sdkHeaders && auth !== undefined && /^AWS4-HMAC-SHA256 /.test(auth);
  if (auth !== undefined && !sdkSignature) {
    const m = /^Bearer[ ]+(\S+)\s*$/i.exec(auth);
    if (!m) throw new AuthRefusal('auth_invalid', 'unrecognised_scheme');
    found.add(m[1] as string);
  }
  if (sdkHeaders) {
    for (const h of KEY_HEADERS.slice(1)) {
      const v = one(headers[h]);
      if (v !== undefined && v.trim() !== '') found.add(v.trim());
    }
    const session = sdkSignature ? one(headers['x-amz-security-token']) : undefined;
    if (session !== undefined && session.trim() !== '') found.add(session.trim());
    const key = query?.getAll('key') ?? [];
    if (key.length === 1 && key[0]) found.add(key[0]);
  }
  if (found.size > 1) throw new AuthRefusal('auth_invalid', 'conflicting_credentials');
  return found.values().next().value ?? null;
}

export class BrokerAuth {
  constructor(
    private readonly verifier: CachedVerifier<BrokerGrant>,
    private readonly policy: () => CompiledPolicy,
    private readonly isRevoked: (session: string) => boolean,
  ) {}

  /** Verify a broker token and what it may do now. Throws a Refusal with the auth reason. */
  async authenticate(raw: string | null): Promise<BrokerSession> {
    if (raw === null) throw new AuthRefusal('auth_missing', 'no_token');
    let verified;
    try {
      verified = await this.verifier.verify(raw);
    } catch (err) {
      if (err instanceof TokenError) throw new AuthRefusal(err.reason, err.detail);
      throw err;
    }
    const { claims, derived } = verified;
    if (this.isRevoked(claims.sub)) throw new AuthRefusal('session_revoked', 'revoked', claims);
    const tenant = this.policy().tenants.get(claims.tenant);
    if (!tenant?.broker) throw new AuthRefusal('auth_invalid', 'tenant_without_broker', claims);
    return { claims, grant: narrowBrokerGrant(derived, tenant.broker), ceiling: tenant.broker };
  }
}

const AUTH_MESSAGES: Readonly<Record<string, string>> = {
  auth_missing: 'send the broker token as Authorization: Bearer <token>',
  session_revoked: 'the session was revoked',
  token_expired: 'the broker token has expired',
  token_not_yet_valid: 'the broker token is not valid yet',
};

/** An authentication refusal, with what the audit event records about it. */
export class AuthRefusal extends Refusal {
  constructor(
    reason: 'auth_missing' | 'auth_invalid' | 'token_expired' | 'token_not_yet_valid' | 'session_revoked',
    readonly authDetail: string,
    readonly claims?: SessionClaims,
  ) {
    super(reason, AUTH_MESSAGES[reason] ?? 'the broker token is not valid');
  }
}

/** The grant a verified token's claims carry (checked for shape by the verifier). */
export const grantOf = (claims: SessionClaims): BrokerGrant => ({
  fs: claims['filesystem_id'] as string,
  mounts: claims['mounts'] as Record<string, MountMode>,
  upstreams: claims['upstreams'] as string[],
});
