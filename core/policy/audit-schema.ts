import { z } from 'zod';
import { DURATION_PATTERN } from '../util/duration.js';
import { POLICY_DEFAULTS as D } from './defaults.js';
import { secretRefSchema } from './secret-ref.js';

const duration = (what: string) => z.string().regex(new RegExp(DURATION_PATTERN), 'expected a duration such as 500ms, 30s, 15m, 2h').describe(what);
const name = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'sink names are 1-63 characters: a-z 0-9 _ -').describe('Unique sink name, used in metrics, cursors and `gatehouse audit sinks`.');
const tls = z
  .strictObject({
    ca: z.string().regex(/^file:\S.*$/, 'a CA bundle is a file:PATH').optional().describe('PEM CA bundle to verify the receiver with, as file:PATH. Absent: the system CAs.'),
    server_name: z.string().min(1).optional().describe('Name to verify in the certificate (SNI). Absent: the host of the address.'),
  })
  .describe('TLS settings. Certificates are always verified.');

const common = {
  name,
  batch_max: z.number().int().min(1).max(10_000).optional().describe(`Most records per delivery. Absent: ${D.audit.sinks.batchMax}.`),
  timeout: duration(`Time a delivery may take before it is retried. Absent: ${D.audit.sinks.timeout}.`).optional(),
};

const syslogSink = z.strictObject({
  ...common,
  type: z.literal('syslog'),
  address: z.string().min(3).describe('Receiver host:port (RFC 5424 over TCP, octet-counting framing, RFC 6587).'),
  tls: tls.optional().describe('Send over TLS (RFC 5425). Absent: plain TCP.'),
  facility: z.enum(['local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7', 'auth', 'authpriv', 'security']).optional().describe(`Syslog facility. Absent: ${D.audit.sinks.syslogFacility}.`),
  resend_window: duration(`Syslog has no acknowledgements: after a reconnect, records sent this recently are sent again (duplicates carry the same seq). Absent: ${D.audit.sinks.resendWindow}.`).optional(),
});

const splunkSink = z.strictObject({
  ...common,
  type: z.literal('splunk_hec'),
  url: z.string().url().describe('HEC base URL, e.g. https://splunk.example.com:8088.'),
  token: secretRefSchema('The HEC token.'),
  index: z.string().min(1).optional().describe('Target index. Absent: the token\'s default index.'),
  sourcetype: z.string().min(1).optional().describe('Sourcetype. Absent: "ocsf:gatehouse".'),
  ack: z.boolean().optional().describe('Use indexer acknowledgement (a record counts as delivered only when indexed; unacknowledged ones are sent again). Absent: true.'),
  tls: tls.optional().describe('TLS settings for https URLs. Absent: system CAs.'),
});

const elasticSink = z.strictObject({
  ...common,
  type: z.literal('elasticsearch'),
  url: z.string().url().describe('Elasticsearch or OpenSearch base URL.'),
  index: z.string().min(1).optional().describe('Index (or data stream) name. Absent: "gatehouse-audit".'),
  api_key: secretRefSchema('An API key (sent as Authorization: ApiKey ...).').optional(),
  username: z.string().min(1).optional().describe('Basic-auth user. Absent: no basic auth.'),
  password: secretRefSchema('The basic-auth password.').optional(),
  tls: tls.optional().describe('TLS settings for https URLs. Absent: system CAs.'),
});

const webhookSink = z.strictObject({
  ...common,
  type: z.literal('webhook'),
  url: z.string().url().describe('HTTPS endpoint receiving batches as JSON.'),
  secret: secretRefSchema('HMAC-SHA256 key for the X-Gatehouse-Signature header.'),
  tls: tls.optional().describe('TLS settings. Absent: system CAs.'),
});

export const sinkSchema = z.discriminatedUnion('type', [syslogSink, splunkSink, elasticSink, webhookSink]).describe('One SIEM destination.');

export const auditSectionSchema = z
  .strictObject({
    durability: z
      .enum(['batched', 'strict'])
      .optional()
      .describe(`batched: events are written at least every flush_interval and the data plane never waits; a crash can lose that last interval. strict: each decision's event is written and fsynced before the decision is acted on; if it cannot be, traffic is refused. Absent: "${D.audit.durability}".`),
    flush_interval: duration(`How often batched events are written (at most 100ms). Absent: ${D.audit.flushInterval}.`).optional(),
    segment_max_bytes: z.number().int().min(1024 * 1024).max(4 * 1024 * 1024 * 1024).optional().describe(`Rotate a segment when it reaches this size. Absent: ${D.audit.segmentMaxBytes}.`),
    segment_max_age: duration(`Rotate a segment when it is this old. Absent: ${D.audit.segmentMaxAge}.`).optional(),
    checkpoint_interval: duration(`Sign a checkpoint at least this often (and at every rotation). Absent: ${D.audit.checkpointInterval}.`).optional(),
    retention: duration(`Delete segments older than this once every sink has them. Absent: ${D.audit.retention}.`).optional(),
    max_pending_bytes: z.number().int().min(1024 * 1024).max(1024 * 1024 * 1024).optional().describe(`In batched mode, events held in memory while the disk refuses writes; beyond it new events are dropped and counted. Absent: ${D.audit.maxPendingBytes}.`),
    sinks: z.array(sinkSchema).optional().describe('Where audit events are shipped, at least once, each from its own cursor. Absent or empty: the local log only.'),
  })
  .describe('The audit trail: durability, segments, checkpoints and SIEM sinks. Absent: defaults, local log only.');

export type AuditSectionInput = z.infer<typeof auditSectionSchema>;
export type SinkInput = z.infer<typeof sinkSchema>;
