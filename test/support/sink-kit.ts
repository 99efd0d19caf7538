import type { SendResult, SinkContext } from '../../core/audit/sinks/sink.js';
import { resolveSecret } from '../../core/util/secret-ref.js';

/**
 * What every sink unit test shares: the sink context, the results it saw (swept for secrets at the end), and the
 * servers and sinks to close after each test.
 */
export function sinkKit() {
  const results: SendResult[] = [];
  const open: Array<{ close(): Promise<void> }> = [];
  const ctx: SinkContext = { secret: (ref) => resolveSecret(ref), hostname: 'gh-test-host' };
  return {
    ctx,
    results,
    open,
    /** Record a send's result for the final secret sweep, and return it. */
    track: async (p: Promise<SendResult>): Promise<SendResult> => {
      const r = await p;
      results.push(r);
      return r;
    },
    closeAll: async (): Promise<void> => {
      await Promise.all(open.splice(0).map((o) => o.close()));
    },
  };
}
