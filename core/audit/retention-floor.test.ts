import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { retentionFloor } from './retention-floor.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-retention-'));
  await mkdir(join(dir, 'cursors'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const cursor = (sink: string, egress: number, control = egress): Promise<void> =>
  writeFile(join(dir, 'cursors', `${sink}.json`), JSON.stringify({ confirmed: { egress, broker: 0, gateway: 0, sds: 0, control }, checkpoints: {} }));
const MAX = Number.MAX_SAFE_INTEGER;

describe('how far retention may delete', () => {
  it('without sinks nothing holds records back', async () => {
    expect((await retentionFloor(dir, []))['egress']).toBe(MAX);
    expect((await retentionFloor(join(dir, 'absent'), undefined))['egress']).toBe(MAX);
  });

  it('stops at the least any configured sink has confirmed, per source', async () => {
    await cursor('siem', 40, 7);
    await cursor('hec', 12, 30);
    expect(await retentionFloor(dir, ['siem', 'hec'])).toMatchObject({ egress: 12, control: 7 });
  });

  it('ignores the cursor of a sink that is no longer configured: a removed sink does not stop retention for good', async () => {
    await cursor('siem', 40);
    await cursor('removed-last-year', 3);
    expect((await retentionFloor(dir, ['siem']))['egress']).toBe(40);
    // Without the list of configured sinks (a bare writer), every cursor found counts.
    expect((await retentionFloor(dir))['egress']).toBe(3);
  });

  it('keeps everything for a configured sink that has no cursor yet (never started, nothing delivered)', async () => {
    await cursor('siem', 40);
    expect((await retentionFloor(dir, ['siem', 'not-started']))['egress']).toBe(0);
  });

  it('keeps everything when a cursor cannot be read', async () => {
    await cursor('siem', 40);
    await writeFile(join(dir, 'cursors', 'hec.json'), '{torn');
    expect((await retentionFloor(dir, ['siem', 'hec']))['egress']).toBe(0);
  });
});
