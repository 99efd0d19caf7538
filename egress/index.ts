export { createEgressProxy, type EgressProxy, type EgressProxyOptions } from './egress-proxy.js';
export type { AuditWriter } from './proxy-context.js';
export type { SessionSnapshot } from './session-tracker.js';
