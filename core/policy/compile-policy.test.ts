import { describe, expect, it } from 'vitest';
import { compilePolicy } from './compile-policy.js';
import { defaultPolicyText } from './default-policy.js';
import { formatProblem } from './yaml-source.js';

const errorsOf = (text: string) =>
  compilePolicy(text, 'p.yaml')
    .problems.filter((p) => p.severity === 'error')
    .map((p) => `${p.line}:${p.col} ${p.code}`);

describe('compilePolicy', () => {
  it('compiles the default policy with no errors and applies defaults', () => {
    const { policy, problems } = compilePolicy(defaultPolicyText('./schema.json'), 'default.yaml');
    expect(problems.filter((p) => p.severity === 'error')).toEqual([]);
    expect(policy?.tokens.maxTtlMs).toBe(15 * 60_000);
    expect(policy?.egress.limits.connectTimeoutMs).toBe(10_000);
    expect(policy?.tenants.get('default')?.allow.all.length).toBeGreaterThan(3);
    expect(policy?.version).toMatch(/^sha256:[0-9a-f]{16}$/);
  });

  it('reports every problem with file:line:col, not just the first', () => {
    const text = ['version: 1', 'tokenz: {}', 'tenants:', '  - name: a', '    egres: {}', '  - name: 7', ''].join('\n');
    const { policy, problems } = compilePolicy(text, 'p.yaml');
    expect(policy).toBeNull();
    expect(problems.map(formatProblem)).toEqual([
      'p.yaml:2:1: error unknown-key unknown key "tokenz"; did you mean "tokens"?',
      'p.yaml:5:5: error unknown-key unknown key "egres"; did you mean "egress"?',
      'p.yaml:6:11: error wrong-type "name": expected string',
    ]);
  });

  // [what, policy text, expected "line:col code" list]
  const bad: ReadonlyArray<readonly [string, string, string[]]> = [
    ['not YAML', 'version: [1\n', ['2:1 yaml-syntax']],
    ['YAML but not a mapping', '- a\n- b\n', ['1:1 not-a-mapping']],
    ['a scalar', 'hello\n', ['1:1 not-a-mapping']],
    ['wrong version', 'version: 2\n', ['1:10 invalid-value']],
    ['missing version', 'tenants: []\n', ['1:1 missing-key']],
    ['duplicate keys', 'version: 1\nversion: 1\n', ['2:1 duplicate-key']],
    ['tab indentation', 'version: 1\ntenants:\n\t- name: a\n', ['3:1 yaml-tab']],
    ['custom tag', 'version: !!binary aGVsbG8=\n', ['1:19 yaml-tag']],
    ['merge keys are plain (unknown) keys', 'version: 1\nx: &a {mode: report}\negress:\n  <<: *a\n', ['2:1 unknown-key', '4:3 unknown-key']],
    [
      'alias expansion beyond the bound (billion laughs)',
      'version: 1\na: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n',
      ['1:1 yaml-too-complex'],
    ],
    ['larger than the bound', `version: 1\n# ${'x'.repeat(1024 * 1024)}\n`, ['1:1 policy-too-large']],
    
    ['two documents', 'version: 1\n---\nversion: 1\n', ['2:1 yaml-multiple-documents']],
    ['over-broad *', 'version: 1\ntenants:\n  - name: a\n    egress:\n      allow: ["*"]\n', ['5:15 over-broad']],
    ['over-broad *.com', 'version: 1\ntenants:\n  - name: a\n    egress:\n      allow: ["*.com"]\n', ['5:15 over-broad']],
    ['over-broad *.co.uk', 'version: 1\ntenants:\n  - name: a\n    egress:\n      allow: ["*.co.uk"]\n', ['5:15 over-broad']],
    ['over-broad CIDR', 'version: 1\ntenants:\n  - name: a\n    egress:\n      allow: ["0.0.0.0/0"]\n', ['5:15 over-broad']],
    ['middle wildcard', 'version: 1\ntenants:\n  - name: a\n    egress:\n      allow: ["api.*.com"]\n', ['5:15 invalid-host']],
    ['bad port', 'version: 1\ntenants:\n  - name: a\n    egress:\n      allow: ["a.com:99999"]\n', ['5:15 invalid-ports']],
    ['bad host', 'version: 1\ntenants:\n  - name: a\n    egress:\n      allow: ["a b.com"]\n', ['5:15 invalid-host']],
    ['ports twice', 'version: 1\ntenants:\n  - name: a\n    egress:\n      allow: [{host: "a.com:443", ports: [80]}]\n', ['5:22 invalid-ports']],
    ['empty ports list', 'version: 1\ntenants:\n  - name: a\n    egress:\n      allow: [{host: a.com, ports: []}]\n', ['5:36 out-of-range']],
    ['duplicate tenant', 'version: 1\ntenants:\n  - name: a\n  - name: a\n', ['4:11 duplicate-tenant']],
    ['bad tenant name', 'version: 1\ntenants:\n  - name: "A B"\n', ['3:11 invalid-value']],
    ['TTL above the hard maximum', 'version: 1\ntokens:\n  max_ttl: 25h\n', ['3:12 ttl-too-long']],
    ['default TTL above max', 'version: 1\ntokens:\n  max_ttl: 5m\n  default_ttl: 10m\n', ['4:16 ttl-too-long']],
    ['not a duration', 'version: 1\ntokens:\n  max_ttl: soon\n', ['3:12 invalid-value']],
    ['wrong type for a limit', 'version: 1\negress:\n  limits:\n    max_connections: "many"\n', ['4:22 wrong-type']],
    ['exception too wide', 'version: 1\negress:\n  unsafe_allow_private:\n    - {host: a.internal, cidr: 10.0.0.0/7}\n', ['4:32 over-broad']],
    ['exception with host bits', 'version: 1\negress:\n  unsafe_allow_private:\n    - {host: a.internal, cidr: 10.0.0.1/8}\n', ['4:32 invalid-cidr']],
    ['mode on an allow rule', 'version: 1\ntenants:\n  - name: a\n    egress:\n      allow: [{host: a.com, mode: report}]\n', ['5:29 mode-not-applicable']],
  ];
  it.each(bad)('refuses %s', (_what, text, expected) => {
    expect(errorsOf(text)).toEqual(expected);
  });

  it('refuses very deep nesting with one clear error instead of crashing', () => {
    const errors = errorsOf(`version: 1\na: ${'['.repeat(5000)}${']'.repeat(5000)}\n`);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^2:\d+ yaml-too-complex$/);
  });

  it('warns about unexplained unsafe exceptions but compiles; a stated reason is a reviewed exception', () => {
    const { policy, problems } = compilePolicy('version: 1\negress:\n  unsafe_allow_private:\n    - {host: origin.test, cidr: 127.0.0.0/8}\n', 'p.yaml');
    expect(policy).not.toBeNull();
    expect(problems.map((p) => `${p.severity} ${p.code}`)).toEqual(['warning unsafe-exception']);
    const reviewed = compilePolicy('version: 1\negress:\n  unsafe_allow_private:\n    - {host: origin.test, cidr: 127.0.0.0/8, reason: local test origin}\n', 'p.yaml');
    expect(reviewed.problems).toEqual([]);
  });

  it('accepts an empty tenant list (everything is refused)', () => {
    const { policy } = compilePolicy('version: 1\n', 'p.yaml');
    expect(policy?.tenants.size).toBe(0);
  });
});
