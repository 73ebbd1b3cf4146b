import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../../harness/wait.js';
import { HookFailedError, HookTimeoutError } from '../../../src/errors.js';
import { describeHttpError, httpCall, snippet } from '../../../src/exec/http.js';
import { describeNetworkError } from '../../../src/exec/net-errors.js';
import { FakeClock } from '../../support/fake-clock.js';
import { hang, startServer, startServerOnBlockedPort, text, type TestServer } from '../agents/http-server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server.close();
});

describe('httpCall', () => {
  it('resolves with any status and the body', async () => {
    server.route('PUT /x', text(418, 'teapot'));
    const r = await httpCall({
      method: 'PUT',
      url: server.url + '/x',
      json: { n: 1n },
      timeoutMs: 2000,
      what: 'probe',
    });
    expect(r).toMatchObject({ status: 418, body: 'teapot', truncated: false });
    expect(server.received.at(-1)!.body).toBe('{"n":"1"}');
  });

  it('reads at most maxBodyBytes of a huge body', async () => {
    server.route('GET /big', (_req, res) => {
      res.writeHead(200);
      // Far more than the cap: we must not wait for or buffer all of it.
      const chunk = Buffer.alloc(64 * 1024, 'a');
      let sent = 0;
      const pump = () => {
        while (sent < 1000 && res.write(chunk)) sent++;
        if (sent < 1000) res.once('drain', pump);
        else res.end();
      };
      res.on('close', () => res.removeAllListeners('drain'));
      pump();
    });
    const r = await httpCall({
      method: 'GET',
      url: server.url + '/big',
      timeoutMs: 5000,
      what: 'probe',
      maxBodyBytes: 1000,
    });
    expect(r.truncated).toBe(true);
    expect(r.body).toBe('a'.repeat(1000));
  });

  it('times out a server that sends headers and then stalls the body', async () => {
    server.route('GET /stall', (_req, res) => {
      res.writeHead(200);
      res.write('partial');
    });
    await expect(
      httpCall({ method: 'GET', url: server.url + '/stall', timeoutMs: 200, what: 'probe' }),
    ).rejects.toThrow(new HookTimeoutError(`probe GET ${server.url}/stall timed out after 200 ms`));
  });

  it('times out a server that never answers', async () => {
    server.route('GET /hang', hang);
    await expect(
      httpCall({ method: 'GET', url: server.url + '/hang', timeoutMs: 200, what: 'probe' }),
    ).rejects.toThrow(HookTimeoutError);
  });

  it('rejects a non-http URL clearly', async () => {
    const err = await httpCall({ method: 'GET', url: 'ftp://x/y', timeoutMs: 200, what: 'probe' }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(HookFailedError);
    expect((err as Error).message).toMatch(
      /^probe GET ftp:\/\/x\/y failed after \d+ ms: unsupported protocol "ftp:"$/,
    );
  });
});

describe('httpCall: no browser rules, plain messages, time from the Clock', () => {
  it('reaches a server on a port fetch() refuses', async () => {
    const blocked = await startServerOnBlockedPort();
    try {
      blocked.route('POST /fence', text(200, 'fenced'));
      const r = await httpCall({
        method: 'POST',
        url: `${blocked.url}/fence`,
        json: {},
        timeoutMs: 2000,
        what: 'http fencing request',
      });
      expect(r).toMatchObject({ status: 200, body: 'fenced' });
    } finally {
      await blocked.close();
    }
  });

  it('a host that does not resolve reads "cannot resolve host"', async () => {
    const url = 'http://hafc-no-such-host.invalid/x';
    const err = await httpCall({ method: 'GET', url, timeoutMs: 5000, what: 'probe' }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(HookFailedError);
    expect((err as Error).message).toMatch(
      /^probe GET http:\/\/hafc-no-such-host\.invalid\/x failed after \d+ ms: cannot resolve host hafc-no-such-host\.invalid \((ENOTFOUND|EAI_AGAIN)\)$/,
    );
  });

  it('the timeout runs on the given clock', async () => {
    server.route('GET /hang-clock', hang);
    const clock = new FakeClock();
    const realStart = performance.now();
    const pending = httpCall({
      method: 'GET',
      url: server.url + '/hang-clock',
      timeoutMs: 30_000,
      what: 'probe',
      clock,
    }).catch((e: unknown) => e);
    await waitFor('the request to arrive', () => server.received.some((r) => r.url === '/hang-clock'));
    await clock.advance(30_000);
    expect(await pending).toEqual(
      new HookTimeoutError(`probe GET ${server.url}/hang-clock timed out after 30000 ms`),
    );
    expect(performance.now() - realStart).toBeLessThan(5000);
  });
});

describe('describeNetworkError / describeHttpError', () => {
  const errno = (code: string, message: string, extra: object = {}) =>
    Object.assign(new Error(message), { code, ...extra });

  it('words every DNS failure the same way, naming the host', () => {
    expect(describeNetworkError(errno('ENOTFOUND', 'getaddrinfo ENOTFOUND db1', { hostname: 'db1' }))).toBe(
      'cannot resolve host db1 (ENOTFOUND)',
    );
    expect(describeNetworkError(errno('EAI_AGAIN', 'getaddrinfo EAI_AGAIN db1', { hostname: 'db1' }))).toBe(
      'cannot resolve host db1 (EAI_AGAIN)',
    );
    // Without a hostname on the error, the host that was asked for.
    expect(describeHttpError(errno('EAI_AGAIN', 'getaddrinfo EAI_AGAIN'), 'http://nn1.example:50070/x')).toBe(
      'cannot resolve host nn1.example (EAI_AGAIN)',
    );
  });

  it('keeps socket errors as they are, adding the code when the message lacks it', () => {
    expect(describeNetworkError(errno('ECONNREFUSED', 'connect ECONNREFUSED 10.0.0.1:80'))).toBe(
      'connect ECONNREFUSED 10.0.0.1:80',
    );
    expect(describeNetworkError(errno('ECONNRESET', 'socket hang up'))).toBe('socket hang up (ECONNRESET)');
    expect(describeNetworkError('weird')).toBe('weird');
    expect(describeHttpError(errno('HPE_INVALID_CONSTANT', 'Parse Error: Expected HTTP/'))).toBe(
      'the answer is not valid HTTP (Parse Error: Expected HTTP/)',
    );
  });
});

describe('snippet', () => {
  it('quotes the first bytes on one line', () => {
    expect(snippet('a\nb')).toBe('"a\\nb"');
    expect(snippet('x'.repeat(300))).toBe(JSON.stringify('x'.repeat(200) + '...'));
  });
});
