/**
 * The built-in checks against real sockets and real processes on 127.0.0.1: what matters is how
 * they behave when the other end misbehaves, which a mock would only restate.
 */
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../../src/clock.js';
import type { HealthCheckConfig } from '../../../src/config/types.js';
import { ConfigError, HookFailedError, HookTimeoutError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/log.js';
import type { HookContext, ServiceAgent } from '../../../src/service/agent.js';
import {
  MAX_HTTP_BODY_BYTES,
  createCheck,
  describeCheck,
  type HealthCheck,
} from '../../../src/health/checks.js';
import { HealthMonitor, type HealthState } from '../../../src/health/monitor.js';
import { waitFor } from '../../../harness/wait.js';
import { HttpAgent } from '../../../agents/http.js';
import { ShellAgent } from '../../../agents/shell.js';
import { FakeClock } from '../../support/fake-clock.js';
import { frozenFsForSuite } from '../../fixtures/hooks/frozen-fs.js';
import { startServer, startServerOnBlockedPort, text } from '../agents/http-server.js';

const ctx = (): HookContext => ({
  cluster: 'c1',
  nodeId: 'n1',
  role: 'standby',
  epoch: 7n,
  reason: 'health check',
});

function fakeAgent(check: ServiceAgent['check'] = () => Promise.resolve()): ServiceAgent {
  return {
    kind: 'fake',
    check,
    toActive: () => Promise.resolve(),
    toStandby: () => Promise.resolve(),
    toStandbyTimeoutMs: 1000,
  };
}

function make(cfg: HealthCheckConfig, agent: ServiceAgent = fakeAgent(), timeoutMs?: number): HealthCheck {
  return createCheck(cfg, agent, ctx, timeoutMs === undefined ? {} : { timeoutMs });
}

/** Runs a check; resolves to its error (or undefined when healthy), so tests can assert on both. */
async function outcome(check: HealthCheck, signal: AbortSignal = AbortSignal.timeout(5000)) {
  try {
    await check(signal);
    return undefined;
  } catch (err) {
    return err as Error & { code?: string };
  }
}

function abortAfter(ms: number): AbortSignal {
  const ac = new AbortController();
  setTimeout(() => ac.abort(new Error(`test deadline of ${ms} ms`)), ms);
  return ac.signal;
}

const TEN_MB = 10 * 1024 * 1024;

/** The .invalid TLD never resolves (RFC 6761); the resolver says so at once. */
const UNRESOLVABLE = 'hafc-no-such-host.invalid';

describe('http check', () => {
  let server: http.Server;
  let base: string;
  let bigBodyClosedEarly = false;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      res.on('error', () => {});
      switch (req.url) {
        case '/ok':
          res.writeHead(200, { 'content-type': 'text/plain' }).end('status: OK\nrole: standby\n');
          return;
        case '/fail':
          res.writeHead(500, { 'content-type': 'text/plain' }).end('replica lagging');
          return;
        case '/redirect':
          res.writeHead(302, { location: '/ok' }).end();
          return;
        case '/hang':
          return; // never answers
        case '/hang-body':
          res.writeHead(200);
          res.write('status: ');
          return; // headers, then nothing more
        case '/binary': {
          const junk = Buffer.alloc(4096);
          for (let i = 0; i < junk.length; i++) junk[i] = (i * 131 + 7) % 256;
          res.writeHead(200).end(junk);
          return;
        }
        case '/big': {
          res.writeHead(200, { 'content-type': 'text/plain' });
          const chunk = Buffer.alloc(64 * 1024, 'x');
          chunk.write('BEGIN');
          let sent = 0;
          const pump = () => {
            while (sent < TEN_MB) {
              sent += chunk.length;
              if (!res.write(chunk)) {
                res.once('drain', pump);
                return;
              }
            }
            res.end();
          };
          res.on('close', () => {
            if (sent < TEN_MB || !res.writableFinished) bigBodyClosedEarly = true;
          });
          pump();
          return;
        }
        default:
          res.writeHead(404).end();
      }
    });
    server.on('clientError', (_err, sock) => sock.destroy());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  type HttpCfg = Extract<HealthCheckConfig, { kind: 'http' }>;
  const httpCfg = (path: string, extra: Partial<HttpCfg> = {}): HttpCfg => ({
    kind: 'http',
    url: `${base}${path}`,
    expectStatus: [200],
    ...extra,
  });

  it('is healthy on an expected status', async () => {
    expect(await outcome(make(httpCfg('/ok')))).toBeUndefined();
  });

  it('is unhealthy on an unexpected status, naming the URL, the status and what was expected', async () => {
    const err = await outcome(make(httpCfg('/fail', { expectStatus: [200, 204] })));
    expect(err?.code).toBe('EHEALTH_UNHEALTHY');
    expect(err?.message).toBe(
      `http check GET ${base}/fail: answered 500 Internal Server Error, expected 200, 204`,
    );
  });

  it('accepts any status listed in expectStatus', async () => {
    expect(await outcome(make(httpCfg('/fail', { expectStatus: [500] })))).toBeUndefined();
  });

  it('does not follow redirects: the 3xx itself is judged', async () => {
    const err = await outcome(make(httpCfg('/redirect')));
    expect(err?.message).toMatch(/answered 302 Found, expected 200$/);
    expect(await outcome(make(httpCfg('/redirect', { expectStatus: [302] })))).toBeUndefined();
  });

  it('checks the body against expectBodyMatches', async () => {
    expect(
      await outcome(make(httpCfg('/ok', { expectBodyMatches: '^status: OK$|role: (active|standby)' }))),
    ).toBe(undefined);
    const err = await outcome(make(httpCfg('/ok', { expectBodyMatches: 'role: active' })));
    expect(err?.code).toBe('EHEALTH_UNHEALTHY');
    expect(err?.message).toBe(
      `http check GET ${base}/ok: answered 200 but the body did not match /role: active/: "status: OK\\nrole: standby"`,
    );
  });

  it('survives a binary body: decoded leniently, quoted escaped', async () => {
    const err = await outcome(make(httpCfg('/binary', { expectBodyMatches: 'status' })));
    expect(err?.code).toBe('EHEALTH_UNHEALTHY');
    expect(err?.message).toMatch(/did not match \/status\/: ".*"\.\.\.$/s);
    // Control bytes arrive JSON-escaped, so they cannot forge log lines.
    expect([...err!.message].some((c) => c.charCodeAt(0) < 0x20)).toBe(false);
  });

  it('reads at most 64 KiB of a 10 MB body and hangs up on the rest', async () => {
    const started = performance.now();
    expect(await outcome(make(httpCfg('/big', { expectBodyMatches: '^BEGIN' })))).toBeUndefined();
    const err = await outcome(make(httpCfg('/big', { expectBodyMatches: 'END$' })));
    expect(err?.code).toBe('EHEALTH_UNHEALTHY');
    expect(err?.message).toContain(`the first ${MAX_HTTP_BODY_BYTES} bytes of the body did not match /END$/`);
    expect(err!.message.length).toBeLessThan(600);
    expect(await outcome(make(httpCfg('/big')))).toBeUndefined();
    expect(performance.now() - started).toBeLessThan(5000);
    await waitFor('the server to see the 10 MB response cut short', () => bigBodyClosedEarly);
  });

  it('reports a server that never answers as a timeout (EHEALTH_TIMEOUT)', async () => {
    const started = performance.now();
    const err = await outcome(make(httpCfg('/hang')), abortAfter(300));
    expect(err?.code).toBe('EHEALTH_TIMEOUT');
    expect(err?.message).toMatch(
      new RegExp(`^http check GET ${base}/hang: no answer after \\d+ ms, aborted: test deadline of 300 ms$`),
    );
    expect(performance.now() - started).toBeLessThan(3000);
  });

  it('reports a body that stalls mid-way as a timeout when the body is needed', async () => {
    const err = await outcome(make(httpCfg('/hang-body', { expectBodyMatches: 'OK' })), abortAfter(300));
    expect(err?.code).toBe('EHEALTH_TIMEOUT');
    // Without a body regex the status alone decides, so the stalled body does not matter.
    expect(await outcome(make(httpCfg('/hang-body')), abortAfter(2000))).toBeUndefined();
  });

  it('is a timeout when the signal is already aborted', async () => {
    const ac = new AbortController();
    ac.abort();
    const err = await outcome(make(httpCfg('/ok')), ac.signal);
    expect(err?.code).toBe('EHEALTH_TIMEOUT');
  });

  it('is unhealthy when nothing listens (connection refused)', async () => {
    const port = await closedPort();
    const err = await outcome(make({ kind: 'http', url: `http://127.0.0.1:${port}/`, expectStatus: [200] }));
    expect(err?.code).toBe('EHEALTH_UNHEALTHY');
    expect(err?.message).toBe(
      `http check GET http://127.0.0.1:${port}/: request failed: connect ECONNREFUSED 127.0.0.1:${port}`,
    );
  });

  it('is unhealthy when the server answers garbage instead of HTTP', async () => {
    const raw = await rawServer((sock) => sock.end('\u0000\u0001 this is not HTTP\r\n\r\n'));
    try {
      const err = await outcome(
        make({ kind: 'http', url: `http://127.0.0.1:${raw.port}/`, expectStatus: [200] }),
      );
      expect(err?.code).toBe('EHEALTH_UNHEALTHY');
      expect(err?.message).toMatch(
        new RegExp(
          `^http check GET http://127\\.0\\.0\\.1:${raw.port}/: request failed: the answer is not valid HTTP \\(Parse Error: `,
        ),
      );
    } finally {
      await raw.close();
    }
  });

  it('works on a port fetch() refuses (the browser blocklist: 6000, 2049, 5060, 10080, ...)', async () => {
    const blocked = await startServerOnBlockedPort();
    try {
      blocked.route('GET /health', text(200, 'status: OK'));
      const url = `${blocked.url}/health`;
      // The premise: fetch would fail this check forever.
      const refused = (await fetch(url).catch((e: unknown) => e)) as Error & { cause?: Error };
      expect(refused.cause?.message).toBe('bad port');
      expect(await outcome(make({ kind: 'http', url, expectStatus: [200] }))).toBeUndefined();
      expect(
        await outcome(make({ kind: 'http', url, expectStatus: [200], expectBodyMatches: 'OK$' })),
      ).toBeUndefined();
      expect(blocked.received.map((r) => `${r.method} ${r.url}`)).toEqual(['GET /health', 'GET /health']);
    } finally {
      await blocked.close();
    }
  });

  it('a host that does not resolve is unhealthy, worded like any unreachable server', async () => {
    const url = `http://${UNRESOLVABLE}:8080/health`;
    const err = await outcome(make({ kind: 'http', url, expectStatus: [200] }));
    expect(err?.code).toBe('EHEALTH_UNHEALTHY');
    expect(err?.message).toMatch(
      new RegExp(
        `^http check GET ${url}: request failed: cannot resolve host ${UNRESOLVABLE} \\((ENOTFOUND|EAI_AGAIN)\\)$`,
      ),
    );
  });

  it('refuses a bad URL or regex at creation, naming the key and the value', () => {
    expect(() => make({ kind: 'http', url: 'not a url', expectStatus: [200] })).toThrow(
      new ConfigError('health.check.http: "not a url" is not a valid URL'),
    );
    expect(() => make({ kind: 'http', url: 'ftp://x/', expectStatus: [200] })).toThrow(
      /must be an http:\/\//,
    );
    expect(() =>
      make({ kind: 'http', url: 'http://x/', expectStatus: [200], expectBodyMatches: '(' }),
    ).toThrow(/^health\.check\.expectBodyMatches: "\(" is not a valid regular expression/);
    expect(() => make({ kind: 'nope' } as unknown as HealthCheckConfig)).toThrow(
      'health.check: unknown check kind "nope"',
    );
  });
});

