import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEgressHarness, type EgressHarness } from '../test/support/egress-harness.js';
import { startOrigin, type Origin } from '../test/support/origin.js';
import { basic, connectRaw, openTunnel, readHead, whenClosed } from '../test/support/raw-client.js';

const policy = (limits: string): string => `version: 1
egress:
  unsafe_allow_private:
    - {host: origin.test, cidr: 127.0.0.1/32}
  limits:
${limits}
tenants:
  - name: acme
    egress:
      allow: ["origin.test:*"]
  - name: roomy
    egress:
      allow: ["origin.test:*"]
      limits:
        per_session: {max_connections: 50, new_connections_per_second: 100, burst: 100}
`;

const gh = (e: Record<string, unknown>): Record<string, unknown> => (e['unmapped'] as { gatehouse: Record<string, unknown> }).gatehouse;
const sessionOf = (e: Record<string, unknown>): unknown => (e['actor'] as { session?: { uid?: string } } | undefined)?.session?.uid;

let origin: Origin;
beforeAll(async () => {
  origin = await startOrigin();
});
afterAll(async () => {
  await origin.close();
});

async function get(h: EgressHarness, token: string, path: string): Promise<{ status: number; reason: string | undefined }> {
  const socket = await connectRaw(h.port);
  socket.write(`GET http://origin.test:${origin.port}${path} HTTP/1.1\r\nHost: origin.test:${origin.port}\r\nProxy-Authorization: ${basic(token)}\r\nConnection: close\r\n\r\n`);
  const head = await readHead(socket);
  socket.destroy();
  return { status: head.status, reason: head.headers['x-gatehouse-deny'] };
}

describe('per-session limits', () => {
  let h: EgressHarness;
  beforeAll(async () => {
    h = await startEgressHarness(policy('    per_session: {max_connections: 2, new_connections_per_second: 0.1, burst: 3}'), { 'origin.test': ['127.0.0.1'] });
  });
  afterAll(async () => h.close());

  it('refuses a connection beyond the concurrency limit with 429 too_many_connections, and frees the slot on close', async () => {
    const token = await h.token([`origin.test:${origin.port}`], { session: 'busy' });
    const a = await openTunnel(h.port, `origin.test:${origin.port}`, token);
    const b = await openTunnel(h.port, `origin.test:${origin.port}`, token);
    expect(await get(h, token, '/third')).toEqual({ status: 429, reason: 'too_many_connections' });
    const aClosed = whenClosed(a);
    a.destroy();
    await aClosed;
    // The tunnel's slot is released when its audit event is written, which is the end of its life.
    await h.waitForEvent((e) => sessionOf(e) === 'busy' && gh(e)['kind'] === 'connect' && e['action_id'] === 1);
    expect((await get(h, token, '/after')).status).toBe(200);
    b.destroy();
  });

  it('refuses new connections beyond the rate with 429 rate_limited', async () => {
    const token = await h.token([`origin.test:${origin.port}`], { session: 'hasty' });
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await get(h, token, `/r${i}`));
    expect(results.slice(0, 3).map((r) => r.status)).toEqual([200, 200, 200]);
    expect(results[3]).toEqual({ status: 429, reason: 'rate_limited' });
    const event = await h.waitForEvent((e) => sessionOf(e) === 'hasty' && e['status_detail'] === 'rate_limited');
    expect(event['disposition_id']).toBe(2);
  });

  it('applies a tenant override of the per-session limits', async () => {
    const token = await h.token([`origin.test:${origin.port}`], { session: 'roomy-1', tenant: 'roomy' });
    for (let i = 0; i < 6; i++) expect((await get(h, token, `/roomy${i}`)).status).toBe(200);
  });
});

describe('global limits and timeouts', () => {
  let h: EgressHarness;
  beforeAll(async () => {
    h = await startEgressHarness(policy('    max_connections: 3\n    tunnel_idle_timeout: 1s'), { 'origin.test': ['127.0.0.1'] });
  });
  afterAll(async () => h.close());

  it('answers 503 proxy_at_capacity beyond the global connection cap, without queueing', async () => {
    const held: Socket[] = [];
    for (let i = 0; i < 3; i++) held.push(await connectRaw(h.port));
    const extra = await connectRaw(h.port);
    const head = await readHead(extra);
    expect(head.status).toBe(503);
    expect(head.headers['x-gatehouse-deny']).toBe('proxy_at_capacity');
    for (const s of held) s.destroy();
    await Promise.all(held.map((s) => whenClosed(s)));
    extra.destroy();
  });

  it('closes a tunnel that stays idle past tunnel_idle_timeout', async () => {
    const token = await h.token([`origin.test:${origin.port}`], { session: 'idle' });
    const tunnel = await openTunnel(h.port, `origin.test:${origin.port}`, token);
    await whenClosed(tunnel, 5000);
    const e = await h.waitForEvent((x) => sessionOf(x) === 'idle' && gh(x)['kind'] === 'connect');
    expect(gh(e)['end_reason']).toBe('idle_timeout');
  });
});
