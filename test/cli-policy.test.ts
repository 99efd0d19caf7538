import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UnsecuredJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, REPO } from './support/gatehouse-process.js';
import { run } from './support/run.js';

/** The policy commands as a security engineer runs them in a CI job: the built CLI, real files, exit codes. */

const gatehouse = (...args: string[]) => run(process.execPath, [CLI, ...args], { cwd: REPO });
const EXAMPLES = ['solo-developer.yaml', 'team.yaml', 'locked-down.yaml'].map((f) => join('policies', 'examples', f));

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-policy-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('gatehouse policy lint', () => {
  it('passes the shipped examples clean (exit 0, no warnings)', async () => {
    const r = await gatehouse('policy', 'lint', '--strict', ...EXAMPLES);
    expect(r.stdout).toContain('3 file(s): 0 error(s), 0 warning(s)');
    expect(r.code).toBe(0);
  });

  it('reports every problem as file:line:col: severity code message and exits 1 on errors', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(file, 'version: 1\ntokenz: {}\ntenants:\n  - name: a\n    egress:\n      allow: ["*.com", "*.example.com", api.example.com]\n');
    const r = await gatehouse('policy', 'lint', file);
    expect(r.code).toBe(1);
    expect(r.stdout.split('\n').slice(0, 2)).toEqual([
      `${file}:2:1: error unknown-key unknown key "tokenz"; did you mean "tokens"?`,
      `${file}:6:15: error over-broad "*.com" covers a whole public suffix; name the registrable domain, e.g. *.example.com`,
    ]);
  });

  it('exits 0 on warnings, 1 with --strict, and speaks JSON for machines', async () => {
    const file = join(dir, 'warn.yaml');
    await writeFile(file, 'version: 1\ntenants:\n  - name: a\n    egress:\n      allow: ["*.example.com", api.example.com]\n');
    expect((await gatehouse('policy', 'lint', file)).code).toBe(0);
    expect((await gatehouse('policy', 'lint', '--strict', file)).code).toBe(1);
    const json = JSON.parse((await gatehouse('policy', 'lint', '--format', 'json', file)).stdout) as { warnings: number; problems: Array<{ code: string; line: number }> };
    expect(json.warnings).toBe(1);
    expect(json.problems[0]).toMatchObject({ code: 'shadowed-rule', line: 5 });
  });

  it('exits 2 on usage errors and reports unreadable files as problems', async () => {
    expect((await gatehouse('policy', 'lint')).code).toBe(2);
    expect((await gatehouse('policy', 'lint', '--format', 'xml', EXAMPLES[0] as string)).code).toBe(2);
    const missing = await gatehouse('policy', 'lint', join(dir, 'nope.yaml'));
    expect(missing.code).toBe(1);
    expect(missing.stdout).toMatch(/nope\.yaml:1:1: error unreadable/);
  });
});

describe('gatehouse policy explain', () => {
  it('prints the decision, its reason and the rule with file:line', async () => {
    const r = await gatehouse('policy', 'explain', '--policy', 'policies/examples/team.yaml', '--tenant', 'data', 'warehouse.example.com:8443');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^DENY {2}dest_denied/);
    expect(r.stdout).toMatch(/decided by +tenants\[data\]\.egress\.deny\[0\] warehouse\.example\.com:8443 {2}\(policies\/examples\/team\.yaml:65:11\)/);
    expect(r.stdout).toMatch(/assumed grant\* +match/);
  });

  it('names the address guard as what decided, and uses the policy resolver.hosts without --address', async () => {
    // git.internal.example.com resolves to 10.20.0.5 through the policy's fixed hosts, allowed by its exception.
    const ci = await gatehouse('policy', 'explain', '--policy', 'policies/examples/team.yaml', '--tenant', 'ci', '--format', 'json', 'git.internal.example.com');
    expect(JSON.parse(ci.stdout)).toMatchObject({ decision: 'allow', addressSource: 'policy resolver.hosts' });
    // The same name for a tenant whose ceiling lacks it never reaches the guard.
    const research = await gatehouse('policy', 'explain', '--policy', 'policies/examples/team.yaml', '--tenant', 'research', '--grant', 'api.anthropic.com', 'api.anthropic.com', '--address', '10.0.0.7');
    expect(research.stdout).toMatch(/^DENY {2}ip_denied_private/);
    expect(research.stdout).toMatch(/decided by +the address guard/);
    expect(research.stdout).not.toContain('deny by default');
  });

  it('reads the policy from GATEHOUSE_POLICY and ignores server-only settings', async () => {
    const env = { ...process.env, GATEHOUSE_POLICY: 'policies/examples/team.yaml', GATEHOUSE_ADMIN_LISTEN: 'not an address', GATEHOUSE_EGRESS_LISTEN: 'nope' };
    const r = await run(process.execPath, [CLI, 'policy', 'explain', '--tenant', 'data', 'warehouse.example.com:8443'], { cwd: REPO, env });
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^DENY {2}dest_denied/);
  });

  it('runs the address guard with --address and reads grants from a token', async () => {
    const token = new UnsecuredJWT({ tenant: 'me', egress: ['api.anthropic.com:443'] }).encode();
    const r = await gatehouse('policy', 'explain', '--policy', 'policies/examples/solo-developer.yaml', '--token', token, '--format', 'json', 'https://api.anthropic.com/v1/messages', '--address', '169.254.169.254');
    const e = JSON.parse(r.stdout) as { decision: string; reason: string; grantAssumed: boolean };
    expect(e).toMatchObject({ decision: 'deny', reason: 'ip_denied_metadata', grantAssumed: false });
    const outside = await gatehouse('policy', 'explain', '--policy', 'policies/examples/solo-developer.yaml', '--token', token, 'pypi.org:443');
    expect(outside.stdout).toMatch(/^DENY {2}dest_not_allowed/);
  });

  it('refuses bad input with exit 2', async () => {
    expect((await gatehouse('policy', 'explain', '--policy', 'policies/examples/team.yaml', 'x.example.com')).code).toBe(2); // no tenant
    expect((await gatehouse('policy', 'explain', '--policy', 'policies/examples/team.yaml', '--tenant', 'ci', 'bad host:99999')).code).toBe(2);
  });
});

