import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UnsecuredJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, REPO } from './support/gatehouse-process.js';
import { run } from './support/run.js';

/** The policy commands on the broker section, as a security engineer runs them in CI: the built CLI, real files. */

const gatehouse = (...args: string[]) => run(process.execPath, [CLI, ...args], { cwd: REPO });
const TEAM = 'policies/examples/team.yaml';
const SOLO = 'policies/examples/solo-developer.yaml';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-policy-broker-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('gatehouse policy lint: broker rules', () => {
  it('lists the broker lint codes', async () => {
    const r = await gatehouse('policy', 'lint', '--list');
    for (const code of ['unused-upstream', 'unused-store', 'empty-broker-ceiling', 'ineffective-object-limit']) expect(r.stdout).toMatch(new RegExp(`^${code} +warning `, 'm'));
  });

  it('reports broker warnings located in the file, and fails --strict on them', async () => {
    const file = join(dir, 'unused.yaml');
    await writeFile(file, 'version: 1\nbroker:\n  upstreams:\n    - name: model\n      url: https://api.example.com\n      credential: {type: bearer, value: "env:MODEL_KEY"}\ntenants:\n  - name: a\n    broker:\n      mounts: [{path: /in, mode: ro, max_object_bytes: 1GiB}]\n');
    const r = await gatehouse('policy', 'lint', '--strict', file);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`${file}:4:13: warning unused-upstream no tenant may be granted upstream "model"`);
    expect(r.stdout).toMatch(new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:10:\\d+: warning ineffective-object-limit`));
  });
});

describe('gatehouse policy explain: broker decisions', () => {
  it('names the mount that refuses a write, with file:line:col', async () => {
    const r = await gatehouse('policy', 'explain', '--policy', TEAM, '--tenant', 'data', '--file', '/inputs/q3.csv', '--op', 'write');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^DENY {2}mount_read_only/);
    expect(r.stdout).toMatch(/decided by +tenants\[data\]\.broker\.mounts\[0\] \/inputs ro {2}\(policies\/examples\/team\.yaml:\d+:11\)/);
    expect(r.stdout).toContain('broker says    /inputs is read-only for this session');
  });

  it('allows a write within the ceiling and says how large a file may be', async () => {
    const r = await gatehouse('policy', 'explain', '--policy', TEAM, '--tenant', 'data', '--file', '/outputs/r.parquet', '--op', 'write', '--format', 'json');
    expect(JSON.parse(r.stdout)).toMatchObject({ decision: 'allow', reason: 'allowed', decidedBy: { id: 'tenants[data].broker.mounts[1]' }, detail: 'write under /outputs (rw), files up to 10GiB', grantAssumed: true });
  });

  it("reads a broker token's claims offline and holds them to the ceiling", async () => {
    const token = new UnsecuredJWT({ tenant: 'me', filesystem_id: 'fs1', mounts: { '/workspace': 'ro', '/reference': 'rw' }, upstreams: [] }).encode();
    const write = await gatehouse('policy', 'explain', '--policy', SOLO, '--token', token, '--file', '/workspace/a.py', '--op', 'write', '--format', 'json');
    expect(JSON.parse(write.stdout)).toMatchObject({ decision: 'deny', reason: 'mount_read_only', decidedByStage: 'grant', grantAssumed: false });
    // rw in the token, ro in the ceiling: the ceiling wins, and is what decided.
    const ref = await gatehouse('policy', 'explain', '--policy', SOLO, '--token', token, '--file', '/reference/a.md', '--op', 'delete');
    expect(ref.stdout).toMatch(/decided by +tenants\[me\]\.broker\.mounts\[1\]/);
    const model = await gatehouse('policy', 'explain', '--policy', SOLO, '--token', token, '--upstream', 'anthropic');
    expect(model.stdout).toMatch(/^DENY {2}upstream_not_granted/);
    expect(model.stdout).toMatch(/decided by +the token's own grant/);
  });

  it('takes a grant as --mount and --grant-upstream', async () => {
    const r = await gatehouse('policy', 'explain', '--policy', SOLO, '--tenant', 'me', '--mount', '/workspace:rw', '--grant-upstream', 'anthropic', '--upstream', 'anthropic', '--format', 'json');
    expect(JSON.parse(r.stdout)).toMatchObject({ decision: 'allow', decidedBy: { id: 'tenants[me].broker.upstreams[0]' }, grantAssumed: false });
  });

  it('refuses a path the broker would refuse, before any mount', async () => {
    const r = await gatehouse('policy', 'explain', '--policy', SOLO, '--tenant', 'me', '--file', '/workspace/../reference/x', '--op', 'write');
    expect(r.stdout).toMatch(/^DENY {2}path_invalid/);
    expect(r.stdout).toMatch(/decided by +the path rules/);
  });

  it('refuses bad input with exit 2', async () => {
    const bad = [
      ['--file', '/workspace/x', 'api.example.com'], // a destination and a file
      ['--file', '/workspace/x', '--upstream', 'anthropic'],
      ['--file', '/workspace/x', '--op', 'move'],
      ['--upstream', 'anthropic', '--op', 'read'], // --op goes with --file
      ['--upstream', 'anthropic', '--grant', 'api.anthropic.com'], // an egress grant
      ['--mount', '/workspace:rw', 'api.anthropic.com'], // a broker grant for an egress destination
      ['--file', '/workspace/x', '--mount', '/workspace:rx'],
    ];
    for (const args of bad) expect((await gatehouse('policy', 'explain', '--policy', SOLO, '--tenant', 'me', ...args)).code, args.join(' ')).toBe(2);
  });
});

describe('gatehouse policy test: broker cases', () => {
  it('runs broker cases beside egress ones, with a readable diff when one fails', async () => {
    await writeFile(join(dir, 'b.yaml'), 'version: 1\ntenants:\n  - name: a\n    broker:\n      mounts: [{path: /in, mode: ro}, {path: /out, mode: rw}]\n');
    await writeFile(
      join(dir, 'b.test.yaml'),
      'policy: b.yaml\ncases:\n  - name: writes outputs\n    tenant: a\n    broker: {file: /out/x, op: write}\n    expect: {decision: allow, rule: "tenants[a].broker.mounts[1]"}\n  - name: wrong on purpose\n    tenant: a\n    broker: {file: /in/x, op: write}\n    expect: {decision: allow}\n',
    );
    const r = await gatehouse('policy', 'test', join(dir, 'b.test.yaml'));
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('✓ writes outputs');
    expect(r.stdout).toMatch(/✗ wrong on purpose {2}\(.*b\.test\.yaml:7\)/);
    expect(r.stdout).toContain('+ decision: deny');
  });

  it('reports a misspelt broker key with its location', async () => {
    await writeFile(join(dir, 'typo.test.yaml'), 'policy: b.yaml\ncases:\n  - name: typo\n    tenant: a\n    broker: {file: /out/x, opp: write}\n    expect: {decision: allow}\n');
    const r = await gatehouse('policy', 'test', join(dir, 'typo.test.yaml'));
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/typo\.test\.yaml:5:\d+: error unknown-key unknown key "opp"; did you mean "op"\?/);
  });

  it('publishes the broker case keys in the test-file schema', async () => {
    const schema = await readFile(join(REPO, 'policies', 'test-schema.json'), 'utf8');
    expect(schema).toContain('"upstream"');
    expect(schema).toContain('"delete"');
  });
});

describe('gatehouse policy diff: broker changes', () => {
  it('reports mounts, writes, stores, upstreams and limits per tenant and policy-wide, credentials by reference only', async () => {
    const base = (over: Record<string, string>) =>
      `version: 1\nbroker:\n  stores:\n    - {name: files, type: local}\n    - {name: vault, type: local, path: ${over['path'] ?? '/srv/a'}}\n  upstreams:\n    - name: model\n      url: ${over['url'] ?? 'https://api.example.com'}\n      credential: {type: header, header: x-api-key, value: "${over['key'] ?? 'env:MODEL_KEY'}"}\n      headers: {api-version: "${over['version'] ?? '1'}"}\n${over['extra'] ?? ''}tenants:\n  - name: a\n    broker:\n      store: ${over['store'] ?? 'files'}\n      mounts:\n${over['mounts'] ?? '        - {path: /in, mode: ro}\n        - {path: /out, mode: rw, max_object_bytes: 1GiB}\n'}      upstreams: [${over['grant'] ?? 'model'}]\n      limits: {per_session: {burst: ${over['burst'] ?? '10'}}}\n  - name: b\n    broker: {store: vault, mounts: [{path: /x, mode: ro}]}\n`;
    await writeFile(join(dir, 'd-old.yaml'), base({}));
    await writeFile(
      join(dir, 'd-new.yaml'),
      base({
        path: '/srv/b',
        url: 'https://api.example.org',
        key: 'env:MODEL_KEY_2',
        version: '2',
        store: 'vault',
        mounts: '        - {path: /in, mode: rw}\n        - {path: /out, mode: rw, max_object_bytes: 2GiB}\n        - {path: /logs, mode: ro}\n',
        grant: 'model, search',
        burst: '20',
        extra: '    - {name: search, url: "https://search.example.com", credential: {type: bearer, value: "env:SEARCH_TOKEN"}}\n',
      }),
    );
    const r = await gatehouse('policy', 'diff', join(dir, 'd-old.yaml'), join(dir, 'd-new.yaml'));
    expect(r.code).toBe(1);
    const lines = r.stdout.split('\n').map((l) => l.trim().replace(/ +/g, ' '));
    expect(lines).toEqual(
      expect.arrayContaining([
        'tenant a',
        '+ allow write /in ro -> rw',
        '~ mount /out max_object_bytes 1GiB -> 2GiB',
        '+ allow mount /logs (ro) tenants[a].broker.mounts[2]',
        '+ allow upstream search https://search.example.com',
        '~ broker.store files (local <state>/files) -> vault (local /srv/b)',
        '~ broker.per_session.burst 10 -> 20',
        'broker',
        '~ store vault path /srv/a -> /srv/b',
        '~ upstream model url https://api.example.com -> https://api.example.org',
        '~ upstream model credential header x-api-key env:MODEL_KEY -> header x-api-key env:MODEL_KEY_2',
        '+ upstream search https://search.example.com (bearer env:SEARCH_TOKEN)',
        '~ upstream model header api-version 1 -> 2',
      ]),
    );
    const json = JSON.parse((await gatehouse('policy', 'diff', '--format', 'json', join(dir, 'd-new.yaml'), join(dir, 'd-old.yaml'))).stdout) as { changes: Array<{ section: string; tenant?: string; change: string; subject: string }> };
    expect(json.changes).toEqual(expect.arrayContaining([{ section: 'broker', tenant: 'a', change: 'no-longer-allowed', subject: 'write /in', before: 'rw', after: 'ro' }]));
    expect(json.changes).toEqual(expect.arrayContaining([expect.objectContaining({ section: 'broker', tenant: 'a', change: 'no-longer-allowed', subject: 'upstream search' })]));
  });

  it('says nothing changed when the broker section only moved around', async () => {
    await writeFile(join(dir, 's1.yaml'), 'version: 1\ntenants:\n  - name: a\n    broker: {mounts: [{path: /in, mode: ro}, {path: /out, mode: rw}]}\n');
    await writeFile(join(dir, 's2.yaml'), 'version: 1\ntenants:\n  - name: a\n    broker:\n      mounts:\n        - {mode: rw, path: /out}\n        - {path: /in, mode: ro}\n      upstreams: []\n');
    const r = await gatehouse('policy', 'diff', join(dir, 's1.yaml'), join(dir, 's2.yaml'));
    expect(r.stdout.trim()).toBe('no semantic changes');
    expect(r.code).toBe(0);
  });
});
