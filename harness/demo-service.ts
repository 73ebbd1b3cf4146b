/**
 * A tiny managed service, run as a real process by the demo and the integration tests: the thing
 * hafc's `http` service agent promotes and demotes. It keeps to the few behaviours a real HA
 * service has that matter to a failover controller: it refuses a stale activation, it rejects
 * writes carrying an old epoch, it can be made unhealthy or unresponsive, and (with --resource)
 * it reports every activation and write to the split-brain checker in harness/shared-resource.ts.
 *
 *   node dist/harness/demo-service.js --id nn1 [--port 0] [--host 127.0.0.1]
 *        [--resource 127.0.0.1:PORT | --resource unix:PATH] [--write-interval-ms 100] [--port-file F] [--exit-on-stdin-eof]
 *        [--event-log FILE] [--event-tick-ms 50]
 *
 * --event-log appends the service's own account of what it did to FILE, one JSON object a line,
 * written synchronously before the effect is visible (a role change before the reply, an
 * acknowledged write before its 200): `mono` (CLOCK_MONOTONIC in ms, one clock for every process
 * on the host), `time`, `pid`, `event` (start, role, write, tick, stop). While active it also
 * logs a `tick` every --event-tick-ms, so a checker knows the instance was still active then
 * (a frozen or killed one stops ticking). The chaos suite's checker reads these files.
 *
 * Every line on stdout is one JSON object with `time`, `id` and `event`; role changes are shown to
 * a human by the demo, so they carry from, to, epoch and reason.
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';

type Role = 'active' | 'standby';

const U64_MAX = (1n << 64n) - 1n;
const ID_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const MAX_BODY = 64 * 1024;
const RECONNECT_MS = 200;

const USAGE =
  'usage: demo-service --id ID [--port N] [--host ADDR] [--resource HOST:PORT] ' +
  '[--write-interval-ms N] [--port-file FILE] [--exit-on-stdin-eof] [--event-log FILE] [--event-tick-ms N]';

interface Options {
  id: string;
  host: string;
  port: number;
  resource: { host: string; port: number } | { path: string } | undefined;
  writeIntervalMs: number;
  portFile: string | undefined;
  exitOnStdinEof: boolean;
  eventLog: string | undefined;
  eventTickMs: number;
}

class UsageError extends Error {}

function parseArgs(argv: string[]): Options {
  const vals = new Map<string, string>();
  let exitOnStdinEof = false;
  const valued = new Set([
    '--id',
    '--port',
    '--host',
    '--resource',
    '--write-interval-ms',
    '--port-file',
    '--event-log',
    '--event-tick-ms',
  ]);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') {
      process.stdout.write(USAGE + '\n');
      process.exit(0);
    }
    if (arg === '--exit-on-stdin-eof') {
      exitOnStdinEof = true;
      continue;
    }
    const eq = arg.indexOf('=');
    const key = eq > 0 ? arg.slice(0, eq) : arg;
    if (!valued.has(key)) throw new UsageError(`unknown argument ${JSON.stringify(arg)}`);
    let value: string | undefined;
    if (eq > 0) value = arg.slice(eq + 1);
    else value = argv[++i];
    if (value === undefined) throw new UsageError(`${key} needs a value`);
    vals.set(key, value);
  }
  const id = vals.get('--id');
  if (id === undefined) throw new UsageError('--id is required');
  if (!ID_RE.test(id)) throw new UsageError(`--id must match ${ID_RE.source}, got ${JSON.stringify(id)}`);
  const port = intArg('--port', vals.get('--port') ?? '0', 0, 65535);
  const writeIntervalMs = intArg(
    '--write-interval-ms',
    vals.get('--write-interval-ms') ?? '100',
    0,
    3_600_000,
  );
  let resource: Options['resource'];
  const r = vals.get('--resource');
  if (r !== undefined && r.startsWith('unix:')) {
    if (r.length === 'unix:'.length) throw new UsageError('--resource unix: needs a socket path');
    resource = { path: r.slice('unix:'.length) };
  } else if (r !== undefined) {
    const m = /^(.+):(\d{1,5})$/.exec(r);
    const rport = m ? Number(m[2]) : 0;
    if (!m || rport < 1 || rport > 65535) {
      throw new UsageError(`--resource must be HOST:PORT or unix:PATH, got ${JSON.stringify(r)}`);
    }
    resource = { host: m[1]!, port: rport };
  }
  return {
    id,
    host: vals.get('--host') ?? '127.0.0.1',
    port,
    resource,
    writeIntervalMs,
    portFile: vals.get('--port-file'),
    exitOnStdinEof,
    eventLog: vals.get('--event-log'),
    eventTickMs: intArg('--event-tick-ms', vals.get('--event-tick-ms') ?? '50', 1, 60_000),
  };
}

function intArg(name: string, raw: string, min: number, max: number): number {
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`${name} must be an integer ${min}..${max}, got ${JSON.stringify(raw)}`);
  }
  return n;
}

function parseEpoch(v: unknown): bigint | null {
  if (typeof v !== 'string' || !/^\d{1,20}$/.test(v)) return null;
  const e = BigInt(v);
  return e <= U64_MAX ? e : null;
}

/** A value quoted for an error message, short enough that a megabyte of junk stays readable. */
function show(v: unknown): string {
  let s: string;
  try {
    s = v === undefined ? 'nothing' : JSON.stringify(v);
  } catch {
    s = String(v);
  }
  return s.length > 100 ? s.slice(0, 100) + '...' : s;
}

