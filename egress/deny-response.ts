import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { REASONS, type Reason } from '../core/errors/index.js';

const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  403: 'Forbidden',
  407: 'Proxy Authentication Required',
  408: 'Request Timeout',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/**
 * The body says what happened in words an agent can act on, and nothing internal: the reason code, its fixed
 * summary and the correlation id that finds the audit event.
 */
function body(reason: Reason, correlationId: string): string {
  return `Gatehouse refused this request: ${reason}\n${REASONS[reason].summary}\ncorrelation_id: ${correlationId}\n`;
}

function headers(reason: Reason, correlationId: string, length: number): Array<[string, string]> {
  const list: Array<[string, string]> = [
    ['X-Gatehouse-Deny', reason],
    ['X-Gatehouse-Correlation-Id', correlationId],
    ['Content-Type', 'text/plain; charset=utf-8'],
    ['Content-Length', String(length)],
    ['Cache-Control', 'no-store'],
  ];
  // RFC 9110 §10.2.3: tell a client that is merely early when to come back, so it backs off instead of
  // hammering. One second is the token bucket's refill horizon and a reasonable pause when at capacity.
  const status = REASONS[reason].status;
  if (status === 429 || status === 503) list.push(['Retry-After', '1']);
  // RFC 9110 §11.7.1: a 407 carries the challenge. Basic is what proxy-URL credentials use.
  if (status === 407) {
    list.push(['Proxy-Authenticate', 'Basic realm="gatehouse", charset="UTF-8"']);
    list.push(['Proxy-Authenticate', 'Bearer realm="gatehouse"']);
  }
  return list;
}

/** Refuse an absolute-form request on its response. The connection stays usable unless `close`. */
export function denyResponse(res: ServerResponse, reason: Reason, correlationId: string, close = false): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = body(reason, correlationId);
  const status = REASONS[reason].status;
  const list = headers(reason, correlationId, Buffer.byteLength(text));
  if (close) list.push(['Connection', 'close']);
  res.shouldKeepAlive = !close && res.shouldKeepAlive;
  res.writeHead(status, STATUS_TEXT[status] ?? 'Error', list.flat());
  res.end(text);
}

/** Refuse on a raw socket (CONNECT, Upgrade, parse errors): write the response and close. */
export function denySocket(socket: Duplex, reason: Reason, correlationId: string): void {
  if (socket.destroyed || !socket.writable) {
    socket.destroy();
    return;
  }
  const text = body(reason, correlationId);
  const status = REASONS[reason].status;
  const head = [`HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}`, ...headers(reason, correlationId, Buffer.byteLength(text)).map(([k, v]) => `${k}: ${v}`), 'Connection: close'];
  socket.end(`${head.join('\r\n')}\r\n\r\n${text}`);
  // Do not wait forever for a peer that never reads.
  setTimeout(() => socket.destroy(), 2000).unref();
}
