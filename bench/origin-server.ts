import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The benchmark origin (its own process): /small answers 13 bytes, /bulk?bytes=N streams N bytes from a reused
 * 1 MiB buffer. Prints its port on stdout and runs until killed.
 */
const SMALL = Buffer.from('hello, world\n');
const CHUNK = Buffer.alloc(1024 * 1024, 0x61);

const server = createServer((req, res) => {
  if (req.url?.startsWith('/bulk')) {
    const total = Number(new URL(req.url, 'http://x').searchParams.get('bytes') ?? CHUNK.length);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) });
    let left = total;
    const pump = (): void => {
      while (left > 0) {
        const n = Math.min(left, CHUNK.length);
        left -= n;
        if (!res.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) {
          res.once('drain', pump);
          return;
        }
      }
      res.end();
    };
    pump();
    return;
  }
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(SMALL.length) });
  res.end(SMALL);
});
server.keepAliveTimeout = 60_000;
server.maxConnections = 20_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${(server.address() as AddressInfo).port}\n`);
});
