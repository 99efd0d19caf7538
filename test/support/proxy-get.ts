import { request } from 'node:http';
import { basic } from './raw-client.js';

export interface ProxyResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/**
 * One absolute-form GET through the proxy on 127.0.0.1:port (a fresh connection each, as a sandboxed client
 * with HTTP_PROXY set would send it). Rejects on a connection error or after timeoutMs.
 */
export function proxyGet(port: number, token: string, url: string, timeoutMs = 10_000): Promise<ProxyResponse> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'GET', path: url, agent: false, timeout: timeoutMs, headers: { host: target.host, 'proxy-authorization': basic(token), connection: 'close' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no response within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}
