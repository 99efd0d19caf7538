import { setTimeout as delay } from 'node:timers/promises';

/**
 * Wait until `check` holds, re-checking every `everyMs`, failing after `timeoutMs`. For conditions outside the
 * test process that announce nothing (a peer server's port opening, a file another program writes): the test
 * waits for the condition, never for a fixed time.
 */
export async function waitUntil<T>(check: () => Promise<T | false | null | undefined> | T | false | null | undefined, what: string, timeoutMs = 10_000, everyMs = 25): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(everyMs);
  }
}
