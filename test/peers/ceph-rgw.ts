// A real S3 server that verifies SigV4 strictly, for the credential broker's tests and benchmarks: a throwaway
// single-node Ceph cluster (mon + memstore OSD + RADOS Gateway) on 127.0.0.1, plus a small SigV4 client built on
// @smithy/signature-v4 and undici. Ceph, not an S3 emulator: s3rver, for one, accepts any signature.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, createHmac, randomBytes, randomUUID, type Hash as NodeHash, type Hmac } from 'node:crypto';
import { appendFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { getGlobalDispatcher, request, type Dispatcher } from 'undici';
import { run } from '../support/run.js';
import { waitUntil } from '../support/wait.js';
import { freePort } from './rsyslog.js';

/** SigV4 credentials of an RGW user. */
export interface S3Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

/** One S3 call, described by its decoded parts; {@link signedS3Request} encodes and signs it. */
export interface S3Call {
  readonly method: string;
  readonly bucket?: string;
  /** The object key as stored (decoded); encoded exactly once for the wire. */
  readonly key?: string;
  /** Decoded query parameters; `''` for a valueless one such as `?uploads` (SignatureV4 drops `null` values). */
  readonly query?: Readonly<Record<string, string>>;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: Uint8Array | string;
  /** Sign with these instead of the peer's own credentials. */
  readonly credentials?: S3Credentials;
  /** Send this `x-amz-content-sha256` instead of the body's real hash (SignatureV4 signs a present header as is). */
  readonly payloadHash?: string;
}

export interface S3Reply {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Buffer;
  /** `<Code>` of an S3 XML error body, if any. */
  readonly errorCode: string | undefined;
}

/** Where and how to reach an S3 endpoint. */
export interface S3Target extends S3Credentials {
  /** `http://127.0.0.1:PORT`, path-style addressing. */
  readonly endpoint: string;
  readonly region: string;
}

export interface CephRgw extends S3Target {
  /** The cluster's temporary directory (config, keyring, mon store, logs); removed by `stop()`. */
  readonly dir: string;
  /** Wall-clock time `startCephRgw` took, in ms. */
  readonly startupMs: number;
  /** Sign and send one S3 call with this peer's credentials (or `call.credentials`). */
  s3(call: S3Call): Promise<S3Reply>;
  /** Create a bucket owned by the peer's user (or by `credentials`); throws unless RGW answers 200. */
  createBucket(name: string, credentials?: S3Credentials): Promise<void>;
  /** Create another RGW user with fresh random keys. */
  createUser(uid: string): Promise<S3Credentials>;
  /** Resident memory of the three daemons together, in bytes (from /proc). */
  rssBytes(): Promise<number>;
  /** Kill the daemons and remove the directory. Idempotent. */
  stop(): Promise<void>;
}

export interface CephRgwOptions {
  /** Region to sign with. RGW derives the signing key from the credential scope, so any region verifies. */
  readonly region?: string;
  /** Capacity the memstore OSD reports; the data lives in RAM. Default 1 GiB (RGW refuses writes near 95 % full). */
  readonly memstoreBytes?: number;
  /** Bound on the whole start-up. Default 45 s, under vitest's 60 s hook timeout so the cause is reported. */
  readonly timeoutMs?: number;
  /**
   * Turn Nagle's algorithm off on RGW's sockets (beast `tcp_nodelay=1`). Default false, RGW's own default: then a
   * small GET (headers and body written separately) often waits ~40 ms for the client's delayed ACK, which swamps
   * any latency measurement (the broker benchmark sets it).
   */
  readonly tcpNoDelay?: boolean;
}

const DIR_PREFIX = 'gatehouse-ceph-';
// RGW's zone pools, created up front: when RGW creates them itself on first use, the first bucket and the first
// object each wait about 2 s for a pool to be created and its placement groups to peer.
const RGW_POOLS = ['.rgw.root', 'default.rgw.control', 'default.rgw.meta', 'default.rgw.log', 'default.rgw.buckets.index', 'default.rgw.buckets.data', 'default.rgw.buckets.non-ec'];

/** S3's URI encoding (RFC 3986 unreserved kept): `encodeURIComponent` leaves `!'()*` as they are, S3 does not. */
export function s3Escape(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** The wire path of a bucket/key, encoded once, `/` kept, nothing normalised (`//`, `./` stay as they are). */
export function s3Path(bucket?: string, key?: string): string {
  if (bucket === undefined) return '/';
  return key === undefined ? `/${s3Escape(bucket)}` : `/${s3Escape(bucket)}/${key.split('/').map(s3Escape).join('/')}`;
}

/** What SignatureV4 hands its hash (`SourceData` of @smithy/types, a transitive dependency not imported here). */
type SourceData = string | ArrayBuffer | ArrayBufferView;

/** SHA-256 and HMAC-SHA-256 from node:crypto in the shape SignatureV4 wants for its `sha256` constructor. */
export class Sha256 {
  private readonly h: NodeHash | Hmac;
  constructor(secret?: SourceData) {
    this.h = secret === undefined ? createHash('sha256') : createHmac('sha256', toBytes(secret));
  }
  update(data: SourceData): void {
    this.h.update(toBytes(data));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(this.h.digest());
  }
}

function toBytes(data: SourceData): Uint8Array {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return new Uint8Array(data);
}

/** Sign `call` with SigV4 for S3 and send it with undici; path-style, payload hashed (never UNSIGNED-PAYLOAD). */
export async function signedS3Request(target: S3Target, call: S3Call): Promise<S3Reply> {
  const url = new URL(target.endpoint);
  const body = typeof call.body === 'string' ? Buffer.from(call.body, 'utf8') : call.body;
  const path = s3Path(call.bucket, call.key);
  const query = call.query ?? {};
  // SignatureV4 does not add `host`; sign the exact Host undici will send (with the port).
  const headers: Record<string, string> = { ...call.headers, host: url.host };
  if (call.payloadHash !== undefined) headers['x-amz-content-sha256'] = call.payloadHash;
  const signer = new SignatureV4({
    service: 's3',
    region: target.region,
    credentials: call.credentials ?? target,
    sha256: Sha256,
    // S3 signs the wire path as it is, encoded once; other services want it escaped a second time.
    uriEscapePath: false,
  });
  const signed = await signer.sign(new HttpRequest({ method: call.method, protocol: url.protocol, hostname: url.hostname, port: Number(url.port), path, query: { ...query }, headers, body }));
  const search = Object.entries(query)
    .map(([k, v]) => `${s3Escape(k)}=${s3Escape(v)}`)
    .join('&');
  const wireHeaders = { ...(signed.headers as Record<string, string>) };
  delete wireHeaders.host; // undici writes Host from the origin; the same value that was signed
  // Dispatcher.request sends `path` byte for byte; undici's top-level request() passes it through WHATWG URL
  // parsing, which resolves `.`/`..` segments (even `%2E`) and would break keys such as `a/./b`.
  return readReply(await getGlobalDispatcher().request({ origin: url.origin, method: call.method as 'GET', path: search ? `${path}?${search}` : path, headers: wireHeaders, body }));
}

/** Read an undici response in full, with the S3 error code if the body is an S3 XML error. */
export async function readReply(res: Dispatcher.ResponseData): Promise<S3Reply> {
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, body, errorCode: /<Code>([^<]+)<\/Code>/.exec(body.toString('utf8'))?.[1] };
}

/** A random cephx secret in the keyring's encoding: u16 type (1 = AES), u32 sec, u32 nsec, u16 length, 16 bytes. */
function cephxKey(): string {
  const b = Buffer.alloc(28);
  b.writeUInt16LE(1, 0);
  b.writeUInt32LE(Math.floor(Date.now() / 1000), 2);
  b.writeUInt16LE(16, 10);
  randomBytes(16).copy(b, 12);
  return b.toString('base64');
}

/** Every entity's key and caps. The mon imports this keyring at mkfs, so osd.0 and client.rgw need no `auth add`. */
function keyring(): string {
  const entity = (name: string, caps: Record<string, string>): string =>
    [`[${name}]`, `\tkey = ${cephxKey()}`, ...Object.entries(caps).map(([k, v]) => `\tcaps ${k} = "${v}"`), ''].join('\n');
  return [
    entity('mon.', { mon: 'allow *' }),
    entity('client.admin', { mon: 'allow *', osd: 'allow *', mgr: 'allow *' }),
    entity('osd.0', { mon: 'allow profile osd', osd: 'allow *' }),
    entity('client.rgw', { mon: 'allow rw', osd: 'allow rwx' }),
  ].join('');
}

function cephConf(dir: string, fsid: string, monPort: number, rgwPort: number, memstoreBytes: number, tcpNoDelay: boolean): string {
  return `[global]
fsid = ${fsid}
mon host = v2:127.0.0.1:${monPort}
mon initial members = a
public addr = 127.0.0.1
# msgr2 only: one mon port, fewer OSD ports; the OSD binds 127.0.0.1 ports from ms_bind_port_min..max.
ms bind msgr1 = false
# cephx as in production (the Pacific default, stated so it is not lost): every daemon and client has a key.
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = ${dir}/keyring
run dir = ${dir}/run
admin socket = ${dir}/run/$name.asok
pid file = ${dir}/run/$name.pid
log file = ${dir}/log/$name.log
mon data = ${dir}/mon/$id
osd data = ${dir}/osd/$id
# One OSD: replicas of one, placed on OSDs (not hosts); 8 PGs per pool is plenty and peers fast.
mon allow pool size one = true
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd crush chooseleaf type = 0
# No ceph-mgr (not installed): nothing would autoscale PGs, and health noise about it is irrelevant here.
osd pool default pg autoscale mode = off
mon warn on pool no redundancy = false
# The mon store holds a few MB; do not stop the mon on a CI disk that is 95 % full.
mon data avail warn = 1
mon data avail crit = 0
# Each map change (osd new, pool create, osd boot) otherwise waits up to 1 s for more changes to batch.
paxos propose interval = 0.01
paxos min wait = 0.01
# Objects live in RAM; nothing to flush, and a SIGKILL loses nothing we want.
osd objectstore = memstore
memstore device bytes = ${memstoreBytes}
# Fewer op shards and threads: a test cluster does a handful of ops at a time.
osd op num shards = 1
osd op num threads per shard = 2

[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:${rgwPort}${tcpNoDelay ? ' tcp_nodelay=1' : ''}
# Only the S3 API; no Swift, admin, STS, IAM or notification endpoints to reach by accident.
rgw enable apis = s3
# Background work a short-lived cluster never needs (garbage collection, lifecycle, quota sync, resharding), and
# 32 request threads instead of 512.
rgw enable gc threads = false
rgw enable lc threads = false
rgw enable quota threads = false
rgw dynamic resharding = false
rgw thread pool size = 32
`;
}

/** True when something accepts TCP connections on 127.0.0.1:port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Remove clusters left by a test process that died without `stop()` (and whose watchdog did not run): kill the
 * daemons listed in `pids` that still run from that directory, then delete it. Directories of live owners stay.
 */
async function sweepLeftovers(): Promise<void> {
  const base = tmpdir();
  for (const name of await readdir(base).catch(() => [] as string[])) {
    if (!name.startsWith(DIR_PREFIX)) continue;
    const dir = join(base, name);
    const owner = Number(await readFile(join(dir, 'owner'), 'utf8').catch(() => '0'));
    if (owner > 0 && isAlive(owner)) continue;
    // No owner yet: another worker may be between mkdtemp and writing `owner`; only an old one is a leftover.
    if (owner === 0 && Date.now() - ((await stat(dir).catch(() => null))?.mtimeMs ?? 0) < 60_000) continue;
    const pids = (await readFile(join(dir, 'pids'), 'utf8').catch(() => '')).split('\n').map(Number).filter((p) => p > 0);
    for (const pid of pids) {
      // SECURITY: only a process whose command line names this directory; the pid may have been reused.
      const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
      if (cmdline.includes(dir)) process.kill(pid, 'SIGKILL');
    }
    await rm(dir, { recursive: true, force: true });
  }
}

/** Last lines of a daemon's log, for start-up errors. */
async function logTail(dir: string, name: string): Promise<string> {
  const text = await readFile(join(dir, 'log', `${name}.log`), 'utf8').catch(() => '');
  return text.split('\n').slice(-15).join('\n');
}

/** Run a Ceph tool to completion; bounded, failing with its stderr. */
async function must(what: string, cmd: string, args: readonly string[], timeoutMs: number, input?: string): Promise<string> {
  const r = await run(cmd, args, { timeoutMs, ...(input === undefined ? {} : { input }) });
  // The ceph CLI reading commands from stdin reports a failed command as `Error ...` and still exits 0.
  if (r.code !== 0 || /^Error /m.test(r.stderr)) throw new Error(`${what} failed (exit ${r.code}; killed after ${timeoutMs} ms if none of its own): ${r.stderr.trim()}`);
  return r.stdout;
}

/** Fresh S3 keys in AWS's shapes: a 20-character access key id, a 40-character secret (with `+` and `/`). */
function newKeys(): S3Credentials {
  return { accessKeyId: `GH${randomBytes(9).toString('hex').toUpperCase()}`, secretAccessKey: randomBytes(30).toString('base64') };
}

async function rssOf(pid: number | undefined): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) * 1024;
}

