import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: readonly string[];
  readonly body: Buffer;
}

export interface Origin {
  readonly port: number;
  readonly server: Server;
  /** Every request the origin received, in order. */
  readonly seen: SeenRequest[];
  close(): Promise<void>;
}

export type OriginHandler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

const defaultHandler: OriginHandler = (req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'x-origin': 'yes' });
  res.end(`hello ${req.method} ${req.url}`);
};

/** A real HTTP origin on 127.0.0.1 that records what reaches it. */
export async function startOrigin(handler: OriginHandler = defaultHandler): Promise<Origin> {
  const seen: SeenRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body });
      handler(req, res, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    server,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
