/** A real HTTP server on 127.0.0.1:0 whose answers the test scripts, recording what it was sent. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

export type Handler = (req: Received, res: ServerResponse) => void;

export interface TestServer {
  url: string;
  port: number;
  received: Received[];
  /** Routes by "METHOD /path" (query string ignored); unknown routes answer 404. */
  route(key: string, handler: Handler): void;
  close(): Promise<void>;
}

/**
 * Ports fetch() refuses ("bad port", the browser blocklist) that a service may well use: X11,
 * NFS, SIP, Amanda. The first free one is taken, so another process on one of them does not
 * fail the test.
 */
export const FETCH_BLOCKED_PORTS = [6000, 2049, 5060, 10080, 6665, 6666, 6667, 6668, 6669, 6697, 4190];

export async function startServerOnBlockedPort(): Promise<TestServer> {
  const busy: string[] = [];
  for (const port of FETCH_BLOCKED_PORTS) {
    try {
      return await startServer(port);
    } catch (err) {
      busy.push(`${port} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
  }
  throw new Error(`no port of fetch's blocklist is free on 127.0.0.1: ${busy.join(', ')}`);
}

export async function startServer(port = 0): Promise<TestServer> {
  const routes = new Map<string, Handler>();
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const rec: Received = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      received.push(rec);
      const handler = routes.get(`${rec.method} ${rec.url.split('?')[0]}`);
      if (handler) handler(rec, res);
      else res.writeHead(404).end('no such route');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${bound}`,
    port: bound,
    received,
    route: (key, handler) => routes.set(key, handler),
    close: () =>
      new Promise<void>((resolve) => {
        // Hanging handlers never answer: drop their sockets rather than wait for them.
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export const json =
  (status: number, body: unknown): Handler =>
  (_req, res) => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };

export const text =
  (status: number, body: string): Handler =>
  (_req, res) => {
    res.writeHead(status, { 'content-type': 'text/plain' }).end(body);
  };

/** Never answers. */
export const hang: Handler = () => {};