let opts: Options;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (err) {
  if (!(err instanceof UsageError)) throw err;
  process.stderr.write(`demo-service: ${err.message}\n${USAGE}\n`);
  process.exit(2);
}
const ID = opts.id;

function emit(event: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(JSON.stringify({ time: new Date().toISOString(), id: ID, event, ...fields }) + '\n');
}

let eventFd: number | undefined;
if (opts.eventLog !== undefined) {
  try {
    eventFd = fs.openSync(opts.eventLog, 'a');
  } catch (err) {
    process.stderr.write(
      `demo-service: cannot open --event-log ${opts.eventLog}: ${(err as Error).message}\n`,
    );
    process.exit(1);
  }
}

/** One line of the event log, on disk before the caller lets anyone see the effect. */
function record(event: string, fields: Record<string, unknown> = {}): void {
  if (eventFd === undefined) return;
  const mono = Number(process.hrtime.bigint() / 1000n) / 1000;
  const line = { mono, time: new Date().toISOString(), id: ID, pid: process.pid, event, ...fields };
  try {
    fs.writeSync(eventFd, JSON.stringify(line) + '\n');
  } catch {
    // A full disk must not take the service down; the checker then sees a gap, not a lie.
  }
}

// --- state -----------------------------------------------------------------------------------

let role: Role = 'standby';
/**
 * Highest epoch this instance has been told about, by a promotion or a demotion. While active it
 * is the activation's epoch (a promotion needs epoch >= highest, and any demotion ends the
 * activation), so one number serves both as "current epoch" and as the stale-activation bar.
 */
let highest = 0n;
let writeSeq = 0n;
let healthy = true;
let hang = false;
/** POST /role waits (a hanging promotion or demotion hook) while this is set; see hangGate. */
let roleHang = false;
/** Each waiter says whether it is a POST /role (held by roleHang too). */
const hangWaiters = new Map<(proceed: boolean) => void, boolean>();
let writer: NodeJS.Timeout | undefined;
let stopping = false;

function setRole(to: Role, epoch: bigint, reason: string): void {
  const from = role;
  role = to;
  record('role', { from, to, epoch: epoch.toString() });
  emit('role', { from, to, epoch: epoch.toString(), reason });
  if (to === 'active') startTicker();
  else stopTicker();
  if (to === 'active') {
    link?.send(`TAKE ${ID} ${epoch}`);
    startWriter();
  } else {
    stopWriter();
    link?.send(`RELEASE ${ID}`);
  }
}

function startWriter(): void {
  if (writer !== undefined || opts.writeIntervalMs === 0 || link === undefined) return;
  // Keeps writing as long as it believes it is active - including after a SIGSTOP/SIGCONT, which
  // is the point: a frozen-then-thawed old active must be caught (or fenced) by the resource.
  writer = setInterval(() => {
    if (role === 'active') link?.send(`WRITE ${ID} ${highest} ${++writeSeq}`);
  }, opts.writeIntervalMs);
}

let ticker: NodeJS.Timeout | undefined;

function startTicker(): void {
  if (ticker !== undefined || eventFd === undefined) return;
  ticker = setInterval(() => {
    if (role === 'active') record('tick', { epoch: highest.toString() });
  }, opts.eventTickMs);
}

