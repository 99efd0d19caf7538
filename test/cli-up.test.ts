import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGatehouse, CLI, type GatehouseProcess } from './support/gatehouse-process.js';
import { startOrigin, type Origin } from './support/origin.js';
import { openTunnel, whenClosed } from './support/raw-client.js';
import { cleanEnv, run } from './support/run.js';
import { ORIGIN_EGRESS } from './support/origin-policy.js';

/**
 * Gatehouse as a user runs it: the built CLI, a state directory, a policy file on disk, curl as the client.
 * Everything the user sees is checked, and at the end every byte Gatehouse wrote is searched for the secrets.
 */

const policy = (allowOrigin: boolean): string => `version: 1
${ORIGIN_EGRESS}tenants:
  - name: acme
    egress:
      allow: [${allowOrigin ? '"origin.test:*", ' : ''}"example.com"]
`;

let dir: string;
let state: string;
let policyFile: string;
let origin: Origin;
let gh: GatehouseProcess;
let token = '';
let adminToken = '';
const responses: string[] = [];

// Each command takes only its own flags: the state directory always, the policy to issue, the admin URL to revoke.
const cli = (...args: string[]) => {
  const extra = args[0] === 'token' && args[1] === 'issue' ? ['--policy', policyFile] : args[0] === 'token' && args[1] === 'revoke' ? ['--admin-url', `http://127.0.0.1:${gh.adminPort}`] : [];
  return run(process.execPath, [CLI, ...args, '--state', state, ...extra], { env: cleanEnv() });
};
const curl = async (path: string, extra: string[] = []): Promise<string> => {
  const r = await run('curl', ['-sS', '-i', '--max-time', '10', '-x', `http://gatehouse:${token}@127.0.0.1:${gh.egressPort}`, ...extra, `http://origin.test:${origin.port}${path}`], { env: cleanEnv() });
  responses.push(r.stdout, r.stderr);
  return r.stdout;
};
const admin = async (method: string, path: string, body?: unknown, auth = true): Promise<{ status: number; json: Record<string, unknown> }> => {
  const res = await fetch(`http://127.0.0.1:${gh.adminPort}${path}`, {
    method,
    headers: { ...(auth ? { authorization: `Bearer ${adminToken}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  responses.push(text);
  return { status: res.status, json: JSON.parse(text) as Record<string, unknown> };
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-e2e-'));
  state = join(dir, 'state');
  policyFile = join(dir, 'policy.yaml');
  await writeFile(policyFile, policy(true));
  origin = await startOrigin();
  gh = await startGatehouse(['--state', state, '--policy', policyFile, '--egress-listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--drain-timeout', '3s'], cleanEnv());
  adminToken = (await readFile(join(state, 'admin-token'), 'utf8')).trim();
});

afterAll(async () => {
  if (gh?.proc.exitCode === null) await gh.stop('SIGKILL');
  await origin.close();
  await rm(dir, { recursive: true, force: true });
});

describe('gatehouse up, end to end', () => {
  it('creates the state directory with mode 0700 and prints where everything listens', async () => {
    expect((await stat(state)).mode & 0o777).toBe(0o700);
    for (const f of ['keys.json', 'admin-token']) expect((await stat(join(state, f))).mode & 0o777).toBe(0o600);
    expect(gh.stdout()).toContain(`egress proxy  http://127.0.0.1:${gh.egressPort}`);
    expect(gh.stdout()).toContain('token issue');
    expect(gh.stdout()).not.toContain(adminToken);
  });

  it('refuses a second gatehouse up on the same state directory', async () => {
    const second = await run(process.execPath, [CLI, 'up', '--state', state, '--policy', policyFile, '--egress-listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--broker-listen', '127.0.0.1:0'], { env: cleanEnv(), timeoutMs: 20_000 });
    expect(second.code).toBe(1);
    expect(second.stderr).toContain('GH_ERR_STATE_LOCKED');
  });

  it('lets other commands ignore the server-only settings in their environment', async () => {
    const verify = await run(process.execPath, [CLI, 'audit', 'verify', '--state', state], { env: cleanEnv({ GATEHOUSE_EGRESS_LISTEN: 'not-an-address', GATEHOUSE_LOG_LEVEL: 'loud' }) });
    expect(verify.code).toBe(0);
  });

  it('issues a token with the CLI and proxies curl with it', async () => {
    const issued = await cli('token', 'issue', '--tenant', 'acme', '--session', 'e2e', '--allow', `origin.test:${origin.port}`, '--ttl', '5m');
    expect(issued.code).toBe(0);
    token = issued.stdout.trim();
    expect(token.split('.')).toHaveLength(3);
    expect(await curl('/e2e')).toContain('hello GET /e2e');
  });

  it('refuses to issue outside the ceiling or above the TTL limit, with exit 1 and the error code', async () => {
    const outside = await cli('token', 'issue', '--tenant', 'acme', '--allow', 'evil.example.org');
    expect(outside.code).toBe(1);
    expect(outside.stderr).toContain('GH_ERR_TOKEN_DEST_OUTSIDE_CEILING');
    const long = await cli('token', 'issue', '--tenant', 'acme', '--allow', 'example.com', '--ttl', '16m');
    expect(long.stderr).toContain('GH_ERR_TOKEN_TTL_TOO_LONG');
    const usage = await cli('token', 'issue', '--tenant', 'acme', '--bogus');
    expect(usage.code).toBe(2);
  });

  it('serves the admin API: auth required, sessions, JWKS, metrics, health', async () => {
    expect((await admin('GET', '/v1/sessions', undefined, false)).status).toBe(401);
    const created = await admin('POST', '/v1/sessions', { tenant: 'acme', session: 'api-1', egress: [`origin.test:${origin.port}`], ttl: '2m' });
    expect(created.status).toBe(201);
    expect((created.json['tokens'] as { egress: string }).egress.split('.')).toHaveLength(3);
    const bad = await admin('POST', '/v1/sessions', { tenant: 'acme', egress: ['x.example.com'], surprise: true });
    expect(bad.status).toBe(400);
    expect((bad.json['error'] as { code: string }).code).toBe('GH_ERR_ADMIN_BAD_REQUEST');
    const listed = await admin('GET', '/v1/sessions');
    expect((listed.json['sessions'] as Array<{ session: string }>).map((s) => s.session)).toContain('api-1');
    const jwks = await admin('GET', '/.well-known/jwks.json', undefined, false);
    expect((jwks.json['keys'] as Array<{ kty: string; d?: string }>)[0]).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA' });
    expect(JSON.stringify(jwks.json)).not.toContain('"d"');
    const metrics = await (await fetch(`http://127.0.0.1:${gh.adminPort}/metrics`)).text();
    expect(metrics).toMatch(/gatehouse_egress_decisions_total\{kind="http",decision="allow",reason="allowed"\} \d+/);
    expect((await admin('GET', '/healthz', undefined, false)).json['status']).toBe('ok');
  });

  it('keeps the last good policy when a change is invalid, and says so in the log and the audit trail', async () => {
    const mark = gh.mark();
    await writeFile(policyFile, `${policy(true)}\nunknown_section: {}\n`);
    const line = await gh.waitForLog(/policy change rejected/, { since: mark });
    expect(line).toContain('unknown-key');
    expect(await curl('/still-allowed')).toContain('hello GET /still-allowed');
  });

  it('applies a valid change to new connections within a second', async () => {
    let mark = gh.mark();
    const t0 = performance.now();
    await writeFile(policyFile, policy(false));
    await gh.waitForLog(/"trigger":"watch".*"policy reloaded"/, { since: mark, timeoutMs: 3000 });
    expect(performance.now() - t0).toBeLessThan(1000);
    const denied = await curl('/now-denied');
    expect(denied).toMatch(/X-Gatehouse-Deny: dest_not_allowed/i);
    mark = gh.mark();
    await writeFile(policyFile, policy(true));
    await gh.waitForLog(/"policy reloaded"/, { since: mark, timeoutMs: 3000 });
  });

  it('revokes with the CLI: a live tunnel is cut and the session refused', async () => {
    expect(await curl('/before-revoke')).toContain('hello GET /before-revoke');
    const tunnel = await openTunnel(gh.egressPort, `origin.test:${origin.port}`, token);
    const closed = whenClosed(tunnel, 3000);
    const revoked = await cli('token', 'revoke', '--session', 'e2e', '--reason', 'e2e test');
    expect(revoked.code).toBe(0);
    await closed;
    expect(await curl('/after-revoke')).toMatch(/X-Gatehouse-Deny: session_revoked/i);
    const reissue = await cli('token', 'issue', '--tenant', 'acme', '--session', 'e2e', '--allow', `origin.test:${origin.port}`);
    expect(reissue.stderr).toContain('GH_ERR_TOKEN_SESSION_REVOKED');
  });

  it('drains and exits 0 on SIGTERM, and the audit trail verifies', async () => {
    expect(await gh.stop('SIGTERM')).toBe(0);
    const verify = await cli('audit', 'verify');
    expect(verify.code).toBe(0);
    expect(verify.stdout).toContain('every chain verifies');
    const control = (await readFile(join(state, 'audit', 'control', '000000000001.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { event: { api?: { operation: string }; status_detail: string; unmapped: { gatehouse: Record<string, unknown> } } }).event);
    const reloads = control.filter((e) => e.api?.operation === 'ReloadPolicy');
    expect(reloads.map((e) => e.status_detail)).toEqual(['policy_invalid', 'allowed', 'allowed']);
    expect(String(reloads[0]?.unmapped.gatehouse['problems'])).toContain('unknown-key');
    expect(control.some((e) => e.api?.operation === 'RevokeSession' && e.unmapped.gatehouse['session'] === 'e2e')).toBe(true);
  });

  it('detects an edited audit record', async () => {
    const file = join(state, 'audit', 'egress', '000000000001.jsonl');
    const text = await readFile(file, 'utf8');
    await writeFile(file, text.replace('"hello', '"hullo').replace('"/e2e"', '"/e2f"'));
    const verify = await cli('audit', 'verify');
    expect(verify.code).toBe(1);
    expect(verify.stdout).toContain('TAMPERED');
    await writeFile(file, text);
  });

  it('never writes the session token or the admin token to logs, audit files or refusals', async () => {
    expect(token.length).toBeGreaterThan(100);
    const haystacks: Array<[string, string]> = [
      ['stdout', gh.stdout()],
      ['stderr', gh.stderr()],
      ['responses', responses.filter((r) => !r.includes('"tokens"')).join('\n')],
    ];
    const walk = async (d: string): Promise<void> => {
      for (const entry of await readdir(d, { withFileTypes: true })) {
        const p = join(d, entry.name);
        if (entry.isDirectory()) await walk(p);
        else if (!['admin-token', 'keys.json'].includes(entry.name)) haystacks.push([p, await readFile(p, 'utf8')]);
      }
    };
    await walk(state);
    const signature = token.split('.')[2] as string;
    for (const [where, text] of haystacks) {
      expect(text.includes(token), `session token in ${where}`).toBe(false);
      expect(text.includes(signature), `token signature in ${where}`).toBe(false);
      expect(text.includes(adminToken), `admin token in ${where}`).toBe(false);
    }
  });
});