describe('tcp check', () => {
  it('is healthy when the port accepts, and closes its connection', async () => {
    let closed = 0;
    const srv = await rawServer((sock) => sock.on('close', () => closed++));
    try {
      expect(await outcome(make({ kind: 'tcp', host: '127.0.0.1', port: srv.port }))).toBeUndefined();
      await waitFor('the probe connection to be closed', () => closed === 1);
    } finally {
      await srv.close();
    }
  });

  it('is unhealthy on a closed port, naming host, port and the error', async () => {
    const port = await closedPort();
    const err = await outcome(make({ kind: 'tcp', host: '127.0.0.1', port }));
    expect(err?.code).toBe('EHEALTH_UNHEALTHY');
    expect(err?.message).toBe(
      `tcp check 127.0.0.1:${port}: connect failed: connect ECONNREFUSED 127.0.0.1:${port}`,
    );
  });

  it('a host that does not resolve: "cannot resolve host", not getaddrinfo jargon', async () => {
    const err = await outcome(make({ kind: 'tcp', host: UNRESOLVABLE, port: 2181 }));
    expect(err?.code).toBe('EHEALTH_UNHEALTHY');
    expect(err?.message).toMatch(
      new RegExp(
        `^tcp check ${UNRESOLVABLE}:2181: connect failed: cannot resolve host ${UNRESOLVABLE} \\((ENOTFOUND|EAI_AGAIN)\\)$`,
      ),
    );
  });

  it('is a timeout when aborted before connecting', async () => {
    const ac = new AbortController();
    ac.abort(new Error('deadline'));
    const err = await outcome(make({ kind: 'tcp', host: '127.0.0.1', port: 1 }), ac.signal);
    expect(err?.code).toBe('EHEALTH_TIMEOUT');
    expect(err?.message).toMatch(/^tcp check 127\.0\.0\.1:1: no answer after \d+ ms, aborted: deadline$/);
  });
});

