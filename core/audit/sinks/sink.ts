import type { Checkpoint } from '../checkpoint.js';
import type { AuditRecord, AuditSource } from '../record-format.js';

/** One record on its way to a SIEM: the exact line from the log (what verifiers hash) and its parse. */
export interface ShippedRecord {
  readonly source: AuditSource;
  readonly seq: number;
  /** The exact bytes of the log line, without the newline. */
  readonly line: string;
  readonly record: AuditRecord;
}

/**
 * The outcome of one send.
 * - `delivered`: the receiver has kept these records (an HTTP 2xx, an indexer ack, per-item success);
 *   `deadLetter` lists records it rejected for good (malformed for it: HTTP 400, a mapping error) — they are
 *   written to the dead-letter file instead of being retried forever, with `reason` (no record content).
 * - `sent`: handed over with no acknowledgement possible (syslog over TCP). The shipper counts them as
 *   delivered only after the sink's resend window passes with the connection intact, and sends them again
 *   after a failure within it.
 * - `retry`: nothing (or not everything) was kept; `kept` is how many leading records were, and the rest is
 *   sent again after a backoff. `retryAfterMs` honours a receiver's Retry-After.
 */
export type SendResult =
  | { readonly status: 'delivered'; readonly deadLetter?: readonly ShippedRecord[]; readonly reason?: string }
  | { readonly status: 'sent' }
  | { readonly status: 'retry'; readonly kept: number; readonly error: string; readonly retryAfterMs?: number };

/**
 * A SIEM destination. The shipper calls `send` with batches of one source's records in sequence order, never
 * two sends at once, and retries with exponential backoff and jitter after `retry`. A sink never throws for a
 * receiver's failure: it returns `retry` with the reason (no secret, no credential, no record content).
 */
export interface Sink {
  readonly name: string;
  readonly type: string;
  send(batch: readonly ShippedRecord[]): Promise<SendResult>;
  /** Signed checkpoints go to every sink too: they are what proves a tail was not cut off. */
  sendCheckpoints(checkpoints: readonly Checkpoint[]): Promise<SendResult>;
  /** For `sent` results: true while the connection that carried them has not failed since. */
  healthy(): boolean;
  /**
   * For sinks that answer `sent`: a number that changes whenever a new connection replaces the old one, so
   * records sent on a connection that later failed are sent again even if a new connection is healthy by the
   * time the shipper looks. Sinks that only answer `delivered` need not implement it.
   */
  generation?(): number;
  close(): Promise<void>;
}

/** What every sink constructor receives besides its own settings. */
export interface SinkContext {
  /** A credential from an env:NAME / file:PATH reference (trimmed). Never logged, never in errors. */
  readonly secret: (ref: string) => Promise<string>;
  /** The name this host reports as (syslog HOSTNAME, HEC host). */
  readonly hostname: string;
}
