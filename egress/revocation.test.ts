import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RevocationList } from '../core/tokens/index.js';
import { auditEvents } from '../test/support/audit-reader.js';
import { startEgressHarness, type EgressHarness } from '../test/support/egress-harness.js';
import { startOrigin, type Origin } from '../test/support/origin.js';
import { basic, connectRaw, openTunnel, readHead, readUntil, whenClosed } from '../test/support/raw-client.js';

const POLICY = `version: 1
egress:
  unsafe_allow_private:
    - {host: origin.test, cidr: 127.0.0.1/32}
tenants:
  - name: acme
    egress:
      allow: ["origin.test:*"]
`;

const gh = (e: Record<string, unknown>): Record<string, unknown> => (e['unmapped'] as { gatehouse: Record<string, unknown> }).gatehouse;
const sessionOf = (e: Record<string, unknown>): unknown => (e['actor'] as { session?: { uid?: string } } | undefined)?.session?.uid;

let h: EgressHarness;
let origin: Origin;
let authority: string;

beforeAll(async () => {
  origin = await startOrigin();
  h = await startEgressHarness(POLICY, { 'origin.test': ['127.0.0.1'] });
  authority = `origin.test:${origin.port}`;
});
afterAll(async () => {
  await h.close();
  await origin.close();
});

describe('revocation', () => {
  it('cuts a live CONNECT tunnel within 1 s and refuses the session from then on', async () => {
    const token = await h.token([authority], { session: 'rev-tunnel' });
    const tunnel = await openTunnel(h.port, authority, token);
    tunnel.write(`GET /inside HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
    await readUntil(tunnel, 'hello GET /inside');

    const closed = whenClosed(tunnel, 2000);
    const t0 = performance.now(); // monotonic
    await h.revocations.revoke('rev-tunnel', 'test');
    const elapsed = (await closed) - t0;
    expect(elapsed).toBeLessThan(1000);

    const again = await connectRaw(h.port);
    again.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\nProxy-Authorization: ${basic(token)}\r\n\r\n`);
    const head = await readHead(again);
    expect(head.status).toBe(403);
    expect(head.headers['x-gatehouse-deny']).toBe('session_revoked');
    again.destroy();

    const tunnelEvent = await h.waitForEvent((e) => sessionOf(e) === 'rev-tunnel' && gh(e)['kind'] === 'connect' && e['action_id'] === 1);
    expect(gh(tunnelEvent)['end_reason']).toBe('session_revoked');
    const refused = await h.waitForEvent((e) => sessionOf(e) === 'rev-tunnel' && e['status_detail'] === 'session_revoked');
    expect(refused['class_uid']).toBe(3002);
    // And it is on disk, in the chained log.
    const onDisk = await auditEvents(h.audit, h.dir);
    expect(onDisk.some((e) => sessionOf(e) === 'rev-tunnel' && e.status_detail === 'session_revoked')).toBe(true);
  });

  it('closes an idle keep-alive client connection of the session within 1 s', async () => {
    const token = await h.token([authority], { session: 'rev-keepalive' });
    const socket = await connectRaw(h.port);
    socket.write(`GET http://${authority}/ka HTTP/1.1\r\nHost: ${authority}\r\nProxy-Authorization: ${basic(token)}\r\n\r\n`);
    await readUntil(socket, 'hello GET /ka');
    const closed = whenClosed(socket, 2000);
    const t0 = performance.now();
    await h.revocations.revoke('rev-keepalive');
    expect((await closed) - t0).toBeLessThan(1000);
  });

  it('leaves other sessions alone', async () => {
    const keep = await h.token([authority], { session: 'rev-bystander' });
    const tunnel = await openTunnel(h.port, authority, keep);
    await h.revocations.revoke('rev-someone-else');
    tunnel.write(`GET /still-here HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
    await readUntil(tunnel, 'hello GET /still-here');
    tunnel.destroy();
  });

  it('persists revocations: a reopened list still refuses the session', async () => {
    await h.revocations.revoke('rev-persisted');
    const reopened = await RevocationList.open(h.dir);
    expect(reopened.isRevoked('rev-persisted')).toBe(true);
    expect(reopened.isRevoked('never-revoked')).toBe(false);
  });
});

describe('token expiry', () => {
  it('ends a tunnel when the token that opened it expires', async () => {
    const token = await h.token([authority], { session: 'expiring', ttlMs: 2000 });
    const tunnel = await openTunnel(h.port, authority, token);
    await whenClosed(tunnel, 5000);
    const e = await h.waitForEvent((x) => sessionOf(x) === 'expiring' && gh(x)['kind'] === 'connect');
    expect(gh(e)['end_reason']).toBe('token_expired');
  });

  it('refuses an expired token with 407 token_expired', async () => {
    const token = await h.token([authority], { session: 'old', ttlMs: 1000, now: Date.now() - 120_000 });
    const socket = await connectRaw(h.port);
    socket.write(`GET http://${authority}/ HTTP/1.1\r\nHost: ${authority}\r\nProxy-Authorization: ${basic(token)}\r\n\r\n`);
    const head = await readHead(socket);
    expect(head.status).toBe(407);
    expect(head.headers['x-gatehouse-deny']).toBe('token_expired');
    socket.destroy();
  });
});