describe('command check', () => {
  it('is healthy on exit 0', async () => {
    expect(await outcome(make({ kind: 'command', command: ['true'] }))).toBeUndefined();
  });

  it('is unhealthy on a non-zero exit, with the exit code and the output tail', async () => {
    expect((await outcome(make({ kind: 'command', command: ['false'] })))?.message).toBe(
      'command check false: exited 1',
    );
    const err = await outcome(make({ kind: 'command', command: 'echo "replica broken" >&2; exit 3' }));
    expect(err?.code).toBe('EHEALTH_UNHEALTHY');
    expect(err?.message).toBe(
      'command check echo "replica broken" >&2; exit 3: exited 3; output: "replica broken"',
    );
  });

  it('passes the hook environment', async () => {
    const check = make({
      kind: 'command',
      command: 'test "$HAFC_CLUSTER/$HAFC_NODE_ID/$HAFC_ROLE/$HAFC_EPOCH" = c1/n1/standby/7',
    });
    expect(await outcome(check)).toBeUndefined();
  });

  it('is a timeout when the command outlives its own timeout', async () => {
    const started = performance.now();
    const err = await outcome(make({ kind: 'command', command: ['sleep', '10'] }, fakeAgent(), 300));
    expect(err?.code).toBe('EHEALTH_TIMEOUT');
    expect(err?.message).toMatch(/^command check sleep 10: did not finish within 300 ms and was killed/);
    expect(performance.now() - started).toBeLessThan(5000);
  });

  it('is a timeout when the signal aborts, and the command is killed', async () => {
    const started = performance.now();
    const err = await outcome(make({ kind: 'command', command: ['sleep', '10'] }), abortAfter(300));
    expect(err?.code).toBe('EHEALTH_TIMEOUT');
    expect(err?.message).toMatch(
      /^command check sleep 10: did not finish within the deadline and was killed/,
    );
    expect(performance.now() - started).toBeLessThan(5000);
  });

  it("runs the command's timeout on the given clock", async () => {
    const clock = new FakeClock();
    const check = createCheck({ kind: 'command', command: ['sleep', '60'] }, fakeAgent(), ctx, {
      timeoutMs: 30_000,
      clock,
    });
    const realStart = performance.now();
    // The runner arms its timeout before check() returns, so advancing now is not too early.
    const pending = outcome(check, new AbortController().signal);
    await clock.advance(30_000);
    const err = await pending;
    expect(err?.code).toBe('EHEALTH_TIMEOUT');
    expect(err?.message).toBe(
      'command check sleep 60: did not finish within 30000 ms and was killed (ran 30000 ms)',
    );
    // Thirty fake seconds took a fraction of a real one.
    expect(performance.now() - realStart).toBeLessThan(5000);
  });

  it('is unhealthy (not fatal) when the command cannot be started', async () => {
    const err = await outcome(make({ kind: 'command', command: ['/nonexistent/hafc-check'] }));
    expect(err?.code).toBe('EHEALTH_UNHEALTHY');
    expect(err?.message).toMatch(/^command check \/nonexistent\/hafc-check: could not be started: ENOENT/);
  });
});

