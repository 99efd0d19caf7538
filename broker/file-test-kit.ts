// Helpers the broker file tests share: a policy with the mounts the tests use, a raw HTTP client (sends a path
// byte for byte, which fetch's URL parsing would not), body generators that never hold a whole body, and the
// checks every refusal gets (wire reason and code, the one audit event, no secret anywhere).
import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { request as httpRequest, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { expect } from 'vitest';
import { REASONS, type Reason } from '../core/errors/index.js';
import type { BrokerHarness } from '../test/support/broker-harness.js';
import { Refusal } from './refusal.js';

/** The mounts every file test's tenant `acme` has. */
export const MOUNTS = `
        - {path: /inputs, mode: ro}
        - {path: /outputs, mode: rw, max_object_bytes: 64MiB}
        - {path: /outputs2, mode: rw}
        - {path: /scratch, mode: rw, max_object_bytes: 1KiB}
        - {path: /private, mode: rw}`;

export interface PolicyOptions {
  /** YAML list items for broker.stores, indented for `  stores:`; absent: the default local store. */
  readonly stores?: string;
  /** Store name tenants use; absent: the default. */
  readonly store?: string;
  readonly limits?: { readonly rps?: number; readonly burst?: number; readonly concurrent?: number };
  /** Mounts of tenant `acme` (YAML list items); absent: MOUNTS. */
  readonly mounts?: string;
  readonly clockSkew?: string;
}

/**
 * A policy with two tenants on the same store: `acme` (the mounts above) and `globex` (its own /outputs), with
 * generous per-session limits unless a test asks for tight ones.
 */
export function filePolicy(o: PolicyOptions = {}): string {
  const l = o.limits ?? {};
  const store = o.store ? `\n      store: ${o.store}` : '';
  return `version: 1
tokens:
  max_ttl: 1h
  clock_skew: ${o.clockSkew ?? '5s'}
broker:${o.stores ? `\n  stores:\n${o.stores}` : ''}
  limits:
    per_session: {requests_per_second: ${l.rps ?? 10_000}, burst: ${l.burst ?? 10_000}, max_concurrent: ${l.concurrent ?? 256}}
tenants:
  - name: acme
    broker:${store}
      mounts:${o.mounts ?? MOUNTS}
  - name: globex
    broker:${store}
      mounts:
        - {path: /outputs, mode: rw}
`;
}

/** A logical path for the URL: each segment percent-encoded once, slashes kept (empty segments too). */
export const urlPath = (logical: string): string => logical.split('/').map(encodeURIComponent).join('/');

export interface RawResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  readonly text: string;
  readonly json: { error?: { code: string; reason: string; message: string; correlation_id: string } } & Record<string, unknown>;
}

/**
 * One HTTP request with the path sent exactly as given (no URL parsing: `..`, `%2e%2e`, backslashes and raw bytes
 * reach the broker as written). `body` may be a stream; bounded by `timeoutMs`.
 */
export function raw(
  base: string,
  method: string,
  path: string,
  options: RawOptions = {},
): Promise<RawResponse> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...options.headers };
    if (options.token) headers['authorization'] = `Bearer ${options.token}`;
    const req = httpRequest({ host: url.hostname, port: url.port, method, path, headers, agent: false, ...(options.signal ? { signal: options.signal } : {}) });
    options.onRequest?.(req);
    const timer = setTimeout(() => req.destroy(new Error(`${method} ${path}: no answer within ${options.timeoutMs ?? 15_000} ms`)), options.timeoutMs ?? 15_000);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.on('response', (res: IncomingMessage) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      res.on('end', () => {
        clearTimeout(timer);
        const body = Buffer.concat(parts);
        const text = body.toString('utf8');
        let json = {};
        try {
          json = JSON.parse(text) as Record<string, unknown>;
        } catch {
          // not JSON (a file body)
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text, json });
      });
    });
    const body = options.body;
    if (body instanceof Readable) body.pipe(req);
    else if (!options.onRequest || body !== undefined) req.end(body);
  });
}

