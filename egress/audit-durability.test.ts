import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { verifyAuditDir } from '../core/audit/verify-chain.js';
import { allRecords } from '../test/support/audit-fixture.js';
import { startEgressHarness, type EgressHarness } from '../test/support/egress-harness.js';
import { startOrigin, type Origin } from '../test/support/origin.js';
import { proxyGet } from '../test/support/proxy-get.js';
import { basic, connectRaw, readHead } from '../test/support/raw-client.js';
import { waitUntil } from '../test/support/wait.js';

/**
 * The proxy while its audit disk fails. The egress chain's directory is replaced by a regular file, so opening a
 * segment fails with ENOTDIR whatever the user (root included), and put back to model the disk recovering.
 * Batched: the data plane keeps serving and the events follow once the disk works. Strict: nothing is done that
 * cannot be recorded: 503 audit_unavailable, nothing relayed, and service resumes with the disk.
 */
const policy = (durability: 'batched' | 'strict'): string => `version: 1
egress:
  unsafe_allow_private:
    - {host: origin.test, cidr: 127.0.0.1/32}
tenants:
  - name: acme
    egress:
      allow: ["origin.test:*"]
audit:
  durability: ${durability}
`;

let origin: Origin;
let h: EgressHarness | undefined;
beforeAll(async () => {
  origin = await startOrigin();
});
afterAll(async () => {
  await origin.close();
});
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const auditDir = (harness: EgressHarness): string => join(harness.dir, 'audit');
const breakDisk = async (harness: EgressHarness): Promise<void> => {
  await rm(join(auditDir(harness), 'egress'), { recursive: true, force: true });
  await writeFile(join(auditDir(harness), 'egress'), 'not a directory');
};
const repairDisk = async (harness: EgressHarness): Promise<void> => {
  await rm(join(auditDir(harness), 'egress'), { force: true });
  await mkdir(join(auditDir(harness), 'egress'), { mode: 0o700 });
};
const paths = async (harness: EgressHarness): Promise<unknown[]> =>
  (await allRecords(auditDir(harness))).map((r) => (r.event['http_request'] as { url?: { path?: string } } | undefined)?.url?.path);
const refusals = async (harness: EgressHarness): Promise<number> =>
  (await harness.registry.getSingleMetric('gatehouse_egress_decisions_total')?.get())?.values.filter((v) => v.labels['reason'] === 'audit_unavailable').reduce((n, v) => n + v.value, 0) ?? 0;

describe('egress proxy: audit disk failing', () => {
  it('batched: keeps serving while the disk refuses, and the events reach the log once it works again', async () => {
    h = await startEgressHarness(policy('batched'), { 'origin.test': ['127.0.0.1'] });
    const token = await h.token([`origin.test:${origin.port}`]);
    await breakDisk(h);
    const served = await proxyGet(h.port, token, `http://origin.test:${origin.port}/while-broken`);
    expect(served).toMatchObject({ status: 200, body: 'hello GET /while-broken' });
    await h.waitForEvent((e) => e['status_detail'] === 'allowed');
    await expect(h.audit.flush()).rejects.toMatchObject({ code: 'GH_ERR_AUDIT_WRITE' });
    await repairDisk(h);
    await waitUntil(async () => (await paths(h as EgressHarness)).includes('/while-broken'), 'the held event to be written');
    expect((await verifyAuditDir(auditDir(h))).firstProblem).toBeUndefined();
  });

  it('strict: refuses with 503 audit_unavailable and relays nothing while the disk refuses, then serves again', async () => {
    h = await startEgressHarness(policy('strict'), { 'origin.test': ['127.0.0.1'] });
    const authority = `origin.test:${origin.port}`;
    const token = await h.token([authority]);
    await breakDisk(h);
    const refused = await proxyGet(h.port, token, `http://${authority}/strict-while-broken`);
    expect(refused.status).toBe(503);
    expect(refused.headers['x-gatehouse-deny']).toBe('audit_unavailable');
    // A tunnel, too, is refused before it opens.
    const socket = await connectRaw(h.port);
    socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\nProxy-Authorization: ${basic(token)}\r\n\r\n`);
    const head = await readHead(socket);
    socket.destroy();
    expect([head.status, head.headers['x-gatehouse-deny']]).toEqual([503, 'audit_unavailable']);
    expect(origin.seen.some((r) => r.url === '/strict-while-broken')).toBe(false);
    expect(await refusals(h)).toBe(2);

    await repairDisk(h);
    const served = await proxyGet(h.port, token, `http://${authority}/strict-after`);
    expect(served).toMatchObject({ status: 200, body: 'hello GET /strict-after' });
    await h.audit.flush();
    // The refused decisions were never recorded as taken; the one served is, before its end event.
    const onDisk = await allRecords(auditDir(h));
    expect(await paths(h)).not.toContain('/strict-while-broken');
    const phases = onDisk.filter((r) => (r.event['http_request'] as { url?: { path?: string } } | undefined)?.url?.path === '/strict-after').map((r) => (r.event['unmapped'] as { gatehouse: { phase?: string } }).gatehouse.phase);
    expect(phases).toEqual(['decision', 'end']);
    expect((await verifyAuditDir(auditDir(h))).firstProblem).toBeUndefined();
  });
});
