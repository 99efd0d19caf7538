import { z } from 'zod';
import { DURATION_PATTERN } from '../util/duration.js';
import { SIZE_PATTERN } from '../util/size.js';
import { POLICY_DEFAULTS as D } from './defaults.js';
import { secretRefSchema } from './secret-ref.js';

const duration = (what: string) => z.string().regex(new RegExp(DURATION_PATTERN), 'expected a duration such as 500ms, 30s, 15m, 2h').describe(what);
const size = (what: string) => z.string().regex(new RegExp(SIZE_PATTERN), 'expected a size such as 512KiB, 64MiB, 1GiB').describe(what);
const name = (what: string) => z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'names are 1-63 characters: a-z 0-9 _ -').describe(what);
const tls = z
  .strictObject({
    ca: z.string().regex(/^file:\S.*$/, 'a CA bundle is a file:PATH').optional().describe('PEM CA bundle to verify the server with, as file:PATH. Absent: the system CAs.'),
    server_name: z.string().min(1).optional().describe('Name to verify in the certificate (SNI). Absent: the host of the URL.'),
  })
  .describe('TLS settings. Certificates are always verified.');

const localStore = z.strictObject({
  name: name('Unique store name; tenants refer to it.'),
  type: z.literal('local'),
  path: z.string().min(1).optional().describe('Directory holding the files. Absent: <state>/files.'),
});

const s3Store = z.strictObject({
  name: name('Unique store name; tenants refer to it.'),
  type: z.literal('s3'),
  endpoint: z.string().url().describe('S3 endpoint URL, e.g. https://s3.eu-west-1.amazonaws.com or http://127.0.0.1:7480.'),
  region: z.string().regex(/^[a-z0-9-]{1,32}$/, 'a region such as eu-west-1').describe('Signing region.'),
  bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'an S3 bucket name (3-63 characters: a-z 0-9 . -)').describe('Bucket holding every tenant\'s files.'),
  addressing: z.enum(['path', 'virtual']).optional().describe('path: endpoint/bucket/key. virtual: bucket.endpoint/key. Absent: path when the endpoint host is an IP address or localhost, virtual otherwise.'),
  prefix: z.string().regex(/^([A-Za-z0-9._-]+\/)*$/, 'a prefix of plain segments ending in /, e.g. gatehouse/').optional().describe('Key prefix for everything Gatehouse stores. Absent: none.'),
  access_key_id: secretRefSchema('The access key id.'),
  secret_access_key: secretRefSchema('The secret access key.'),
  session_token: secretRefSchema('A session token for temporary credentials.').optional(),
  part_size: size(`Multipart upload part size (5MiB-5GiB); uploads larger than one part use multipart. Absent: ${D.broker.partSize}.`).optional(),
  timeout: duration(`Longest wait to connect, for the response headers, and between two chunks of a body; a request that runs out of it is not retried (backend_unavailable). Absent: ${D.broker.storeTimeout}.`).optional(),
  tls: tls.optional().describe('TLS settings for https endpoints. Absent: the system CAs, certificate always verified.'),
});

const storeSchema = z.discriminatedUnion('type', [localStore, s3Store]).describe('Where files are stored.');

const credential = z
  .discriminatedUnion('type', [
    z.strictObject({
      type: z.literal('header'),
      header: z.string().regex(/^[A-Za-z0-9-]{1,64}$/, 'a header name').describe('Header carrying the key, e.g. x-api-key.'),
      value: secretRefSchema('The key.'),
    }),
    z.strictObject({ type: z.literal('bearer'), value: secretRefSchema('The token, sent as Authorization: Bearer <token>.') }),
    z.strictObject({
      type: z.literal('sigv4'),
      service: z.string().regex(/^[a-z0-9-]{1,64}$/).describe('Signing service name, e.g. bedrock.'),
      region: z.string().regex(/^[a-z0-9-]{1,32}$/).describe('Signing region.'),
      access_key_id: secretRefSchema('The access key id.'),
      secret_access_key: secretRefSchema('The secret access key.'),
      session_token: secretRefSchema('A session token for temporary credentials.').optional(),
    }),
  ])
  .describe('How the broker authenticates to the upstream. The client never holds this.');