function stopTicker(): void {
  if (ticker !== undefined) clearInterval(ticker);
  ticker = undefined;
}

function stopWriter(): void {
  if (writer !== undefined) clearInterval(writer);
  writer = undefined;
}

// --- link to the shared resource --------------------------------------------------------------

class ResourceLink {
  private socket: net.Socket | undefined;
  private connected = false;
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private buf = '';
  /** Epochs whose first REJECT was logged; a fenced writer would otherwise log 10 lines a second. */
  private readonly rejectLogged = new Set<string>();

  private readonly address: string;

  constructor(private readonly target: { host: string; port: number } | { path: string }) {
    this.address = 'path' in target ? `unix:${target.path}` : `${target.host}:${target.port}`;
  }

  connect(): void {
    this.timer = undefined;
    if (this.closed) return;
    const s = net.connect(this.target);
    this.socket = s;
    s.setEncoding('utf8');
    s.setNoDelay(true);
    s.on('connect', () => {
      this.connected = true;
      emit('resource', {
        state: 'connected',
        address: this.address,
        ...(this.failures > 0 ? { afterFailures: this.failures } : {}),
      });
      this.failures = 0;
      this.send(`HELLO ${ID}`);
      // Re-announce after a reconnect: the resource released our hold when the socket dropped.
      if (role === 'active') this.send(`TAKE ${ID} ${highest}`);
    });
    s.on('data', (chunk: string) => this.onData(chunk));
    s.on('error', (err) => {
      // Logged once per outage; retries every 200 ms would flood the demo's output otherwise.
      if (this.failures++ === 0) {
        emit('resource', { state: 'error', address: this.address, error: err.message });
      }
    });
    s.on('close', () => {
      const was = this.connected;
      this.connected = false;
      this.socket = undefined;
      this.buf = '';
      if (was && !this.closed) emit('resource', { state: 'disconnected', retryMs: RECONNECT_MS });
      if (!this.closed) this.timer = setTimeout(() => this.connect(), RECONNECT_MS);
    });
  }

  /** Dropped when not connected: the state that matters is re-announced on reconnect. */
  send(line: string): void {
    if (this.connected && this.socket?.writable) this.socket.write(line + '\n');
  }

  private onData(chunk: string): void {
    this.buf += chunk;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (line === 'OK' || line === '') continue;
      if (line.startsWith('REJECT')) {
        const key = `${role}:${highest}`;
        if (this.rejectLogged.has(key)) continue;
        this.rejectLogged.add(key);
        emit('resource-reject', { reply: line, epoch: highest.toString(), note: 'repeats not logged' });
      } else {
        emit('resource-reply', { reply: line.slice(0, 300) });
      }
    }
    if (this.buf.length > 64 * 1024) this.buf = '';
  }

  /** Ends the connection after what was queued (e.g. a final RELEASE) is flushed. */
  close(): Promise<void> {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    const s = this.socket;
    if (s === undefined || s.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      s.once('close', () => resolve());
      s.end();
    });
  }
}

const link = opts.resource ? new ResourceLink(opts.resource) : undefined;

// --- HTTP ------------------------------------------------------------------------------------

function send(
  res: http.ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body) + '\n';
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

type Body = { ok: true; text: string } | { ok: false };

/** Reads at most MAX_BODY bytes; answers 413 itself and reports { ok: false } beyond that. */
function readBody(req: http.IncomingMessage, res: http.ServerResponse): Promise<Body> {
  const tooLarge = (): void => {
    // Connection: close, then drop the socket: draining an unbounded body would let a client
    // keep us busy forever.
    send(res, 413, { error: `request body larger than ${MAX_BODY} bytes` }, { connection: 'close' });
    res.once('finish', () => req.socket.destroy());
  };
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > MAX_BODY) {
    tooLarge();
    return Promise.resolve({ ok: false });
  }
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (c: Buffer) => {
      if (done) return;
      size += c.length;
      if (size > MAX_BODY) {
        done = true;
        tooLarge();
        resolve({ ok: false });
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (done) return;
      done = true;
      resolve({ ok: true, text: Buffer.concat(chunks).toString('utf8') });
    });
    req.on('error', () => {
      if (done) return;
      done = true;
      resolve({ ok: false });
    });
  });
}

