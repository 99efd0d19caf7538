// Strict audit durability on the broker (audit.durability: strict): nothing happens that is not on disk first.
// An allowed operation writes its decision durably before the store is touched, then its end event; a refusal
// is on disk before the client hears of it; when the audit log cannot be written, every request is refused with
// 503 audit_unavailable and the store is left untouched. The disk failure is made by replacing the broker's audit
// directory with a regular file (ENOTDIR), which holds for any user, root included.
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBrokerHarness, type BrokerHarness } from '../test/support/broker-harness.js';
import { filePolicy, localKeys, raw } from './file-test-kit.js';

let h: BrokerHarness;
let token: string;
const auditDir = (): string => join(h.dir, 'audit', 'broker');

/** Broker records on disk right now (no flush asked for), as parsed lines. */
async function onDisk(): Promise<Array<{ seq: number; event: { metadata: { uid: string }; status_detail: string; unmapped: { gatehouse: Record<string, unknown> } } }>> {
  const files = (await readdir(auditDir()).catch(() => [] as string[])).filter((f) => /^\d{12}\.jsonl$/.test(f)).sort();
  const lines: string[] = [];
  for (const f of files) lines.push(...(await readFile(join(auditDir(), f), 'utf8')).split('\n').filter((l) => l.length > 0));
  return lines.map((l) => JSON.parse(l) as never);
}

beforeAll(async () => {
  h = await startBrokerHarness(filePolicy().replace('version: 1\n', 'version: 1\naudit: {durability: strict}\n'));
  token = await h.token({ session: 'strict-1' });
});

afterAll(async () => {
  await h?.close();
});

describe('broker with strict audit durability', () => {
  it('an allowed write: the decision is on disk before the store is touched, the end event follows', async () => {
    const res = await raw(h.url, 'PUT', '/v1/files/outputs/strict.txt', { token, body: 'durable', headers: { 'content-length': 7 } });
    expect(res.status).toBe(200);
    const id = String(res.headers['x-gatehouse-correlation-id']);
    // The decision was fsynced before the write ran, so it is in the file now, without any flush.
    const decision = (await onDisk()).filter((r) => r.event.metadata.uid === id);
    expect(decision[0]?.event.unmapped.gatehouse['phase']).toBe('decision');
    await h.audit.flush();
    expect((await onDisk()).filter((r) => r.event.metadata.uid === id).map((r) => r.event.unmapped.gatehouse['phase'])).toEqual(['decision', 'end']);
  });

  it('a refusal is on disk by the time the client has its answer', async () => {
    const res = await raw(h.url, 'PUT', '/v1/files/inputs/nope.txt', { token, body: 'x', headers: { 'content-length': 1 } });
    expect(res.status).toBe(403);
    const id = String(res.headers['x-gatehouse-correlation-id']);
    const records = (await onDisk()).filter((r) => r.event.metadata.uid === id);
    expect(records.map((r) => r.event.status_detail)).toEqual(['mount_read_only']);
  });

  it('an unwritable audit log refuses everything with 503 audit_unavailable and leaves the store untouched', async () => {
    // A broker of its own whose audit directory breaks before its first record: an already open segment would
    // keep taking writes through its file descriptor even after the directory is gone.
    const b = await startBrokerHarness(filePolicy().replace('version: 1\n', 'version: 1\naudit: {durability: strict}\n'));
    try {
      const t = await b.token({ session: 'strict-broken' });
      const dir = join(b.dir, 'audit', 'broker');
      await rm(dir, { recursive: true, force: true });
      await writeFile(dir, 'not a directory');
      const put = await raw(b.url, 'PUT', '/v1/files/outputs/never.txt', { token: t, body: 'never', headers: { 'content-length': 5 } });
      expect(put.status).toBe(503);
      expect(put.json).toMatchObject({ error: { reason: 'audit_unavailable' } });
      // A request that would have been refused anyway cannot be recorded either: the client is told so.
      const refused = await raw(b.url, 'PUT', '/v1/files/inputs/nope.txt', { token: t, body: 'x', headers: { 'content-length': 1 } });
      expect(refused.status).toBe(503);
      expect(refused.json).toMatchObject({ error: { reason: 'audit_unavailable' } });
      expect(await localKeys(join(b.dir, 'files'), '')).toEqual([]);
      // Once the directory works again, so does the broker.
      await rm(dir, { force: true });
      await mkdir(dir, { mode: 0o700 });
      const again = await raw(b.url, 'PUT', '/v1/files/outputs/later.txt', { token: t, body: 'later', headers: { 'content-length': 5 } });
      expect(again.status).toBe(200);
      expect(await localKeys(join(b.dir, 'files'), '')).toEqual(['acme/fs-1/outputs/later.txt']);
    } finally {
      await b.close();
    }
  });
});
