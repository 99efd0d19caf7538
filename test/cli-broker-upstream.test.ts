import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGatehouse, type GatehouseProcess } from './support/gatehouse-process.js';
import { echo, json, makeTestPki, startRecordingOrigin, type RecordingOrigin } from './support/recording-origin.js';
import { cleanEnv, run } from './support/run.js';
import { filesUnder } from './support/files-under.js';

/**
 * The broker's upstream forwarding as an operator runs it: the built CLI (`gatehouse up`) with a policy that has
 * an upstream (a local HTTPS origin, its CA in tls.ca), a session created through the admin API with egress and
 * broker grants, curl as the sandbox. At the end every byte Gatehouse printed or stored is searched for the key.
 */

const KEY = `sk-e2e-real-${randomBytes(20).toString('hex')}`;
const ENV = 'GATEHOUSE_E2E_MODEL_KEY';

let dir: string;
let state: string;
let origin: RecordingOrigin;
let gh: GatehouseProcess;
let brokerUrl = '';
let adminToken = '';
let brokerToken = '';
const clientSaw: string[] = [];

const curl = async (path: string, extra: string[] = []): Promise<{ status: number; out: string }> => {
  const r = await run('curl', ['-sS', '-i', '--max-time', '10', ...extra, `${brokerUrl}${path}`], { env: cleanEnv() });
  clientSaw.push(r.stdout, r.stderr);
  return { status: Number(/^HTTP\/[\d.]+ (\d{3})/.exec(r.stdout)?.[1] ?? 0), out: r.stdout };
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-e2e-upstream-'));
  state = join(dir, 'state');
  const pki = await makeTestPki(join(dir, 'pki'));
  origin = await startRecordingOrigin(pki);
  origin.on('/model', json(200, { id: 'chatcmpl-1', choices: [] }));
  origin.on('/model/echo', echo);
  const policyFile = join(dir, 'policy.yaml');
  await writeFile(
    policyFile,
    `version: 1
egress:
  deny: ["*.pastebin.com"]
broker:
  upstreams:
    - name: model
      url: ${origin.url}/model
      credential: {type: bearer, value: "env:${ENV}"}
      tls: {ca: "file:${pki.caPath}"}
tenants:
  - name: acme
    egress:
      allow: ["api.example.com:443"]
    broker:
      upstreams: [model]
`,
  );
  gh = await startGatehouse(
    ['--state', state, '--policy', policyFile, '--egress-listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--broker-listen', '127.0.0.1:0', '--log-level', 'debug', '--drain-timeout', '2s'],
    cleanEnv({ [ENV]: `${KEY}\n` }),
  );
  brokerUrl = /broker\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(gh.stdout())?.[1] ?? '';
  adminToken = (await readFile(join(state, 'admin-token'), 'utf8')).trim();
}, 60_000);

afterAll(async () => {
  if (gh?.proc.exitCode === null) await gh.stop('SIGKILL');
  await origin?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('gatehouse up: broker upstream forwarding end to end', () => {
  it('the admin API creates a session with egress and broker grants and returns a broker token', async () => {
    expect(brokerUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(`http://127.0.0.1:${gh.adminPort}/v1/sessions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ tenant: 'acme', egress: ['api.example.com:443'], broker: { filesystem: 'fs-e2e', upstreams: ['model'] } }),
    });
    const text = await res.text();
    clientSaw.push(text);
    expect(res.status).toBe(201);
    const body = JSON.parse(text) as { tokens: { egress?: string; broker?: string }; broker?: { upstreams: string[] } };
    expect(body.broker?.upstreams).toEqual(['model']);
    expect(body.tokens.egress).toBeTruthy();
    brokerToken = body.tokens.broker ?? '';
    expect(brokerToken).not.toBe('');
  });

  it('curl with the broker token as Bearer: the origin gets the real key (trailing newline trimmed), never the token', async () => {
    const r = await curl('/v1/upstreams/model/v1/chat/completions', ['-H', `Authorization: Bearer ${brokerToken}`, '-H', 'content-type: application/json', '-d', '{"model":"m"}']);
    expect(r.status).toBe(200);
    expect(r.out).toContain('chatcmpl-1');
    const seen = origin.requests.at(-1);
    expect(seen?.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(seen?.path).toBe('/model/v1/chat/completions');
    expect(JSON.stringify(origin.history.map((q) => [q.url, q.rawHeaders, q.body.toString()]))).not.toContain(brokerToken);
  });

  it('curl as an SDK would (token in x-api-key); an echoing upstream shows the key redacted', async () => {
    const r = await curl('/v1/upstreams/model/echo', ['-H', `x-api-key: ${brokerToken}`]);
    expect(r.status).toBe(200);
    expect(r.out).toContain('Bearer [REDACTED]');
    expect(r.out).not.toContain(KEY);
  });

  it('a traversal attempt is refused with its reason', async () => {
    const r = await curl('/v1/upstreams/model/%2e%2e/%2e%2e/admin', ['-H', `Authorization: Bearer ${brokerToken}`, '--path-as-is']);
    expect(r.status).toBe(400);
    expect(r.out).toContain('"reason":"path_invalid"');
  });

  it('after a clean stop, neither the key nor the broker token is in stdout, stderr or any file of the state directory', async () => {
    expect(await gh.stop('SIGTERM')).toBe(0);
    const files = await filesUnder(state);
    const stored = await Promise.all(files.map(async (f) => [f, await readFile(f, 'latin1')] as const));
    const audit = stored.filter(([f]) => f.includes(`${join(state, 'audit')}`)).map(([, t]) => t).join('\n');
    // The audit log has the calls (upstream named, path without query), so the search below looks at real content.
    expect(audit).toContain('CallUpstream');
    expect(audit).toContain('"upstream":"model"');
    expect(gh.stderr()).toContain('broker'); // debug logs were written
    const haystacks: Array<readonly [string, string]> = [['stdout', gh.stdout()], ['stderr', gh.stderr()], ['client', clientSaw.join('\n')], ...stored];
    for (const [where, text] of haystacks) {
      expect(text.includes(KEY), `key in ${where}`).toBe(false);
      if (where !== 'client') expect(text.includes(brokerToken), `broker token in ${where}`).toBe(false);
    }
  });
});
