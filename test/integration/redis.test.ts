/**
 * Real hafc agents (the redis service agent) keep one master in a real Redis pair through
 * faults, under the servers' own split-brain checker (harness/redis-checker.ts): each server gets
 * a real write every 20 ms, and a client writes numbered keys with WAIT 1. After every fault the
 * other server is master, the old one is its replica again without a hand on it (a supervisor
 * restarts a dead server, as systemd would), no write was accepted by a server after the other
 * had been promoted, and every acknowledged write is on the master.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisChecker, checkerNow } from '../../harness/redis-checker.js';
import { RedisCluster } from '../../harness/redis-cluster.js';
import { redisAvailable, type RedisServer } from '../../harness/redis.js';
import { waitFor } from '../../harness/wait.js';
import { ZkEnsemble } from '../../harness/zk-ensemble.js';

const enabled = redisAvailable() || process.env.CI === 'true';
const SESSION_MS = 4000;

describe.runIf(enabled)('hafc agents on a real Redis pair', () => {
  let zk: ZkEnsemble;
  let c: RedisCluster;
  let checker: RedisChecker;

  beforeAll(async () => {
    zk = await ZkEnsemble.start({ servers: 1 });
    c = await RedisCluster.start({
      ensemble: zk,
      password: 'it-secret',
      sessionTimeoutMs: SESSION_MS,
      ownProxies: true,
    });
    await c.settled(30_000);
    checker = new RedisChecker(c.pair.servers).start();
  }, 90_000);

  afterAll(async () => {
    await checker?.stop();
    await c?.stop();
    await zk?.stop();
  });

  /** After a fault at t0: the other server is master with the old one its replica; no violation. */
  async function failedOver(old: RedisServer, t0: number, what: string): Promise<void> {
    const { master, replica } = await c.settled(30_000, old.id).catch((err: Error) => {
      throw new Error(`${err.message}\n${c.describe()}`);
    });
    expect(replica.id).toBe(old.id);
    const firstOk = checker.events.find((e) => e.node === master.id && e.result === 'OK' && e.sentAt > t0);
    console.log(
      `redis ${what}: ${old.id} -> ${master.id} accepts writes after ${Math.round((firstOk?.doneAt ?? NaN) - t0)} ms; ` +
        `client's longest outage ${Math.round(checker.longestOutageMs(t0))} ms`,
    );
    expect(checker.violations(), 'writes accepted by a server after the other was promoted').toEqual([]);
    await missingAcked(master);
  }

  async function missingAcked(master: RedisServer): Promise<void> {
    const acked = checker.acknowledged();
    expect(acked.length).toBeGreaterThan(0);
    const missing: string[] = [];
    for (let i = 0; i < acked.length; i += 500) {
      const keys = acked.slice(i, i + 500);
      const values = (await master.command(['MGET', ...keys], 3000)) as Array<string | null>;
      keys.forEach((k, j) => values[j] === null && missing.push(k));
    }
    expect(missing, 'acknowledged writes missing on the master').toEqual([]);
  }

  it('kill -9 of the master: the replica is promoted; the restarted server rejoins as replica', async () => {
    const { master } = await c.settled();
    // Enough written that the master's stream is past the lag limit: its restart comes back empty.
    await waitFor('300 acknowledged writes', () => checker.acknowledged().length >= 300, {
      timeoutMs: 20_000,
    });
    const t0 = checkerNow();
    await master.kill('SIGKILL');
    await failedOver(master, t0, 'master kill -9');
  });

  it("kill -9 of the master's agent: promoted after the session expires, the old master demoted first", async () => {
    const { master } = await c.settled();
    const agent = c.agent(master.id);
    const t0 = checkerNow();
    await agent.kill('SIGKILL');
    // The old master keeps taking writes until the new active fences it: that is no violation.
    await waitFor(
      'the other agent to be active',
      () => c.agent(c.pair.servers.find((s) => s !== master)!.id).role() === 'active',
      { timeoutMs: 20_000 },
    );
    c.startAgent(master.id);
    await failedOver(master, t0, 'agent kill -9');
  });

  it('SIGSTOP of the master host (server and agent) past the session timeout, then SIGCONT', async () => {
    const { master } = await c.settled();
    const agent = c.agent(master.id);
    const t0 = checkerNow();
    master.freeze();
    agent.freeze();
    const other = c.agent(c.pair.servers.find((s) => s !== master)!.id);
    try {
      await waitFor(
        'the other agent to be active while the host is frozen',
        () => other.role() === 'active',
        {
          timeoutMs: 20_000,
        },
      ).catch((err: Error) => {
        throw new Error(`${err.message}\n${c.describe()}`);
      });
    } finally {
      agent.thaw();
      if (master.isFrozen()) master.thaw();
    }
    await failedOver(master, t0, 'host freeze');
  });

  it("a silent partition of the master's agent from ZooKeeper: it demotes its server, the replica is promoted", async () => {
    const { master } = await c.settled();
    const agent = c.agent(master.id);
    const other = c.agent(c.pair.servers.find((s) => s !== master)!.id);
    const t0 = checkerNow();
    const from = agent.logs().length;
    c.partition(master.id, true);
    try {
      // Only the agent's ZooKeeper traffic is dropped: its server still serves clients and the
      // other agent can still reach it, so nothing but the agent's own lease keeps the old master
      // from taking writes after the promotion (and the graceful fence, if it comes first).
      await waitFor(
        'the other agent to be active while the master agent is cut off',
        () => other.role() === 'active',
        {
          timeoutMs: 20_000,
        },
      ).catch((err: Error) => {
        throw new Error(`${err.message}\n${c.describe()}`);
      });
      expect(
        agent
          .logs()
          .slice(from)
          .some((l) => l.msg.includes('service -> standby')),
        "the cut-off agent's own demotion",
      ).toBe(true);
    } finally {
      c.partition(master.id, false);
    }
    await failedOver(master, t0, 'silent partition of its agent from ZooKeeper');
  });

  it('a switchover hands the master role over', async () => {
    const { master, replica } = await c.settled();
    const t0 = checkerNow();
    const r = await c.hafcExit([
      'failover',
      '-c',
      c.configFile(master.id),
      '--to',
      replica.id,
      '--wait',
      '--timeout',
      '20',
    ]);
    expect(r.code, r.stderr).toBe(0);
    await failedOver(master, t0, 'switchover');
    expect(checker.writes().ok).toBeGreaterThan(100);
  });
});
