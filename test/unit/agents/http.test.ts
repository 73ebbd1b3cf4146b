import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HttpAgent } from '../../../agents/http.js';
import type { HttpServiceConfig } from '../../../src/config/types.js';
import { HookFailedError, HookTimeoutError, RecordError } from '../../../src/errors.js';
import { createLogger, type LogFields } from '../../../src/log.js';
import type { FenceTarget, HookContext } from '../../../src/service/agent.js';
import { hang, json, startServer, text, type TestServer } from './http-server.js';

const ctx: HookContext = {
  cluster: 'ns1',
  nodeId: 'nn2',
  role: 'active',
  epoch: 2n ** 63n + 5n,
  reason: 'elected',
};
const never = new AbortController().signal;

let server: TestServer;
let logs: LogFields[];
const logger = createLogger({ level: 'debug', write: (l) => logs.push(JSON.parse(l) as LogFields) });

function agent(over: Partial<HttpServiceConfig> = {}): HttpAgent {
  return new HttpAgent(
    {
      agent: 'http',
      url: server.url + '/',
      rolePath: '/role',
      statePath: '/state',
      healthPath: '/health',
      requestTimeoutMs: 2000,
      gracefulFenceTimeoutMs: 2000,
      ...over,
    },
    logger,
  );
}

beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server.close();
});
afterEach(() => {
  server.received.length = 0;
  logs = [];
});
logs = [];

describe('HttpAgent transitions', () => {
  it('POSTs {role, epoch as a string, reason} as JSON; 2xx is done', async () => {
    server.route('POST /role', text(204, ''));
    await agent().toActive(ctx, never);
    await agent().toStandby({ ...ctx, role: 'standby', reason: 'cede' }, never);
    expect(
      server.received.map((r) => [r.method, r.url, r.headers['content-type'], JSON.parse(r.body)]),
    ).toEqual([
      [
        'POST',
        '/role',
        'application/json',
        { role: 'active', epoch: '9223372036854775813', reason: 'elected' },
      ],
      [
        'POST',
        '/role',
        'application/json',
        { role: 'standby', epoch: '9223372036854775813', reason: 'cede' },
      ],
    ]);
  });

  it('a non-2xx answer is a HookFailedError naming URL, status and the first 200 bytes of the body', async () => {
    server.route('POST /role', text(500, 'boom: ' + 'z'.repeat(500)));
    const err = await agent()
      .toActive(ctx, never)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HookFailedError);
    expect((err as Error).message).toMatch(
      new RegExp(
        `^toActive request POST ${server.url}/role answered HTTP 500 after \\d+ ms; body: "boom: z{194}\\.\\.\\."$`,
      ),
    );
  });

  it('a hanging service is a HookTimeoutError after requestTimeoutMs', async () => {
    server.route('POST /role', hang);
    const started = performance.now();
    const err = await agent({ requestTimeoutMs: 300 })
      .toStandby(ctx, never)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HookTimeoutError);
    expect((err as Error).message).toBe(`toStandby request POST ${server.url}/role timed out after 300 ms`);
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it("the caller's signal aborts a request", async () => {
    server.route('POST /role', hang);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const err = await agent({ requestTimeoutMs: 10_000 })
      .toActive(ctx, ac.signal)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HookFailedError);
    expect((err as Error).message).toMatch(/^toActive request POST .* was aborted after \d+ ms$/);
  });

  it('a refused connection names the URL and the reason', async () => {
    const closed = await startServer();
    await closed.close();
    const url = closed.url;
    const a = agent({ url });
    await expect(a.toActive(ctx, never)).rejects.toThrow(
      new RegExp(`^toActive request POST ${url}/role failed after \\d+ ms: connect ECONNREFUSED`),
    );
  });

  it('toStandbyTimeoutMs is requestTimeoutMs', () => {
    expect(agent({ requestTimeoutMs: 1234 }).toStandbyTimeoutMs).toBe(1234);
  });
});

