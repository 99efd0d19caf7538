import type { RotationSettings } from './segment-store.js';

/** Settings the writer thread needs. */
export interface WriterConfig {
  readonly dir: string;
  readonly rotation: RotationSettings;
  readonly checkpointIntervalMs: number;
  readonly retentionMs: number;
  readonly maxPendingBytes: number;
  /** The configured sinks (their cursor files hold retention back); absent: every cursor file found counts. */
  readonly sinkNames?: readonly string[] | undefined;
  /**
   * Batched mode: how long written lines may stay unsynced before the writer fsyncs them (group commit, one fsync
   * for everything written in the interval). The flush interval, so an OS crash or power loss loses at most about
   * two intervals, as a process crash loses at most one.
   */
  readonly syncIntervalMs: number;
  /** For the events the writer itself emits (dropped-event reports). */
  readonly policyVersion: string;
}

export type ToWorker =
  | { readonly type: 'init'; readonly config: WriterConfig }
  /** `data`: events already serialised, encoded by wire-batch.ts (transferred, not copied). */
  | { readonly type: 'batch'; readonly data: Uint8Array }
  | { readonly type: 'durable'; readonly id: number; readonly data: Uint8Array }
  | { readonly type: 'flush'; readonly id: number; readonly sync: boolean }
  | { readonly type: 'checkpoint'; readonly id: number }
  | { readonly type: 'configure'; readonly config: Partial<WriterConfig> }
  | { readonly type: 'close'; readonly id: number };

export interface WriterStats {
  readonly written: number;
  readonly bytes: number;
  readonly errors: number;
  readonly dropped: number;
  readonly lastError: string;
  readonly pendingBytes: number;
  /** Damaged segments found at start-up (left as evidence; new records went to a new segment). */
  readonly corruptSegments: number;
  /** fsyncs of segments made for batched group commit and strict writes. */
  readonly syncs: number;
  readonly heads: Record<string, { seq: number; hash: string }>;
}

export type ToMain =
  | { readonly type: 'ready'; readonly heads: Record<string, { seq: number; hash: string }>; readonly recoveries: Record<string, unknown>; readonly publicKeyPem: string; readonly kid: string }
  | { readonly type: 'ack'; readonly id: number; readonly ok: boolean; readonly error?: string }
  | { readonly type: 'stats'; readonly stats: WriterStats }
  | { readonly type: 'error'; readonly message: string }
  | { readonly type: 'fatal'; readonly message: string };
