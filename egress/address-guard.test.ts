import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEgressHarness, type EgressHarness } from '../test/support/egress-harness.js';
import { startOrigin, type Origin } from '../test/support/origin.js';

/**
 * The resolved-address guard, end to end through the proxy. Names are answered by an injected resolver (no real
 * DNS), so an allowed name can be made to answer any address, which is what an attacker controlling DNS does.
 * Nothing here is ever dialled except 127.0.0.1: every other row must be refused before a connection is tried.
 */

// [allowed name, what its DNS answers, expected reason]
const RESOLVED: ReadonlyArray<readonly [string, string[], string]> = [
  ['loopback.test', ['127.0.0.1'], 'ip_denied_loopback'],
  ['loopback6.test', ['::1'], 'ip_denied_loopback'],
  ['unspecified.test', ['0.0.0.0'], 'ip_denied_unspecified'],
  ['rfc1918-10.test', ['10.0.0.5'], 'ip_denied_private'],
  ['rfc1918-172.test', ['172.16.4.4'], 'ip_denied_private'],
  ['rfc1918-192.test', ['192.168.1.1'], 'ip_denied_private'],
  ['cgnat.test', ['100.64.0.1'], 'ip_denied_cgnat'],
  ['linklocal.test', ['169.254.10.10'], 'ip_denied_link_local'],
  ['imds.test', ['169.254.169.254'], 'ip_denied_metadata'],
  ['imds6.test', ['fd00:ec2::254'], 'ip_denied_metadata'],
  ['alibaba.test', ['100.100.100.200'], 'ip_denied_metadata'],
  ['azure.test', ['168.63.129.16'], 'ip_denied_metadata'],
  ['ula.test', ['fd12:3456::1'], 'ip_denied_ula'],
  ['multicast.test', ['224.0.0.251'], 'ip_denied_multicast'],
  ['broadcast.test', ['255.255.255.255'], 'ip_denied_broadcast'],
  ['reserved.test', ['240.0.0.1'], 'ip_denied_reserved'],
  ['docs.test', ['192.0.2.10'], 'ip_denied_reserved'],
  ['mapped.test', ['::ffff:169.254.169.254'], 'ip_denied_metadata'],
  ['mapped-lo.test', ['::ffff:127.0.0.1'], 'ip_denied_loopback'],
  ['compat.test', ['::a9fe:a9fe'], 'ip_denied_metadata'],
  ['nat64.test', ['64:ff9b::a9fe:a9fe'], 'ip_denied_metadata'],
  ['nat64-public.test', ['64:ff9b::808:808'], 'ip_denied_ipv4_embedded'],
  ['nat64-local.test', ['64:ff9b:1:808:8:800::'], 'ip_denied_ipv4_embedded'],
  ['sixtofour.test', ['2002:a9fe:a9fe::1'], 'ip_denied_metadata'],
  ['teredo.test', ['2001:0:4136:e378:8000:63bf:80ff:fffe'], 'ip_denied_loopback'],
  // A rebinding answer: one public address and one private one. Refused as a whole, never "the public one".
  ['rebind.test', ['1.1.1.1', '10.0.0.1'], 'ip_denied_private'],
  ['rebind-order.test', ['10.0.0.1', '1.1.1.1'], 'ip_denied_private'],
  // A CIDR deny rule applies to resolved addresses too.
  ['denied-range.test', ['198.18.0.0'], 'ip_denied_reserved'],
  ['no-answer.test', [], 'dns_failed'],
];

const NAMES = ['origin.test', 'self.test', 'public-denied.test', ...RESOLVED.map(([name]) => name)];

const POLICY = `version: 1
egress:
  deny:
    - 93.184.0.0/16
  unsafe_allow_private:
    - {host: origin.test, cidr: 127.0.0.1/32}
    - {host: self.test, cidr: 127.0.0.1/32}
    - {host: 127.0.0.1, cidr: 127.0.0.1/32}
tenants:
  - name: acme
    egress:
      allow:
${NAMES.map((n) => `        - "${n}:*"`).join('\n')}
        - "127.0.0.1:*"
        - "169.254.169.254"
        - "[fd00:ec2::254]"
        - "10.0.0.0/8:*"
`;

let h: EgressHarness;
let origin: Origin;
let token: string;