describe('command check stuck where SIGKILL cannot reach it (a write to a frozen filesystem)', () => {
  const fixture = frozenFsForSuite();

  it('says so, names the command, and does not hang', async () => {
    const file = join(fixture.current.dir, 'probe');
    fixture.current.freeze();
    try {
      const started = performance.now();
      const err = await outcome(make({ kind: 'command', command: ['touch', file] }), abortAfter(300));
      expect(err?.code).toBe('EHEALTH_TIMEOUT');
      expect(err?.message).toMatch(
        new RegExp(
          `^command check touch ${file}: did not finish within the deadline and did not die after SIGKILL \\(pid \\d+, state D \\(disk sleep\\)\\); it may still be running$`,
        ),
      );
      // 300 ms to the abort, then the runner's 1 s abandon grace.
      expect(performance.now() - started).toBeLessThan(3000);
    } finally {
      fixture.current.thaw();
    }
  });
});

describe('agent check', () => {
  it('passes the hook context and the signal to the agent', async () => {
    let seen: [HookContext, AbortSignal] | undefined;
    const signal = AbortSignal.timeout(5000);
    const check = make(
      { kind: 'agent' },
      fakeAgent(async (c, s) => void (seen = [c, s])),
    );
    expect(await outcome(check, signal)).toBeUndefined();
    expect(seen?.[0]).toEqual(ctx());
    expect(seen?.[1]).toBe(signal);
  });

  it('maps the agent errors: failed -> unhealthy, hook timeout -> timeout, config -> passed through', async () => {
    const failing = make(
      { kind: 'agent' },
      fakeAgent(() => Promise.reject(new HookFailedError('check exited 2'))),
    );
    expect(await outcome(failing)).toMatchObject({
      code: 'EHEALTH_UNHEALTHY',
      message: 'agent check (fake): check exited 2',
    });
    const slow = make(
      { kind: 'agent' },
      fakeAgent(() => Promise.reject(new HookTimeoutError('check timed out'))),
    );
    expect(await outcome(slow)).toMatchObject({
      code: 'EHEALTH_TIMEOUT',
      message: 'agent check (fake): check timed out',
    });
    const misconfigured = make(
      { kind: 'agent' },
      fakeAgent(() => Promise.reject(new ConfigError('service.check: missing'))),
    );
    expect(await outcome(misconfigured)).toMatchObject({
      code: 'ECONFIG',
      message: 'service.check: missing',
    });
    const weird = make(
      { kind: 'agent' },
      fakeAgent(() => Promise.reject(42)),
    );
    expect(await outcome(weird)).toMatchObject({
      code: 'EHEALTH_UNHEALTHY',
      message: 'agent check (fake): 42',
    });
  });

  it('is a timeout when the agent fails because its signal aborted', async () => {
    const check = make(
      { kind: 'agent' },
      fakeAgent(
        (_c, s) =>
          new Promise<void>((_r, reject) => s.addEventListener('abort', () => reject(new Error('aborted')))),
      ),
    );
    expect((await outcome(check, abortAfter(50)))?.code).toBe('EHEALTH_TIMEOUT');
  });
});

