import { GatehouseError } from '../errors/index.js';
import type { CompiledPolicy } from '../policy/index.js';
import type { Keystore } from './keystore.js';
import { sessionAndTtl } from './issue-egress.js';
import { AUDIENCE, issueSessionToken } from './session-token.js';

export const FILESYSTEM_ID = /^[A-Za-z0-9_-]{1,64}$/;

export type MountMode = 'ro' | 'rw';

/** What a broker token grants, as signed claims: `fs`, `mounts` (path -> mode) and `upstreams`. */
export interface BrokerGrant {
  readonly fs: string;
  readonly mounts: Readonly<Record<string, MountMode>>;
  readonly upstreams: readonly string[];
}

export interface BrokerIssueRequest {
  readonly tenant: string;
  readonly session?: string;
  readonly filesystem: string;
  /** Mount path -> mode. Absent: every mount of the tenant's ceiling, at its mode. */
  readonly mounts?: Readonly<Record<string, MountMode>>;
  /** Absent: every upstream of the tenant's ceiling. */
  readonly upstreams?: readonly string[];
  readonly ttl?: string;
}

export interface BrokerIssueResult {
  readonly token: string;
  readonly session: string;
  readonly tenant: string;
  readonly jti: string;
  readonly expiresAt: number;
  readonly grant: BrokerGrant;
}

/** Parse `--mount /outputs:rw` (mode defaults to ro: the narrower grant when none is named). */
export function parseMountArg(text: string): [string, MountMode] {
  const match = /^(\/[^:]+?)(?::(ro|rw))?$/.exec(text);
  if (!match) throw new GatehouseError('GH_ERR_USAGE', { detail: `--mount must be PATH[:ro|rw], got "${text}"` });
  return [match[1] as string, (match[2] as MountMode | undefined) ?? 'ro'];
}

/** The grant a request asks for, checked against the tenant's broker ceiling. */
export function checkBrokerGrant(policy: CompiledPolicy, request: Pick<BrokerIssueRequest, 'tenant' | 'filesystem' | 'mounts' | 'upstreams'>): BrokerGrant {
  const tenant = policy.tenants.get(request.tenant);
  if (!tenant) throw new GatehouseError('GH_ERR_TOKEN_TENANT_UNKNOWN', { tenant: request.tenant });
  const ceiling = tenant.broker;
  if (!ceiling) throw new GatehouseError('GH_ERR_TOKEN_NO_BROKER', { tenant: request.tenant });
  if (!FILESYSTEM_ID.test(request.filesystem)) throw new GatehouseError('GH_ERR_TOKEN_FILESYSTEM_INVALID', { filesystem: request.filesystem.slice(0, 64) });
  const mounts: Record<string, MountMode> = {};
  const asked = request.mounts ?? Object.fromEntries([...ceiling.mounts.values()].map((m) => [m.path, m.mode]));
  for (const [path, mode] of Object.entries(asked)) {
    const allowed = ceiling.mounts.get(path);
    // rw includes ro; ro does not include rw.
    if (!allowed || (mode === 'rw' && allowed.mode === 'ro') || (mode !== 'ro' && mode !== 'rw')) {
      throw new GatehouseError('GH_ERR_TOKEN_MOUNT_OUTSIDE_CEILING', { mount: path.slice(0, 128), mode: String(mode).slice(0, 8), tenant: request.tenant });
    }
    mounts[path] = mode;
  }
  const upstreams = [...new Set(request.upstreams ?? [...ceiling.upstreams])].sort();
  for (const u of upstreams) if (!ceiling.upstreams.has(u)) throw new GatehouseError('GH_ERR_TOKEN_UPSTREAM_OUTSIDE_CEILING', { upstream: u.slice(0, 64), tenant: request.tenant });
  return { fs: request.filesystem, mounts, upstreams };
}

/** Sign a broker token (aud gatehouse-broker) after the same session and TTL checks as egress tokens. */
export async function issueBrokerToken(
  deps: { readonly policy: CompiledPolicy; readonly keys: Keystore; readonly isRevoked: (session: string) => boolean; readonly issuer: string },
  request: BrokerIssueRequest,
): Promise<BrokerIssueResult> {
  const { session, ttlMs } = sessionAndTtl(deps, request);
  const grant = checkBrokerGrant(deps.policy, request);
  const issued = await issueSessionToken(deps.keys, {
    issuer: deps.issuer,
    audience: AUDIENCE.broker,
    session,
    tenant: request.tenant,
    ttlMs,
    claims: { filesystem_id: grant.fs, mounts: grant.mounts, upstreams: grant.upstreams },
  });
  return { token: issued.token, session, tenant: request.tenant, jti: issued.jti, expiresAt: issued.expiresAt, grant };
}
