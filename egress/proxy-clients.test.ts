import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProxyAgent, request, WebSocket } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEgressHarness, type EgressHarness } from '../test/support/egress-harness.js';
import { startOrigin, type Origin } from '../test/support/origin.js';
import { cleanEnv, run } from '../test/support/run.js';
import { startWebSocketOrigin } from '../test/support/websocket-origin.js';

const POLICY = `version: 1
egress:
  unsafe_allow_private:
    - {host: origin.test, cidr: 127.0.0.1/32}
    - {host: registry.test, cidr: 127.0.0.1/32}
tenants:
  - name: acme
    egress:
      allow: ["origin.test:*", "registry.test:*"]
`;

const BIG = randomBytes(4 * 1024 * 1024);
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

let h: EgressHarness;
let origin: Origin;
let tmp: string;
let token: string;

beforeAll(async () => {
  origin = await startOrigin((req, res, body) => {
    if (req.url === '/big') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(BIG.length) });
      res.end(BIG);
      return;
    }
    if (req.url?.startsWith('/upload')) {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`${body.length} ${sha(body)}`);
      return;
    }
    if (req.url === '/leftpad-demo') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ name: 'leftpad-demo', 'dist-tags': { latest: '1.2.3' }, versions: { '1.2.3': { name: 'leftpad-demo', version: '1.2.3', dist: { tarball: 'http://registry.test/x.tgz', shasum: '0'.repeat(40) } } } }));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain', connection: 'x-hop', 'x-hop': 'secret-hop', 'keep-alive': 'timeout=5' });
    res.end(`hello ${req.method} ${req.url}`);
  });
  h = await startEgressHarness(POLICY, { 'origin.test': ['127.0.0.1'], 'registry.test': ['127.0.0.1'] });
  tmp = await mkdtemp(join(tmpdir(), 'gatehouse-clients-'));
  token = await h.token([`origin.test:${origin.port}`, `registry.test:${origin.port}`]);
});

afterAll(async () => {
  await h.close();
  await origin.close();
  await rm(tmp, { recursive: true, force: true });
});

const url = (path: string): string => `http://origin.test:${origin.port}${path}`;

describe('curl through the proxy (credentials in the proxy URL)', () => {
  it('relays an absolute-form GET, query included, and strips proxy and hop-by-hop headers both ways', async () => {
    const before = origin.seen.length;
    const r = await run('curl', ['-sS', '-i', '--max-time', '10', '-x', h.proxyUrl(token), '-H', 'Connection: x-client-hop', '-H', 'X-Client-Hop: drop-me', url('/hello?q=1&r=two')], { env: cleanEnv() });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^HTTP\/1\.1 200/);
    expect(r.stdout).toContain('hello GET /hello?q=1&r=two');
    // Response: the origin's Connection-listed header never reaches the client.
    expect(r.stdout.toLowerCase()).not.toContain('x-hop:');
    const seen = origin.seen[before];
    expect(seen?.url).toBe('/hello?q=1&r=two');
    expect(seen?.headers['proxy-authorization']).toBeUndefined();
    expect(seen?.headers['proxy-connection']).toBeUndefined();
    expect(seen?.headers['x-client-hop']).toBeUndefined();
    expect(seen?.headers.host).toBe(`origin.test:${origin.port}`);
    expect(JSON.stringify(seen?.rawHeaders)).not.toContain(token);
  });

  it('streams a 4 MiB upload and a 4 MiB download intact', async () => {
    const file = join(tmp, 'upload.bin');
    await writeFile(file, BIG);
    const up = await run('curl', ['-sS', '--max-time', '20', '-x', h.proxyUrl(token), '-T', file, url('/upload')], { env: cleanEnv() });
    expect(up.stdout).toBe(`${BIG.length} ${sha(BIG)}`);
    const out = join(tmp, 'download.bin');
    const down = await run('curl', ['-sS', '--max-time', '20', '-x', h.proxyUrl(token), '-o', out, url('/big')], { env: cleanEnv() });
    expect(down.code).toBe(0);
    expect(sha(await readFile(out))).toBe(sha(BIG));
    // Each exchange ends in exactly one audit event, with the bytes it moved.
    const upload = await h.waitForEvent((e) => (e['http_request'] as { url?: { path?: string } } | undefined)?.url?.path === '/upload');
    expect((upload['traffic'] as { bytes_out: number }).bytes_out).toBe(BIG.length); // body bytes, exactly
    expect((upload['unmapped'] as { gatehouse: Record<string, unknown> }).gatehouse['end_reason']).toBe('completed');
    const download = await h.waitForEvent((e) => (e['http_request'] as { url?: { path?: string } } | undefined)?.url?.path === '/big');
    expect((download['traffic'] as { bytes_in: number }).bytes_in).toBe(BIG.length);
  });

  it('opens a CONNECT tunnel (--proxytunnel) and relays through it', async () => {
    const r = await run('curl', ['-sS', '-i', '--max-time', '10', '-p', '-x', h.proxyUrl(token), url('/through-tunnel')], { env: cleanEnv() });
    expect(r.stdout).toContain('HTTP/1.1 200 Connection Established');
    expect(r.stdout).toContain('hello GET /through-tunnel');
  });

  it('honours HTTP_PROXY from the environment, as a sandbox sets it', async () => {
    const r = await run('curl', ['-sS', '--max-time', '10', url('/from-env')], { env: cleanEnv({ http_proxy: h.proxyUrl(token) }) });
    expect(r.stdout).toBe('hello GET /from-env');
  });

  it('refuses a destination outside the grant with 403 and X-Gatehouse-Deny', async () => {
    const r = await run('curl', ['-sS', '-i', '--max-time', '10', '-x', h.proxyUrl(token), `http://origin.test:${origin.port + 1}/`], { env: cleanEnv() });
    expect(r.stdout).toMatch(/^HTTP\/1\.1 403/);
    expect(r.stdout).toMatch(/X-Gatehouse-Deny: port_not_allowed/i);
    expect(r.stdout).toMatch(/X-Gatehouse-Correlation-Id: [0-9a-f-]{36}/i);
  });
});

