// The broker's logical file paths: how a path is decoded and checked, and which granted mount it falls under.
// Pure, shared by the broker (every file request) and `gatehouse policy explain`/`test`, so the two cannot drift.
import type { BrokerGrant, MountMode } from '../tokens/issue-broker.js';

/** Longest logical path in UTF-8 bytes, leaving room in S3's 1024-byte key for the tenant and filesystem prefix. */
export const MAX_PATH_BYTES = 768;
/** Longest path segment: a POSIX file name (NAME_MAX), so the local store can hold whatever S3 can. */
export const MAX_SEGMENT_BYTES = 240;

export class PathError extends Error {
  constructor(readonly detail: string) {
    super(detail);
    this.name = 'PathError';
  }
}

// C0 controls, DEL and C1 controls: never part of a file name a person meant to write.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Decode the path part of a request URL into a logical path, exactly once. `%2F` and `%5C` (an encoded separator)
 * and a backslash are refused rather than decoded, so one spelling never means two paths; `%25` stays a literal
 * `%` (it is never decoded again). Unicode is normalised to NFC here and nowhere else.
 */
export function decodeLogicalPath(raw: string): string {
  if (/%(2f|5c)/i.test(raw)) throw new PathError('an encoded / or \\ is not allowed in a path');
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    throw new PathError('the path is not valid percent-encoded UTF-8');
  }
  return checkLogicalPath(decoded.normalize('NFC'));
}

/** Check an already-decoded path (from a JSON body or a query): the same rules as a URL path. */
export function checkLogicalPath(path: string): string {
  if (!path.startsWith('/')) throw new PathError('a path starts with /');
  if (path.includes('\\')) throw new PathError('a backslash is not allowed in a path');
  if (CONTROL.test(path)) throw new PathError('control characters (NUL included) are not allowed in a path');
  // In a u-mode regex a well-formed surrogate pair is one code point, so \p{Cs} matches only a lone surrogate.
  if (/\p{Cs}/u.test(path)) throw new PathError('the path is not valid Unicode (a lone surrogate)');
  if (Buffer.byteLength(path) > MAX_PATH_BYTES) throw new PathError(`the path is longer than ${MAX_PATH_BYTES} bytes`);
  const segments = path.slice(1).split('/');
  for (const s of segments) {
    // Empty segments (a//b) are legal S3 keys and round-trip; dot segments would mean a different path.
    if (s === '.' || s === '..') throw new PathError('. and .. segments are not allowed in a path');
    if (Buffer.byteLength(s) > MAX_SEGMENT_BYTES) throw new PathError(`a path segment is longer than ${MAX_SEGMENT_BYTES} bytes`);
  }
  return path.normalize('NFC');
}

export interface Resolved {
  /** The mount the path is under, e.g. `/outputs`. */
  readonly mount: string;
  readonly mode: MountMode;
  /** The logical path, e.g. `/outputs/report.txt`. */
  readonly path: string;
}

/** The granted mount a path is under, or null. A file path must name something below the mount, not the mount. */
export function resolveMount(grant: BrokerGrant, path: string, kind: 'file' | 'prefix'): Resolved | null {
  const second = path.indexOf('/', 1);
  const mount = second === -1 ? path : path.slice(0, second);
  const mode = Object.hasOwn(grant.mounts, mount) ? grant.mounts[mount] : undefined;
  if (!mode) return null;
  if (kind === 'file' && (second === -1 || second === path.length - 1)) return null;
  return { mount, mode, path };
}

/** A file path may not end in `/`: that names a directory-like prefix, which the local store cannot hold as a file. */
export function checkFilePath(path: string): void {
  if (path.endsWith('/')) throw new PathError('a file path does not end in /');
}
