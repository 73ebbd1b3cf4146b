/**
 * The agent's HTTP listener on a real socket (127.0.0.1, port 0): every endpoint, every refusal,
 * and the limits a hostile client meets. The agent behind it is a small scripted view.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../../src/clock.js';
import { HafcError } from '../../../src/errors.js';
import { BearerAuth } from '../../../src/http/auth.js';
import type {
  ControlActions,
  ControlCaller,
  PauseRequest,
  SwitchoverRequest,
} from '../../../src/http/control.js';
import type { LivenessVerdict } from '../../../src/http/liveness.js';
import { startHttpServer, type HttpLimits, type RunningHttpServer } from '../../../src/http/server.js';
import { silentLogger } from '../../../src/log.js';
import { connect, request, statusOf, within } from '../../support/http-client.js';

const TOKEN = 's3cret-token-0123456789';
const LIMITS: Partial<HttpLimits> = {
  maxBodyBytes: 4096,
  maxHeaderBytes: 2048,
  headersTimeoutMs: 300,
  requestTimeoutMs: 600,
  keepAliveTimeoutMs: 300,
  idleTimeoutMs: 2000,
  checkIntervalMs: 50,
  maxConnections: 4,
  actionTimeoutMs: 300,
};

interface Scripted {
  active: boolean;
  standby: boolean;
  role: string;
  live: LivenessVerdict;
  status: unknown;
}

describe('agent HTTP listener', () => {
  let server: RunningHttpServer;
  let view: Scripted;
  let calls: { name: string; req: SwitchoverRequest | PauseRequest }[];
  let callers: ControlCaller[];
  let answer: () => Promise<{ status: number; message: string }>;
  let port: number;

  const actions: ControlActions = {
    switchover: (req, caller) => (calls.push({ name: 'switchover', req }), callers.push(caller), answer()),
    pause: (req, caller) => (calls.push({ name: 'pause', req }), callers.push(caller), answer()),
    resume: (req, caller) => (calls.push({ name: 'resume', req }), callers.push(caller), answer()),
  };

  async function start(token: string | null, a: ControlActions = actions): Promise<void> {
    server = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      view: {
        status: () => view.status,
        active: () => view.active,
        standby: () => view.standby,
        role: () => view.role,
        live: () => view.live,
      },
      metrics: () => Promise.resolve({ contentType: 'text/plain; version=0.0.4', body: 'hafc_up 1\n' }),
      actions: a,
      auth: new BearerAuth(token),
      clock: systemClock,
      logger: silentLogger,
      limits: LIMITS,
    });
    port = server.port;
  }

  beforeEach(async () => {
    view = {
      active: false,
      standby: true,
      role: 'standby',
      live: { ok: true, problems: [] },
      status: { node: 'nn1', epoch: 12345678901234567890n },
    };
    calls = [];
    callers = [];
    answer = () => Promise.resolve({ status: 202, message: 'switchover requested' });
    await start(TOKEN);
  });

  afterEach(async () => {
    await server.close();
  });

  const auth = { authorization: `Bearer ${TOKEN}` };

  describe('read-only endpoints', () => {
    it('GET /metrics answers the exporter text with its content type', async () => {
      const r = await request(port, '/metrics');
      expect(r.status).toBe(200);
      expect(r.headers['content-type']).toBe('text/plain; version=0.0.4');
      expect(r.body).toBe('hafc_up 1\n');
    });

    it('GET /healthz: 200 "ok" while the loops run, 503 naming what is stuck', async () => {
      expect(await request(port, '/healthz')).toMatchObject({ status: 200, body: 'ok\n' });
      view.live = { ok: false, problems: ['the election loop has not finished a step for 99 ms', 'x'] };
      expect(await request(port, '/healthz')).toMatchObject({
        status: 503,
        body: 'the election loop has not finished a step for 99 ms; x\n',
      });
    });

    it('GET /status: JSON, 64-bit epochs as decimal strings', async () => {
      const r = await request(port, '/status');
      expect(r.status).toBe(200);
      expect(r.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(JSON.parse(r.body)).toEqual({ node: 'nn1', epoch: '12345678901234567890' });
    });

    it('GET /active and /standby follow the view: 200 or 503 with one line', async () => {
      expect(await request(port, '/active')).toMatchObject({ status: 503, body: 'not active (standby)\n' });
      expect(await request(port, '/standby')).toMatchObject({ status: 200, body: 'standby\n' });
      Object.assign(view, { active: true, standby: false, role: 'active' });
      expect(await request(port, '/active')).toMatchObject({ status: 200, body: 'active\n' });
      expect(await request(port, '/standby')).toMatchObject({ status: 503, body: 'not standby (active)\n' });
      // Elected but past its lease: the role still says active, the probe must not.
      Object.assign(view, { active: false });
      expect(await request(port, '/active')).toMatchObject({ status: 503, body: 'not active (active)\n' });
    });

    it('HEAD is answered like GET without a body; a query string is ignored', async () => {
      view.active = true;
      const r = await request(port, '/active', { method: 'HEAD' });
      expect(r).toMatchObject({ status: 200, body: '' });
      expect(await request(port, '/active?from=haproxy')).toMatchObject({ status: 200, body: 'active\n' });
    });

    it('answers are never cached', async () => {
      const r = await request(port, '/status');
      expect(r.headers['cache-control']).toBe('no-store');
    });
  });

  describe('bad requests', () => {
    it('an unknown path is 404 naming it', async () => {
      for (const path of ['/', '/metrics/', '/Metrics', '/status/../active', '/__proto__', '/constructor']) {
        const r = await request(port, path);
        expect(r.status, path).toBe(404);
        expect(r.body).toContain('no such endpoint');
      }
    });

    it('a wrong method is 405 with Allow', async () => {
      const cases: [string, string, string][] = [
        ['POST', '/metrics', 'GET, HEAD'],
        ['DELETE', '/active', 'GET, HEAD'],
        ['PUT', '/status', 'GET, HEAD'],
        ['GET', '/switchover', 'POST'],
        ['HEAD', '/pause', 'POST'],
      ];
      for (const [method, path, allow] of cases) {
        const r = await request(port, path, { method, headers: auth });
        expect(r.status, `${method} ${path}`).toBe(405);
        expect(r.headers.allow).toBe(allow);
      }
      expect(calls).toEqual([]);
    });

    it('a header block over maxHeaderSize is 431', async () => {
      const r = await request(port, '/status', { headers: { 'x-junk': 'a'.repeat(4096) } });
      expect(r.status).toBe(431);
    });

    it('a malformed request line is 400 and the connection closes', async () => {
      const c = await connect(port);
      c.socket.write('GARBAGE\r\n\r\n');
      const { data } = await within(c.closed, 3000, 'the server to close a garbage connection');
      expect(statusOf(data)).toBe(400);
    });

    it('slow loris: headers never completed are cut at headersTimeout with 408', async () => {
      const c = await connect(port);
      c.socket.write('GET /status HTTP/1.1\r\nHost: x\r\nX-Slow: ');
      const t = setInterval(() => c.socket.write('a'), 50);
      try {
        const { data, afterMs } = await within(c.closed, 3000, 'the server to drop a slow-loris client');
        expect(statusOf(data)).toBe(408);
        expect(afterMs).toBeGreaterThanOrEqual(250);
      } finally {
        clearInterval(t);
      }
    });

    it('a connection that never sends a byte is dropped too', async () => {
      const c = await connect(port);
      const { afterMs } = await within(c.closed, 3000, 'the server to drop a silent connection');
      expect(afterMs).toBeLessThan(2500);
    });

    it('a body that never ends is cut at requestTimeout with 408', async () => {
      const c = await connect(port);
      c.socket.write(
        `POST /switchover HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Length: 100\r\n\r\n{"to":`,
      );
      const { data, afterMs } = await within(c.closed, 3000, 'the server to drop a slow body');
      expect(statusOf(data)).toBe(408);
      expect(afterMs).toBeGreaterThanOrEqual(500);
      expect(calls).toEqual([]);
    });

    it('connections past maxConnections are closed at once; the listener serves again when they go', async () => {
      const held = await Promise.all([1, 2, 3, 4].map(() => connect(port)));
      const extra = await connect(port);
      const { data } = await within(extra.closed, 2000, 'the server to close a connection over the limit');
      expect(data).toBe('');
      for (const c of held) c.socket.destroy();
      await Promise.all(held.map((c) => c.closed));
      expect((await request(port, '/healthz')).status).toBe(200);
    });
  });

  describe('mutating calls', () => {
    it('the right token reaches the action with the fields of the body; JSON answer', async () => {
      const r = await request(port, '/switchover', {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ to: 'nn2', reason: 'kernel upgrade' }),
      });
      expect(r.status).toBe(202);
      expect(r.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(JSON.parse(r.body)).toEqual({ ok: true, message: 'switchover requested' });
      expect(calls).toEqual([{ name: 'switchover', req: { to: 'nn2', reason: 'kernel upgrade' } }]);
      // The caller's address, for the record the action writes.
      expect(callers).toEqual([{ remote: expect.stringMatching(/^127\.0\.0\.1:\d+$/) }]);
    });

    it('pause and resume take an optional reason; an empty body is no fields', async () => {
      answer = () => Promise.resolve({ status: 200, message: 'done' });
      expect((await request(port, '/pause', { method: 'POST', headers: auth })).status).toBe(200);
      const r = await request(port, '/resume', { method: 'POST', headers: auth, body: '{"reason":"over"}' });
      expect(r.status).toBe(200);
      expect(calls).toEqual([
        { name: 'pause', req: {} },
        { name: 'resume', req: { reason: 'over' } },
      ]);
    });

    it('no or a wrong token is 401 with WWW-Authenticate; the action is not called', async () => {
      const bad: Record<string, string>[] = [
        {},
        { authorization: 'Bearer' },
        { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` },
        { authorization: 'Bearer wrong' },
        { authorization: `Bearer ${TOKEN}x` },
        { authorization: `Bearer ${TOKEN.slice(0, -1)}` },
        { authorization: `Bearer ${TOKEN.toUpperCase()}` },
      ];
      for (const headers of bad) {
        const r = await request(port, '/switchover', { method: 'POST', headers, body: '{}' });
        expect(r.status, JSON.stringify(headers)).toBe(401);
        expect(r.headers['www-authenticate']).toBe('Bearer realm="hafc"');
        expect(r.body).toMatch(/^(missing|wrong) bearer token\n$/);
      }
      expect(calls).toEqual([]);
    });

    it('without a token file every mutating call is 403, token or not', async () => {
      await server.close();
      await start(null);
      for (const path of ['/switchover', '/pause', '/resume']) {
        for (const headers of [{}, auth] as Record<string, string>[]) {
          const r = await request(port, path, { method: 'POST', headers });
          expect(r.status, path).toBe(403);
          expect(r.body).toContain('control.tokenFile is not configured');
        }
      }
      expect(calls).toEqual([]);
      // Read-only endpoints need no token.
      expect((await request(port, '/status')).status).toBe(200);
    });

    it('a body over the limit is 413, whether declared or streamed', async () => {
      const big = JSON.stringify({ reason: 'x'.repeat(5000) });
      const declared = await request(port, '/pause', { method: 'POST', headers: auth, body: big });
      expect(declared.status).toBe(413);
      expect(declared.body).toContain('over the limit of 4096 bytes');
      // Chunked: no Content-Length, the cap applies while it streams.
      const c = await connect(port);
      c.socket.write(
        `POST /pause HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nTransfer-Encoding: chunked\r\n\r\n`,
      );
      for (let i = 0; i < 9; i++) c.socket.write(`200\r\n${'y'.repeat(512)}\r\n`);
      const { data } = await within(c.closed, 3000, 'the server to refuse a streamed oversized body');
      expect(statusOf(data)).toBe(413);
      expect(calls).toEqual([]);
    });

    it('bad JSON and bad fields are 400 naming the problem', async () => {
      const cases: [string, string, RegExp][] = [
        ['/switchover', '{"to":', /^request body is not JSON: /],
        ['/switchover', '[1]', /^request body must be a JSON object, got an array/],
        ['/switchover', 'null', /^request body must be a JSON object, got null/],
        ['/switchover', '"nn2"', /^request body must be a JSON object, got string/],
        ['/switchover', '{"target":"nn2"}', /^unknown field "target" \(allowed: to, reason\)/],
        ['/pause', '{"to":"nn2"}', /^unknown field "to" \(allowed: reason\)/],
        ['/switchover', '{"to":2}', /^field "to" must be a string, got number/],
        ['/switchover', '{"to":"NN 2"}', /^field "to" must be a node id .*, got "NN 2"/],
        ['/switchover', '{"to":""}', /^field "to" must have 1 to 63 characters, got 0/],
        ['/resume', `{"reason":"${'r'.repeat(1025)}"}`, /^field "reason" must have 1 to 1024 characters/],
      ];
      for (const [path, body, want] of cases) {
        const r = await request(port, path, { method: 'POST', headers: auth, body });
        expect(r.status, body).toBe(400);
        expect(r.body, body).toMatch(want);
      }
      expect(calls).toEqual([]);
    });

    it('an action that throws is 500 naming the error; one that hangs is 504 after actionTimeoutMs', async () => {
      answer = () => Promise.reject(new Error('ZooKeeper is unreachable'));
      const failed = await request(port, '/pause', { method: 'POST', headers: auth });
      expect(failed.status).toBe(500);
      expect(JSON.parse(failed.body)).toEqual({
        ok: false,
        message: 'pause failed: ZooKeeper is unreachable',
      });
      answer = () => new Promise(() => {});
      const t0 = Date.now();
      const hung = await request(port, '/pause', { method: 'POST', headers: auth });
      expect(hung.status).toBe(504);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
      expect(JSON.parse(hung.body).message).toBe('pause did not finish within 300 ms');
    });
  });

  it('a port in use is a configuration error naming control.listen and the address', async () => {
    const taken = startHttpServer({
      host: '127.0.0.1',
      port,
      view: {
        status: () => ({}),
        active: () => false,
        standby: () => false,
        role: () => 'init',
        live: () => view.live,
      },
      metrics: () => Promise.resolve({ contentType: 'text/plain', body: '' }),
      actions,
      auth: new BearerAuth(null),
      clock: systemClock,
      logger: silentLogger,
    });
    await expect(taken).rejects.toThrow(
      new RegExp(
        `^control\\.listen: cannot listen on 127\\.0\\.0\\.1:${port}: the address is already in use .*EADDRINUSE`,
      ),
    );
    await expect(taken).rejects.toSatisfy((e) => e instanceof HafcError && e.code === 'ECONFIG');
  });
});
