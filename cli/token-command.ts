import { GatehouseError } from '../core/errors/index.js';
import { PolicyStore } from '../core/policy/index.js';
import { ensureStateDir } from '../core/state/files.js';
import { issueBrokerToken, issueEgressToken, Keystore, parseMountArg, RevocationList } from '../core/tokens/index.js';
import { POLICY_BOUNDS } from '../core/policy/index.js';
import { join } from 'node:path';
import { callAdmin } from './admin-client.js';
import type { RuntimeConfig } from './runtime-config.js';

type Flags = Readonly<Record<string, string | boolean | string[] | undefined>>;

/**
 * `gatehouse token issue`: sign an egress token locally with the state directory's key, after the same checks
 * the admin API makes. Prints only the token on stdout (for `TOKEN=$(...)`); warnings go to stderr.
 */
export async function tokenIssue(flags: Flags, config: RuntimeConfig, out: (s: string) => void, err: (s: string) => void): Promise<number> {
  const tenant = flags['tenant'];
  const allow = flags['allow'];
  if (typeof tenant !== 'string') throw new GatehouseError('GH_ERR_USAGE', { detail: 'token issue needs --tenant' });
  const destinations = Array.isArray(allow) ? allow : typeof allow === 'string' ? [allow] : [];
  await ensureStateDir(config.stateDir);
  const store = await PolicyStore.load(config.policyFile ?? join(config.stateDir, 'policy.yaml'));
  const keys = await Keystore.open(config.stateDir, { retainRetiredMs: POLICY_BOUNDS.maxTtlMs + POLICY_BOUNDS.maxClockSkewMs });
  const revocations = await RevocationList.open(config.stateDir);
  if (typeof flags['filesystem'] === 'string') {
    // A broker token: one token per command, so `TOKEN=$(...)` gets exactly one.
    if (destinations.length > 0) throw new GatehouseError('GH_ERR_USAGE', { detail: '--allow is for egress tokens and --filesystem for broker tokens: issue them separately (the same --session ties them)' });
    const mounts = Array.isArray(flags['mount']) ? Object.fromEntries(flags['mount'].map(parseMountArg)) : undefined;
    const upstreams = Array.isArray(flags['upstream']) ? flags['upstream'] : undefined;
    const b = await issueBrokerToken(
      { policy: store.current, keys, isRevoked: (s) => revocations.isRevoked(s), issuer: config.issuer },
      {
        tenant,
        filesystem: flags['filesystem'],
        ...(mounts ? { mounts } : {}),
        ...(upstreams ? { upstreams } : {}),
        ...(typeof flags['session'] === 'string' ? { session: flags['session'] } : {}),
        ...(typeof flags['ttl'] === 'string' ? { ttl: flags['ttl'] } : {}),
      },
    );
    if (flags['json'] === true) out(JSON.stringify({ token: b.token, session: b.session, tenant: b.tenant, jti: b.jti, expires_at: new Date(b.expiresAt).toISOString(), broker: { filesystem: b.grant.fs, mounts: b.grant.mounts, upstreams: b.grant.upstreams } }, null, 2));
    else out(b.token);
    return 0;
  }
  if (Array.isArray(flags['mount']) || Array.isArray(flags['upstream'])) throw new GatehouseError('GH_ERR_USAGE', { detail: '--mount and --upstream need --filesystem (they are broker token grants)' });
  const issued = await issueEgressToken(
    { policy: store.current, keys, isRevoked: (s) => revocations.isRevoked(s), issuer: config.issuer },
    {
      tenant,
      destinations,
      ...(typeof flags['session'] === 'string' ? { session: flags['session'] } : {}),
      ...(typeof flags['ttl'] === 'string' ? { ttl: flags['ttl'] } : {}),
    },
  );
  for (const w of issued.warnings) err(`warning: ${w}`);
  if (flags['json'] === true) {
    out(JSON.stringify({ token: issued.token, session: issued.session, tenant: issued.tenant, jti: issued.jti, expires_at: new Date(issued.expiresAt).toISOString(), egress: issued.egress }, null, 2));
  } else {
    out(issued.token);
  }
  return 0;
}

/** `gatehouse token revoke --session S`: revoke through the running Gatehouse's admin API. */
export async function tokenRevoke(flags: Flags, config: RuntimeConfig, out: (s: string) => void): Promise<number> {
  const session = flags['session'];
  if (typeof session !== 'string') throw new GatehouseError('GH_ERR_USAGE', { detail: 'token revoke needs --session' });
  const reason = typeof flags['reason'] === 'string' ? { reason: flags['reason'] } : {};
  const result = (await callAdmin(flags as Record<string, string | boolean | undefined>, config, 'POST', `/v1/sessions/${encodeURIComponent(session)}/revoke`, reason)) as { session: string; revoked_at: string };
  out(`revoked session ${result.session} at ${result.revoked_at}`);
  return 0;
}

/** `gatehouse keys rotate`: start signing with a new key; tokens signed by the old one stay valid until they expire. */
export async function keysRotate(flags: Flags, config: RuntimeConfig, out: (s: string) => void): Promise<number> {
  const result = (await callAdmin(flags as Record<string, string | boolean | undefined>, config, 'POST', '/v1/keys/rotate', {})) as { kid: string; retired: string };
  out(`signing with key ${result.kid}; key ${result.retired} now only verifies`);
  return 0;
}
