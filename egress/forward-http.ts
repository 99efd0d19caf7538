import type { IncomingMessage, ServerResponse } from 'node:http';
import { Agent, errors as undiciErrors, type Dispatcher } from 'undici';
import type { Reason } from '../core/errors/index.js';
import { canonicalizeHost, DialError, formatIp, hostForAuthority, type IpAddress, type Netguard } from '../core/netguard/index.js';
import { downstreamResponseHeaders, upstreamRequestHeaders } from './hop-by-hop.js';
import type { ProxyTarget } from './request-target.js';

/** Host header value for the upstream: the canonical host (punycode, dotted quad), port only when not default. */
export function canonicalAuthority(target: ProxyTarget, defaultPort: number): string {
  const host = hostForAuthority(target.host);
  return target.port === defaultPort ? host : `${host}:${target.port}`;
}

export interface ForwardResult {
  readonly status: number;
  readonly bytesUp: number;
  readonly bytesDown: number;
  readonly endReason: string;
  /** Set when the request failed before a response could be relayed (the client got this deny reason). */
  readonly failure?: Reason;
}

/**
 * The upstream side of plain-HTTP proxying: one undici Agent with keep-alive pools keyed by the vetted IP and
 * port. Its connector only accepts IP literals and dials through netguard, so a pooled connection always goes
 * to an address that was vetted (never a name resolved again).
 */
export function createUpstreamAgent(netguard: Netguard, connectTimeoutMs: () => number): Agent {
  return new Agent({
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 120_000,
    pipelining: 1,
    connect: (options, callback) => {
      const host = canonicalizeHost(options.hostname);
      if (host?.kind !== 'ip') {
        callback(new DialError('unreachable', 'upstream origins must be vetted IP literals'), null);
        return;
      }
      netguard
        .dial([host.ip], Number(options.port), { timeoutMs: connectTimeoutMs() })
        .then((socket) => callback(null, socket), (err: Error) => callback(err, null));
    },
  });
}

const failureReason = (err: Error): Reason => {
  if (err instanceof DialError) return err.code === 'timeout' ? 'upstream_timeout' : 'upstream_connect_failed';
  if (err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.ConnectTimeoutError) return 'upstream_timeout';
  if (err instanceof undiciErrors.BodyTimeoutError) return 'upstream_timeout';
  return 'upstream_error';
};

export interface ForwardOptions {
  readonly agent: Agent;
  readonly target: ProxyTarget;
  readonly address: IpAddress;
  readonly responseTimeoutMs: number;
  readonly idleTimeoutMs: number;
  /** Called with the failure when nothing was relayed yet, so the caller can answer with a deny response. */
  readonly onFailure: (reason: Reason) => void;
}

/**
 * Relay one absolute-form request to the vetted address and stream the response back, with backpressure in
 * both directions and nothing buffered whole. Resolves when the exchange is over, however it ended.
 */
export function forwardHttp(req: IncomingMessage, res: ServerResponse, options: ForwardOptions): Promise<ForwardResult> {
  const { target } = options;
  const socket = req.socket;
  const readAtStart = socket.bytesRead;
  const hasBody = req.headers['content-length'] !== undefined ? req.headers['content-length'] !== '0' : req.headers['transfer-encoding'] !== undefined;
  return new Promise<ForwardResult>((resolve) => {
    let status = 0;
    let bytesDown = 0;
    let controller: Dispatcher.DispatchController | null = null;
    let settled = false;
    const finish = (endReason: string, failure?: Reason): void => {
      if (settled) return;
      settled = true;
      res.off('close', onClientClose);
      resolve({ status, bytesUp: Math.max(0, socket.bytesRead - readAtStart), bytesDown, endReason, ...(failure ? { failure } : {}) });
    };
    const onClientClose = (): void => {
      if (res.writableFinished) return;
      controller?.abort(new Error('client closed'));
      finish('client_closed');
    };
    res.on('close', onClientClose);

    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        controller = c;
      },
      onResponseStart(c, statusCode, headers, statusMessage) {
        status = statusCode;
        res.writeHead(statusCode, statusMessage ?? '', downstreamResponseHeaders(headers));
        res.on('drain', () => c.resume());
      },
      onResponseData(c, chunk) {
        bytesDown += chunk.length;
        // Backpressure: stop reading upstream while the client is slower than the origin.
        if (!res.write(chunk)) c.pause();
      },
      onResponseEnd() {
        res.end();
        finish('completed');
      },
      onResponseError(_c, err) {
        const reason = failureReason(err);
        if (!res.headersSent) {
          options.onFailure(reason);
          finish(reason, reason);
        } else {
          // Mid-body failure: the only honest signal left is to cut the client connection.
          res.destroy();
          finish(reason);
        }
      },
    };

    options.agent.dispatch(
      {
        origin: `http://${hostForAuthority({ kind: 'ip', host: formatIp(options.address), ip: options.address })}:${target.port}`,
        path: target.path,
        method: req.method as Dispatcher.HttpMethod,
        headers: upstreamRequestHeaders(req.rawHeaders, req.headers.connection, canonicalAuthority(target, 80), false),
        body: hasBody ? req : null,
        headersTimeout: options.responseTimeoutMs,
        bodyTimeout: options.idleTimeoutMs,
        // A proxy relays exactly what it was asked; never retried or redirected here.
        idempotent: false,
        blocking: false,
      },
      handler,
    );
  });
}