const upstreamSchema = z.strictObject({
  name: name('Unique upstream name: clients call /v1/upstreams/<name>/<path>.'),
  url: z.string().url().describe('Base URL (https). The host is fixed here: the broker never forwards anywhere else.'),
  credential,
  headers: z.record(z.string().regex(/^[A-Za-z0-9-]{1,64}$/), z.string().max(1024)).optional().describe('Fixed headers set on every request (overwriting the client\'s), e.g. anthropic-version. Absent: none.'),
  timeout: duration(`Longest wait for the response headers. Absent: ${D.broker.upstreamTimeout}.`).optional(),
  max_request_bytes: size(`Largest request body. Absent: ${D.broker.maxRequestBytes}.`).optional(),
  tls: tls.optional().describe('TLS settings for the upstream. Absent: the system CAs, certificate always verified.'),
});

const sessionLimits = z
  .strictObject({
    requests_per_second: z.number().positive().max(100_000).optional().describe(`Sustained requests per second per session. Absent: ${D.broker.perSession.requestsPerSecond}.`),
    burst: z.number().int().min(1).max(100_000).optional().describe(`Requests a session may make at once above the rate. Absent: ${D.broker.perSession.burst}.`),
    max_concurrent: z.number().int().min(1).max(10_000).optional().describe(`Requests in flight per session. Absent: ${D.broker.perSession.maxConcurrent}.`),
  })
  .describe('Per-session request limits.');

export const brokerSectionSchema = z
  .strictObject({
    stores: z.array(storeSchema).optional().describe(`File stores. Absent or empty: one local store named "${D.broker.store}" under <state>/files.`),
    upstreams: z.array(upstreamSchema).optional().describe('APIs the broker calls with its own credentials. Absent or empty: none.'),
    limits: z.strictObject({ per_session: sessionLimits.optional().describe('Per-session limits. Absent: the defaults on each key.') }).optional().describe('Limits for every tenant. Absent: the defaults on each key.'),
  })
  .describe('Credential broker: file stores and upstream APIs. Absent: a local store and no upstreams.');

export const mountSchema = z
  .strictObject({
    path: z.string().regex(/^\/[a-z0-9][a-z0-9._-]{0,62}$/, 'a mount is one path segment such as /outputs').describe('Logical path, one segment, e.g. /inputs.'),
    mode: z.enum(['ro', 'rw']).describe('ro: list, stat and read. rw: also write, delete and move.'),
    max_object_bytes: size(`Largest file that may be written here. Absent: ${D.broker.maxObjectBytes}.`).optional(),
  })
  .describe('A mount a session of this tenant may be given.');

export const tenantBrokerSchema = z
  .strictObject({
    store: name('The store holding this tenant\'s files.').optional().describe(`Store name. Absent: "${D.broker.store}".`),
    mounts: z.array(mountSchema).optional().describe('The ceiling of mounts a broker token may grant. Absent or empty: no file access.'),
    upstreams: z.array(name('An upstream name from broker.upstreams.')).optional().describe('Upstreams a broker token may grant. Absent or empty: none.'),
    limits: z.strictObject({ per_session: sessionLimits.optional().describe('Per-session limits for this tenant. Absent: broker.limits.per_session.') }).optional().describe('Overrides broker.limits.per_session key by key. Absent: the global ones.'),
  })
  .describe("The tenant's broker ceiling. Absent: no broker access.");

export type BrokerSectionInput = z.infer<typeof brokerSectionSchema>;
export type TenantBrokerInput = z.infer<typeof tenantBrokerSchema>;
export type StoreInput = z.infer<typeof storeSchema>;
export type UpstreamInput = z.infer<typeof upstreamSchema>;
