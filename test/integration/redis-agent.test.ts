/**
 * The redis service agent against real redis-server processes (harness/redis.ts): health,
 * transitions, follow, graceful fencing, the lag refusal and AUTH, each observed from the servers.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisAgent } from '../../agents/redis.js';
import type { RedisServiceConfig } from '../../src/config/types.js';
import { ConfigError } from '../../src/errors.js';
import { EHEALTH_TIMEOUT, EHEALTH_UNHEALTHY } from '../../src/health/errors.js';
import { createLogger } from '../../src/log.js';
import type { FenceTarget, HookContext } from '../../src/service/agent.js';
import { RedisPair, RedisServer, redisAvailable } from '../../harness/redis.js';
import { TcpProxy } from '../../harness/tcp-proxy.js';
import { waitFor } from '../../harness/wait.js';
import { freePorts } from '../../harness/zk-ensemble.js';

const enabled = redisAvailable() || process.env.CI === 'true';
const PASSWORD = 'agent-test-secret';
const ctx: HookContext = { cluster: 'c', nodeId: 'r2', role: 'standby', epoch: 7n, reason: 'test' };
const never = new AbortController().signal;
const silent = createLogger({ level: 'error', format: 'json', write: () => {} });

function target(s: RedisServer, id = s.id): FenceTarget {
  return { id, host: '127.0.0.1', port: s.port, address: s.address, epoch: 1n };
}

async function codeOf(p: Promise<unknown>): Promise<{ code?: string; message: string }> {
  try {
    await p;
  } catch (err) {
    return { code: (err as { code?: string }).code, message: (err as Error).message };
  }
  throw new Error('expected a rejection');
}

describe.runIf(enabled)('redis agent on real servers', () => {
  let pair: RedisPair;
  let dir: string;
  let pwFile: string;
  const agents: RedisAgent[] = [];

  const agentFor = (s: RedisServer, more: Partial<RedisServiceConfig> = {}): RedisAgent => {
    const a = new RedisAgent(
      {
        agent: 'redis',
        address: s.address,
        passwordFile: pwFile,
        maximumLagOnFailover: 1_048_576,
        requestTimeoutMs: 500,
        gracefulFenceTimeoutMs: 500,
        ...more,
      },
      silent,
    );
    agents.push(a);
    return a;
  };

  const write = (s: RedisServer, key = 'k') =>
    s.command(['SET', key, 'v']).then(String, (e: Error) => e.message);

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hafc-redis-agent-'));
    pwFile = path.join(dir, 'redis.secret');
    fs.writeFileSync(pwFile, `${PASSWORD}\n`, { mode: 0o600 });
    pair = await RedisPair.start({ password: PASSWORD, replicate: true });
  });

  afterEach(() => {
    for (const a of agents.splice(0)) a.close();
  });

  afterAll(async () => {
    await pair?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('checks, reports the role, demotes, follows and promotes', async () => {
    const a1 = agentFor(pair.r1);
    const a2 = agentFor(pair.r2);
    await a1.check(ctx, never);
    await a2.check(ctx, never);
    expect(await a1.state(ctx, never)).toBe('active');
    expect(await a2.state(ctx, never)).toBe('standby');

    // The demotion: writes refused from the reply on, in well under the lease's second.
    const t0 = Date.now();
    await a1.toStandby(ctx, never);
    expect(Date.now() - t0).toBeLessThan(500);
    expect(await write(pair.r1)).toMatch(/^READONLY/);
    expect(await a1.state(ctx, never)).toBe('standby');

    await a2.toActive({ ...ctx, role: 'active' }, never);
    expect(await write(pair.r2)).toBe('OK');
    await a1.follow(target(pair.r2), ctx, never);
    await pair.waitInSync(pair.r1);
    expect(String(await pair.r1.command(['GET', 'k']))).toBe('v');

    // Already following: no second REPLICAOF (the server logs each one it executes).
    const count = () =>
      (fs.readFileSync(pair.r1.logFile, 'utf8').match(/REPLICAOF 127\.0\.0\.1:\d+ enabled/g) ?? []).length;
    const before = count();
    await a1.follow(target(pair.r2), ctx, never);
    expect(count()).toBe(before);

    // Back as it was, for the next tests: r1 master, r2 its replica.
    await a2.toStandby(ctx, never);
    await a1.toActive(ctx, never);
    await a2.follow(target(pair.r1), ctx, never);
    await pair.waitInSync(pair.r2);
  });

  it('fences the old master gracefully: it refuses writes; a replica is left alone', async () => {
    const a2 = agentFor(pair.r2);
    await a2.fenceGraceful(target(pair.r1), ctx, never);
    expect(await write(pair.r1)).toMatch(/^READONLY/);
    await a2.fenceGraceful(target(pair.r1), ctx, never);
    // Fencing a node that does not answer fails (no proof it stopped).
    const [free] = (await freePorts(1)) as [number];
    const err = await codeOf(
      a2.fenceGraceful(
        { id: 'gone', host: '127.0.0.1', port: free, address: `127.0.0.1:${free}`, epoch: 1n },
        ctx,
        never,
      ),
    );
    expect(err.message).toMatch(
      new RegExp(`INFO replication on Redis 127\\.0\\.0\\.1:${free}: .*ECONNREFUSED`),
    );
    await agentFor(pair.r1).toActive(ctx, never);
    await a2.follow(target(pair.r1), ctx, never);
    await pair.waitInSync(pair.r2);
  });

  it('gives a frozen old master gracefulFenceTimeoutMs, not requestTimeoutMs', async () => {
    // A frozen server's kernel still accepts the connection, so the fence can only time out, and
    // that wait comes before the next fencing method: hence its own, shorter deadline.
    const a2 = agentFor(pair.r2, { requestTimeoutMs: 5000, gracefulFenceTimeoutMs: 150 });
    pair.r1.freeze();
    try {
      const err = await codeOf(a2.fenceGraceful(target(pair.r1), ctx, never));
      expect(err.message).toBe(`INFO replication on Redis ${pair.r1.address}: no answer within 150 ms`);
    } finally {
      pair.r1.thaw();
    }
    expect(await write(pair.r1)).toBe('OK');
  });

  it('no answer in time is NOT_RESPONDING; a dead server too; LOADING is UNHEALTHY', async () => {
    const a2 = agentFor(pair.r2, { requestTimeoutMs: 300 });
    pair.r2.freeze();
    try {
      const t0 = Date.now();
      const err = await codeOf(a2.check(ctx, never));
      expect(err.code).toBe(EHEALTH_TIMEOUT);
      expect(err.message).toBe(
        `Redis ${pair.r2.address} did not answer: PING on Redis ${pair.r2.address}: no answer within 300 ms`,
      );
      expect(Date.now() - t0).toBeLessThan(1000);
    } finally {
      pair.r2.thaw();
    }
    await a2.check(ctx, never);

    // A dataset that takes a while to load: the server answers LOADING meanwhile.
    await pair.r2.command(['CONFIG', 'SET', 'key-load-delay', '100']);
    await pair.r2.command(['CONFIG', 'SET', 'loading-process-events-interval-bytes', '1024']);
    await pair.r1.command(['DEL', 'k']);
    const args = ['MSET'];
    for (let i = 0; i < 20_000; i++) args.push(`load:${i}`, 'x');
    await pair.r1.command(args, 5000);
    await waitFor(
      'r2 to have the 20000 keys',
      async () => Number(await pair.r2.command(['DBSIZE'])) >= 20_000,
    );
    await pair.r2.command(['CONFIG', 'SET', 'save', '']);
    await pair.r2.command(['SAVE'], 5000);
    await pair.r2.kill('SIGKILL');
    // The first check may still meet the connection the kill closed; the next one connects.
    const gone = await codeOf(a2.check(ctx, never));
    expect(gone.code).toBe(EHEALTH_TIMEOUT);
    const dead = await codeOf(a2.check(ctx, never));
    expect(dead.code).toBe(EHEALTH_TIMEOUT);
    expect(dead.message).toMatch(/ECONNREFUSED/);
    // The config file has no key-load-delay: give the restart one, then put the file back.
    const conf = fs.readFileSync(pair.r2.configFile, 'utf8');
    fs.appendFileSync(pair.r2.configFile, 'key-load-delay 100\nloading-process-events-interval-bytes 1024\n');
    try {
      await pair.r2.restart(15_000, 'listening');
    } finally {
      fs.writeFileSync(pair.r2.configFile, conf);
    }
    const loading = await codeOf(a2.check(ctx, never));
    expect(loading.code).toBe(EHEALTH_UNHEALTHY);
    expect(loading.message).toMatch(
      new RegExp(
        `^Redis ${pair.r2.address} is loading its dataset: PING on Redis ${pair.r2.address} answered LOADING`,
      ),
    );
    await waitFor('r2 to have loaded', async () => (await pair.r2.ping()) === 'PONG', { timeoutMs: 15_000 });
    fs.rmSync(path.join(pair.r2.dir, 'dump.rdb'), { force: true });
    await pair.r1.command(['FLUSHALL']);
    await a2.follow(target(pair.r1), ctx, never);
    await pair.waitInSync(pair.r2);
  });

  it('a replica far behind the master it last saw is unhealthy and refuses promotion', async () => {
    // r2 replicates through a proxy that then swallows everything: the master goes on alone.
    const proxy = await TcpProxy.start(pair.r1.port);
    try {
      await pair.r2.command(['REPLICAOF', '127.0.0.1', String(proxy.port)]);
      await pair.waitInSync(pair.r2);
      const a2 = agentFor(pair.r2, { maximumLagOnFailover: 1000 });
      await a2.check(ctx, never);
      proxy.setBlackhole(true);
      await pair.r1.command(['SET', 'big', 'x'.repeat(10_000)]);
      // The new active's graceful fence reads the old master's final offset before demoting it.
      await a2.fenceGraceful(target(pair.r1), ctx, never);
      const unhealthy = await codeOf(a2.check(ctx, never));
      expect(unhealthy.code).toBe(EHEALTH_UNHEALTHY);
      expect(unhealthy.message).toMatch(
        new RegExp(
          `^replica Redis ${pair.r2.address} lags (\\d{5}) bytes behind master ${pair.r1.address} \\(its offset \\d+, seen \\d+ ms ago; ours \\d+\\); the limit, service.maximumLagOnFailover, is 1000$`,
        ),
      );
      const refused = await codeOf(a2.toActive(ctx, never));
      expect(refused.message).toMatch(/^refusing to promote: replica Redis .* lags \d{5} bytes behind/);
      expect(await write(pair.r2)).toMatch(/^READONLY/);
    } finally {
      await proxy.close();
    }
    await agentFor(pair.r1).toActive(ctx, never);
    await agentFor(pair.r2).follow(target(pair.r1), ctx, never);
    await pair.waitInSync(pair.r2);
  });

  it('AUTH: a wrong password is UNHEALTHY without the password in the message; no file is a config error', async () => {
    const wrong = path.join(dir, 'wrong.secret');
    fs.writeFileSync(wrong, 'not-the-password\n');
    const err = await codeOf(agentFor(pair.r1, { passwordFile: wrong }).check(ctx, never));
    expect(err.code).toBe(EHEALTH_UNHEALTHY);
    expect(err.message).toMatch(/WRONGPASS|NOAUTH/);
    expect(err.message).not.toContain('not-the-password');
    // A rewritten file is read at the next connection: no restart needed.
    fs.writeFileSync(wrong, `${PASSWORD}\n`);
    const fixed = agentFor(pair.r1, { passwordFile: wrong });
    await fixed.check(ctx, never);
    expect(() => agentFor(pair.r1, { passwordFile: path.join(dir, 'none') })).toThrow(ConfigError);
    expect(() => agentFor(pair.r1, { passwordFile: path.join(dir, 'none') })).toThrow(
      `service.passwordFile: ${JSON.stringify(path.join(dir, 'none'))} cannot be read (ENOENT)`,
    );
  });
});
