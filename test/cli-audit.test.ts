import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, startGatehouse, type GatehouseProcess } from './support/gatehouse-process.js';
import { startOrigin, type Origin } from './support/origin.js';
import { cleanEnv, run } from './support/run.js';
import { waitUntil } from './support/wait.js';
import { ORIGIN_EGRESS } from './support/origin-policy.js';

/**
 * `gatehouse audit tail | query | sinks` as an operator runs them against a real `gatehouse up`: curl traffic
 * through the proxy, then the audit commands of the built CLI, reading the state directory it wrote.
 */

const POLICY = `version: 1
${ORIGIN_EGRESS}tenants:
  - name: acme
    egress:
      allow: ["origin.test:*", "example.com"]
  - name: globex
    egress:
      allow: ["origin.test:*"]
`;

let dir: string;
let state: string;
let policyFile: string;
let origin: Origin;
let gh: GatehouseProcess;

const cli = (...args: string[]) => run(process.execPath, [CLI, ...args], { env: cleanEnv() });
const issue = async (tenant: string, session: string): Promise<string> => {
  const r = await cli('token', 'issue', '--state', state, '--policy', policyFile, '--tenant', tenant, '--session', session, '--allow', 'origin.test:*');
  expect(r.stderr).toBe('');
  return r.stdout.trim();
};
const curl = (token: string, url: string) => run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10', '-x', `http://gatehouse:${token}@127.0.0.1:${gh.egressPort}`, url], { env: cleanEnv() });

/** Records on disk per source, to know when the batched writer has caught up. */
const egressRecords = async (): Promise<number> => {
  const r = await cli('audit', 'query', '--state', state, '--source', 'egress', '--json');
  return r.stdout.split('\n').filter((l) => l.length > 0).length;
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-audit-cli-'));
  state = join(dir, 'state');
  policyFile = join(dir, 'policy.yaml');
  await writeFile(policyFile, POLICY);
  origin = await startOrigin();
  gh = await startGatehouse(['--state', state, '--policy', policyFile, '--egress-listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0'], cleanEnv());
  const alice = await issue('acme', 'alice');
  const bob = await issue('globex', 'bob');
  expect((await curl(alice, `http://origin.test:${origin.port}/a?key=SECRET-QUERY`)).stdout).toBe('200');
  expect((await curl(alice, 'http://example.org/')).stdout).toBe('403'); // outside the grant
  expect((await curl(bob, `http://origin.test:${origin.port}/b`)).stdout).toBe('200');
  expect((await curl('not-a-token', `http://origin.test:${origin.port}/c`)).stdout).toBe('407');
  await waitUntil(async () => (await egressRecords()) === 4, 'four egress events on disk');
});