describe('HttpAgent state', () => {
  it('reads {role} from JSON', async () => {
    server.route('GET /state', json(200, { role: 'active', since: 12 }));
    expect(await agent().state(ctx, never)).toBe('active');
    server.route('GET /state', json(200, { role: 'standby' }));
    expect(await agent().state(ctx, never)).toBe('standby');
    expect(logs.filter((l) => l.level === 'warn')).toEqual([]);
  });

  it.each([
    ['not JSON', text(200, '<html>oops</html>'), 'the body is not JSON'],
    ['a foreign role', json(200, { role: 'leader' }), 'expected {"role": "active"|"standby"}'],
    ['JSON null', text(200, 'null'), 'expected {"role": "active"|"standby"}'],
    ['a JSON array', json(200, ['active']), 'expected {"role": "active"|"standby"}'],
    ['a huge body', text(200, '{"role":"active"' + ' '.repeat(200_000) + '}'), 'the body is not JSON'],
  ])('garbage (%s) is unknown with a warning, never a crash', async (_name, handler, why) => {
    server.route('GET /state', handler);
    expect(await agent().state(ctx, never)).toBe('unknown');
    const warns = logs.filter((l) => l.level === 'warn');
    expect(warns).toHaveLength(1);
    expect(warns[0]!.msg).toBe(`state request answered garbage (${why}); treating the state as unknown`);
    expect(String(warns[0]!.body).length).toBeLessThan(210);
  });

  it('a non-2xx answer throws', async () => {
    server.route('GET /state', text(503, 'starting'));
    await expect(agent().state(ctx, never)).rejects.toThrow(/^state request GET .*\/state answered HTTP 503/);
  });

  it('a hang times out', async () => {
    server.route('GET /state', hang);
    await expect(agent({ requestTimeoutMs: 200 }).state(ctx, never)).rejects.toThrow(HookTimeoutError);
  });
});

describe('HttpAgent check', () => {
  it('2xx is healthy, anything else throws', async () => {
    server.route('GET /health', text(200, 'ok'));
    await agent().check(ctx, never);
    server.route('GET /health', text(500, 'disk full'));
    await expect(agent().check(ctx, never)).rejects.toThrow(
      new RegExp(
        `^health check GET ${server.url}/health answered HTTP 500 after \\d+ ms; body: "disk full"$`,
      ),
    );
  });

  it('a hang times out', async () => {
    server.route('GET /health', hang);
    await expect(agent({ requestTimeoutMs: 200 }).check(ctx, never)).rejects.toThrow(
      `health check GET ${server.url}/health timed out after 200 ms`,
    );
  });
});

describe('HttpAgent fenceGraceful', () => {
  const target: FenceTarget = { id: 'nn1', host: '127.0.0.1', port: 0, address: '', epoch: 7n };

  it('POSTs role standby to the old active at its address', async () => {
    server.route('POST /role', text(200, 'ok'));
    const t = { ...target, port: server.port, address: `127.0.0.1:${server.port}` };
    await agent({ url: 'http://127.0.0.1:9/ignored' }).fenceGraceful(t, ctx, never);
    expect(server.received).toHaveLength(1);
    expect(JSON.parse(server.received[0]!.body)).toEqual({
      role: 'standby',
      epoch: '9223372036854775813',
      reason: 'fenced by nn2',
    });
  });

  it("uses the old active's recorded control port when its service address is another port", async () => {
    server.route('POST /role', text(200, 'ok'));
    const t = { ...target, port: 1, address: '127.0.0.1:1', controlPort: server.port };
    await agent().fenceGraceful(t, ctx, never);
    expect(server.received).toHaveLength(1);
    await expect(agent().fenceGraceful({ ...t, controlPort: 70000 }, ctx, never)).rejects.toThrow(
      'fencing target "nn1" has an invalid port 70000',
    );
  });

  it('gives a frozen old active gracefulFenceTimeoutMs, not requestTimeoutMs', async () => {
    // A node frozen past its session still accepts TCP (the kernel answers), so the fence can
    // only time out; that wait is added to the failover, hence its own, shorter deadline.
    server.route('POST /role', hang);
    const t = { ...target, port: server.port, address: `127.0.0.1:${server.port}` };
    const err = await agent({ requestTimeoutMs: 5000, gracefulFenceTimeoutMs: 150 })
      .fenceGraceful(t, ctx, never)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HookTimeoutError);
    expect((err as Error).message).toBe(
      `graceful fence request POST http://127.0.0.1:${server.port}/role timed out after 150 ms`,
    );
  });

  it('reports its own control port (the port of service.url) for peers to fence it by', () => {
    expect(agent({ url: 'http://127.0.0.1:8008' }).controlPort).toBe(8008);
    expect(agent({ url: 'https://db.example.com' }).controlPort).toBe(443);
  });

  it('refuses a target whose host would change the URL', async () => {
    for (const host of ['evil.example/x?', 'a@b', '-x', '', 'a b']) {
      await expect(agent().fenceGraceful({ ...target, host, port: 80 }, ctx, never)).rejects.toThrow(
        RecordError,
      );
    }
    await expect(agent().fenceGraceful({ ...target, port: 70000 }, ctx, never)).rejects.toThrow(
      'fencing target "nn1" has an invalid port 70000',
    );
    expect(server.received).toHaveLength(0);
  });
});

describe('HttpAgent config', () => {
  it('refuses a service.url that is not an http(s) URL, naming it', () => {
    expect(() => agent({ url: 'not a url' })).toThrow('service.url: not a URL: "not a url"');
    expect(() => agent({ url: 'ftp://x' })).toThrow(
      'service.url: expected an http:// or https:// URL, got "ftp://x"',
    );
  });
});
