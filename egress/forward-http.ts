import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline, Transform, type TransformCallback } from 'node:stream';
import { Agent, errors as undiciErrors, type Dispatcher } from 'undici';
import type { Reason } from '../core/errors/index.js';
import { canonicalizeHost, DialError, formatIp, hostForAuthority, type IpAddress, type Netguard } from '../core/netguard/index.js';
import { downstreamResponseHeaders, upstreamRequestHeaders } from '../core/http/hop-by-hop.js';
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
  /** Called exactly once, when the exchange is over, however it ended. */
  readonly onDone: (result: ForwardResult) => void;
}

/** Counts request body bytes on their way upstream (the exchange's bytes_out), passing them through untouched. */
class ByteCounter extends Transform {
  bytes = 0;
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    callback(null, chunk);
  }
}

/**
 * One proxied exchange, as the undici dispatch handler. A class rather than closures: this object is the only
 * allocation per request on the relay path, and its methods are shared.
 */
class HttpExchange implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | null = null;
  private status = 0;
  private bytesDown = 0;
  private settled = false;
  private waitingForDrain = false;
  // Held here: Node detaches req.socket once the response has finished.
  private readonly socket: IncomingMessage['socket'];

  constructor(
    private readonly res: ServerResponse,
    req: IncomingMessage,
    private readonly counter: ByteCounter | null,
    private readonly options: ForwardOptions,
  ) {
    this.socket = req.socket;
    res.once('close', this.onClientClose);
  }

  private readonly onClientClose = (): void => {
    if (this.res.writableFinished) return;
    this.controller?.abort(new Error('client closed'));
    this.finish('client_closed');
  };

  private readonly onDrain = (): void => {
    this.waitingForDrain = false;
    this.controller?.resume();
  };

  private finish(endReason: string, failure?: Reason): void {
    if (this.settled) return;
    this.settled = true;
    this.res.off('close', this.onClientClose);
    const bytesUp = this.counter?.bytes ?? 0;
    this.options.onDone(failure ? { status: this.status, bytesUp, bytesDown: this.bytesDown, endReason, failure } : { status: this.status, bytesUp, bytesDown: this.bytesDown, endReason });
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    // The client may have gone while the request was being decided: do not send it upstream for nobody.
    if (this.res.destroyed || this.socket.destroyed) {
      controller.abort(new Error('client closed'));
      this.finish('client_closed');
    }
  }

  onResponseStart(_c: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>, statusMessage?: string): void {
    this.status = statusCode;
    if (this.res.destroyed) return;
    this.res.writeHead(statusCode, statusMessage ?? '', downstreamResponseHeaders(headers));
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.bytesDown += chunk.length;
    if (this.res.destroyed) return;
    // Backpressure: stop reading upstream while the client is slower than the origin.
    if (!this.res.write(chunk) && !this.waitingForDrain) {
      this.waitingForDrain = true;
      controller.pause();
      this.res.once('drain', this.onDrain);
    }
  }

  onResponseEnd(): void {
    this.res.end();
    this.finish('completed');
  }

  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    const reason = failureReason(err);
    if (this.settled) return;
    if (!this.res.headersSent && !this.res.destroyed) {
      this.options.onFailure(reason);
      this.finish(reason, reason);
    } else {
      // Mid-body failure: the only honest signal left is to cut the client connection.
      this.res.destroy();
      this.finish(this.res.destroyed && this.status === 0 ? 'client_closed' : reason);
    }
  }
}

/**
 * Relay one absolute-form request to the vetted address and stream the response back, with backpressure in
 * both directions and nothing buffered whole. `options.onDone` is called once, when the exchange is over.
 */
export function forwardHttp(req: IncomingMessage, res: ServerResponse, options: ForwardOptions): void {
  const { target } = options;
  const hasBody = req.headers['content-length'] !== undefined ? req.headers['content-length'] !== '0' : req.headers['transfer-encoding'] !== undefined;
  // Bodies pass through a counter (requests without one, most of them, skip it).
  const counter = hasBody ? new ByteCounter() : null;
  if (counter) pipeline(req, counter, () => undefined);
  const exchange = new HttpExchange(res, req, counter, options);
  options.agent.dispatch(
    {
      origin: `http://${options.address.family === 6 ? `[${formatIp(options.address)}]` : formatIp(options.address)}:${target.port}`,
      path: target.path,
      method: req.method as Dispatcher.HttpMethod,
      headers: upstreamRequestHeaders(req.rawHeaders, req.headers.connection, canonicalAuthority(target, 80), false),
      body: counter,
      headersTimeout: options.responseTimeoutMs,
      bodyTimeout: options.idleTimeoutMs,
      // A proxy relays exactly what it was asked; never retried or redirected here.
      idempotent: false,
      blocking: false,
    },
    exchange,
  );
}
