import { pipeline } from 'node:stream';
import { decideFileAccess, FILE_OPS, type FileOp } from '../core/policy/broker-decide.js';
import type { BrokerRequest } from './broker-request.js';
import { checkLogicalPath, decodeLogicalPath, PathError, physicalKey, type Resolved } from './file-path.js';
import { parseRange } from './range.js';
import { Refusal } from './refusal.js';
import type { StoreRegistry } from './store-registry.js';
import { StoreError, type FileInfo, type Store } from './stores/store.js';

/** The logical path after `/v1/files` (or `/v1/stat`) in the raw request URL, decoded exactly once. */
export function pathFromUrl(rawUrl: string, prefix: string): string {
  const path = rawUrl.slice(prefix.length).split('?')[0] as string;
  try {
    return decodeLogicalPath(path);
  } catch (err) {
    if (err instanceof PathError) throw new Refusal('path_invalid', err.detail);
    throw err;
  }
}

const checked = (path: string): string => {
  try {
    return checkLogicalPath(path);
  } catch (err) {
    if (err instanceof PathError) throw new Refusal('path_invalid', err.detail);
    throw err;
  }
};

/** Map a store failure to the broker reason a client and the audit log see. */
export function storeRefusal(err: unknown, path: string): Refusal {
  if (!(err instanceof StoreError)) return new Refusal('backend_unavailable', 'the file store failed');
  switch (err.kind) {
    case 'not_found':
      return new Refusal('file_not_found', path);
    case 'range':
      return new Refusal('range_not_satisfiable', `${path} has ${err.size ?? 0} bytes`, { 'content-range': `bytes */${err.size ?? 0}` });
    case 'too_large':
      return new Refusal('object_too_large', 'the body is larger than this mount allows');
    case 'incomplete':
      return new Refusal('body_incomplete', err.detail);
    case 'credential':
      return new Refusal('credential_unavailable', "the broker's store credential could not be loaded");
    case 'rejected':
      return new Refusal('backend_rejected', err.detail);
    case 'unavailable':
      return new Refusal('backend_unavailable', err.detail);
  }
}

export class FileRoutes {
  constructor(private readonly stores: StoreRegistry) {}

  /** The mount a path falls under, checked against the operation's need: the policy's own decision (core/). */
  private authorize(r: BrokerRequest, path: string, op: FileOp): Resolved {
    const { kind, need } = FILE_OPS[op];
    const decision = decideFileAccess(r.session.grant, path, kind, need);
    if (!decision.allow) throw new Refusal(decision.reason, decision.detail);
    return decision.resolved;
  }

  private async storeFor(r: BrokerRequest): Promise<{ store: Store; key: (path: string) => string }> {
    const policy = r.deps.policy();
    const settings = policy.broker.stores.get(r.session.ceiling.store);
    if (!settings) throw new Refusal('backend_unavailable', `store ${r.session.ceiling.store} is not configured`);
    r.store = settings.name;
    const prefix = settings.type === 's3' ? settings.prefix : '';
    const { tenant } = r.session.claims;
    const fs = r.session.grant.fs;
    let store: Store;
    try {
      store = await this.stores.get(settings);
    } catch (err) {
      throw storeRefusal(err, '');
    }
    return { store, key: (path) => physicalKey(prefix, tenant, fs, path) };
  }

  private info(path: string, f: FileInfo): Record<string, unknown> {
    return { path, size: f.size, modified: new Date(f.modified).toISOString(), etag: f.etag };
  }

  async get(r: BrokerRequest, head: boolean): Promise<void> {
    const path = pathFromUrl(r.req.url ?? '', '/v1/files');
    r.paths = [path];
    this.authorize(r, path, 'read');
    const range = head ? undefined : parseRange(r.req.headers.range);
    const { store, key } = await this.storeFor(r);
    await r.decided();
    if (head) {
      const info = await store.stat(key(path)).catch((err: unknown) => {
        throw storeRefusal(err, path);
      });
      if (!info) throw new Refusal('file_not_found', path);
      r.res.writeHead(200, { ...fileHeaders(info), 'content-length': info.size, 'x-gatehouse-correlation-id': r.correlationId });
      r.res.end();
      r.finish(true, 'allowed', 200);
      return;
    }
    let result;
    try {
      result = await store.read(key(path), range);
    } catch (err) {
      throw storeRefusal(err, path);
    }
    const status = result.range ? 206 : 200;
    const length = result.range ? result.range.end - result.range.start + 1 : result.info.size;
    r.expectedOut = length;
    r.res.writeHead(status, {
      ...fileHeaders(result.info),
      'content-length': length,
      ...(result.range ? { 'content-range': `bytes ${result.range.start}-${result.range.end}/${result.info.size}` } : {}),
      'x-gatehouse-correlation-id': r.correlationId,
    });
    // Streamed: backpressure from the sandbox reaches the store; nothing is buffered whole.
    await new Promise<void>((resolve) => pipeline(result.body, r.countOut(), r.res, () => resolve()));
    r.finish(true, 'allowed', status);
  }

