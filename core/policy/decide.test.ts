import { describe, expect, it } from 'vitest';
import { canonicalizeHost } from '../netguard/canonical-host.js';
import { compilePolicy } from './compile-policy.js';
import type { CompiledPolicy } from './compiled-policy.js';
import { decide } from './decide.js';
import { checkGrant, indexGrants } from './grants.js';

const POLICY = `version: 1
egress:
  deny:
    - "*.pastebin.com"
    - {host: 203.0.113.0/24}
    - {host: "*.trial-deny.example.org", mode: report}
tenants:
  - name: acme
    egress:
      allow:
        - api.example.com
        - "*.pypi.org:443"
        - db.internal:5432
        - 198.51.100.7:8443
        - 10.20.0.0/16:443
        - registry.example.net:443
        - registry.example.net:8080
        - "*.trial-deny.example.org:443"
      deny:
        - secret.pypi.org
  - name: canary
    mode: report
    egress:
      allow:
        - api.example.com:443
`;

const compiled = (): CompiledPolicy => {
  const { policy, problems } = compilePolicy(POLICY, 'p.yaml');
  if (!policy) throw new Error(JSON.stringify(problems));
  return policy;
};

const run = (tenant: string, grants: string[], dest: string, port: number) => {
  const host = canonicalizeHost(dest);
  if (!host) throw new Error(`bad host ${dest}`);
  return decide(compiled(), { tenant, grants: indexGrants(grants), host, port });
};

describe('decide', () => {
  const everything = ['api.example.com', '*.pypi.org:443', 'db.internal:5432', '198.51.100.7:8443', '10.20.0.0/16:443', 'registry.example.net:443,8080', 'secret.pypi.org:443', 'evil.pastebin.com', 'x.trial-deny.example.org:443'];
  // [tenant, grant, destination, port, allow, reason, ruleId]
  const table: ReadonlyArray<readonly [string, string[], string, number, boolean, string, string | undefined]> = [
    ['acme', everything, 'api.example.com', 443, true, 'allowed', 'tenants[acme].egress.allow[0]'],
    ['acme', everything, 'API.Example.com.', 80, true, 'allowed', 'tenants[acme].egress.allow[0]'],
    ['acme', everything, 'api.example.com', 8443, false, 'port_not_allowed', 'token.egress[0]'],
    ['acme', everything, 'files.pypi.org', 443, true, 'allowed', 'tenants[acme].egress.allow[1]'],
    ['acme', everything, 'a.b.pypi.org', 443, true, 'allowed', 'tenants[acme].egress.allow[1]'],
    ['acme', everything, 'pypi.org', 443, false, 'dest_not_allowed', undefined], // *.x never matches the apex
    ['acme', everything, 'files.pypi.org', 80, false, 'port_not_allowed', 'token.egress[1]'],
    ['acme', everything, 'secret.pypi.org', 443, false, 'dest_denied', 'tenants[acme].egress.deny[0]'],
    ['acme', everything, 'evil.pastebin.com', 443, false, 'dest_denied', 'egress.deny[0]'],
    ['acme', everything, 'db.internal', 5432, true, 'allowed', 'tenants[acme].egress.allow[2]'],
    ['acme', everything, 'db.internal', 443, false, 'port_not_allowed', 'token.egress[2]'],
    ['acme', everything, '198.51.100.7', 8443, true, 'allowed', 'tenants[acme].egress.allow[3]'],
    ['acme', everything, '0xc6.0x33.0x64.7', 8443, true, 'allowed', 'tenants[acme].egress.allow[3]'], // same address, hex
    ['acme', everything, '10.20.3.4', 443, true, 'allowed', 'tenants[acme].egress.allow[4]'],
    ['acme', everything, '10.21.3.4', 443, false, 'dest_not_allowed', undefined],
    ['acme', everything, '203.0.113.5', 443, false, 'dest_denied', 'egress.deny[1]'],
    ['acme', everything, 'registry.example.net', 8080, true, 'allowed', 'tenants[acme].egress.allow[6]'],
    ['acme', ['api.example.com:443'], 'api.example.com', 80, false, 'port_not_allowed', 'token.egress[0]'], // token narrower than ceiling
    ['acme', ['other.example.com'], 'other.example.com', 443, false, 'dest_not_allowed', undefined], // token wider than ceiling
    ['acme', [], 'api.example.com', 443, false, 'dest_not_allowed', undefined], // empty grant
    ['acme', everything, 'x.trial-deny.example.org', 443, true, 'dest_denied', 'egress.deny[2]'], // per-rule report mode
    ['nobody', everything, 'api.example.com', 443, false, 'tenant_unknown', undefined],
    // report-mode tenant: would-be denies pass, with the reason that enforce mode would give
    ['canary', ['api.example.com:443'], 'api.example.com', 443, true, 'allowed', 'tenants[canary].egress.allow[0]'],
    ['canary', ['api.example.com:443'], 'other.example.com', 443, true, 'dest_not_allowed', undefined],
    ['canary', ['*.pastebin.com'], 'x.pastebin.com', 443, true, 'dest_denied', 'egress.deny[0]'],
  ];
  it.each(table)('%s %j -> %s:%i = %s %s (%s)', (tenant, grants, dest, port, allow, reason, ruleId) => {
    const d = run(tenant, grants, dest, port);
    expect({ allow: d.allow, reason: d.reason, ruleId: d.ruleId }).toEqual({ allow, reason, ruleId });
    expect(d.enforceWouldDeny).toBe(allow && reason !== 'allowed');
  });
});

