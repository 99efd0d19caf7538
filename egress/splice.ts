import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

export interface SpliceResult {
  /** Bytes the client sent on through the tunnel. */
  readonly bytesUp: number;
  /** Bytes the destination sent back. */
  readonly bytesDown: number;
  readonly endReason: string;
}

export interface Splice {
  readonly done: Promise<SpliceResult>;
  /** Close both sides now, recording why. */
  cut(reason: string): void;
}

/**
 * Splice a client socket and an upstream socket, byte for byte, both ways. Half-close is honoured (RFC 9112
 * §9.6: a FIN from one side is passed on, the other direction keeps flowing); the tunnel ends when both
 * directions have ended, either side errors, it has been idle for `idleMs`, or it is cut.
 */
export function splice(client: Duplex & { bytesWritten?: number }, upstream: Socket, idleMs: number): Splice {
  let endReason: string | null = null;
  let resolveDone!: (r: SpliceResult) => void;
  const done = new Promise<SpliceResult>((resolve) => {
    resolveDone = resolve;
  });
  const upWrittenAtStart = upstream.bytesWritten;
  const upReadAtStart = upstream.bytesRead;
  let closed = 0;
  let grace: NodeJS.Timeout | null = null;
  const onClose = (hadError: boolean): void => {
    closed++;
    if (closed < 2) {
      // A clean close means both directions of that socket finished, so the other side is finishing too; give
      // it a moment to flush. An abrupt close leaves nothing worth waiting for.
      if (hadError) cut('reset');
      else grace = setTimeout(() => cut('completed'), 5000).unref();
      return;
    }
    if (grace) clearTimeout(grace);
    resolveDone({ bytesUp: upstream.bytesWritten - upWrittenAtStart, bytesDown: upstream.bytesRead - upReadAtStart, endReason: endReason ?? 'completed' });
  };
  const cut = (reason: string): void => {
    endReason ??= reason;
    client.destroy();
    upstream.destroy();
  };
  client.on('error', () => cut('client_error'));
  upstream.on('error', () => cut('upstream_error'));
  client.on('close', onClose);
  upstream.on('close', onClose);
  // Node's socket timeout counts reads and writes on that socket; both sides see every byte, so either one
  // firing means no byte moved in either direction for idleMs.
  upstream.setTimeout(idleMs, () => cut('idle_timeout'));
  client.pipe(upstream);
  upstream.pipe(client);
  return { done, cut };
}
