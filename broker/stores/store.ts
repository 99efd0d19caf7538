import type { Readable } from 'node:stream';

/** One stored file, as list and stat report it. */
export interface FileInfo {
  /** Physical key. */
  readonly key: string;
  readonly size: number;
  /** Epoch ms. */
  readonly modified: number;
  /** Opaque version tag (quoted, as in HTTP). */
  readonly etag: string;
}

export interface ListPage {
  readonly files: readonly FileInfo[];
  /** Pass back as `startAfter` for the next page; absent on the last page. */
  readonly next?: string;
}

export interface ByteRange {
  readonly start: number;
  /** Inclusive. */
  readonly end: number;
}

export interface ReadResult {
  readonly info: FileInfo;
  /** The bytes, or the range of them asked for. */
  readonly body: Readable;
  readonly range?: ByteRange;
}

export interface WriteOptions {
  /** Declared length (Content-Length), when the client sent one. */
  readonly length?: number;
  /** Refuse (and store nothing) past this many bytes. */
  readonly maxBytes: number;
  readonly contentType?: string;
}

/**
 * Why a store operation failed, in terms the broker maps to a reason code. `detail` names the operation and the
 * backend's own error code, never a credential or a signed URL.
 */
export class StoreError extends Error {
  constructor(
    readonly kind: 'not_found' | 'range' | 'too_large' | 'incomplete' | 'unavailable' | 'rejected' | 'credential',
    readonly detail: string,
    readonly size?: number,
  ) {
    super(detail);
    this.name = 'StoreError';
  }
}

/**
 * A file store holding objects by physical key. Writes are all-or-nothing: a reader sees the old object or the
 * whole new one, never part, and a failed or aborted write leaves nothing behind.
 */
export interface Store {
  readonly name: string;
  readonly type: 'local' | 's3';
  /** Keys starting with `prefix`, in byte order, after `startAfter`. */
  list(prefix: string, options: { readonly startAfter?: string; readonly limit: number }): Promise<ListPage>;
  /** Null when there is no such file. */
  stat(key: string): Promise<FileInfo | null>;
  /** Throws StoreError('not_found') or ('range', size) for a range outside the file. */
  read(key: string, range?: { readonly start?: number; readonly end?: number; readonly suffix?: number }): Promise<ReadResult>;
  /** Streams `body` in; resolves once the whole object is stored. */
  write(key: string, body: Readable, options: WriteOptions): Promise<FileInfo>;
  /** Resolves false when there was nothing to delete. */
  delete(key: string): Promise<boolean>;
  /** Replaces `to` if it exists. Throws StoreError('not_found') when `from` does not exist. */
  move(from: string, to: string): Promise<FileInfo>;
  close(): Promise<void>;
}

/** Resolve a parsed Range against a size: the inclusive byte range, or null when it cannot be satisfied (RFC 9110 §14.1.2). */
export function satisfyRange(range: { readonly start?: number; readonly end?: number; readonly suffix?: number }, size: number): ByteRange | null {
  if (range.suffix !== undefined) {
    if (range.suffix === 0 || size === 0) return null;
    return { start: Math.max(0, size - range.suffix), end: size - 1 };
  }
  const start = range.start ?? 0;
  if (start >= size) return null;
  return { start, end: Math.min(range.end ?? size - 1, size - 1) };
}
