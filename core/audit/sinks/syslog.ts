import { readFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import type { SinkSettings } from '../../policy/compile-audit.js';
import { parseAuthority } from '../../netguard/canonical-host.js';
import { trustedConnect } from '../../netguard/trusted-connect.js';
import type { Checkpoint } from '../checkpoint.js';
import type { SendResult, ShippedRecord, Sink, SinkContext } from './sink.js';
import { FACILITY, formatCheckpoint, formatRecord, frame, type SyslogHeader } from './syslog-format.js';

type SyslogSettings = Extract<SinkSettings, { type: 'syslog' }>;

/**
 * RFC 5424 syslog over TCP (RFC 6587 octet counting) or TLS (RFC 5425, which requires octet counting).
 * TCP gives no application-level acknowledgement, so sends answer `sent`: the shipper confirms them after the
 * resend window if this connection is still the one that carried them, and sends them again otherwise.
 */
export async function createSyslogSink(settings: SyslogSettings, ctx: SinkContext): Promise<Sink> {
  const target = parseAuthority(settings.address, null);
  if (!target) throw new Error(`syslog sink ${settings.name}: "${settings.address}" is not host:port`);
  const ca = settings.tls?.ca ? await readFile(settings.tls.ca.slice('file:'.length), 'utf8') : undefined;
  const header: SyslogHeader = { facility: FACILITY[settings.facility ?? 'local0'] ?? 16, hostname: ctx.hostname, procid: String(process.pid) };
  let socket: Socket | null = null;
  let alive = false;
  let generation = 0;

  const connect = async (): Promise<Socket> => {
    if (socket && alive) return socket;
    socket?.destroy();
    const s = (await trustedConnect({
      host: target.host.host,
      port: target.port,
      timeoutMs: settings.timeoutMs,
      ...(settings.tls ? { tls: { ...(ca ? { ca } : {}), ...(settings.tls.server_name ? { serverName: settings.tls.server_name } : {}) } } : {}),
    })) as Socket;
    generation++;
    alive = true;
    const mine = generation;
    const down = (): void => {
      if (generation === mine) alive = false;
    };
    s.on('error', down);
    s.on('close', down);
    s.on('end', down); // the receiver closed its side: it will read nothing more from us
    s.resume(); // a syslog receiver sends nothing; drain whatever comes so the socket never stalls
    s.setKeepAlive(true, 30_000);
    socket = s;
    return s;
  };

  const write = async (frames: string): Promise<SendResult> => {
    let s: Socket;
    try {
      s = await connect();
    } catch (err) {
      return { status: 'retry', kept: 0, error: `cannot connect to ${settings.address}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
    }
    const before = generation;
    return new Promise<SendResult>((resolve) => {
      const timer = setTimeout(() => {
        alive = false;
        s.destroy();
        resolve({ status: 'retry', kept: 0, error: 'write timed out' });
      }, settings.timeoutMs);
      s.write(frames, (err) => {
        clearTimeout(timer);
        if (err || generation !== before || !alive) resolve({ status: 'retry', kept: 0, error: `write failed: ${err?.message ?? 'connection lost'}` });
        else resolve({ status: 'sent' });
      });
    });
  };

  return {
    name: settings.name,
    type: 'syslog',
    send: (batch: readonly ShippedRecord[]) => write(batch.map((r) => frame(formatRecord(r, header))).join('')),
    sendCheckpoints: (checkpoints: readonly Checkpoint[]) => write(checkpoints.map((c) => frame(formatCheckpoint(c, header))).join('')),
    healthy: () => alive,
    generation: () => generation,
    close: async () => {
      alive = false;
      const s = socket;
      if (s && !s.destroyed) {
        // Let queued frames go out, but never wait on a receiver that stopped reading.
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 1000);
          s.end(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      s?.destroy();
    },
  };
}
