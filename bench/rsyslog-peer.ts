import { execFile } from 'node:child_process';
import { mkdir, open, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CORES, pinned, type Peer } from './peers.js';

/**
 * Debian's rsyslog on 127.0.0.1 for the shipping benchmark: imtcp with RFC 6587 framing on a plain port and a
 * TLS port (gtls, RFC 5425, anonymous client auth), writing every message to one file in
 * RSYSLOG_SyslogProtocol23Format, as a SIEM's forwarder would. Pinned to the load core. Unlike the test peer
 * it leaves omfile's buffering on (flushed at the end of each batch), so the file, not the receiver, is fast.
 */
export interface RsyslogPeer extends Peer {
  readonly tcpPort: number;
  readonly tlsPort: number;
  /** The CA bundle (the self-signed server certificate) to verify the TLS port with. */
  readonly cert: string;
  /** Follows the output file: how many Gatehouse audit records (not checkpoints) have arrived so far. */
  records(): Promise<number>;
}

const run = promisify(execFile);

/** A port the OS says is free now (rsyslog needs a fixed port in its config). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (up) return;
    if (Date.now() > deadline) throw new Error(`rsyslog does not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// The SD-ID every record carries (core/audit/sinks/syslog-format.ts); checkpoints carry another one.
const MARKER = Buffer.from('[gatehouse@32473 ');

export async function startRsyslog(dir: string): Promise<RsyslogPeer> {
  await mkdir(join(dir, 'work'), { recursive: true });
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert]);
  const tcpPort = await freePort();
  const tlsPort = await freePort();
  const output = join(dir, 'received.log');
  const conf = join(dir, 'rsyslog.conf');
  await writeFile(
    conf,
    [
      `global(workDirectory="${join(dir, 'work')}" DefaultNetstreamDriverCAFile="${cert}" DefaultNetstreamDriverCertFile="${cert}" DefaultNetstreamDriverKeyFile="${key}" maxMessageSize="256k")`,
      'module(load="imtcp" maxSessions="50")',
      `input(type="imtcp" port="${tcpPort}" address="127.0.0.1" ruleset="out")`,
      `input(type="imtcp" port="${tlsPort}" address="127.0.0.1" ruleset="out" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")`,
      'ruleset(name="out") {',
      `  action(type="omfile" file="${output}" template="RSYSLOG_SyslogProtocol23Format")`,
      '}',
      '',
    ].join('\n'),
  );
  const proc = pinned(CORES.load, 'rsyslogd', ['-n', '-f', conf, '-i', join(dir, 'rsyslog.pid')]);
  let stderr = '';
  proc.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  try {
    await waitForPort(tcpPort, 20_000);
    await waitForPort(tlsPort, 20_000);
  } catch (err) {
    proc.kill('SIGKILL');
    throw new Error(`${(err as Error).message}: ${stderr.slice(-500)}`);
  }
  // Count records incrementally: only whole lines, each file byte read once.
  let offset = 0;
  let count = 0;
  const records = async (): Promise<number> => {
    const handle = await open(output, 'r').catch(() => null);
    if (!handle) return count;
    try {
      const size = (await handle.stat()).size;
      if (size <= offset) return count;
      const buf = Buffer.allocUnsafe(size - offset);
      const { bytesRead } = await handle.read(buf, 0, buf.length, offset);
      const end = buf.subarray(0, bytesRead).lastIndexOf(0x0a) + 1;
      const whole = buf.subarray(0, end);
      for (let at = whole.indexOf(MARKER); at !== -1; at = whole.indexOf(MARKER, at + MARKER.length)) count++;
      offset += end;
      return count;
    } finally {
      await handle.close();
    }
  };
  const stop = (): Promise<void> =>
    new Promise((resolve) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
      proc.once('exit', () => resolve());
      proc.kill('SIGTERM');
      setTimeout(() => proc.kill('SIGKILL'), 5000).unref();
    });
  return { name: 'rsyslog', pid: proc.pid as number, port: tcpPort, tcpPort, tlsPort, cert, records, stop };
}