afterAll(async () => {
  if (gh?.proc.exitCode === null) await gh.stop('SIGKILL');
  await origin?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('gatehouse audit tail', () => {
  it('prints the last events as a readable table, oldest first', async () => {
    const r = await cli('audit', 'tail', '--state', state, '-n', '3', '--source', 'egress');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^TIME +SOURCE +SEQ +DECISION +REASON +TENANT +SESSION +WHAT$/);
    expect(lines).toHaveLength(4);
    expect(lines[1]).toMatch(/egress +2 +DENY +dest_not_allowed +acme +alice +GET example\.org:80\/ -> 403/);
    expect(lines[2]).toMatch(/egress +3 +ALLOW +allowed +globex +bob +GET origin\.test:\d+\/b -> 200 \(127\.0\.0\.1\)/);
    expect(lines[3]).toMatch(/egress +4 +DENY +auth_invalid +- +- +gatehouse-egress logon/);
    expect(r.stdout).not.toContain('SECRET-QUERY');
  });

  it('prints the log lines themselves with --json, so they can be re-hashed', async () => {
    const r = await cli('audit', 'tail', '--state', state, '-n', '1', '--source', 'egress', '--json');
    const onDisk = (await readFile(join(state, 'audit', 'egress', '000000000001.jsonl'), 'utf8')).trim().split('\n');
    expect(r.stdout.trim()).toBe(onDisk[onDisk.length - 1]);
  });

  it('follows new events until interrupted', async () => {
    const child = spawn(process.execPath, [CLI, 'audit', 'tail', '--state', state, '-n', '1', '--follow', '--session', 'bob'], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    try {
      await waitUntil(() => out.includes('/b -> 200'), 'the tail of the log');
      const bob = await issue('globex', 'bob');
      expect((await curl(bob, `http://origin.test:${origin.port}/followed`)).stdout).toBe('200');
      await waitUntil(() => out.includes('/followed -> 200'), 'the followed event');
      expect(out).not.toContain('alice');
    } finally {
      child.kill('SIGINT');
    }
  });

  it('refuses bad flags with exit 2', async () => {
    for (const args of [['-n', '0'], ['-n', 'ten'], ['--decision', 'maybe'], ['--reason', 'not_a_reason'], ['--source', 'nowhere'], ['--since', 'yesterday'], ['--since', '2026-11-26T09:00:00'], ['--since', '1h', '--until', '2h'], ['a', 'b']]) {
      const r = await cli('audit', 'tail', '--state', state, ...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/^gatehouse: /);
    }
  });
});

describe('gatehouse audit query', () => {
  it('filters by session, tenant, decision and reason', async () => {
    const bySession = await cli('audit', 'query', '--state', state, '--session', 'alice');
    expect(bySession.stdout).toMatch(/2 event\(s\)\n$/);
    expect(bySession.stdout).not.toContain(' bob ');
    const denied = await cli('audit', 'query', '--state', state, '--decision', 'deny', '--tenant', 'acme');
    expect(denied.stdout).toMatch(/DENY +dest_not_allowed +acme/);
    expect(denied.stdout).toMatch(/1 event\(s\)\n$/);
    const auth = await cli('audit', 'query', '--state', state, '--reason', 'auth_invalid', '--reason', 'auth_missing', '--json');
    const events = auth.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: { status_detail: string } });
    expect(events.map((e) => e.event.status_detail)).toEqual(['auth_invalid']);
  });

  it('filters by time range, absolute or relative', async () => {
    const all = await cli('audit', 'query', '--state', state, '--since', '1h', '--source', 'egress', '--json');
    expect(all.stdout.trim().split('\n').length).toBeGreaterThanOrEqual(4);
    const future = await cli('audit', 'query', '--state', state, '--since', '2999-01-01T00:00:00Z');
    expect(future.stdout).toMatch(/^TIME .*\n0 event\(s\)\n$/);
    const past = await cli('audit', 'query', '--state', state, '--until', '2000-01-01');
    expect(past.stdout).toMatch(/0 event\(s\)\n$/);
  });

  it('stops at --limit and says so', async () => {
    const r = await cli('audit', 'query', '--state', state, '--limit', '2');
    expect(r.stdout).toMatch(/2 event\(s\) \(stopped at --limit 2\)\n$/);
  });

  it('skips a damaged line (audit verify reports it) instead of failing the query', async () => {
    const copy = join(dir, 'damaged');
    await mkdir(join(copy, 'egress'), { recursive: true });
    const lines = (await readFile(join(state, 'audit', 'egress', '000000000001.jsonl'), 'utf8')).split('\n');
    await writeFile(join(copy, 'egress', '000000000001.jsonl'), [lines[0], '{"torn', ...lines.slice(1)].join('\n'));
    const r = await cli('audit', 'query', copy, '--source', 'egress', '--json');
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n').length).toBeGreaterThanOrEqual(4);
    expect((await cli('audit', 'verify', copy)).code).toBe(1);
  });
});

describe('gatehouse audit sinks', () => {
  it('says when no sink is configured, through the admin API', async () => {
    const r = await cli('audit', 'sinks', '--state', state, '--admin-url', `http://127.0.0.1:${gh.adminPort}`);
    expect(r.stdout).toContain('no audit sinks configured');
    expect(r.code).toBe(0);
    // The read itself is audited.
    await waitUntil(async () => (await cli('audit', 'query', '--state', state, '--source', 'control')).stdout.includes('ListAuditSinks'), 'the ListAuditSinks event');
  });

  it('falls back to the cursor files when Gatehouse is not running', async () => {
    await mkdir(join(state, 'audit', 'cursors'), { recursive: true });
    await writeFile(join(state, 'audit', 'cursors', 'siem.json'), JSON.stringify({ confirmed: { egress: 1 }, checkpoints: {} }));
    const r = await cli('audit', 'sinks', '--state', state, '--admin-url', 'http://127.0.0.1:9');
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('gatehouse is not running');
    expect(r.stdout).toMatch(/^SINK +LAG +EGRESS/);
    expect(r.stdout).toMatch(/siem +\d+ +[3-9]/);
  });
});
