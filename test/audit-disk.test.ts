import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { verifyAuditDir } from '../core/audit/verify-chain.js';
import { startAuditChild } from './support/audit-child.js';
import { allRecords, segmentFiles } from './support/audit-fixture.js';
import { CLI } from './support/gatehouse-process.js';
import { cleanEnv, run } from './support/run.js';

/** The disk refusing writes part-way, in a real process: `prlimit --fsize` works the same for root and others. */
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-disk-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('audit log on a disk that fills up', () => {
  it('a write cut short leaves no fragment behind; once space returns every event is written and the log verifies', async () => {
    const count = 200;
    // ~1.1 KB events, about one a millisecond, written every 20 ms: the segment crosses 64 KiB mid-write.
    const child = await startAuditChild({ dir, mode: 'batched', count, pad: 1000, flushIntervalMs: 20, burst: 1 }, 64 * 1024);
    await child.waitFor(/^error audit write failed for egress: EFBIG$/);
    await child.waitFor(/^done$/);
    // While the writer fails, what is on disk ends at a whole line (the cut-short part was taken back).
    const [segment] = await segmentFiles(dir);
    const text = await readFile(join(dir, 'egress', segment as string), 'utf8');
    expect(text.length).toBeGreaterThan(0);
    expect(text.endsWith('\n')).toBe(true);
    expect(text.length).toBeLessThanOrEqual(64 * 1024);

    const lifted = await run('prlimit', ['--pid', String(child.pid), '--fsize=unlimited:unlimited']);
    expect(lifted.code).toBe(0);
    child.send('finish');
    await child.waitFor(/^closed$/);
    expect(await child.exited).toBe(0);

    const recs = await allRecords(dir);
    expect(recs.map((r) => r.event['n'])).toEqual(Array.from({ length: count }, (_, i) => i + 1));
    expect((await verifyAuditDir(dir)).firstProblem).toBeUndefined();
  });
});

describe('gatehouse up with an audit directory it cannot use', () => {
  it('exits 1 at once with GH_ERR_AUDIT_WRITE naming the path, instead of hanging on its writer thread', async () => {
    const state = join(dir, 'state');
    await mkdir(join(state, 'audit'), { recursive: true, mode: 0o700 });
    await writeFile(join(state, 'audit', 'egress'), 'a file where the egress chain directory belongs');
    const policy = join(dir, 'policy.yaml');
    await writeFile(policy, 'version: 1\ntenants:\n  - name: acme\n    egress:\n      allow: ["example.com"]\n');
    const proc = spawn(process.execPath, [CLI, 'up', '--state', state, '--policy', policy, '--egress-listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--broker-listen', '127.0.0.1:0'], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => {
        proc.kill('SIGKILL');
        reject(new Error(`gatehouse up did not exit within 15 s; stderr: ${stderr}`));
      }, 15_000);
      proc.once('close', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    expect(code).toBe(1);
    expect(stderr).toContain('GH_ERR_AUDIT_WRITE');
    expect(stderr).toContain(join(state, 'audit', 'egress'));
  });
});