describe('undici ProxyAgent', () => {
  it('tunnels with CONNECT by default', async () => {
    const agent = new ProxyAgent({ uri: h.proxyUrl(token) });
    const res = await request(url('/undici-tunnel'), { dispatcher: agent });
    expect(res.statusCode).toBe(200);
    expect(await res.body.text()).toBe('hello GET /undici-tunnel');
    await agent.close();
  });

  it('sends absolute-form requests with proxyTunnel: false, and POST bodies arrive intact', async () => {
    const agent = new ProxyAgent({ uri: h.proxyUrl(token), proxyTunnel: false });
    const res = await request(url('/upload/undici'), { dispatcher: agent, method: 'POST', body: BIG });
    expect(await res.body.text()).toBe(`${BIG.length} ${sha(BIG)}`);
    await agent.close();
  });

  it('is refused with 407 without credentials (undici surfaces it as an error)', async () => {
    const agent = new ProxyAgent({ uri: `http://127.0.0.1:${h.port}` });
    await expect(request(url('/'), { dispatcher: agent })).rejects.toThrow(/407/);
    await agent.close();
  });
});

describe('WebSocket upgrade through absolute-form (no tunnel)', () => {
  it('passes the upgrade through and relays frames both ways', async () => {
    const ws = await startWebSocketOrigin();
    const wsToken = await h.token([`origin.test:${ws.port}`]);
    const agent = new ProxyAgent({ uri: h.proxyUrl(wsToken), proxyTunnel: false });
    try {
      const socket = new WebSocket(`ws://origin.test:${ws.port}/chat`, { dispatcher: agent });
      const reply = await new Promise<string>((resolve, reject) => {
        socket.addEventListener('open', () => socket.send('ping'));
        socket.addEventListener('message', (e) => resolve(String(e.data)));
        socket.addEventListener('error', () => reject(new Error('websocket error')));
      });
      expect(reply).toBe('echo: ping');
      socket.close();
      expect(ws.upgrades).toEqual([`/chat origin.test:${ws.port} proxy-authorization=false`]);
      const event = await h.waitForEvent((e) => (e['unmapped'] as { gatehouse: { kind?: string } }).gatehouse.kind === 'upgrade');
      expect(event['http_request']).toMatchObject({ http_method: 'GET', url: { path: '/chat' } });
      expect(event['http_response']).toEqual({ code: 101 });
    } finally {
      await agent.close();
      await ws.close();
    }
  });
});

describe('npm as a client', () => {
  it('reads package metadata from a registry through the proxy', async () => {
    const registry = `http://registry.test:${origin.port}/`;
    const r = await run(
      'npm',
      ['view', 'leftpad-demo', 'version', '--registry', registry, '--proxy', h.proxyUrl(token), '--cache', join(tmp, 'npm-cache'), '--userconfig', join(tmp, 'npmrc'), '--prefer-online'],
      { env: cleanEnv({ npm_config_update_notifier: 'false' }), timeoutMs: 60_000 },
    );
    expect(r.stdout.trim()).toBe('1.2.3');
    expect(origin.seen.some((s) => s.url === '/leftpad-demo' && s.headers.host === `registry.test:${origin.port}`)).toBe(true);
  });
});
