import { connect, type Socket } from 'node:net';

export interface RawHead {
  readonly status: number;
  readonly headers: Record<string, string>;
  /** Bytes received after the head. */
  readonly rest: Buffer;
}

/** A plain TCP connection to 127.0.0.1:port, resolved once connected. */
export function connectRaw(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port }, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Read one HTTP response head from a socket (until CRLFCRLF), failing after `timeoutMs`. */
export function readHead(socket: Socket, timeoutMs = 5000): Promise<RawHead> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => done(new Error(`no response head within ${timeoutMs} ms`)), timeoutMs);
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      const [statusLine, ...lines] = buf.subarray(0, end).toString('latin1').split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      done(null, { status: Number(statusLine?.split(' ')[1]), headers, rest: buf.subarray(end + 4) });
    };
    const onClose = (): void => done(new Error(`closed before a response head: ${buf.toString('latin1').slice(0, 200)}`));
    function done(err: Error | null, head?: RawHead): void {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      if (err) reject(err);
      else resolve(head as RawHead);
    }
    socket.on('data', onData);
    socket.once('close', onClose);
  });
}

/** Read until `needle` appears (bounded). */
export function readUntil(socket: Socket, needle: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => {
      socket.off('data', onData);
      reject(new Error(`"${needle}" not seen within ${timeoutMs} ms; got ${text.slice(0, 200)}`));
    }, timeoutMs);
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('latin1');
      if (text.includes(needle)) {
        clearTimeout(timer);
        socket.off('data', onData);
        resolve(text);
      }
    };
    socket.on('data', onData);
  });
}

/** Resolves with the time (performance.now()) at which the socket closed; rejects after `timeoutMs`. */
export function whenClosed(socket: Socket, timeoutMs = 5000): Promise<number> {
  if (socket.destroyed) return Promise.resolve(performance.now());
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`socket still open after ${timeoutMs} ms`)), timeoutMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(performance.now());
    });
    socket.resume();
  });
}

export const basic = (token: string): string => `Basic ${Buffer.from(`gatehouse:${token}`).toString('base64')}`;

/** Open a CONNECT tunnel and return the socket once the proxy answered 200. */
export async function openTunnel(proxyPort: number, authority: string, token: string): Promise<Socket> {
  const socket = await connectRaw(proxyPort);
  socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\nProxy-Authorization: ${basic(token)}\r\n\r\n`);
  const head = await readHead(socket);
  if (head.status !== 200) throw new Error(`CONNECT refused: ${head.status} ${head.headers['x-gatehouse-deny'] ?? ''}`);
  return socket;
}