describe('checkGrant', () => {
  it('canonicalises and accepts destinations inside the ceiling', () => {
    const result = checkGrant(compiled(), 'acme', ['API.example.com', 'files.pypi.org:443', '*.pypi.org:443', '10.20.1.0/24:443', 'registry.example.net:443,8080']);
    expect(result.egress).toEqual(['api.example.com', 'files.pypi.org:443', '*.pypi.org:443', '10.20.1.0/24:443', 'registry.example.net:443,8080']);
  });

  // [destination, expected error code]
  const refused: ReadonlyArray<readonly [string, string]> = [
    ['other.example.com', 'GH_ERR_TOKEN_DEST_OUTSIDE_CEILING'],
    ['api.example.com:22', 'GH_ERR_TOKEN_DEST_OUTSIDE_CEILING'],
    ['*.example.com', 'GH_ERR_TOKEN_DEST_OUTSIDE_CEILING'], // wildcard not covered by an exact rule
    ['pypi.org:443', 'GH_ERR_TOKEN_DEST_OUTSIDE_CEILING'], // apex not covered by *.pypi.org
    ['files.pypi.org', 'GH_ERR_TOKEN_DEST_OUTSIDE_CEILING'], // port 80 not in *.pypi.org:443
    ['10.0.0.0/8:443', 'GH_ERR_TOKEN_DEST_OUTSIDE_CEILING'], // wider than 10.20.0.0/16
    ['secret.pypi.org:443', 'GH_ERR_TOKEN_DEST_DENIED'],
    ['*', 'GH_ERR_TOKEN_DEST_INVALID'],
    ['*.com', 'GH_ERR_TOKEN_DEST_INVALID'],
    ['bad host', 'GH_ERR_TOKEN_DEST_INVALID'],
  ];
  it.each(refused)('refuses %s with %s', (destination, code) => {
    expect(() => checkGrant(compiled(), 'acme', [destination])).toThrow(expect.objectContaining({ code }));
  });

  it('refuses an unknown tenant and an empty grant', () => {
    expect(() => checkGrant(compiled(), 'nobody', ['api.example.com'])).toThrow(expect.objectContaining({ code: 'GH_ERR_TOKEN_TENANT_UNKNOWN' }));
    expect(() => checkGrant(compiled(), 'acme', [])).toThrow(expect.objectContaining({ code: 'GH_ERR_TOKEN_NO_GRANT' }));
  });

  it('issues with a warning, not a refusal, for a report-mode tenant', () => {
    const result = checkGrant(compiled(), 'canary', ['other.example.com:443']);
    expect(result.egress).toEqual(['other.example.com:443']);
    expect(result.warnings).toHaveLength(1);
  });
});