function parseObject(text: string, res: http.ServerResponse): Record<string, unknown> | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    send(res, 400, { error: `body is not valid JSON: ${(err as Error).message}; got ${show(text)}` });
    return undefined;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    send(res, 400, { error: `body must be a JSON object, got ${show(v)}` });
    return undefined;
  }
  return v as Record<string, unknown>;
}

/**
 * While a hang fault is set, /health and /role requests wait here (POST /role also while
 * roleHang is set: a hanging hook with a healthy service). Resolves true when the fault is
 * cleared; false if the client gave up first - its request is then dropped, not applied late, so
 * a test that timed out a promotion knows the promotion did not happen.
 */
function hangGate(req: http.IncomingMessage, forRole = false): Promise<boolean> {
  if (!hang && !(forRole && roleHang)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (proceed: boolean): void => {
      hangWaiters.delete(done);
      req.socket.off('close', onClose);
      resolve(proceed);
    };
    const onClose = (): void => done(false);
    hangWaiters.set(done, forRole);
    req.socket.once('close', onClose);
  });
}

/** Releases every waiter (on stop), or with `proceed` those whose fault is no longer set. */
function releaseHung(proceed: boolean): void {
  for (const [w, forRole] of [...hangWaiters]) {
    if (!proceed || !(hang || (forRole && roleHang))) w(proceed);
  }
}

function roleBody(): { role: Role; epoch: string } {
  return { role, epoch: highest.toString() };
}

async function postRole(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const body = await readBody(req, res);
  if (!body.ok) return;
  if (!(await hangGate(req, true))) return;
  const obj = parseObject(body.text, res);
  if (obj === undefined) return;
  const want = obj.role;
  if (want !== 'active' && want !== 'standby') {
    send(res, 400, { error: `field "role" must be "active" or "standby", got ${show(want)}` });
    return;
  }
  const epoch = parseEpoch(obj.epoch);
  if (epoch === null) {
    send(res, 400, {
      error:
        `field "epoch" must be an unsigned 64-bit integer as a decimal string, got ${show(obj.epoch)}` +
        (typeof obj.epoch === 'number'
          ? ' (a JSON number: send it as a string so 64-bit values survive)'
          : ''),
    });
    return;
  }
  if (obj.reason !== undefined && typeof obj.reason !== 'string') {
    send(res, 400, { error: `field "reason" must be a string, got ${show(obj.reason)}` });
    return;
  }
  const reason = (obj.reason ?? '').slice(0, 500);
  if (want === 'active') {
    if (epoch < highest) {
      emit('refused', { to: 'active', epoch: epoch.toString(), highest: highest.toString(), reason });
      send(res, 409, {
        error: `stale activation: epoch ${epoch} is lower than the highest epoch seen (${highest})`,
        ...roleBody(),
      });
      return;
    }
    if (role !== 'active' || epoch !== highest) {
      highest = epoch;
      setRole('active', epoch, reason);
    }
  } else {
    if (epoch > highest) highest = epoch;
    if (role !== 'standby') setRole('standby', epoch, reason);
  }
  send(res, 200, roleBody());
}

async function postWrite(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const body = await readBody(req, res);
  if (!body.ok) return;
  const raw = req.headers['x-epoch'];
  if (raw === undefined) {
    send(res, 400, { error: 'missing header X-Epoch' });
    return;
  }
  const epoch = parseEpoch(raw);
  if (epoch === null) {
    send(res, 400, { error: `header X-Epoch must be an unsigned 64-bit decimal integer, got ${show(raw)}` });
    return;
  }
  if (role !== 'active') {
    send(res, 409, { error: `not active (role ${role})`, ...roleBody() });
    return;
  }
  if (epoch !== highest) {
    const why =
      epoch < highest
        ? `stale epoch ${epoch} < current epoch ${highest}`
        : `epoch ${epoch} is not the current epoch ${highest}`;
    send(res, 409, { error: why, ...roleBody() });
    return;
  }
  const seq = ++writeSeq;
  record('write', { epoch: epoch.toString(), seq: seq.toString() });
  link?.send(`WRITE ${ID} ${epoch} ${seq}`);
  send(res, 200, { ok: true, epoch: epoch.toString(), seq: seq.toString() });
}

