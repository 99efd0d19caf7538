/**
 * Every policy default, in one place. The schema's descriptions quote these values (so the published JSON
 * Schema states them), the compiler applies them, and `docs/reference/policy.md` lists them.
 */
export const POLICY_DEFAULTS = Object.freeze({
  tokens: Object.freeze({
    /** Longest TTL a token may be issued with. */
    maxTtl: '15m',
    /** TTL used when the issuer does not ask for one (capped at maxTtl). */
    defaultTtl: '10m',
    /** Allowed clock difference when checking iat/nbf/exp. */
    clockSkew: '30s',
  }),
  audit: Object.freeze({
    durability: 'batched' as const,
    flushInterval: '50ms',
    segmentMaxBytes: 64 * 1024 * 1024,
    segmentMaxAge: '1h',
    checkpointInterval: '60s',
    retention: '30d',
    maxPendingBytes: 64 * 1024 * 1024,
    sinks: Object.freeze({
      batchMax: 500,
      timeout: '10s',
      syslogFacility: 'local0',
      resendWindow: '10s',
    }),
  }),
  broker: Object.freeze({
    /** The store tenants use when they name none (a local store, created when no store is configured). */
    store: 'files',
    partSize: '8MiB',
    maxObjectBytes: '5GiB',
    maxRequestBytes: '32MiB',
    upstreamTimeout: '5m',
    storeTimeout: '30s',
    perSession: Object.freeze({
      requestsPerSecond: 50,
      burst: 100,
      maxConcurrent: 32,
    }),
  }),
  egress: Object.freeze({
    mode: 'enforce' as const,
    limits: Object.freeze({
      maxConnections: 10_000,
      perSession: Object.freeze({
        maxConnections: 256,
        newConnectionsPerSecond: 50,
        burst: 100,
      }),
      maxHeaderBytes: 32 * 1024,
      headerTimeout: '10s',
      clientIdleTimeout: '60s',
      tunnelIdleTimeout: '5m',
      connectTimeout: '10s',
      responseTimeout: '5m',
      endTunnelsAtTokenExpiry: true,
    }),
    resolver: Object.freeze({
      mode: 'dns' as const,
    }),
  }),
});

/** Hard bounds no policy can exceed (a typo such as `max_ttl: 15d` must not mint month-long tokens). */
export const POLICY_BOUNDS = Object.freeze({
  maxTtlMs: 24 * 3_600_000,
  maxClockSkewMs: 5 * 60_000,
  maxPolicyBytes: 1024 * 1024,
  maxYamlAliases: 50,
  minGrantPrefixV4: 8,
  minGrantPrefixV6: 16,
});
