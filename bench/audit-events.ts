import { randomUUID } from 'node:crypto';
import { validateEvent } from '../core/audit/event-schema.js';
import { canonicalizeHost, parseIp, type IpAddress } from '../core/netguard/index.js';
import { decide, indexGrants, PolicyStore } from '../core/policy/index.js';
import { AUDIENCE, DEFAULT_ISSUER, type SessionClaims } from '../core/tokens/index.js';
import { egressEvent, type EgressEventInput } from '../egress/egress-events.js';

/**
 * Realistic egress audit events for the audit benchmarks, built by the proxy's own event builder from real
 * policy decisions and checked by the schema the audit log enforces. The mix follows what an agent sandbox
 * produces: mostly allowed requests and tunnels, some destinations refused, a few bad tokens.
 */
const POLICY = `version: 1
tenants:
  - name: acme
    egress:
      allow: ["api.openai.com:443", "pypi.org:443", "files.pythonhosted.org:443", "github.com:443", "registry.npmjs.org:443", "origin.bench:80"]
      deny: ["169.254.169.254"]
`;

const GRANT = ['api.openai.com:443', 'pypi.org:443', 'files.pythonhosted.org:443', 'github.com:443', 'registry.npmjs.org:443', 'origin.bench:80'];

interface Destination {
  readonly host: string;
  readonly port: number;
  readonly ip: string;
  readonly path: string;
}

const DESTINATIONS: readonly Destination[] = [
  { host: 'api.openai.com', port: 443, ip: '162.159.140.245', path: '/v1/chat/completions' },
  { host: 'pypi.org', port: 443, ip: '151.101.0.223', path: '/simple/requests/' },
  { host: 'files.pythonhosted.org', port: 443, ip: '151.101.64.223', path: '/packages/f9/9b/335f9764261e915ed497fcdeb11df5dfd6f7bf257d4a6a2a686d80da4d54/requests-2.32.3-py3-none-any.whl' },
  { host: 'github.com', port: 443, ip: '140.82.121.4', path: '/anthropics/claude-code/archive/refs/heads/main.tar.gz' },
  { host: 'registry.npmjs.org', port: 443, ip: '104.16.2.35', path: '/undici' },
  { host: 'origin.bench', port: 80, ip: '127.0.0.1', path: '/small' },
];

const DENIED: readonly Destination[] = [
  { host: 'pastebin.com', port: 443, ip: '104.20.67.143', path: '/raw/abc123' },
  { host: 'evil.example', port: 443, ip: '203.0.113.9', path: '/' },
];

const host = (name: string) => canonicalizeHost(name) as NonNullable<ReturnType<typeof canonicalizeHost>>;
const ip = (text: string): IpAddress => parseIp(text) as IpAddress;

/**
 * `count` distinct events (cycling through the mix), each validated. Deterministic in shape, unique in ids and
 * times; a benchmark that appends more than `count` events cycles through them.
 */
export function egressEventPool(count: number): Record<string, unknown>[] {
  const policy = PolicyStore.fromText(POLICY, 'bench-policy.yaml').current;
  const grants = indexGrants(GRANT);
  const t0 = Date.now();
  const out: Record<string, unknown>[] = [];
  for (let i = 0; i < count; i++) {
    const session = `sess-${(i % 37).toString(36).padStart(6, '0')}-${'k'.repeat(8)}`;
    const claims: SessionClaims = { iss: DEFAULT_ISSUER, aud: AUDIENCE.egress, sub: session, tenant: 'acme', jti: randomUUID(), iat: Math.floor(t0 / 1000) - 60, nbf: Math.floor(t0 / 1000) - 60, exp: Math.floor(t0 / 1000) + 840, egress: GRANT };
    const start = t0 + i * 3;
    const client = { ip: '::ffff:10.88.0.' + String(2 + (i % 200)), port: 30_000 + (i % 30_000) };
    const pick = i % 20;
    let input: EgressEventInput;
    if (pick === 19) {
      // A token that fails verification: an authentication event, no claims.
      input = { kind: 'http', correlationId: randomUUID(), startTime: start, endTime: start, facts: { policy, authDetail: 'bad_signature' }, allow: false, reason: 'auth_invalid', client };
    } else {
      const dest = pick >= 17 ? (DENIED[pick % DENIED.length] as Destination) : (DESTINATIONS[i % DESTINATIONS.length] as Destination);
      const target = { host: host(dest.host), port: dest.port, path: dest.path, authority: `${dest.host}:${dest.port}` };
      const decision = decide(policy, { tenant: 'acme', grants, host: target.host, port: target.port });
      const kind = dest.port === 443 ? 'connect' : 'http';
      const facts = { policy, claims, target, decision, ...(decision.allow ? { address: ip(dest.ip) } : {}) };
      const end = start + (decision.allow ? 40 + (i % 900) : 0);
      input = {
        kind,
        correlationId: randomUUID(),
        startTime: start,
        endTime: end,
        facts,
        allow: decision.allow,
        reason: decision.reason,
        client,
        ...(kind === 'http' ? { http: { method: 'GET', path: `${dest.path}?page=${i % 7}`, ...(decision.allow ? { status: 200 } : {}) } } : {}),
        ...(decision.allow ? { bytesUp: 700 + (i % 4096), bytesDown: 13 + ((i * 7919) % 2_000_000), endReason: 'completed' } : {}),
      };
    }
    const event = egressEvent(input);
    validateEvent(event); // the audit log refuses invalid events: a bench event must be a real one
    out.push(event);
  }
  return out;
}
