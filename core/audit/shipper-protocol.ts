import type { SinkSettings } from '../policy/compile-audit.js';
import type { SinkStats } from './shipper/sink-runner.js';

export type ToShipper =
  | { readonly type: 'init'; readonly dir: string; readonly hostname: string; readonly sinks: readonly SinkSettings[] }
  | { readonly type: 'configure'; readonly sinks: readonly SinkSettings[] }
  | { readonly type: 'nudge' }
  | { readonly type: 'close'; readonly id: number };

export type FromShipper =
  | { readonly type: 'ready' }
  | { readonly type: 'stats'; readonly sinks: readonly SinkStats[] }
  | { readonly type: 'error'; readonly sink: string; readonly message: string }
  | { readonly type: 'ack'; readonly id: number };