export interface RawOptions {
  readonly token?: string | null;
  readonly headers?: Record<string, string | number>;
  /** Sent whole, or piped; absent with `onRequest`: the caller writes and ends the request. */
  readonly body?: Buffer | string | Readable;
  readonly timeoutMs?: number;
  /** Aborting closes the connection (a client going away). */
  readonly signal?: AbortSignal;
  /** The request, for writing the body by hand and listening for `continue`. */
  readonly onRequest?: (req: ClientRequest) => void;
}

/**
 * Start an upload the test drives by hand: the headers go out with `Expect: 100-continue`, and `accepted` resolves
 * when the broker's handler has the request (Node answers 100 Continue as it hands the request to the handler).
 * Then `write` body bytes (resolving once flushed) and `end`, or `abort` (the client going away).
 */
export function manualUpload(base: string, path: string, token: string, headers: Record<string, string | number>) {
  const controller = new AbortController();
  let req: ClientRequest | undefined;
  let accept: () => void = () => undefined;
  const accepted = new Promise<void>((resolve) => (accept = resolve));
  const response = raw(base, 'PUT', path, {
    token,
    headers: { ...headers, expect: '100-continue' },
    signal: controller.signal,
    timeoutMs: 60_000,
    onRequest: (r) => {
      req = r;
      r.on('continue', accept);
    },
  }).catch((err: Error) => err);
  return {
    accepted,
    response,
    write: (b: Buffer | string): Promise<void> => new Promise((resolve, reject) => void req?.write(b, (err) => (err ? reject(err) : resolve()))),
    end: (): void => void req?.end(),
    abort: (): void => controller.abort(),
  };
}

/** Deterministic bytes: a 64 KiB pattern, with each block's offset stamped in, so a shifted or repeated chunk shows. */
export function patternStream(size: number, chunk = 64 * 1024): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= size) {
        this.push(null);
        return;
      }
      const n = Math.min(chunk, size - sent);
      const b = Buffer.alloc(n, sent % 251);
      // A last chunk shorter than the stamp gets none (writing it threw, from inside the stream).
      if (n >= 4) b.writeUInt32BE(Math.floor(sent / chunk) >>> 0, 0);
      sent += n;
      this.push(b);
    },
  });
}

/** SHA-256 of what `patternStream(size)` produces, computed by streaming it (never held whole). */
export async function patternDigest(size: number): Promise<string> {
  const h = createHash('sha256');
  for await (const c of patternStream(size)) h.update(c as Buffer);
  return h.digest('hex');
}

/**
 * A request body the test feeds by hand: `push` some bytes, then `end` (the upload completes) or leave it open
 * (the broker is mid-upload).
 */
export function handBody(): { stream: Readable; push(b: Buffer | string): void; end(): void } {
  const stream = new Readable({ read() {} });
  return { stream, push: (b) => void stream.push(b), end: () => void stream.push(null) };
}

/** The broker audit event of one response, found by its correlation id. */
export async function eventOf(h: BrokerHarness, res: { headers: IncomingHttpHeaders | Headers }): Promise<BrokerEvent> {
  const id = res.headers instanceof Headers ? res.headers.get('x-gatehouse-correlation-id') : (res.headers['x-gatehouse-correlation-id'] as string | undefined);
  expect(id, 'every broker response carries a correlation id').toBeTruthy();
  return (await h.waitForEvent((e) => (e['metadata'] as { uid?: string }).uid === id)) as BrokerEvent;
}

/** The parts of a broker event the tests read. */
export interface BrokerEvent {
  readonly class_uid: number;
  readonly status_detail: string;
  readonly disposition_id: number;
  readonly api?: { operation: string; response?: { code: number } };
  readonly resources?: Array<{ type: string; name: string }>;
  readonly traffic?: { bytes_out: number; bytes_in: number; bytes: number };
  readonly actor?: { session?: { uid: string } };
  readonly user?: { uid?: string };
  readonly metadata: { uid: string; tenant_uid?: string };
  readonly unmapped: { gatehouse: { filesystem?: string; store?: string; auth_detail?: string; end_reason?: string } };
  readonly [key: string]: unknown;
}

