import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { run } from '../support/run.js';
import { waitUntil } from '../support/wait.js';

/** A port the OS says is free now (rsyslog needs a fixed port in its config). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * A self-signed certificate for 127.0.0.1 (openssl CLI), as a CA bundle and a server key pair. It also names
 * `localhost` (DNS SAN), so a client can verify it with an SNI name (`server_name: localhost`) instead of
 * sending an IP literal as SNI, which RFC 6066 §3 does not allow.
 */
export async function selfSignedCert(dir: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  const r = await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', key, '-out', cert]);
  if (r.code !== 0) throw new Error(`openssl failed: ${r.stderr}`);
  return { cert, key };
}

export interface Rsyslog {
  readonly tcpPort: number;
  readonly tlsPort: number;
  readonly output: string;
  readonly cert: string;
  /** Every line rsyslog has written so far. */
  lines(): Promise<string[]>;
  stop(): Promise<void>;
  start(): Promise<void>;
}

/**
 * Real rsyslog (Debian) on 127.0.0.1: imtcp with RFC 6587 framing on a plain port and a TLS port (gtls,
 * RFC 5425), writing what it receives with RSYSLOG_SyslogProtocol23Format. Run as `rsyslogd -n -f CONF`.
 */
export async function startRsyslog(dir: string): Promise<Rsyslog> {
  await mkdir(join(dir, 'work'), { recursive: true });
  const { cert, key } = await selfSignedCert(dir);
  const tcpPort = await freePort();
  const tlsPort = await freePort();
  const output = join(dir, 'received.log');
  const conf = join(dir, 'rsyslog.conf');
  await writeFile(
    conf,
    [
      `global(workDirectory="${join(dir, 'work')}" DefaultNetstreamDriverCAFile="${cert}" DefaultNetstreamDriverCertFile="${cert}" DefaultNetstreamDriverKeyFile="${key}" maxMessageSize="256k")`,
      'module(load="imtcp" maxSessions="200")',
      `input(type="imtcp" port="${tcpPort}" address="127.0.0.1" ruleset="out")`,
      `input(type="imtcp" port="${tlsPort}" address="127.0.0.1" ruleset="out" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")`,
      'ruleset(name="out") {',
      `  action(type="omfile" file="${output}" template="RSYSLOG_SyslogProtocol23Format" flushInterval="0" asyncWriting="off")`,
      '}',
      '',
    ].join('\n'),
  );
  let proc: ChildProcess | null = null;
  const listening = (port: number): Promise<boolean> =>
    new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
  const waitForPort = (port: number): Promise<boolean> => waitUntil(() => listening(port), `rsyslog to listen on ${port}`);
  const start = async (): Promise<void> => {
    proc = spawn('rsyslogd', ['-n', '-f', conf, '-i', join(dir, 'rsyslog.pid')], { stdio: 'ignore' });
    await waitForPort(tcpPort);
    await waitForPort(tlsPort);
  };
  const stop = (): Promise<void> =>
    new Promise((resolve) => {
      const p = proc;
      if (!p || p.exitCode !== null) return resolve();
      p.once('exit', () => resolve());
      p.kill('SIGTERM');
    });
  await start();
  return {
    tcpPort,
    tlsPort,
    output,
    cert,
    lines: async () => (await readFile(output, 'utf8').catch(() => '')).split('\n').filter((l) => l.length > 0),
    stop,
    start,
  };
}
