import { promises as dns } from 'node:dns';
import type { Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { canonicalizeHost } from './canonical-host.js';
import { dialVetted } from './dial.js';
import type { IpAddress } from './ip-address.js';

export interface TrustedEndpoint {
  readonly host: string;
  readonly port: number;
  /** TLS: the CA bundle (PEM) to verify with (absent: system CAs) and the name to verify (absent: host). */
  readonly tls?: { readonly ca?: string; readonly serverName?: string };
  readonly timeoutMs: number;
}

/**
 * Connect to a destination the operator configured (an audit sink, later a broker upstream), as opposed to one
 * a sandbox asked for. The name is resolved with the system resolver (operators rely on /etc/hosts and internal
 * DNS) and the address guard is not applied: these destinations commonly live on private networks, chosen by
 * the policy's owners. TLS is always verified.
 */
export async function trustedConnect(endpoint: TrustedEndpoint): Promise<Socket | TLSSocket> {
  const host = canonicalizeHost(endpoint.host);
  if (!host) throw new Error(`"${endpoint.host}" is not a host name or address`);
  let addresses: IpAddress[];
  if (host.kind === 'ip') addresses = [host.ip];
  else {
    const answers = await dns.lookup(host.host, { all: true, verbatim: true });
    addresses = answers.flatMap((a) => {
      const c = canonicalizeHost(a.address);
      return c?.kind === 'ip' ? [c.ip] : [];
    });
    if (addresses.length === 0) throw new Error(`"${host.host}" does not resolve`);
  }
  const socket = await dialVetted(addresses, endpoint.port, { timeoutMs: endpoint.timeoutMs });
  if (!endpoint.tls) return socket;
  const servername = endpoint.tls.serverName ?? (host.kind === 'name' ? host.host : undefined);
  return new Promise<TLSSocket>((resolve, reject) => {
    const secure = tlsConnect({ socket, ...(servername ? { servername } : {}), ...(endpoint.tls?.ca ? { ca: endpoint.tls.ca } : {}), rejectUnauthorized: true });
    const timer = setTimeout(() => {
      secure.destroy();
      reject(new Error('TLS handshake timeout'));
    }, endpoint.timeoutMs);
    secure.once('secureConnect', () => {
      clearTimeout(timer);
      resolve(secure);
    });
    secure.once('error', (err) => {
      clearTimeout(timer);
      secure.destroy();
      reject(err);
    });
  });
}
