import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startRsyslog, type Rsyslog } from './peers/rsyslog.js';
import { FakeElasticsearch, FakeHec, FakeWebhook } from './support/fake-siem.js';
import { CLI, startGatehouse, type GatehouseProcess } from './support/gatehouse-process.js';
import { startOrigin, type Origin } from './support/origin.js';
import { cleanEnv, run } from './support/run.js';
import {
  esReceived,
  hecReceived,
  rawResponse,
  scrape,
  sinkMetric,
  syslogReceived,
  TcpFront,
  timedGets,
  totalLag,
  waitForDelivery,
  webhookReceived,
  type Copies,
  type FrontMode,
  type Received,
} from './support/sink-harness.js';
import { waitUntil } from './support/wait.js';
import { ORIGIN_EGRESS } from './support/origin-policy.js';

/**
 * Audit sinks that fail, with the built CLI running: receivers that hang (accept, never answer) or answer
 * garbage, and a Gatehouse restart in the middle of an outage. Each HTTP receiver (the documented-format fakes
 * in test/support/fake-siem.ts) sits behind a TCP front that can switch it from relaying to hanging, resetting or
 * answering fixed bytes; syslog goes to real rsyslog over TCP, stopped and started for the outage.
 *
 * Every time: the proxy keeps serving at its normal speed, the failing sink says so (metrics, the admin API,
 * `gatehouse audit sinks`, the log) with an error that names the problem and carries no secret, and once the
 * receiver behaves every record written meanwhile arrives (duplicates allowed, each the same record).
 */

const hex = (): string => randomBytes(12).toString('hex');
const S = { hecToken: `hec-${hex()}`, esPassword: `espass${hex()}`, webhookSecret: `hooksecret${hex()}` };
const HTTP_SINKS = ['hec', 'es', 'hook'] as const;
type HttpSink = (typeof HTTP_SINKS)[number];

let dir: string;
let state: string;
let policyFile: string;
let rsyslog: Rsyslog;
let hec: FakeHec;
let es: FakeElasticsearch;
let hook: FakeWebhook;
let fronts: Record<HttpSink, TcpFront>;
let origin: Origin;
let gh: GatehouseProcess;
/** Every Gatehouse run's output, for the secret sweep. */
const runs: GatehouseProcess[] = [];
let adminToken = '';
let token = '';
let baseline = { median: 0, max: 0 };
const answers: string[] = [];

const args = (): string[] => ['--state', state, '--policy', policyFile, '--egress-listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--drain-timeout', '1s'];
// Every listener on a free port, so test files can run side by side.
const env = (): NodeJS.ProcessEnv => cleanEnv({ GH_FAIL_HEC_TOKEN: S.hecToken, GATEHOUSE_BROKER_LISTEN: '127.0.0.1:0' });
const start = async (): Promise<void> => {
  gh = await startGatehouse(args(), env());
  runs.push(gh);
};

const admin = async (path: string): Promise<string> => {
  const res = await fetch(`http://127.0.0.1:${gh.adminPort}${path}`, { headers: { authorization: `Bearer ${adminToken}` } });
  const text = await res.text();
  answers.push(text);
  return text;
};

const receivers = async (): Promise<Record<string, Received>> => ({
  syslog: syslogReceived(await rsyslog.lines()),
  hec: hecReceived(hec),
  es: esReceived(es),
  hook: webhookReceived(hook),
});
const everythingArrives = (what: string): Promise<Map<string, string>> =>
  waitForDelivery(join(state, 'audit'), receivers, what, () => `gatehouse stderr:\n${gh.stderr().slice(-3000)}`, 30_000);

const originUrl = (path: string): string => `http://origin.test:${origin.port}${path}`;

/** Requests through the proxy while sinks fail: all served, at the speed measured with healthy sinks. */
async function dataPlaneUnaffected(label: string): Promise<void> {
  const r = await timedGets(gh.egressPort, token, originUrl(`/${label}`), 20);
  expect(r.statuses.every((s) => s === 200), `${label}: ${r.statuses.join(',')}`).toBe(true);
  // Generous bounds for a 2-core CI machine: a data plane that waited on a sink would take its timeout (1 s).
  expect(r.median, `${label} median ${r.median} ms vs ${baseline.median} ms`).toBeLessThan(baseline.median * 3 + 50);
  expect(r.max, `${label} slowest ${r.max} ms`).toBeLessThan(800);
}

interface SinkView {
  name: string;
  state: string;
  lag: Record<string, number>;
  errors: number;
  lastError: string | null;
  nextAttemptAt: string | null;
}