/** The status a refusal for `reason` is sent with (the reason registry decides it; the broker maps it through Refusal). */
export const statusOf = (reason: Reason): number => new Refusal(reason, '').status;

/**
 * A refusal as the client and the audit log see it: the reason and a GH_ERR code on the wire, the same status
 * in the event as on the wire, and exactly one event for the request. Returns the event.
 */
export async function expectRefused(h: BrokerHarness, res: RawResponse, reason: Reason, what = ''): Promise<BrokerEvent> {
  expect({ what, status: res.status, reason: res.json.error?.reason }).toEqual({ what, status: statusOf(reason), reason });
  expect(res.json.error?.code).toMatch(/^GH_ERR_BROKER_/);
  expect(res.json.error?.correlation_id).toBe(res.headers['x-gatehouse-correlation-id']);
  const event = await eventOf(h, res);
  expect(event.status_detail).toBe(reason);
  expect(event.disposition_id).toBe(2);
  if (event.api) expect(event.api.response?.code).toBe(res.status);
  expect(h.events.filter((e) => (e['metadata'] as { uid: string }).uid === event.metadata.uid)).toHaveLength(1);
  expect(REASONS[reason]).toBeDefined();
  return event;
}

/** An allowed operation's event: operation, logical paths, filesystem, status and bytes. */
export async function expectAllowed(
  h: BrokerHarness,
  res: { status: number; headers: IncomingHttpHeaders | Headers },
  want: { operation: string; paths: string[]; fs?: string; tenant?: string; bytesUp?: number; bytesDown?: number },
): Promise<BrokerEvent> {
  const event = await eventOf(h, res);
  expect(event.status_detail).toBe('allowed');
  expect(event.api?.operation).toBe(want.operation);
  expect(event.api?.response?.code).toBe(res.status);
  expect(event.resources?.map((r) => r.name)).toEqual(want.paths);
  expect(event.unmapped.gatehouse.filesystem).toBe(want.fs ?? 'fs-1');
  expect(event.metadata.tenant_uid).toBe(want.tenant ?? 'acme');
  if (want.bytesUp !== undefined || want.bytesDown !== undefined) {
    expect(event.traffic).toEqual({ bytes_out: want.bytesUp ?? 0, bytes_in: want.bytesDown ?? 0, bytes: (want.bytesUp ?? 0) + (want.bytesDown ?? 0) });
  }
  return event;
}

/** Fail if any of `secrets` appears in any of `haystacks` (responses, events, logs). */
export function expectNoSecrets(haystacks: readonly string[], secrets: readonly string[]): void {
  for (const s of secrets) {
    if (s.length < 8) throw new Error('a secret to search for must be long enough not to match by chance');
    const hits = haystacks.filter((text) => text.includes(s)).map((text) => text.slice(0, 200));
    expect(hits, `a secret (${s.slice(0, 4)}...) leaked`).toEqual([]);
  }
}

/**
 * The keys a local store directory holds under `prefix`, read from the directory itself with the mapping the store
 * documents (segments escape `%` as %25 and `~` as %7E, an empty segment is a lone `%`, a file name ends in `~`;
 * temporary files live in `.tmp/`), so the test does not trust the store's own listing.
 */
export async function localKeys(root: string, prefix: string): Promise<string[]> {
  const decode = (s: string): string => (s === '%' ? '' : s.replace(/%7E/g, '~').replace(/%25/g, '%'));
  const keys: string[] = [];
  const walk = async (dir: string, keyPrefix: string, depth: number): Promise<void> => {
    if (depth > 64) throw new Error('directory tree deeper than any key');
    for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      if (depth === 0 && e.name === '.tmp') continue;
      if (e.isDirectory()) await walk(join(dir, e.name), `${keyPrefix}${decode(e.name)}/`, depth + 1);
      else if (e.name.endsWith('~')) keys.push(`${keyPrefix}${decode(e.name.slice(0, -1))}`);
      else keys.push(`UNEXPECTED FILE ${keyPrefix}${e.name}`);
    }
  };
  await walk(root, '', 0);
  return keys.filter((k) => k.startsWith(prefix) || k.startsWith('UNEXPECTED')).sort();
}
