import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HookFailedError, HookTimeoutError } from '../../../src/errors.js';
import { httpCall, snippet } from '../../../src/exec/http.js';
import { hang, startServer, text, type TestServer } from '../agents/http-server.js';

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

describe('snippet', () => {
  it('quotes the first bytes on one line', () => {
    expect(snippet('a\nb')).toBe('"a\\nb"');
    expect(snippet('x'.repeat(300))).toBe(JSON.stringify('x'.repeat(200) + '...'));
  });
});
