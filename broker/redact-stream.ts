import { Transform } from 'node:stream';

export const REDACTED = '[REDACTED]';

/**
 * Replaces every occurrence of the given secrets in a byte stream, including one split across chunks. Only the
 * bytes that could still turn into a secret (a tail that is a prefix of one) are held back, so a server-sent
 * event ending in a newline passes at once: streaming stays streaming.
 */
export function redactStream(secrets: readonly string[]): Transform {
  const needles = [...new Set(secrets.filter((s) => s.length >= 8))].map((s) => Buffer.from(s));
  const replacement = Buffer.from(REDACTED);
  let held = Buffer.alloc(0);
  const scrub = (buf: Buffer): Buffer => {
    for (const n of needles) {
      let at = buf.indexOf(n);
      if (at === -1) continue;
      const parts: Buffer[] = [];
      let from = 0;
      while (at !== -1) {
        parts.push(buf.subarray(from, at), replacement);
        from = at + n.length;
        at = buf.indexOf(n, from);
      }
      parts.push(buf.subarray(from));
      buf = Buffer.concat(parts);
    }
    return buf;
  };
  /** Length of the longest tail of `buf` that is a proper prefix of some secret. */
  const partial = (buf: Buffer): number => {
    let keep = 0;
    for (const n of needles) {
      for (let k = Math.min(n.length - 1, buf.length); k > keep; k--) {
        if (buf.subarray(buf.length - k).equals(n.subarray(0, k))) {
          keep = k;
          break;
        }
      }
    }
    return keep;
  };
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      if (needles.length === 0) return done(null, chunk);
      const buf = scrub(held.length > 0 ? Buffer.concat([held, chunk]) : chunk);
      const keep = partial(buf);
      held = Buffer.from(buf.subarray(buf.length - keep));
      done(null, buf.subarray(0, buf.length - keep));
    },
    flush(done) {
      done(null, held.length > 0 ? held : undefined);
    },
  });
}

/** A header value with any secret in it replaced (an upstream that echoes the key in a header). */
export const redactText = (text: string, secrets: readonly string[]): string => secrets.filter((s) => s.length >= 8).reduce((t, s) => t.split(s).join(REDACTED), text);
