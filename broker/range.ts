import { Refusal } from './refusal.js';

export interface RangeRequest {
  readonly start?: number;
  readonly end?: number;
  readonly suffix?: number;
}

const MAX_POSITION = Number.MAX_SAFE_INTEGER;

/**
 * A `Range` header (RFC 9110 §14.1.2), one byte range: `bytes=a-b`, `bytes=a-` or `bytes=-n`. RFC 9110 lets a
 * server ignore a Range it cannot serve, but a client that asked for a slice and got a whole multi-gigabyte file
 * would be worse off than one told plainly: anything else is refused with `malformed_request`.
 */
export function parseRange(header: string | undefined): RangeRequest | undefined {
  if (header === undefined) return undefined;
  // RFC 9110 §14.1: range unit names are case-insensitive (`Bytes=0-1` is a valid request, not a malformed one).
  const m = /^bytes=(\d{0,16})-(\d{0,16})$/i.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) throw new Refusal('malformed_request', 'Range must be one range: bytes=START-END, bytes=START- or bytes=-LENGTH');
  const a = m[1] === '' ? undefined : Number(m[1]);
  const b = m[2] === '' ? undefined : Number(m[2]);
  if ((a !== undefined && a > MAX_POSITION) || (b !== undefined && b > MAX_POSITION)) throw new Refusal('malformed_request', 'Range position too large');
  if (a === undefined) return { suffix: b as number };
  if (b !== undefined && b < a) throw new Refusal('malformed_request', 'Range end is before its start');
  return b === undefined ? { start: a } : { start: a, end: b };
}
