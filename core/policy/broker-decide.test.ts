import { describe, expect, it } from 'vitest';
import type { BrokerGrant } from '../tokens/issue-broker.js';
import { ceilingGrant, decideFileOp, decideUpstream, narrowBrokerGrant, type FileOp } from './broker-decide.js';
import { compilePolicy } from './compile-policy.js';
import { explainBroker } from './tools/broker-explain.js';

const POLICY = `version: 1
broker:
  upstreams:
    - {name: model, url: "https://api.example.com", credential: {type: bearer, value: "env:K"}}
    - {name: search, url: "https://search.example.com", credential: {type: bearer, value: "env:S"}}
tenants:
  - name: acme
    broker:
      mounts:
        - {path: /inputs, mode: ro}
        - {path: /outputs, mode: rw}
      upstreams: [model]
`;
const policy = compilePolicy(POLICY, 'p.yaml').policy;
if (!policy) throw new Error('the test policy does not load');
const ceiling = policy.tenants.get('acme')?.broker;
if (!ceiling) throw new Error('acme has no broker ceiling');

const grant = (mounts: BrokerGrant['mounts'], upstreams: string[] = []): BrokerGrant => ({ fs: 'fs1', mounts, upstreams });
const FULL = narrowBrokerGrant(ceilingGrant(ceiling), ceiling);

describe('narrowBrokerGrant: a token is held to the ceiling as the policy now stands', () => {
  it.each([
    // [what, token grant, narrowed]
    ['rw stays rw while the ceiling says rw', grant({ '/outputs': 'rw' }), grant({ '/outputs': 'rw' })],
    ['rw on an ro ceiling mount becomes ro', grant({ '/inputs': 'rw' }), grant({ '/inputs': 'ro' })],
    ['a mount the ceiling no longer lists is dropped', grant({ '/old': 'rw', '/inputs': 'ro' }), grant({ '/inputs': 'ro' })],
    ['an upstream the ceiling does not list is dropped', grant({}, ['model', 'search']), grant({}, ['model'])],
    ['an inherited property name is no mount', grant(JSON.parse('{"__proto__": "rw", "constructor": "rw"}') as BrokerGrant['mounts']), grant({})],
  ] as const)('%s', (_what, token, narrowed) => {
    expect(narrowBrokerGrant(token, ceiling)).toEqual(narrowed);
  });
});

describe('decideFileOp: path rules, mount and mode', () => {
  it.each<[string, string, FileOp, string]>([
    // [what, path, op, reason]
    ['a file under an rw mount may be written', '/outputs/report.csv', 'write', 'allowed'],
    ['a file under an ro mount may be read', '/inputs/data.csv', 'read', 'allowed'],
    ['an ro mount refuses writes', '/inputs/data.csv', 'write', 'mount_read_only'],
    ['an ro mount refuses deletes', '/inputs/data.csv', 'delete', 'mount_read_only'],
    ['a mount may be listed', '/inputs', 'list', 'allowed'],
    ['the mount itself is not a file', '/outputs', 'write', 'mount_not_granted'],
    ['a file path ending in / is refused', '/outputs/dir/', 'write', 'path_invalid'],
    ['a prefix-similar mount name is another mount', '/outputs-old/x', 'read', 'mount_not_granted'],
    ['a mount spelled in another case is another mount', '/Outputs/x', 'read', 'mount_not_granted'],
    ['.. never climbs out of a mount', '/outputs/../inputs/x', 'write', 'path_invalid'],
    ['. segments are refused', '/outputs/./x', 'write', 'path_invalid'],
    ['a backslash is refused', '/outputs/..\\x', 'write', 'path_invalid'],
    ['NUL is refused', '/outputs/x\u0000.txt', 'write', 'path_invalid'],
    ['a relative path is refused', 'outputs/x', 'read', 'path_invalid'],
    ['a path outside every mount', '/etc/passwd', 'read', 'mount_not_granted'],
  ])('%s', (_what, path, op, reason) => {
    expect(decideFileOp(FULL, path, op).reason).toBe(reason);
  });
});

describe('decideUpstream', () => {
  it.each([
    ['a granted upstream', 'model', 'allowed'],
    ['defined but not granted', 'search', 'upstream_not_granted'],
    ['not defined at all', 'nope', 'upstream_not_granted'],
    ['an inherited property name', 'constructor', 'upstream_not_granted'],
  ])('%s', (_what, name, reason) => {
    expect(decideUpstream(policy.broker.upstreams, FULL, name).reason).toBe(reason);
  });
});

describe('explainBroker names the ceiling entry that decided', () => {
  it('points at the mount and the upstream with file:line:col', () => {
    const write = explainBroker(policy, { tenant: 'acme', file: { path: '/outputs/a.txt', op: 'write' } });
    expect(write).toMatchObject({ decision: 'allow', reason: 'allowed', decidedBy: { id: 'tenants[acme].broker.mounts[1]', location: 'p.yaml:11:11' } });
    const ro = explainBroker(policy, { tenant: 'acme', file: { path: '/inputs/a.txt', op: 'write' } });
    expect(ro).toMatchObject({ decision: 'deny', reason: 'mount_read_only', decidedBy: { id: 'tenants[acme].broker.mounts[0]' } });
    const up = explainBroker(policy, { tenant: 'acme', upstream: 'model' });
    expect(up).toMatchObject({ decision: 'allow', decidedBy: { id: 'tenants[acme].broker.upstreams[0]', location: 'p.yaml:12:19' } });
  });

  it("blames the token's own grant when it is narrower than the ceiling", () => {
    const e = explainBroker(policy, { tenant: 'acme', grant: { mounts: { '/outputs': 'ro' } }, file: { path: '/outputs/a.txt', op: 'write' } });
    expect(e).toMatchObject({ decision: 'deny', reason: 'mount_read_only', decidedByStage: 'grant', grantAssumed: false });
    expect(e.decidedBy).toBeUndefined();
  });

  it('refuses a tenant without a broker section as the broker does (auth_invalid)', () => {
    expect(explainBroker(policy, { tenant: 'other', upstream: 'model' })).toMatchObject({ decision: 'deny', reason: 'auth_invalid', decidedByStage: 'tenant' });
  });
});
