import { describe, expect, it } from 'vitest';
import { lintCodes, lintPolicy } from './lint-policy.js';

const tenant = (allow: string, extra = ''): string => `version: 1\n${extra}tenants:\n  - name: a\n    egress:\n      allow: [${allow}]\n`;

/**
 * Every lint and load code, each with a policy that triggers it and a close variant that does not. A test below
 * checks that this table covers every code Gatehouse can report, so a new rule cannot ship untested.
 */
const CASES: Readonly<Record<string, { readonly bad: string; readonly good: string }>> = {
  'unknown-key': { bad: 'version: 1\ntokenz: {}\n', good: 'version: 1\ntokens: {}\n' },
  'missing-key': { bad: 'tenants: []\n', good: 'version: 1\ntenants: []\n' },
  'wrong-type': { bad: 'version: 1\negress: {limits: {max_connections: many}}\n', good: 'version: 1\negress: {limits: {max_connections: 100}}\n' },
  'invalid-value': { bad: 'version: 1\negress: {mode: audit}\n', good: 'version: 1\negress: {mode: report}\n' },
  'out-of-range': { bad: 'version: 1\negress: {limits: {max_header_bytes: 10}}\n', good: 'version: 1\negress: {limits: {max_header_bytes: 16384}}\n' },
  'invalid-host': { bad: tenant('"exa mple.com"'), good: tenant('example.com') },
  'invalid-ports': { bad: tenant('"example.com:0"'), good: tenant('"example.com:8080"') },
  'over-broad': { bad: tenant('"*.co.uk"'), good: tenant('"*.example.co.uk"') },
  'invalid-cidr': { bad: 'version: 1\negress: {unsafe_allow_private: [{host: a.internal, cidr: 10.0.0.1/8, reason: x}]}\n', good: 'version: 1\negress: {unsafe_allow_private: [{host: a.internal, cidr: 10.0.0.0/8, reason: x}]}\n' + 'tenants: [{name: a, egress: {allow: [a.internal]}}]\n' },
  'invalid-address': { bad: 'version: 1\negress: {resolver: {hosts: {a.internal: [not-an-ip]}}}\n', good: 'version: 1\negress: {resolver: {hosts: {a.internal: [192.0.2.1]}}}\n' },
  'duplicate-tenant': { bad: 'version: 1\ntenants: [{name: a, egress: {allow: [x.com]}}, {name: a, egress: {allow: [y.com]}}]\n', good: 'version: 1\ntenants: [{name: a, egress: {allow: [x.com]}}, {name: b, egress: {allow: [y.com]}}]\n' },
  'ttl-too-long': { bad: 'version: 1\ntokens: {max_ttl: 2d}\n', good: 'version: 1\ntokens: {max_ttl: 2h}\n' },
  'mode-not-applicable': { bad: tenant('{host: example.com, mode: report}'), good: tenant('{host: example.com}') },
  'unsafe-exception': { bad: 'version: 1\negress: {unsafe_allow_private: [{host: a.internal, cidr: 10.1.0.0/16}]}\ntenants: [{name: a, egress: {allow: [a.internal]}}]\n', good: 'version: 1\negress: {unsafe_allow_private: [{host: a.internal, cidr: 10.1.0.0/16, reason: the build cache}]}\ntenants: [{name: a, egress: {allow: [a.internal]}}]\n' },
  'yaml-syntax': { bad: 'version: [1\n', good: 'version: 1\n' },
  'yaml-tab': { bad: 'version: 1\ntenants:\n\t- name: a\n', good: 'version: 1\ntenants:\n  - name: a\n    egress: {allow: [x.com]}\n' },
  'yaml-tag': { bad: 'version: !!int 1\n', good: 'version: 1\n' },
  'yaml-too-complex': { bad: `version: 1\na: &a [x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c]\n`, good: 'version: 1\n' },
  'yaml-multiple-documents': { bad: 'version: 1\n---\nversion: 1\n', good: 'version: 1\n' },
  'duplicate-key': { bad: 'version: 1\nversion: 1\n', good: 'version: 1\n' },
  'not-a-mapping': { bad: '- version: 1\n', good: 'version: 1\n' },
  'policy-too-large': { bad: `version: 1\n#${'x'.repeat(1024 * 1024)}\n`, good: 'version: 1\n# small\n' },
  'shadowed-rule': { bad: tenant('"*.example.com", api.example.com'), good: tenant('"*.example.com", api.example.org') },
  'never-matches': { bad: tenant('api.example.com', 'egress: {deny: ["*.example.com"]}\n'), good: tenant('api.example.com', 'egress: {deny: ["*.example.org"]}\n') },
  'empty-ceiling': { bad: 'version: 1\ntenants: [{name: a}]\n', good: 'version: 1\ntenants: [{name: a, egress: {allow: [x.com]}}]\n' },
  'broad-wildcard': { bad: tenant('"*.github.io"'), good: tenant('"docs.github.io"') },
  'unused-exception': { bad: 'version: 1\negress: {unsafe_allow_private: [{host: b.internal, cidr: 10.1.0.0/16, reason: x}]}\ntenants: [{name: a, egress: {allow: [a.internal]}}]\n', good: 'version: 1\negress: {unsafe_allow_private: [{host: a.internal, cidr: 10.1.0.0/16, reason: x}]}\ntenants: [{name: a, egress: {allow: [a.internal]}}]\n' },
  'inline-secret': { bad: tenant('{host: api.anthropic.com, note: "key sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz012345"}'), good: tenant('{host: api.anthropic.com, note: "key comes from env:ANTHROPIC_API_KEY"}') },
  'duplicate-sink': {
    bad: 'version: 1\naudit: {sinks: [{name: s, type: syslog, address: "127.0.0.1:514"}, {name: s, type: syslog, address: "127.0.0.1:515"}]}\n',
    good: 'version: 1\naudit: {sinks: [{name: s, type: syslog, address: "127.0.0.1:514"}, {name: t, type: syslog, address: "127.0.0.1:515"}]}\n',
  },
  'plaintext-sink': {
    bad: 'version: 1\naudit: {sinks: [{name: w, type: webhook, url: "http://siem.example.com/hook", secret: "env:HOOK_SECRET"}]}\n',
    good: 'version: 1\naudit: {sinks: [{name: w, type: webhook, url: "https://siem.example.com/hook", secret: "env:HOOK_SECRET"}]}\n',
  },
  'duplicate-store': {
    bad: 'version: 1\nbroker: {stores: [{name: s, type: local}, {name: s, type: local}]}\n',
    good: 'version: 1\nbroker: {stores: [{name: s, type: local}, {name: t, type: local}]}\n',
  },
  'duplicate-upstream': {
    bad: 'version: 1\nbroker: {upstreams: [{name: m, url: "https://api.example.com", credential: {type: bearer, value: "env:K"}}, {name: m, url: "https://api.example.org", credential: {type: bearer, value: "env:K"}}]}\n',
    good: 'version: 1\nbroker: {upstreams: [{name: m, url: "https://api.example.com", credential: {type: bearer, value: "env:K"}}, {name: n, url: "https://api.example.org", credential: {type: bearer, value: "env:K"}}]}\n',
  },
  'duplicate-mount': {
    bad: 'version: 1\ntenants: [{name: a, broker: {mounts: [{path: /in, mode: ro}, {path: /in, mode: rw}]}}]\n',
    good: 'version: 1\ntenants: [{name: a, broker: {mounts: [{path: /in, mode: ro}, {path: /out, mode: rw}]}}]\n',
  },
  'unknown-store': {
    bad: 'version: 1\ntenants: [{name: a, broker: {store: elsewhere, mounts: [{path: /in, mode: ro}]}}]\n',
    good: 'version: 1\ntenants: [{name: a, broker: {store: files, mounts: [{path: /in, mode: ro}]}}]\n',
  },
  'unknown-upstream': {
    bad: 'version: 1\ntenants: [{name: a, broker: {upstreams: [model]}}]\n',
    good: 'version: 1\nbroker: {upstreams: [{name: model, url: "https://api.example.com", credential: {type: bearer, value: "env:K"}}]}\ntenants: [{name: a, broker: {upstreams: [model]}}]\n',
  },
  'plaintext-upstream': {
    bad: 'version: 1\nbroker: {upstreams: [{name: m, url: "http://api.example.com", credential: {type: bearer, value: "env:K"}}]}\n',
    good: 'version: 1\nbroker: {upstreams: [{name: m, url: "http://127.0.0.1:8080", credential: {type: bearer, value: "env:K"}}]}\n',
  },
  'invalid-url': {
    bad: 'version: 1\nbroker: {stores: [{name: s, type: s3, endpoint: "https://s3.example.com/bucket", region: us-east-1, bucket: b-1, access_key_id: "env:A", secret_access_key: "env:S"}]}\n',
    good: 'version: 1\nbroker: {stores: [{name: s, type: s3, endpoint: "https://s3.example.com", region: us-east-1, bucket: b-1, access_key_id: "env:A", secret_access_key: "env:S"}]}\n',
  },
  'unused-upstream': {
    bad: 'version: 1\nbroker: {upstreams: [{name: m, url: "https://api.example.com", credential: {type: bearer, value: "env:K"}}]}\ntenants: [{name: a, broker: {mounts: [{path: /in, mode: ro}]}}]\n',
    good: 'version: 1\nbroker: {upstreams: [{name: m, url: "https://api.example.com", credential: {type: bearer, value: "env:K"}}]}\ntenants: [{name: a, broker: {upstreams: [m]}}]\n',
  },
  'unused-store': {
    bad: 'version: 1\nbroker: {stores: [{name: files, type: local}, {name: spare, type: local}]}\ntenants: [{name: a, broker: {mounts: [{path: /in, mode: ro}]}}]\n',
    good: 'version: 1\nbroker: {stores: [{name: files, type: local}, {name: spare, type: local}]}\ntenants: [{name: a, broker: {mounts: [{path: /in, mode: ro}]}}, {name: b, broker: {store: spare, mounts: [{path: /in, mode: ro}]}}]\n',
  },
  'empty-broker-ceiling': {
    bad: 'version: 1\ntenants: [{name: a, broker: {}}]\n',
    good: 'version: 1\ntenants: [{name: a, broker: {mounts: [{path: /in, mode: ro}]}}]\n',
  },
  'ineffective-object-limit': {
    bad: 'version: 1\ntenants: [{name: a, broker: {mounts: [{path: /in, mode: ro, max_object_bytes: 1GiB}]}}]\n',
    good: 'version: 1\ntenants: [{name: a, broker: {mounts: [{path: /in, mode: rw, max_object_bytes: 1GiB}]}}]\n',
  },
  unreadable: { bad: '', good: 'version: 1\n' }, // exercised through the CLI (the file is missing), see test/cli-policy.test.ts
};