describe('describeCheck', () => {
  it('names each kind', () => {
    expect(describeCheck({ kind: 'http', url: 'http://h/x', expectStatus: [200] })).toBe(
      'http check GET http://h/x',
    );
    expect(describeCheck({ kind: 'tcp', host: 'h', port: 1 })).toBe('tcp check h:1');
    expect(describeCheck({ kind: 'tcp', host: '::1', port: 1 })).toBe('tcp check [::1]:1');
    expect(describeCheck({ kind: 'command', command: ['a', 'b c'] })).toBe("command check a 'b c'");
    expect(describeCheck({ kind: 'agent' })).toBe('agent check');
  });
});

describe('HealthMonitor with real checks (system clock)', () => {
  const monitors: HealthMonitor[] = [];
  afterEach(async () => {
    await Promise.all(monitors.splice(0).map((m) => m.stop()));
  });

  function monitor(check: HealthCheck) {
    const m = new HealthMonitor({
      check,
      intervalMs: 50,
      timeoutMs: 200,
      fall: 2,
      rise: 2,
      clock: systemClock,
      logger: silentLogger,
    });
    monitors.push(m);
    const states: HealthState[] = [];
    m.onChange((next) => states.push(next));
    m.start();
    return { m, states };
  }

  it('follows a tcp service going away', async () => {
    const srv = await rawServer(() => {});
    const { m, states } = monitor(make({ kind: 'tcp', host: '127.0.0.1', port: srv.port }));
    await waitFor('HEALTHY', () => m.state === 'HEALTHY');
    await srv.close();
    await waitFor('UNHEALTHY', () => m.state === 'UNHEALTHY');
    expect(states).toEqual(['HEALTHY', 'UNHEALTHY']);
  });

  it('reports a hanging http endpoint as NOT_RESPONDING and stops promptly', async () => {
    const hanging = http.createServer(() => {});
    await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
    try {
      const port = (hanging.address() as AddressInfo).port;
      const { m } = monitor(make({ kind: 'http', url: `http://127.0.0.1:${port}/`, expectStatus: [200] }));
      await waitFor('NOT_RESPONDING', () => m.state === 'NOT_RESPONDING');
      // Names what hung, not just "health check".
      expect(m.lastResult?.error?.message).toBe(
        `http check GET http://127.0.0.1:${port}/ did not answer within 200 ms`,
      );
      const started = performance.now();
      await m.stop();
      expect(performance.now() - started).toBeLessThan(500);
    } finally {
      hanging.closeAllConnections();
      await new Promise<void>((resolve) => hanging.close(() => resolve()));
    }
  });
});