describe('gatehouse policy test', () => {
  it('runs the shipped example tests', async () => {
    const r = await gatehouse('policy', 'test', 'policies/examples');
    expect(r.stdout).toMatch(/\d+ passed, 0 failed/);
    expect(r.code).toBe(0);
  });

  it('shows a readable diff for a failing case and exits 1; JUnit for CI', async () => {
    await writeFile(join(dir, 'p.yaml'), 'version: 1\ntenants:\n  - name: a\n    egress:\n      allow: [api.example.com]\n');
    await writeFile(join(dir, 'p.test.yaml'), 'policy: p.yaml\ncases:\n  - name: allowed\n    tenant: a\n    destination: api.example.com\n    expect: {decision: allow}\n  - name: wrong on purpose\n    tenant: a\n    destination: other.example.com\n    expect: {decision: allow, reason: allowed}\n');
    const r = await gatehouse('policy', 'test', dir);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('✓ allowed');
    expect(r.stdout).toMatch(/✗ wrong on purpose {2}\(.*p\.test\.yaml:7\)/);
    expect(r.stdout).toContain('- decision: allow');
    expect(r.stdout).toContain('+ decision: deny');
    expect(r.stdout).toContain('+ reason: dest_not_allowed');
    const junit = await gatehouse('policy', 'test', '--format', 'junit', dir);
    expect(junit.stdout).toContain('<testsuite ');
    expect(junit.stdout).toMatch(/<testcase [^>]*name="wrong on purpose"[^>]*><failure /);
    // Paths relative to the working directory, as CI reporters link them to the repository.
    const here = await run(process.execPath, [CLI, 'policy', 'test', '--format', 'junit', '.'], { cwd: dir });
    expect(here.stdout).toContain('file="p.test.yaml"');
    expect(here.stdout).not.toContain(dir);
  });

  it('rejects an expected reason that is not a reason code', async () => {
    const sub = join(dir, 'badreason');
    await run('mkdir', ['-p', sub]);
    await writeFile(join(sub, 'r.test.yaml'), 'policy: ../p.yaml\ncases:\n  - name: typo in reason\n    tenant: a\n    destination: x.example.com\n    expect: {decision: deny, reason: dest_not_alowed}\n');
    const r = await gatehouse('policy', 'test', sub);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/r\.test\.yaml:6:\d+: error invalid-value/);
  });

  it('reports a broken test file with its location instead of crashing', async () => {
    const sub = join(dir, 'broken');
    await run('mkdir', ['-p', sub]);
    await writeFile(join(sub, 'x.test.yaml'), 'policy: ../p.yaml\ncases:\n  - name: typo\n    tenent: a\n    destination: x.example.com\n    expect: {decision: deny}\n');
    const r = await gatehouse('policy', 'test', sub);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/x\.test\.yaml:4:5: error unknown-key unknown key "tenent"; did you mean "tenant"\?/);
  });
});

describe('gatehouse policy diff', () => {
  it('says what changes in effect, per tenant, and exits 1 when anything does', async () => {
    await writeFile(join(dir, 'old.yaml'), 'version: 1\ntenants:\n  - name: a\n    egress:\n      allow: [api.example.com, "*.pypi.org:443"]\n');
    await writeFile(join(dir, 'new.yaml'), 'version: 1\ntokens: {max_ttl: 5m}\ntenants:\n  - name: a\n    egress:\n      allow: [api.example.com, files.pypi.org:443, "db.example.com:5432"]\n      deny: [api.example.com:80]\n');
    const r = await gatehouse('policy', 'diff', join(dir, 'old.yaml'), join(dir, 'new.yaml'));
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('+ allow db.example.com:5432');
    expect(r.stdout).toContain('- allow *.pypi.org:443');
    expect(r.stdout).toContain('+ deny  api.example.com:80');
    expect(r.stdout).toContain('max_ttl  15m -> 5m');
    expect(r.stdout).not.toContain('files.pypi.org'); // covered by the old wildcard: not new access
  });

  it('exits 0 when two policies mean the same, even written differently', async () => {
    await writeFile(join(dir, 'same1.yaml'), 'version: 1\ntenants:\n  - name: a\n    egress:\n      allow: ["api.example.com:80,443"]\n');
    await writeFile(join(dir, 'same2.yaml'), '# reordered, spelled differently\nversion: 1\ntenants:\n- name: a\n  egress:\n    allow:\n    - {host: API.Example.com., ports: [443, 80]}\n');
    const r = await gatehouse('policy', 'diff', join(dir, 'same1.yaml'), join(dir, 'same2.yaml'));
    expect(r.stdout.trim()).toBe('no semantic changes');
    expect(r.code).toBe(0);
  });

  it('refuses an invalid policy with its problems', async () => {
    await writeFile(join(dir, 'invalid.yaml'), 'version: 2\n');
    const r = await gatehouse('policy', 'diff', join(dir, 'old.yaml'), join(dir, 'invalid.yaml'));
    // 1 means "changes"; a policy that does not load is a different answer.
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('GH_ERR_POLICY_INVALID');
    expect(r.stderr).toMatch(/invalid\.yaml:1:10: error invalid-value/);
  });
});
