import { request } from 'undici';
import { GatehouseError } from '../core/errors/index.js';
import { readAdminToken } from '../core/state/admin-token.js';
import { adminTarget, type RuntimeConfig } from './runtime-config.js';

type Flags = Readonly<Record<string, string | boolean | undefined>>;

/** Call the running Gatehouse's admin API. Errors come back as GatehouseErrors with the server's code. */
export async function callAdmin(flags: Flags, config: RuntimeConfig, method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
  const target = adminTarget(flags, config);
  const token = target.tokenFromEnv ?? (await readAdminToken(config.stateDir));
  if (!token) throw new GatehouseError('GH_ERR_CONFIG_INVALID', { detail: `no admin token: set GATEHOUSE_ADMIN_TOKEN or point --state at the directory holding admin-token` });
  let res;
  try {
    res = await request(`${target.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
    });
  } catch (err) {
    throw new GatehouseError('GH_ERR_ADMIN_UNREACHABLE', { url: target.url, detail: (err as NodeJS.ErrnoException).code ?? 'error' });
  }
  const text = await res.body.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (res.statusCode >= 400) {
    const err = (parsed as { error?: { code?: string; message?: string } } | null)?.error;
    throw new GatehouseError('GH_ERR_ADMIN_BAD_REQUEST', { detail: `${err?.code ?? res.statusCode}: ${err?.message ?? 'request failed'}` });
  }
  return parsed;
}