beforeAll(async () => {
  origin = await startOrigin();
  const hosts: Record<string, string[]> = { 'origin.test': ['127.0.0.1'], 'self.test': ['127.0.0.1'], 'public-denied.test': ['93.184.216.34'] };
  for (const [name, answers] of RESOLVED) if (answers.length > 0) hosts[name] = answers;
  h = await startEgressHarness(POLICY, hosts);
  token = await h.token([...NAMES.map((n) => `${n}:*`), '127.0.0.1:*', '169.254.169.254', '[fd00:ec2::254]', '10.0.0.0/8:*']);
});
afterAll(async () => {
  await h.close();
  await origin.close();
});

/** Send one absolute-form GET through the proxy; return status and deny reason. */
async function via(target: string): Promise<{ status: number; reason: string | undefined }> {
  const agent = new ProxyAgent({ uri: h.proxyUrl(token), proxyTunnel: false });
  try {
    const res = await request(target, { dispatcher: agent, headersTimeout: 5000 });
    await res.body.dump();
    return { status: res.statusCode, reason: res.headers['x-gatehouse-deny'] as string | undefined };
  } finally {
    await agent.close();
  }
}

describe('resolved-address guard through the proxy', () => {
  it.each(RESOLVED)('%s answering %j is refused: %s', async (name, _answers, reason) => {
    const r = await via(`http://${name}/`);
    expect(r.reason).toBe(reason);
    expect(r.status).toBe(reason === 'dns_failed' ? 502 : 403);
  });

  it('a public answer inside a CIDR deny rule is refused by that rule', async () => {
    expect((await via('http://public-denied.test/')).reason).toBe('ip_denied_rule');
  });

  it('lets the excepted name reach its excepted address', async () => {
    const r = await via(`http://origin.test:${origin.port}/ok`);
    expect(r).toEqual({ status: 200, reason: undefined });
  });

  it("refuses Gatehouse's own listener even for an excepted host", async () => {
    expect((await via(`http://self.test:${h.port}/`)).reason).toBe('ip_denied_self');
    expect((await via(`http://127.0.0.1:${h.port}/`)).reason).toBe('ip_denied_self');
  });
});

describe('IP-literal destinations', () => {
  // [literal as the client writes it, expected status, expected reason]
  const LITERALS: ReadonlyArray<readonly [string, number, string | undefined]> = [
    ['169.254.169.254', 403, 'ip_denied_metadata'], // granted literal, still guarded
    ['[fd00:ec2::254]', 403, 'ip_denied_metadata'],
    ['[::ffff:169.254.169.254]', 403, 'ip_denied_metadata'], // mapped form of a granted literal
    ['0xa9.0xfe.0xa9.0xfe', 403, 'ip_denied_metadata'], // hex spelling
    ['2852039166', 403, 'ip_denied_metadata'], // one decimal number
    ['10.1.2.3', 403, 'ip_denied_private'], // in a granted CIDR, no exception
    ['8.8.8.8', 403, 'dest_not_allowed'], // not listed: literals are allowed only when listed
    ['127.1', 200, undefined], // shorthand of an excepted literal
  ];
  it.each(LITERALS)('http://%s/ -> %i %s', async (literal, status, reason) => {
    const port = literal === '127.1' ? `:${origin.port}` : '';
    const r = await via(`http://${literal}${port}/`);
    expect(r).toEqual({ status, reason });
  });

  it('records the canonical host, the dialled IP and the reason in the audit event', async () => {
    await h.audit.flush();
    const lines = (await readFile(join(h.dir, 'audit', 'egress', '000000000001.jsonl'), 'utf8')).trim().split('\n');
    const events = lines.map((l) => (JSON.parse(l) as { event: Record<string, unknown> }).event);
    const metadata = events.find((e) => (e['dst_endpoint'] as { hostname?: string }).hostname === 'imds.test');
    expect(metadata?.['status_detail']).toBe('ip_denied_metadata');
    expect((metadata?.['dst_endpoint'] as { ip?: string }).ip).toBe('169.254.169.254');
    const ok = events.find((e) => (e['http_request'] as { url?: { path?: string } }).url?.path === '/ok');
    expect(ok?.['dst_endpoint']).toEqual({ hostname: 'origin.test', ip: '127.0.0.1', port: origin.port });
  });
});
