import { connect, type Socket } from 'node:net';
import { formatIp, type IpAddress } from './ip-address.js';

export class DialError extends Error {
  readonly code: 'timeout' | 'refused' | 'unreachable' | 'aborted';
  constructor(code: DialError['code'], message: string) {
    super(message);
    this.name = 'DialError';
    this.code = code;
  }
}

export interface DialOptions {
  /** Overall budget across every address tried. */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

function dialOne(ip: IpAddress, port: number, timeoutMs: number, signal?: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    // SECURITY: a literal address, never a name: what was vetted is what is dialled (no second resolution).
    const socket = connect({ host: formatIp(ip), port, family: ip.family, noDelay: true });
    let settled = false;
    const finish = (err: DialError | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.off('connect', onConnect);
      socket.off('error', onError);
      if (err) {
        socket.destroy();
        reject(err);
      } else resolve(socket);
    };
    const onConnect = (): void => finish(null);
    const onError = (err: NodeJS.ErrnoException): void =>
      finish(new DialError(err.code === 'ECONNREFUSED' ? 'refused' : 'unreachable', err.code ?? 'connect error'));
    const onAbort = (): void => finish(new DialError('aborted', 'aborted'));
    const timer = setTimeout(() => finish(new DialError('timeout', 'connect timeout')), timeoutMs);
    socket.once('connect', onConnect);
    socket.once('error', onError);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Connect to the first vetted address that answers, in resolver order, within one overall time budget.
 * The socket comes back with TCP_NODELAY set: proxied traffic is latency-bound, and Nagle plus delayed ACKs
 * stalls request/response exchanges.
 */
export async function dialVetted(addresses: readonly IpAddress[], port: number, options: DialOptions): Promise<Socket> {
  const deadline = performance.now() + options.timeoutMs;
  // Created only on failure: an Error captures a stack trace, which is not free on a hot path.
  let last: DialError | null = null;
  for (const ip of addresses) {
    const remaining = deadline - performance.now();
    if (remaining <= 0) throw new DialError('timeout', 'connect timeout');
    if (options.signal?.aborted) throw new DialError('aborted', 'aborted');
    try {
      return await dialOne(ip, port, remaining, options.signal);
    } catch (err) {
      last = err as DialError;
      if (last.code === 'aborted') throw last;
    }
  }
  throw last ?? new DialError('unreachable', 'no address');
}