const codes = (text: string): string[] => lintPolicy(text, 'p.yaml').problems.map((p) => p.code);

describe('policy lint', () => {
  it('has a failing and a passing case for every code it can report', () => {
    expect(Object.keys(CASES).sort()).toEqual(Object.keys(lintCodes()).sort());
  });

  it.each(Object.entries(CASES).filter(([code]) => code !== 'unreadable'))('%s: reported for the bad case, not for the good one', (code, { bad, good }) => {
    expect(codes(bad)).toContain(code);
    expect(codes(good)).not.toContain(code);
  });

  it('finds a never-matching private grant, but not when an exception names an address in it', () => {
    expect(codes(tenant('"10.9.0.0/16:443"'))).toContain('never-matches');
    const excepted = tenant('"10.9.0.0/16:443"', 'egress: {unsafe_allow_private: [{host: 10.9.1.1, cidr: 10.9.1.1/32, reason: build host}]}\n');
    expect(codes(excepted)).not.toContain('never-matches');
  });

  it('reports every problem in a file, in file order, with locations', () => {
    const problems = lintPolicy(`version: 1\ntenants:\n  - name: a\n    egress:\n      allow: ["*.example.com", api.example.com, "*.github.io"]\n  - name: b\n`, 'p.yaml').problems;
    expect(problems.map((p) => `${p.line}:${p.col} ${p.severity} ${p.code}`)).toEqual([
      '5:32 warning shadowed-rule',
      '5:49 warning broad-wildcard',
      '6:5 warning empty-ceiling',
    ]);
  });

  it('refuses a sink credential written inline: only env:NAME or file:PATH references are accepted', () => {
    const inline = lintPolicy('version: 1\naudit: {sinks: [{name: w, type: webhook, url: "https://h.example.com/x", secret: "hunter2hunter2"}]}\n', 'p.yaml').problems;
    expect(inline.map((p) => `${p.line}:${p.col} ${p.code}`)).toEqual(['2:82 invalid-value']);
    expect(JSON.stringify(inline)).not.toContain('hunter2');
  });

  it('locates broker lint warnings at the entry to change', () => {
    const text = 'version: 1\nbroker:\n  upstreams:\n    - {name: m, url: "https://api.example.com", credential: {type: bearer, value: "env:K"}}\ntenants:\n  - name: a\n    broker: {}\n';
    expect(lintPolicy(text, 'p.yaml').problems.map((p) => `${p.line}:${p.col} ${p.code}`)).toEqual(['4:14 unused-upstream', '7:13 empty-broker-ceiling']);
  });

  it('never repeats the secret it found', () => {
    const secret = 'sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz012345';
    const found = lintPolicy(tenant(`{host: api.anthropic.com, note: "${secret}"}`), 'p.yaml').problems;
    expect(JSON.stringify(found)).not.toContain(secret);
  });
});
