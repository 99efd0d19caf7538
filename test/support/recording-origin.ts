import { mkdir, readFile, writeFile } from 'node:fs/promises';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { run } from './run.js';

/** A throwaway certificate authority and a server certificate it signed for 127.0.0.1 and localhost. */
export interface TestPki {
  /** PEM file of the CA certificate (what a policy's `tls.ca: file:...` points at). */
  readonly caPath: string;
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

async function openssl(args: readonly string[]): Promise<void> {
  const r = await run('openssl', args, { timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`openssl ${args[0] ?? ''} failed (${r.code}): ${r.stderr.trim()}`);
}

/**
 * Make a CA (P-256, CA:TRUE) and a server certificate signed by it (SAN IP:127.0.0.1, DNS:localhost), with the
 * openssl CLI run asynchronously (the servers under test share this event loop). Files go under `dir`.
 */
export async function makeTestPki(dir: string, commonName = 'Gatehouse Test CA'): Promise<TestPki> {
  await mkdir(dir, { recursive: true });
  const p = (name: string): string => join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await openssl(['req', '-x509', ...ec, '-days', '2', '-subj', `/CN=${commonName}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-keyout', p('ca.key'), '-out', p('ca.pem')]);
  await openssl(['req', ...ec, '-subj', '/CN=localhost', '-keyout', p('server.key'), '-out', p('server.csr')]);
  await writeFile(p('server.ext'), 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n');
  await openssl(['x509', '-req', '-in', p('server.csr'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', p('server.ext'), '-out', p('server.pem')]);
  const [ca, cert, key] = await Promise.all([readFile(p('ca.pem'), 'utf8'), readFile(p('server.pem'), 'utf8'), readFile(p('server.key'), 'utf8')]);
  return { caPath: p('ca.pem'), ca, cert, key };
}

/** One request as the origin received it. */
export interface RecordedRequest {
  readonly method: string;
  /** The request target exactly as received. */
  readonly url: string;
  /** The target's path, still percent-encoded. */
  readonly path: string;
  /** The target's query without `?` ('' when none). */
  readonly query: string;
  readonly headers: IncomingHttpHeaders;
  /** Name/value pairs in arrival order (repeated fields stay separate). */
  readonly rawHeaders: readonly string[];
  /** The body received so far; complete once `bodyDone` resolved. */
  body: Buffer;
  readonly bodyDone: Promise<Buffer>;
  /** Resolves when the connection closed before the origin ended its response: the caller gave up. */
  readonly aborted: Promise<void>;
  wasAborted(): boolean;
}

export interface Exchange {
  readonly req: RecordedRequest;
  readonly res: ServerResponse;
}

/** How the origin answers a request. A request no route matches is held open for the test to answer. */
export type Responder = (x: Exchange) => void | Promise<void>;

export interface RecordingOrigin {
  /** https://127.0.0.1:PORT */
  readonly url: string;
  readonly port: number;
  readonly server: Server;
  /** Requests received since the last `reset()`, in arrival order (recorded as soon as the head arrived). */
  readonly requests: RecordedRequest[];
  /** Every request received since the start (`reset()` leaves it alone): for searching everything the origin saw. */
  readonly history: RecordedRequest[];
  /** TCP connections accepted so far. */
  connections(): number;
  /** Answer requests whose path starts with `prefix` with `responder` (the longest matching prefix wins). */
  on(prefix: string, responder: Responder): void;
  /** A request matching `match`, already received or the next one to arrive; rejects after `timeoutMs`. */
  waitForRequest(match?: (r: RecordedRequest) => boolean, timeoutMs?: number): Promise<Exchange>;
  /** Forget the requests recorded so far (routes stay). */
  reset(): void;
  close(): Promise<void>;
}

/** Answer with JSON. */
export const json =
  (status: number, body: unknown, headers: Record<string, string | string[]> = {}): Responder =>
  ({ req, res }) =>
    void req.bodyDone.then(() => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
    });

/**
 * Echo the request back: the body is JSON {method, path, query, headers, body}; every request header is also
 * returned as `x-echo-<name>`. For redaction tests: an upstream that quotes the key it was sent.
 */
export const echo: Responder = ({ req, res }) =>
  void req.bodyDone.then((body) => {
    const out: Record<string, string | string[]> = { 'content-type': 'application/json' };
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) out[`x-echo-${k}`] = v;
    res.writeHead(200, out);
    res.end(JSON.stringify({ method: req.method, path: req.path, query: req.query, headers: req.headers, body: body.toString('utf8') }));
  });

/** Never answer: the test answers through `waitForRequest` (or nobody does: an upstream that hangs). */
export const hold: Responder = () => undefined;

/** Answer with `responder` after `ms` (a slow upstream). */
export const after =
  (ms: number, responder: Responder): Responder =>
  (x) => {
    const timer = setTimeout(() => void responder(x), ms);
    x.res.once('close', () => clearTimeout(timer));
  };

/** Start a server-sent event stream on `res`; each `send` writes one event and flushes it. */
export function sse(res: ServerResponse): { send(data: string, event?: string): void; end(): void } {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  res.flushHeaders();
  return {
    send: (data, event) => void res.write(`${event ? `event: ${event}\n` : ''}data: ${data}\n\n`),
    end: () => void res.end(),
  };
}

/**
 * A real HTTPS origin on 127.0.0.1 (certificate from `pki`) that records every request it receives: method,
 * path, query, headers (raw too) and body. Stands in for a model API or any upstream the broker forwards to.
 */
export async function startRecordingOrigin(pki: Pick<TestPki, 'cert' | 'key'>): Promise<RecordingOrigin> {
  const requests: RecordedRequest[] = [];
  const history: RecordedRequest[] = [];
  const routes = new Map<string, Responder>();
  const waiters = new Set<{ match: (r: RecordedRequest) => boolean; resolve: (x: Exchange) => void }>();
  const exchanges = new WeakMap<RecordedRequest, Exchange>();
  let connections = 0;

  const record = (req: IncomingMessage, res: ServerResponse): Exchange => {
    const target = req.url ?? '';
    const q = target.indexOf('?');
    let aborted = false;
    let onAbort: () => void = () => undefined;
    const abortedP = new Promise<void>((resolve) => (onAbort = resolve));
    res.once('close', () => {
      if (res.writableFinished) return;
      aborted = true;
      onAbort();
    });
    const r: RecordedRequest = {
      method: req.method ?? '',
      url: target,
      path: q === -1 ? target : target.slice(0, q),
      query: q === -1 ? '' : target.slice(q + 1),
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      body: Buffer.alloc(0),
      bodyDone: new Promise<Buffer>((resolve) => {
        const parts: Buffer[] = [];
        req.on('data', (c: Buffer) => {
          parts.push(c);
          r.body = Buffer.concat(parts);
        });
        req.on('end', () => resolve(r.body));
        req.on('error', () => resolve(r.body));
      }),
      aborted: abortedP,
      wasAborted: () => aborted,
    };
    return { req: r, res };
  };

  const server = createServer({ key: pki.key, cert: pki.cert }, (req, res) => {
    const x = record(req, res);
    requests.push(x.req);
    history.push(x.req);
    exchanges.set(x.req, x);
    for (const w of waiters) {
      if (!w.match(x.req)) continue;
      waiters.delete(w);
      w.resolve(x);
    }
    let best = '';
    for (const prefix of routes.keys()) if (x.req.path.startsWith(prefix) && prefix.length > best.length) best = prefix;
    const responder = routes.get(best);
    if (best !== '' && responder) void responder(x);
  });
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `https://127.0.0.1:${port}`,
    port,
    server,
    requests,
    history,
    connections: () => connections,
    on(prefix, responder) {
      routes.set(prefix, responder);
    },
    waitForRequest(match = () => true, timeoutMs = 5000) {
      const hit = requests.find(match);
      if (hit) return Promise.resolve(exchanges.get(hit) as Exchange);
      return new Promise((resolve, reject) => {
        const w = {
          match,
          resolve: (x: Exchange) => {
            clearTimeout(timer);
            resolve(x);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(w);
          reject(new Error(`no matching request reached the origin within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(w);
      });
    },
    reset() {
      requests.length = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