describe('what a check is called in the messages the monitor writes', () => {
  it('names the URL, host:port, command or agent target', () => {
    const d = (cfg: HealthCheckConfig, agent?: ServiceAgent) => make(cfg, agent).description;
    expect(d({ kind: 'http', url: 'http://h:6000/x', expectStatus: [200] })).toBe(
      'http check GET http://h:6000/x',
    );
    expect(d({ kind: 'tcp', host: 'h', port: 2049 })).toBe('tcp check h:2049');
    expect(d({ kind: 'command', command: ['/bin/check', 'a b'] })).toBe("command check /bin/check 'a b'");
    const httpAgent = new HttpAgent(
      {
        agent: 'http',
        url: 'http://10.0.0.1:8080/',
        rolePath: '/role',
        statePath: '/state',
        healthPath: '/health',
        requestTimeoutMs: 1000,
        gracefulFenceTimeoutMs: 1000,
      },
      silentLogger,
    );
    expect(d({ kind: 'agent' }, httpAgent)).toBe('agent check (http: GET http://10.0.0.1:8080/health)');
    const shellAgent = new ShellAgent(
      {
        agent: 'shell',
        toActive: 'true',
        toStandby: 'true',
        check: ['/bin/nn-check', '-q'],
        hookTimeoutMs: 1000,
      },
      silentLogger,
    );
    expect(d({ kind: 'agent' }, shellAgent)).toBe('agent check (shell: /bin/nn-check -q)');
    expect(d({ kind: 'agent' }, fakeAgent())).toBe('agent check (fake)');
  });

  it('a hanging agent check: the monitor timeout names the URL the agent asked', async () => {
    const hanging = await startServer();
    hanging.route('GET /health', () => {}); // never answers
    const agent = new HttpAgent(
      {
        agent: 'http',
        url: hanging.url,
        rolePath: '/role',
        statePath: '/state',
        healthPath: '/health',
        requestTimeoutMs: 5000,
        gracefulFenceTimeoutMs: 5000,
      },
      silentLogger,
    );
    const m = new HealthMonitor({
      check: make({ kind: 'agent' }, agent),
      intervalMs: 50,
      timeoutMs: 200,
      fall: 1,
      rise: 1,
      clock: systemClock,
      logger: silentLogger,
    });
    m.start();
    try {
      await waitFor('NOT_RESPONDING', () => m.state === 'NOT_RESPONDING');
      expect(m.lastResult?.error?.message).toBe(
        `agent check (http: GET ${hanging.url}/health) did not answer within 200 ms`,
      );
    } finally {
      await m.stop();
      await hanging.close();
    }
  });
});