  async put(r: BrokerRequest): Promise<void> {
    const path = pathFromUrl(r.req.url ?? '', '/v1/files');
    r.paths = [path];
    const mount = this.authorize(r, path, 'write');
    const limit = r.session.ceiling.mounts.get(mount.mount)?.maxObjectBytes ?? 0;
    const declared = r.req.headers['content-length'];
    const length = declared === undefined ? undefined : Number(declared);
    if (length !== undefined && !(Number.isSafeInteger(length) && length >= 0)) throw new Refusal('malformed_request', 'Content-Length is not a byte count');
    if (length !== undefined && length > limit) throw new Refusal('object_too_large', `${length} bytes is more than the ${limit} bytes ${mount.mount} allows`);
    const { store, key } = await this.storeFor(r);
    await r.decided();
    const body = r.countIn();
    pipeline(r.req, body, () => undefined);
    let info: FileInfo;
    try {
      info = await store.write(key(path), body, { maxBytes: limit, ...(length !== undefined ? { length } : {}) });
    } catch (err) {
      // Whatever the sandbox still sends is not read: close the connection once the refusal is out.
      r.res.shouldKeepAlive = false;
      throw storeRefusal(err, path);
    }
    sendJson(r, 200, this.info(path, info));
    r.finish(true, 'allowed', 200);
  }

  async delete(r: BrokerRequest): Promise<void> {
    const path = pathFromUrl(r.req.url ?? '', '/v1/files');
    r.paths = [path];
    this.authorize(r, path, 'delete');
    const { store, key } = await this.storeFor(r);
    await r.decided();
    const existed = await store.delete(key(path)).catch((err: unknown) => {
      throw storeRefusal(err, path);
    });
    if (!existed) throw new Refusal('file_not_found', path);
    r.res.writeHead(204, { 'x-gatehouse-correlation-id': r.correlationId });
    r.res.end();
    r.finish(true, 'allowed', 204);
  }

  async stat(r: BrokerRequest): Promise<void> {
    const path = pathFromUrl(r.req.url ?? '', '/v1/stat');
    r.paths = [path];
    this.authorize(r, path, 'read');
    const { store, key } = await this.storeFor(r);
    await r.decided();
    const info = await store.stat(key(path)).catch((err: unknown) => {
      throw storeRefusal(err, path);
    });
    if (!info) throw new Refusal('file_not_found', path);
    sendJson(r, 200, this.info(path, info));
    r.finish(true, 'allowed', 200);
  }

  async list(r: BrokerRequest, query: URLSearchParams): Promise<void> {
    const prefix = checked((query.get('prefix') ?? '').normalize('NFC'));
    r.paths = [prefix];
    this.authorize(r, prefix, 'list');
    const limitText = query.get('limit') ?? '1000';
    const limit = /^\d{1,4}$/.test(limitText) ? Number(limitText) : NaN;
    if (!(limit >= 1 && limit <= 1000)) throw new Refusal('malformed_request', 'limit must be 1-1000');
    const after = query.get('after');
    if (after !== null) checked(after);
    const { store, key } = await this.storeFor(r);
    await r.decided();
    // The mount's own prefix always ends in / so /outputs does not list /outputs-old.
    const base = key('');
    const listPrefix = key(/^\/[^/]+$/.test(prefix) ? `${prefix}/` : prefix);
    const page = await store.list(listPrefix, { limit, ...(after !== null ? { startAfter: key(after) } : {}) }).catch((err: unknown) => {
      throw storeRefusal(err, prefix);
    });
    const files = page.files.map((f) => this.info(f.key.slice(base.length), f));
    sendJson(r, 200, { files, ...(page.next ? { next: page.next.slice(base.length) } : {}) });
    r.finish(true, 'allowed', 200);
  }

  async move(r: BrokerRequest, body: unknown): Promise<void> {
    const b = body as { from?: unknown; to?: unknown } | null;
    if (!b || typeof b.from !== 'string' || typeof b.to !== 'string' || Object.keys(b).some((k) => k !== 'from' && k !== 'to')) {
      throw new Refusal('malformed_request', 'the body is {"from": PATH, "to": PATH}');
    }
    const from = checked(b.from.normalize('NFC'));
    const to = checked(b.to.normalize('NFC'));
    r.paths = [from, to];
    // Moving deletes the source: both ends must be writable.
    this.authorize(r, from, 'write');
    const target = this.authorize(r, to, 'write');
    const { store, key } = await this.storeFor(r);
    const source = await store.stat(key(from)).catch((err: unknown) => {
      throw storeRefusal(err, from);
    });
    if (!source) throw new Refusal('file_not_found', from);
    const limit = r.session.ceiling.mounts.get(target.mount)?.maxObjectBytes ?? 0;
    if (source.size > limit) throw new Refusal('object_too_large', `${source.size} bytes is more than the ${limit} bytes ${target.mount} allows`);
    await r.decided();
    const info = await store.move(key(from), key(to)).catch((err: unknown) => {
      throw storeRefusal(err, from);
    });
    sendJson(r, 200, this.info(to, info));
    r.finish(true, 'allowed', 200);
  }
}

function fileHeaders(info: FileInfo): Record<string, string> {
  return { 'content-type': 'application/octet-stream', etag: info.etag, 'last-modified': new Date(info.modified).toUTCString(), 'accept-ranges': 'bytes' };
}

export function sendJson(r: BrokerRequest, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  r.res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'x-gatehouse-correlation-id': r.correlationId });
  r.res.end(text);
}