/**
 * The daemons of one cluster directory. Each pid goes to `pids` for the watchdog and the sweep. A daemon that exits
 * before `stop()` is recorded as `failure` (with its log tail) so start-up fails with the cause, not a timeout.
 * The watchdog is a detached shell that outlives this process: when our end of its stdin closes (`stop()`, or this
 * process exiting or being killed), it SIGKILLs the listed daemons and removes the directory.
 */
class Daemons {
  readonly children: ChildProcess[] = [];
  failure: Error | undefined;
  private stopped = false;
  private readonly watchdog: ChildProcess;

  constructor(private readonly dir: string) {
    const script = 'read -r _; for p in $(cat "$1/pids" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done; rm -rf "$1"';
    this.watchdog = spawn('sh', ['-c', script, 'ceph-rgw-watchdog', dir], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
    this.watchdog.unref();
    (this.watchdog.stdin as Socket).unref();
  }

  /** Start `cmd` in the foreground (`-f`: no fork, logs to the log file). */
  async start(name: string, cmd: string, args: readonly string[]): Promise<void> {
    const d = spawn(cmd, [...args, '-f'], { stdio: 'ignore' });
    this.children.push(d);
    d.once('error', (err) => (this.failure ??= err));
    if (d.pid !== undefined) await appendFile(join(this.dir, 'pids'), `${d.pid}\n`);
    d.once('exit', (code, signal) => {
      if (!this.stopped) void logTail(this.dir, name).then((tail) => (this.failure ??= new Error(`${name} exited (${code ?? signal}):\n${tail}`)));
    });
  }

  /** Wait for `check`, failing at once if a daemon died. */
  waitFor(check: () => Promise<boolean>, what: string, timeoutMs: number): Promise<boolean> {
    return waitUntil(async () => {
      if (this.failure) throw this.failure;
      return check();
    }, what, timeoutMs);
  }

  async rss(): Promise<number> {
    return (await Promise.all(this.children.map((d) => rssOf(d.pid)))).reduce((a, b) => a + b, 0);
  }

  /** SIGKILL: everything is disposable, and a memstore OSD would otherwise write its objects to disk on shutdown. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const running = this.children.filter((d) => d.pid !== undefined && d.exitCode === null && d.signalCode === null);
    await Promise.all(running.map((d) => new Promise((resolve) => d.once('exit', resolve).kill('SIGKILL'))));
    await rm(this.dir, { recursive: true, force: true });
    this.watchdog.stdin?.end();
  }
}

/** Fail early and say what to install, rather than with a spawn error half-way through. */
async function checkInstalled(): Promise<void> {
  const tools = ['monmaptool', 'ceph-mon', 'ceph-osd', 'ceph', 'radosgw', 'radosgw-admin'];
  const r = await run('sh', ['-c', 'for t in "$@"; do command -v "$t" >/dev/null || echo "$t"; done', 'sh', ...tools]);
  if (r.stdout.trim()) throw new Error(`Ceph tools missing (${r.stdout.trim().split('\n').join(', ')}): apt-get install -y --no-install-recommends radosgw ceph-mon ceph-osd`);
}

/**
 * Bring up mon, OSD, pools, the first RGW user and radosgw, in the order that overlaps the slow parts.
 * Returns when radosgw answers HTTP on `rgwPort`.
 */
async function bootstrap(dir: string, daemons: Daemons, fsid: string, ports: { mon: number; rgw: number }, keys: S3Credentials, left: () => number): Promise<void> {
  const c = ['-c', join(dir, 'ceph.conf')];
  const osdUuid = randomUUID();
  const monmap = join(dir, 'monmap');
  await must('monmaptool', 'monmaptool', ['--create', '--fsid', fsid, '--addv', 'a', `[v2:127.0.0.1:${ports.mon}]`, monmap], left());
  await must('ceph-mon --mkfs', 'ceph-mon', [...c, '--mkfs', '-i', 'a', '--monmap', monmap, '--keyring', join(dir, 'keyring')], left());
  await daemons.start('mon.a', 'ceph-mon', [...c, '-i', 'a']);
  await daemons.waitFor(() => listening(ports.mon), `ceph-mon on 127.0.0.1:${ports.mon}`, left());
  // The OSD (its mkfs asks the mon too) comes up while the pools are created: RGW needs both.
  const osd = Promise.all([
    must('ceph-osd --mkfs', 'ceph-osd', [...c, '--mkfs', '-i', '0', '--osd-uuid', osdUuid], left()),
    must('ceph osd new', 'ceph', [...c, 'osd', 'new', osdUuid, '0'], left()),
  ]).then(() => daemons.start('osd.0', 'ceph-osd', [...c, '-i', '0']));
  // One ceph CLI process for all pools (each invocation costs a Python start-up); commands read from stdin.
  // No `osd pool application enable`: it only silences a health warning, and 7 more map changes cost ~0.5 s.
  const pools = must('ceph osd pool create', 'ceph', c, left(), RGW_POOLS.map((p) => `osd pool create ${p}\n`).join(''));
  await Promise.all([osd, pools]);
  // Blocks until the OSD is up and the pools' PGs are active: RADOS readiness needs no separate wait.
  await must('radosgw-admin user create', 'radosgw-admin', [...c, 'user', 'create', '--uid', 'gatehouse', '--display-name', 'gatehouse', '--access-key', keys.accessKeyId, '--secret', keys.secretAccessKey], left());
  await daemons.start('client.rgw', 'radosgw', [...c, '-n', 'client.rgw']);
  const root = `http://127.0.0.1:${ports.rgw}`;
  await daemons.waitFor(() => request(root).then((r) => r.body.dump().then(() => true), () => false), `radosgw on ${root}`, left());
}

/**
 * A throwaway single-node Ceph cluster with RADOS Gateway on 127.0.0.1: one mon, one memstore OSD, radosgw (beast),
 * cephx on, its own fsid, ports and temporary directory. RGW verifies SigV4 strictly (signature, payload hash,
 * aws-chunked chunk signatures), which is what the credential broker's re-signing is tested against.
 * Needs `ceph-mon`, `ceph-osd`, `radosgw` (Debian: `radosgw ceph-mon ceph-osd`); tested as root.
 * Start-up takes about 2 s (4-5 s on a loaded two-core machine); the daemons take about 130 MB RSS, plus the
 * objects stored (memstore keeps them in the OSD's memory).
 */
export async function startCephRgw(options: CephRgwOptions = {}): Promise<CephRgw> {
  const started = performance.now();
  const deadline = started + (options.timeoutMs ?? 45_000);
  const left = (): number => Math.max(1, Math.ceil(deadline - performance.now()));
  await checkInstalled();
  await sweepLeftovers();
  const dir = await mkdtemp(join(tmpdir(), DIR_PREFIX));
  await writeFile(join(dir, 'owner'), String(process.pid));
  const daemons = new Daemons(dir);
  const conf = join(dir, 'ceph.conf');
  try {
    for (const sub of ['mon/a', 'osd/0', 'run', 'log']) await mkdir(join(dir, sub), { recursive: true });
    const ports = { mon: await freePort(), rgw: await freePort() };
    const fsid = randomUUID();
    await writeFile(conf, cephConf(dir, fsid, ports.mon, ports.rgw, options.memstoreBytes ?? 1024 ** 3, options.tcpNoDelay ?? false));
    await writeFile(join(dir, 'keyring'), keyring(), { mode: 0o600 });
    const keys = newKeys();
    await bootstrap(dir, daemons, fsid, ports, keys, left);
    const target: S3Target = { endpoint: `http://127.0.0.1:${ports.rgw}`, region: options.region ?? 'us-east-1', ...keys };
    const s3 = (call: S3Call): Promise<S3Reply> => signedS3Request(target, call);
    return {
      ...target,
      dir,
      startupMs: Math.round(performance.now() - started),
      s3,
      async createBucket(name, credentials) {
        const r = await s3({ method: 'PUT', bucket: name, ...(credentials ? { credentials } : {}) });
        if (r.status !== 200) throw new Error(`create bucket ${name}: ${r.status} ${r.errorCode ?? ''}`);
      },
      async createUser(uid) {
        const k = newKeys();
        await must('radosgw-admin user create', 'radosgw-admin', ['-c', conf, 'user', 'create', '--uid', uid, '--display-name', uid, '--access-key', k.accessKeyId, '--secret', k.secretAccessKey], 30_000);
        return k;
      },
      rssBytes: () => daemons.rss(),
      stop: () => daemons.stop(),
    };
  } catch (err) {
    const cause = daemons.failure;
    await daemons.stop();
    throw cause ?? err; // a daemon that died explains a later step timing out
  }
}