async function postFault(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const body = await readBody(req, res);
  if (!body.ok) return;
  const obj = parseObject(body.text, res);
  if (obj === undefined) return;
  for (const k of Object.keys(obj)) {
    if (k !== 'healthy' && k !== 'hang' && k !== 'roleHang') {
      send(res, 400, { error: `unknown field ${show(k)}; known: "healthy", "hang", "roleHang"` });
      return;
    }
  }
  for (const k of ['healthy', 'hang', 'roleHang'] as const) {
    if (obj[k] !== undefined && typeof obj[k] !== 'boolean') {
      send(res, 400, { error: `field "${k}" must be true or false, got ${show(obj[k])}` });
      return;
    }
  }
  if (obj.healthy === undefined && obj.hang === undefined && obj.roleHang === undefined) {
    send(res, 400, { error: 'body must set "healthy", "hang" and/or "roleHang"' });
    return;
  }
  if (typeof obj.healthy === 'boolean') healthy = obj.healthy;
  if (typeof obj.hang === 'boolean') hang = obj.hang;
  if (typeof obj.roleHang === 'boolean') roleHang = obj.roleHang;
  // roleHang is reported only once used, so the replies of existing callers stay as they were.
  const state = roleHang || obj.roleHang !== undefined ? { healthy, hang, roleHang } : { healthy, hang };
  emit('fault', state);
  releaseHung(true);
  send(res, 200, state);
}

async function route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  const method = req.method ?? 'GET';
  const allow = (methods: string): boolean => {
    if (methods.split(', ').includes(method)) return true;
    send(res, 405, { error: `${method} not allowed on ${path}` }, { allow: methods });
    return false;
  };
  switch (path) {
    case '/role':
      if (!allow('GET, POST')) return;
      if (method === 'POST') return postRole(req, res);
      req.resume();
      if (!(await hangGate(req))) return;
      return send(res, 200, { id: ID, ...roleBody() });
    case '/health':
      if (!allow('GET')) return;
      req.resume();
      if (!(await hangGate(req))) return;
      return healthy ? send(res, 200, { ok: true }) : send(res, 503, { ok: false, error: 'fault injected' });
    case '/write':
      if (!allow('POST')) return;
      return postWrite(req, res);
    case '/fault':
      if (!allow('POST')) return;
      return postFault(req, res);
    default:
      req.resume();
      return send(res, 404, { error: `no such path ${show(path)}` });
  }
}

const server = http.createServer((req, res) => {
  route(req, res).catch((err: unknown) => {
    emit('internal-error', { error: err instanceof Error ? err.message : String(err) });
    send(res, 500, { error: 'internal error' });
  });
});

// --- lifecycle -------------------------------------------------------------------------------

async function shutdown(why: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  emit('stopping', { why, role, epoch: highest.toString() });
  record('stop', { why, role, epoch: highest.toString() });
  stopTicker();
  // Never wait forever on a peer during a clean stop.
  setTimeout(() => process.exit(0), 2000).unref();
  stopWriter();
  if (role === 'active') link?.send(`RELEASE ${ID}`);
  releaseHung(false);
  server.close();
  server.closeAllConnections();
  await link?.close();
  process.exit(0);
}

// A reader that went away (EPIPE) must not take the service down with it.
process.stdout.on('error', () => {});
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
if (opts.exitOnStdinEof) {
  // The test helper's guard against orphans: when the parent dies, our stdin pipe closes.
  process.stdin.on('end', () => void shutdown('stdin closed'));
  process.stdin.on('error', () => void shutdown('stdin error'));
  process.stdin.resume();
}

server.on('error', (err) => {
  process.stderr.write(`demo-service: cannot listen on ${opts.host}:${opts.port}: ${err.message}\n`);
  process.exit(1);
});

server.listen(opts.port, opts.host, () => {
  const addr = server.address();
  const port = addr !== null && typeof addr === 'object' ? addr.port : opts.port;
  if (opts.portFile !== undefined) {
    // Rename makes the write atomic: a reader polling the file never sees a partial number.
    const tmp = `${opts.portFile}.${process.pid}.tmp`;
    try {
      fs.writeFileSync(tmp, `${port}\n`);
      fs.renameSync(tmp, opts.portFile);
    } catch (err) {
      process.stderr.write(
        `demo-service: cannot write --port-file ${opts.portFile}: ${(err as Error).message}\n`,
      );
      process.exit(1);
    }
  }
  record('start', { port, role });
  emit('listening', { port, role });
  link?.connect();
});