describe('definite failures: marked by the check that saw them', () => {
  type Failure = Error & { code?: string; definite?: string };
  const definiteOf = async (check: HealthCheck): Promise<string | undefined> => {
    const err = (await outcome(check)) as Failure | undefined;
    expect(err?.code).toBe('EHEALTH_UNHEALTHY');
    return err?.definite;
  };
  const httpAgent = (port: number) =>
    new HttpAgent(
      {
        agent: 'http',
        url: `http://127.0.0.1:${port}`,
        rolePath: '/role',
        statePath: '/role',
        healthPath: '/health',
        requestTimeoutMs: 2000,
        gracefulFenceTimeoutMs: 2000,
      },
      silentLogger,
    );
  const shellAgent = (check: string | string[]) =>
    new ShellAgent(
      { agent: 'shell', toActive: 'true', toStandby: 'true', check, hookTimeoutMs: 2000 },
      silentLogger,
    );

  it('a refused connection: http, tcp and the http agent', async () => {
    const port = await closedPort();
    expect(
      await definiteOf(make({ kind: 'http', url: `http://127.0.0.1:${port}/`, expectStatus: [200] })),
    ).toBe('refused');
    expect(await definiteOf(make({ kind: 'tcp', host: '127.0.0.1', port }))).toBe('refused');
    expect(await definiteOf(make({ kind: 'agent' }, httpAgent(port)))).toBe('refused');
  });

  it('a connection reset before the answer: http and the http agent', async () => {
    // Reads the request, then resets: RST instead of FIN, as a process killed mid-request does.
    const srv = await rawServer((sock) => sock.once('data', () => sock.resetAndDestroy()));
    try {
      expect(
        await definiteOf(make({ kind: 'http', url: `http://127.0.0.1:${srv.port}/`, expectStatus: [200] })),
      ).toBe('reset');
      expect(await definiteOf(make({ kind: 'agent' }, httpAgent(srv.port)))).toBe('reset');
    } finally {
      await srv.close();
    }
  });

  it('a check program that is not there: command check and shell agent, argv and sh -c', async () => {
    expect(await definiteOf(make({ kind: 'command', command: ['/nonexistent/hafc-check'] }))).toBe('missing');
    expect(await definiteOf(make({ kind: 'command', command: '/nonexistent/hafc-check --quick' }))).toBe(
      'missing',
    );
    expect(await definiteOf(make({ kind: 'agent' }, shellAgent(['/nonexistent/hafc-check'])))).toBe(
      'missing',
    );
    expect(await definiteOf(make({ kind: 'agent' }, shellAgent('/nonexistent/hafc-check')))).toBe('missing');
  });

  it('an answer, however bad, is not definite: a 500, a non-zero exit, garbage', async () => {
    const srv = await rawServer((sock) =>
      sock.once('data', () => sock.end('HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n')),
    );
    try {
      expect(
        await definiteOf(make({ kind: 'http', url: `http://127.0.0.1:${srv.port}/`, expectStatus: [200] })),
      ).toBeUndefined();
      expect(await definiteOf(make({ kind: 'agent' }, httpAgent(srv.port)))).toBeUndefined();
    } finally {
      await srv.close();
    }
    const garbage = await rawServer((sock) => sock.once('data', () => sock.end('not http at all\r\n\r\n')));
    try {
      expect(
        await definiteOf(
          make({ kind: 'http', url: `http://127.0.0.1:${garbage.port}/`, expectStatus: [200] }),
        ),
      ).toBeUndefined();
    } finally {
      await garbage.close();
    }
    expect(await definiteOf(make({ kind: 'command', command: 'exit 1' }))).toBeUndefined();
    expect(await definiteOf(make({ kind: 'agent' }, shellAgent('exit 1')))).toBeUndefined();
  });

  it('a timeout is never definite, whatever its cause', async () => {
    const srv = await rawServer(() => {});
    try {
      const err = (await outcome(
        make({ kind: 'http', url: `http://127.0.0.1:${srv.port}/`, expectStatus: [200] }),
        abortAfter(100),
      )) as Failure | undefined;
      expect(err?.code).toBe('EHEALTH_TIMEOUT');
      expect(err?.definite).toBeUndefined();
    } finally {
      await srv.close();
    }
  });
});

async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

async function rawServer(
  onConn: (sock: net.Socket) => void,
): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('error', () => {});
    sock.on('close', () => sockets.delete(sock));
    onConn(sock);
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return {
    port: (srv.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        srv.close(() => resolve());
      }),
  };
}