/** Wait until each named sink reports failing in /metrics (up 0, errors counted), then read the admin API. */
async function failing(names: readonly string[]): Promise<Map<string, SinkView>> {
  await waitUntil(async () => {
    const m = await scrape(gh.adminPort, answers);
    return names.every((n) => sinkMetric(m, 'up', n) === 0 && sinkMetric(m, 'errors_total', n) > 0 && totalLag(m, n) > 0);
  }, `${names.join(', ')} to report failing`, 15_000, 100);
  const sinks = (JSON.parse(await admin('/v1/audit/sinks')) as { sinks: SinkView[] }).sinks;
  return new Map(sinks.map((s) => [s.name, s]));
}

/** Wait until every sink is caught up and up in /metrics. */
async function healthy(): Promise<Map<string, number>> {
  return waitUntil(async () => {
    const m = await scrape(gh.adminPort, answers);
    return ['syslog', ...HTTP_SINKS].every((n) => sinkMetric(m, 'up', n) === 1 && totalLag(m, n) === 0) ? m : null;
  }, 'every sink caught up', 30_000, 200);
}

const secrets = (): string[] => [...Object.values(S), Buffer.from(`shipper:${S.esPassword}`).toString('base64'), token, adminToken];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-sinks-fail-'));
  state = join(dir, 'state');
  policyFile = join(dir, 'policy.yaml');
  await mkdir(join(dir, 'secrets'), { mode: 0o700 });
  await writeFile(join(dir, 'secrets', 'es-password'), S.esPassword, { mode: 0o600 });
  await writeFile(join(dir, 'secrets', 'webhook-secret'), S.webhookSecret, { mode: 0o600 });
  [rsyslog, hec, es, hook, origin] = await Promise.all([
    startRsyslog(join(dir, 'rsyslog')),
    FakeHec.start({ token: S.hecToken }),
    FakeElasticsearch.start({ auth: `Basic ${Buffer.from(`shipper:${S.esPassword}`).toString('base64')}` }),
    FakeWebhook.start({ secret: S.webhookSecret }),
    startOrigin(),
  ]);
  const urlPort = (url: string): number => Number(new URL(url).port);
  const [hecFront, esFront, hookFront] = await Promise.all([TcpFront.start(urlPort(hec.url)), TcpFront.start(urlPort(es.url)), TcpFront.start(urlPort(hook.url))]);
  fronts = { hec: hecFront as TcpFront, es: esFront as TcpFront, hook: hookFront as TcpFront };
  await writeFile(
    policyFile,
    `version: 1
${ORIGIN_EGRESS}tenants:
  - name: acme
    egress:
      allow: ["origin.test:*"]
audit:
  sinks:
    - {name: syslog, type: syslog, address: "127.0.0.1:${rsyslog.tcpPort}", resend_window: 1s, timeout: 1s}
    - {name: hec, type: splunk_hec, url: "${fronts.hec.url}", token: "env:GH_FAIL_HEC_TOKEN", timeout: 1s, batch_max: 10}
    - {name: es, type: elasticsearch, url: "${fronts.es.url}", username: shipper, password: "file:${join(dir, 'secrets', 'es-password')}", timeout: 1s, batch_max: 10}
    - {name: hook, type: webhook, url: "${fronts.hook.url}/hooks/audit", secret: "file:${join(dir, 'secrets', 'webhook-secret')}", timeout: 1s, batch_max: 10}
`,
  );
  await start();
  adminToken = (await readFile(join(state, 'admin-token'), 'utf8')).trim();
  const res = await fetch(`http://127.0.0.1:${gh.adminPort}/v1/sessions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ tenant: 'acme', session: 'sinks-fail', egress: [`origin.test:${origin.port}`], ttl: '10m' }),
  });
  token = ((await res.json()) as { tokens: { egress: string } }).tokens.egress;
  // Warm up, then measure the data plane with every sink healthy.
  await timedGets(gh.egressPort, token, originUrl('/warm-up'), 5);
  baseline = await timedGets(gh.egressPort, token, originUrl('/baseline'), 20);
});

afterAll(async () => {
  if (gh?.proc.exitCode === null) await gh.stop('SIGKILL');
  await Promise.all([...Object.values(fronts ?? {}).map((f) => f.close()), hec?.close(), es?.close(), hook?.close(), origin?.close(), rsyslog?.stop()]);
  await rm(dir, { recursive: true, force: true });
});

// A failed test must not leave receivers misbehaving for the next one.
afterEach(() => {
  for (const name of HTTP_SINKS) fronts[name].set({ kind: 'pass' });
  hec.ackAnswer = undefined;
});

interface Misbehaviour {
  readonly front: FrontMode;
  /** What the sink's lastError must say. */
  readonly error: RegExp;
  readonly hecAckAnswer?: (ids: readonly unknown[]) => unknown;
}

const NOT_HTTP = '\x00\x17\x03garbage that is not HTTP at all\r\n\r\n';

// Each row: how every HTTP receiver misbehaves at once, and the error each sink must report.
const PHASES: ReadonlyArray<readonly [string, Record<HttpSink, Misbehaviour>]> = [
  [
    'hang: accept the connection, never answer',
    {
      hec: { front: { kind: 'hang' }, error: /^no answer within 1000 ms$/ },
      es: { front: { kind: 'hang' }, error: /^no answer within 1000 ms$/ },
      hook: { front: { kind: 'hang' }, error: /^no answer within 1000 ms$/ },
    },
  ],
  [
    'garbage: HTTP 200 with a body that is not the receiver\'s JSON, bytes that are not HTTP',
    {
      // Truncated HEC success: nothing says these events were received, let alone indexed.
      hec: { front: { kind: 'reply', bytes: rawResponse('200 OK', '{"text":"Success","code":0,"ack') }, error: /HEC answered 200 without its JSON reply/ },
      es: { front: { kind: 'reply', bytes: rawResponse('200 OK', '<html><body>Welcome to nginx!</body></html>', 'text/html') }, error: /^unreadable bulk response$/ },
      hook: { front: { kind: 'reply', bytes: NOT_HTTP }, error: /^the receiver did not answer in HTTP\/1\.1$/ },
    },
  ],
  [
    'wrong shapes: an HEC ack answer of the wrong type, a bulk response with no items, a response cut short',
    {
      hec: { front: { kind: 'pass' }, error: /^no indexer acknowledgement within 1000 ms .*sent again$/, hecAckAnswer: (ids) => ({ acks: Object.fromEntries(ids.map((id) => [String(id), 'true'])) }) },
      es: { front: { kind: 'reply', bytes: rawResponse('200 OK', '{"took":1,"errors":true,"items":[]}') }, error: /^bulk response has 0 items for \d+ actions$/ },
      hook: { front: { kind: 'reply', bytes: rawResponse('200 OK', '{"ok":true}').replace('content-length: 11', 'content-length: 500') }, error: /^connection failed \([A-Z_]+\)$/ },
    },
  ],
];

describe('audit sinks that hang or answer garbage, under gatehouse up', () => {
  it('starts healthy: every record reaches every sink', async () => {
    await everythingArrives('the first records at every sink');
    await healthy();
  });

  for (const [label, rows] of PHASES) {
    it(`${label}: the proxy keeps serving, the sinks say why, and nothing written is lost`, async () => {
      // Each phase starts from healthy sinks, so what they report now is this phase's doing.
      await healthy();
      const before = await scrape(gh.adminPort);
      const mark = gh.mark();
      for (const name of HTTP_SINKS) fronts[name].set(rows[name].front);
      hec.ackAnswer = rows.hec.hecAckAnswer;

      const slug = (label.split(':')[0] as string).replace(/\W+/g, '-');
      await dataPlaneUnaffected(`during-${slug}`);
      const views = await failing(HTTP_SINKS);
      for (const name of HTTP_SINKS) {
        const v = views.get(name) as SinkView;
        expect(v.lastError, name).toMatch(rows[name].error);
        expect(v.errors, name).toBeGreaterThan(0);
        expect(Object.values(v.lag).reduce((a, b) => a + b, 0), name).toBeGreaterThan(0);
        expect(['backoff', 'delivering']).toContain(v.state);
      }
      // The syslog sink is unaffected by the others.
      expect(views.get('syslog')?.lastError).toBeNull();
      const m = await scrape(gh.adminPort);
      for (const name of HTTP_SINKS) expect(sinkMetric(m, 'errors_total', name), name).toBeGreaterThan(sinkMetric(before, 'errors_total', name));
      // One warning per sink when it starts failing, naming it and the reason.
      for (const name of HTTP_SINKS) await gh.waitForLog(new RegExp(`"sink":"${name}".*"audit sink delivery failing`), { since: mark });
      // More traffic while they fail: it waits in the local log.
      await dataPlaneUnaffected(`still-${slug}`);

      for (const name of HTTP_SINKS) fronts[name].set({ kind: 'pass' });
      hec.ackAnswer = undefined;
      await everythingArrives(`every record at every sink after "${label}"`);
      await healthy();
      await gh.waitForLog(/"audit sink delivering again"/, { since: mark });
    });
  }

  it('`gatehouse audit sinks` exits 1 naming the failing sink, with no secret in what it prints', async () => {
    fronts.es.set({ kind: 'refuse' });
    await timedGets(gh.egressPort, token, originUrl('/refused-es'), 3);
    await failing(['es']);
    const r = await run(process.execPath, [CLI, 'audit', 'sinks', '--state', state, '--admin-url', `http://127.0.0.1:${gh.adminPort}`], { env: cleanEnv() });
    answers.push(r.stdout, r.stderr);
    expect(r.code).toBe(1);
    const row = r.stdout.split('\n').find((l) => l.startsWith('es '));
    expect(row).toMatch(/^es\s+elasticsearch\s+(backoff until \S+|delivering)\s+[1-9]\d*\s.*connection failed \([A-Za-z_]+\)$/);
    fronts.es.set({ kind: 'pass' });
    await everythingArrives('every record at Elasticsearch again');
  });

  it('survives a restart during an outage of every sink: the cursors persist and everything arrives', { timeout: 60_000 }, async () => {
    await everythingArrives('everything delivered before the outage');
    await healthy();
    const before: Record<string, Copies> = Object.fromEntries(Object.entries(await receivers()).map(([n, r]) => [n, r.copies]));

    // Outage: every receiver down (HTTP ones reset connections; rsyslog stopped).
    for (const name of HTTP_SINKS) fronts[name].set({ kind: 'refuse' });
    await rsyslog.stop();
    await dataPlaneUnaffected('outage');
    await failing(['syslog', ...HTTP_SINKS]);
    expect(await gh.stop('SIGTERM')).toBe(0);

    // Stopped: the cursors on disk say what each sink still lacks, and `gatehouse audit sinks` shows it offline.
    const offline = await run(process.execPath, [CLI, 'audit', 'sinks', '--state', state, '--json'], { env: cleanEnv() });
    answers.push(offline.stdout, offline.stderr);
    const shown = JSON.parse(offline.stdout) as { running: boolean; sinks: Array<{ name: string; lag: Record<string, number> }> };
    expect(shown.running).toBe(false);
    for (const name of ['syslog', ...HTTP_SINKS]) expect(shown.sinks.find((s) => s.name === name)?.lag['egress'], name).toBeGreaterThanOrEqual(20);
    for (const name of ['syslog', ...HTTP_SINKS]) {
      const cursor = JSON.parse(await readFile(join(state, 'audit', 'cursors', `${name}.json`), 'utf8')) as { confirmed: Record<string, number> };
      const confirmed = [...(before[name] as Copies).keys()].filter((k) => k.startsWith('egress:')).length;
      expect(cursor.confirmed['egress'], name).toBe(confirmed);
    }

    await start();
    await dataPlaneUnaffected('after-restart');
    for (const name of HTTP_SINKS) fronts[name].set({ kind: 'pass' });
    await rsyslog.start();
    await everythingArrives('every record from both runs at every sink');
    await healthy();
    // What was confirmed before the outage was not sent again after the restart.
    const after = await receivers();
    for (const [name, copies] of Object.entries(before)) {
      for (const [key, list] of copies) expect(after[name]?.copies.get(key)?.length, `${name} ${key}`).toBe(list.length);
    }
  });

  it('never shows a secret in sink errors, logs, the admin API, or any file it wrote', async () => {
    await gh.stop('SIGTERM');
    const haystacks: Array<[string, string]> = [['admin API and CLI answers', answers.join('\n')]];
    for (const [i, r] of runs.entries()) haystacks.push([`run ${i} stdout`, r.stdout()], [`run ${i} stderr`, r.stderr()]);
    const walk = async (d: string): Promise<void> => {
      for (const entry of await readdir(d, { withFileTypes: true })) {
        const path = join(d, entry.name);
        if (entry.isDirectory()) await walk(path);
        else if (entry.name !== 'admin-token') haystacks.push([path, await readFile(path, 'utf8')]);
      }
    };
    await walk(state);
    const leaks = haystacks.flatMap(([where, text]) => secrets().filter((s) => text.includes(s)).map((s) => `${s.slice(0, 8)}... in ${where}`));
    expect(leaks).toEqual([]);
  });
});
