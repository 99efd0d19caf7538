import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** Decode client text frames (RFC 6455 §5.2, masked, up to 64 KiB) and answer each with "echo: <text>". */
function onFrames(socket: Socket): void {
  let buf = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    while (buf.length >= 2) {
      const opcode = (buf[0] as number) & 0x0f;
      let len = (buf[1] as number) & 0x7f;
      let offset = 2;
      if (len === 126) {
        if (buf.length < 4) return;
        len = buf.readUInt16BE(2);
        offset = 4;
      }
      if (buf.length < offset + 4 + len) return;
      const mask = buf.subarray(offset, offset + 4);
      const payload = Buffer.from(buf.subarray(offset + 4, offset + 4 + len).map((b, i) => b ^ (mask[i % 4] as number)));
      buf = buf.subarray(offset + 4 + len);
      if (opcode === 0x8) {
        socket.end(Buffer.from([0x88, 0x00]));
        return;
      }
      if (opcode === 0x1) {
        const reply = Buffer.from(`echo: ${payload.toString('utf8')}`);
        socket.write(Buffer.concat([Buffer.from([0x81, reply.length]), reply]));
      }
    }
  });
}

/** A minimal real WebSocket echo origin (enough of RFC 6455 for a text round trip). */
export async function startWebSocketOrigin(): Promise<{ port: number; server: Server; upgrades: string[]; close(): Promise<void> }> {
  const upgrades: string[] = [];
  const server = createServer((_req, res) => res.writeHead(426).end());
  server.on('upgrade', (req, socket: Socket) => {
    upgrades.push(`${req.url} ${req.headers.host} proxy-authorization=${String(req.headers['proxy-authorization'] !== undefined)}`);
    const accept = createHash('sha1').update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    onFrames(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    server,
    upgrades,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
