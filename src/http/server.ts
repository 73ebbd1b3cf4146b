/**
 * The agent's HTTP listener (node:http only): metrics, liveness, status, the load balancer's
 * /active and /standby, and the mutating control calls (docs/http.md).
 *
 * It shares the event loop with the election, so every handler is short and synchronous except
 * /metrics (prom-client, in-memory) and the control calls (bounded by `actionTimeoutMs`); and the
 * clients are bounded the same way a public server bounds them: header size (431), body size
 * (413, never buffered past the cap), time to send the headers and the whole request (408; Node
 * checks every `checkIntervalMs`), idle sockets, and connections (past `maxConnections` a new
 * one is closed at once). The load-balancer probes are answered from memory, without I/O.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Clock } from '../clock.js';
import { ConfigError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { BearerAuth } from './auth.js';
import { BadRequest, parseFields, readBody } from './body.js';
import type { ControlActions, ControlCaller, ControlResult } from './control.js';
import type { LivenessVerdict } from './liveness.js';
import { toJson } from './status-json.js';

/** What the listener reads from the agent; every call is cheap and synchronous. */
export interface AgentView {
  status(): unknown;
  /** Elected AND within the lease: only then may a load balancer route here. */
  active(): boolean;
  /** Told to stand by while another node holds the lock (not neutral, not activating). */
  standby(): boolean;
  role(): string;
  live(): LivenessVerdict;
}

export interface HttpLimits {
  maxHeaderBytes: number;
  maxBodyBytes: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  /** A socket with no traffic this long is closed (a client that stopped reading, an idle one). */
  idleTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxConnections: number;
  /** How often Node looks for requests past headersTimeoutMs / requestTimeoutMs. */
  checkIntervalMs: number;
  actionTimeoutMs: number;
}

export const DEFAULT_LIMITS: HttpLimits = {
  maxHeaderBytes: 8 * 1024,
  maxBodyBytes: 64 * 1024,
  headersTimeoutMs: 5000,
  requestTimeoutMs: 10_000,
  idleTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5000,
  maxConnections: 64,
  checkIntervalMs: 1000,
  actionTimeoutMs: 30_000,
};

export interface HttpServerOptions {
  host: string;
  port: number;
  view: AgentView;
  metrics: () => Promise<{ contentType: string; body: string }>;
  actions: ControlActions;
  auth: BearerAuth;
  clock: Clock;
  logger: Logger;
  limits?: Partial<HttpLimits>;
}

export interface RunningHttpServer {
  /** host:port actually bound ([v6]:port for IPv6). */
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void> | void;
interface Route {
  method: 'GET' | 'POST';
  handle: Handler;
}

const TEXT = 'text/plain; charset=utf-8';
const JSON_TYPE = 'application/json; charset=utf-8';
/** Dropped connections are logged at most this often (a flood must not flood the log). */
const DROP_LOG_EVERY_MS = 10_000;

function send(
  res: ServerResponse,
  status: number,
  type: string,
  body: string,
  headers: Record<string, string> = {},
) {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, {
    'content-type': type,
    'content-length': String(Buffer.byteLength(body)),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    ...headers,
  });
  res.end(body);
}

const line = (res: ServerResponse, status: number, text: string, headers?: Record<string, string>) =>
  send(res, status, TEXT, `${text.replace(/[\r\n]+/g, ' ')}\n`, headers);

/** The request may still have body bytes on the wire that nobody will read: do not keep the socket. */
function hasUnreadBody(req: IncomingMessage): boolean {
  return (
    !req.complete &&
    (req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined)
  );
}

export function startHttpServer(opts: HttpServerOptions): Promise<RunningHttpServer> {
  const limits = { ...DEFAULT_LIMITS, ...opts.limits };
  const log = opts.logger;
  const { view, auth, actions } = opts;

  const mutating =
    (
      name: string,
      fields: readonly ('to' | 'reason')[],
      act: (f: { to?: string; reason?: string }, caller: ControlCaller) => Promise<ControlResult>,
    ): Handler =>
    async (req, res) => {
      const verdict = auth.check(req.headers.authorization);
      const who = { endpoint: name, remote: remoteOf(req) };
      if (verdict !== 'ok') {
        log.warn(`refused POST ${name}`, { ...who, reason: verdict });
        if (verdict === 'disabled')
          return line(res, 403, 'mutating calls are disabled: control.tokenFile is not configured', {
            connection: 'close',
          });
        return line(res, 401, verdict === 'missing' ? 'missing bearer token' : 'wrong bearer token', {
          'www-authenticate': 'Bearer realm="hafc"',
          connection: 'close',
        });
      }
      const parsed = parseFields(await readBody(req, limits.maxBodyBytes), fields);
      const result = await bounded(act(parsed, { remote: who.remote }), limits.actionTimeoutMs, name);
      const status =
        Number.isInteger(result.status) && result.status >= 200 && result.status <= 599 ? result.status : 500;
      log.info(`POST ${name}: ${status}`, { ...who, ...parsed, message: result.message });
      send(res, status, JSON_TYPE, toJson({ ok: status < 300, message: result.message }) + '\n');
    };

  const bounded = (p: Promise<ControlResult>, ms: number, name: string): Promise<ControlResult> =>
    new Promise((resolve) => {
      const cancel = opts.clock.setTimer(ms, () =>
        resolve({ status: 504, message: `${name} did not finish within ${ms} ms` }),
      );
      p.then(
        (r) => {
          cancel();
          resolve(r);
        },
        (err: unknown) => {
          cancel();
          log.error(`${name} failed`, { error: errorMessage(err) });
          resolve({ status: 500, message: `${name} failed: ${errorMessage(err)}` });
        },
      );
    });

  const routes: Record<string, Route> = {
    '/metrics': {
      method: 'GET',
      handle: async (_req, res) => {
        const m = await opts.metrics();
        send(res, 200, m.contentType, m.body);
      },
    },
    '/healthz': {
      method: 'GET',
      handle: (_req, res) => {
        const v = view.live();
        line(res, v.ok ? 200 : 503, v.ok ? 'ok' : v.problems.join('; '));
      },
    },
    '/status': {
      method: 'GET',
      handle: (_req, res) => send(res, 200, JSON_TYPE, toJson(view.status()) + '\n'),
    },
    '/active': {
      method: 'GET',
      handle: (_req, res) =>
        view.active() ? line(res, 200, 'active') : line(res, 503, `not active (${view.role()})`),
    },
    '/standby': {
      method: 'GET',
      handle: (_req, res) =>
        view.standby() ? line(res, 200, 'standby') : line(res, 503, `not standby (${view.role()})`),
    },
    '/switchover': {
      method: 'POST',
      handle: mutating('switchover', ['to', 'reason'], (f, c) => actions.switchover(f, c)),
    },
    '/pause': { method: 'POST', handle: mutating('pause', ['reason'], (f, c) => actions.pause(f, c)) },
    '/resume': { method: 'POST', handle: mutating('resume', ['reason'], (f, c) => actions.resume(f, c)) },
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '').split('?', 1)[0]!;
    const route = Object.hasOwn(routes, path) ? routes[path] : undefined;
    const unread = hasUnreadBody(req);
    // Only the control calls read a body; anything else sent with one is not worth reading.
    if (route?.method !== 'POST' && unread) res.setHeader('connection', 'close');
    if (!route) return line(res, 404, `no such endpoint: ${JSON.stringify(path.slice(0, 100))}`);
    const allowed = route.method === 'GET' ? ['GET', 'HEAD'] : ['POST'];
    if (!allowed.includes(req.method ?? ''))
      return line(
        res,
        405,
        `method ${JSON.stringify((req.method ?? '').slice(0, 20))} is not allowed on ${path}`,
        {
          allow: allowed.join(', '),
          ...(unread ? { connection: 'close' } : {}),
        },
      );
    try {
      await route.handle(req, res);
    } catch (err) {
      if (err instanceof BadRequest) return line(res, err.status, err.message, { connection: 'close' });
      if (req.destroyed || res.destroyed) return; // the client went away mid-request
      log.error(`HTTP ${req.method} ${path} failed`, { error: errorMessage(err) });
      line(res, 500, `internal error: ${errorMessage(err)}`, { connection: 'close' });
    }
  };

  const server = http.createServer(
    {
      maxHeaderSize: limits.maxHeaderBytes,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      connectionsCheckingInterval: limits.checkIntervalMs,
    },
    (req, res) => {
      handle(req, res).catch((err: unknown) => {
        log.error('HTTP handler failed', { error: errorMessage(err) });
        res.destroy();
      });
    },
  );
  server.maxConnections = limits.maxConnections;
  server.setTimeout(limits.idleTimeoutMs); // no 'timeout' listener: Node destroys the socket
  let dropped = 0;
  let lastDropLog = -Infinity;
  server.on('drop', () => {
    dropped++;
    const now = opts.clock.now();
    if (now - lastDropLog < DROP_LOG_EVERY_MS) return;
    lastDropLog = now;
    log.warn(`HTTP connections over the limit of ${limits.maxConnections} are being closed`, {
      droppedSoFar: dropped,
    });
  });
  // No 'clientError' listener on purpose: Node's own answers a malformed request with 400, an
  // oversized header with 431 and a slow one with 408, then closes the socket.

  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const where = `${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${opts.port}`;
      reject(
        new ConfigError(`control.listen: cannot listen on ${where}: ${bindProblem(err)}`, { cause: err }),
      );
    };
    server.once('error', onError);
    server.listen(opts.port, opts.host, () => {
      server.off('error', onError);
      server.on('error', (err) => log.error('HTTP listener error', { error: errorMessage(err) }));
      const a = server.address() as AddressInfo;
      resolve({
        address: a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`,
        port: a.port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}

function remoteOf(req: IncomingMessage): string {
  const a = req.socket.remoteAddress ?? 'unknown';
  return `${a.includes(':') ? `[${a}]` : a}:${req.socket.remotePort ?? 0}`;
}

function bindProblem(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'EADDRINUSE':
      return 'the address is already in use (another agent or program listens there) (EADDRINUSE)';
    case 'EACCES':
      return 'permission denied (ports below 1024 need privileges) (EACCES)';
    case 'EADDRNOTAVAIL':
      return "the address is not one of this host's (EADDRNOTAVAIL)";
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `the host name does not resolve (${err.code})`;
    default:
      return errorMessage(err);
  }
}
