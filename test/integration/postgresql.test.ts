/**
 * The postgresql agent for real: two PostgreSQL 15 servers in synchronous streaming replication,
 * each driven by a real `hafc agent`, a real ZooKeeper ensemble, and a client writing numbered
 * rows throughout. One pair goes through every fault in turn (each starts from the state the
 * previous one left: that the old primary rejoins by itself is part of what is tested):
 * kill -9 of the primary server, kill -9 of the primary's agent, SIGSTOP of the primary's whole
 * "host" (server and agent) past the session timeout, a silent partition of the primary's agent
 * from ZooKeeper (its own proxies, blackholed), and a switchover. After each, the other
 * node is the primary, the old one streams from it, every acknowledged row is there, and the
 * checker (harness/pg-checker.ts) saw neither two primaries nor a stale acknowledged write.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgChecker } from '../../harness/pg-checker.js';
import { PgHa, type PgHaNode } from '../../harness/pg-cluster.js';
import { pgAvailable } from '../../harness/postgres.js';
import { waitFor } from '../../harness/wait.js';
import { ZkEnsemble } from '../../harness/zk-ensemble.js';

const SESSION_MS = 4000;
const measurements: Record<string, { failoverMs: number; unavailableMs: number }> = {};

describe.runIf(pgAvailable())('postgresql agent: synchronous pair under faults', () => {
  let zk: ZkEnsemble;
  let ha: PgHa;
  let checker: PgChecker;

  beforeAll(async () => {
    zk = await ZkEnsemble.start({ servers: 3 });
    ha = await PgHa.start({
      ensemble: zk,
      cluster: 'pg',
      synchronous: true,
      sessionTimeoutMs: SESSION_MS,
      ownProxies: true,
    });
    await ha.waitSettled('pg1');
    checker = await PgChecker.start(ha.group.servers);
    await waitFor('the first acknowledged rows', () => checker.acknowledged().length >= 5, {
      timeoutMs: 10_000,
    });
  }, 120_000);

  afterAll(async () => {
    await checker?.stop();
    await ha?.stop();
    await zk?.stop();
    console.log('postgresql failover measurements (ms):', JSON.stringify(measurements));
  }, 60_000);

  function primaryNode(): PgHaNode {
    const id = checker.currentPrimary();
    if (id === null) throw new Error('no primary');
    return ha.node(id);
  }

  /** The fault happened at t0: the other node must take over, the old one rejoin, no row lost. */
  async function expectFailover(name: string, from: PgHaNode, t0: number): Promise<void> {
    const to = ha.other(from.id);
    const promoted = await waitFor(
      `${to.id} to be promoted`,
      () => checker.promotions.find((p) => p.node === to.id && p.at >= t0),
      { timeoutMs: 30_000 },
    );
    await to.agent!.waitForRole('active', 15_000);
    // The old primary rejoins as a standby of the new one by itself, and writes resume.
    await ha.waitSettled(to.id, 60_000);
    await waitFor(`acknowledged writes on ${to.id}`, () => checker.acknowledgedSince(promoted.at) >= 5, {
      timeoutMs: 20_000,
    });
    expect(await checker.missing(to.server), `acknowledged rows missing on ${to.id}`).toEqual([]);
    expect(checker.violations, checker.describe()).toEqual([]);
    measurements[name] = { failoverMs: promoted.at - t0, unavailableMs: checker.unavailableMsAfter(t0) };
  }

  const diagnose = async (fn: () => Promise<void>): Promise<void> => {
    try {
      await fn();
    } catch (err) {
      console.log(`${checker.describe()}\n${ha.describe()}`);
      throw err;
    }
  };

  it(
    'kill -9 of the primary server: the standby takes over, the old one rewinds and rejoins',
    () =>
      diagnose(async () => {
        const from = primaryNode();
        const t0 = Date.now();
        from.server.kill9();
        await expectFailover('server kill -9', from, t0);
      }),
    120_000,
  );

  it(
    "kill -9 of the primary's agent: the new active fences the old primary before promoting",
    () =>
      diagnose(async () => {
        const from = primaryNode();
        const t0 = Date.now();
        await from.agent!.kill('SIGKILL');
        // The old server keeps running as a primary until the other node fences it.
        expect(await from.server.role()).toBe('primary');
        await waitFor(
          `${ha.other(from.id).id} to be promoted`,
          () => checker.promotions.find((p) => p.node !== from.id && p.at >= t0),
          { timeoutMs: 30_000 },
        );
        // The old server was alive and reachable: the graceful fence (over SQL) shut it down.
        await ha
          .other(from.id)
          .agent!.waitForLog('the graceful fence', (l) => l.msg === `fenced ${from.id} by method graceful`);
        // As systemd would: the agent comes back, and makes its server a standby of the new primary.
        ha.startAgent(from.id);
        await expectFailover('agent kill -9', from, t0);
      }),
    120_000,
  );

  it(
    "SIGSTOP of the primary's host past the session timeout, then SIGCONT",
    () =>
      diagnose(async () => {
        const from = primaryNode();
        const t0 = Date.now();
        from.server.signalAll('SIGSTOP');
        from.agent!.freeze();
        await waitFor(
          `${ha.other(from.id).id} to be promoted`,
          () => checker.promotions.find((p) => p.node !== from.id && p.at >= t0),
          { timeoutMs: 30_000 },
        );
        expect(Date.now() - t0).toBeGreaterThan(SESSION_MS / 2);
        from.server.signalAll('SIGCONT');
        from.agent!.thaw();
        await expectFailover('host freeze', from, t0);
      }),
    120_000,
  );

  it(
    "a silent partition of the primary's agent from ZooKeeper: it stops its own primary, the standby takes over",
    () =>
      diagnose(async () => {
        const from = primaryNode();
        const to = ha.other(from.id);
        const t0 = Date.now();
        const logsFrom = from.agent!.logs().length;
        // Only the agent's ZooKeeper traffic is dropped: the server still serves the writing
        // client and the other agent still reaches it, so the cut-off agent's own lease is what
        // must end the old primary's writes in time (the checker would see a stale write).
        ha.partition(from.id, true);
        try {
          await waitFor(
            `${to.id} to be promoted while ${from.id}'s agent is cut off`,
            () => checker.promotions.find((p) => p.node === to.id && p.at >= t0),
            { timeoutMs: 30_000 },
          );
          expect(
            from
              .agent!.logs()
              .slice(logsFrom)
              .some((l) => l.msg.includes('service -> standby')),
            "the cut-off agent's own demotion",
          ).toBe(true);
        } finally {
          ha.partition(from.id, false);
        }
        await expectFailover('silent partition of its agent', from, t0);
      }),
    120_000,
  );

  it(
    'switchover with hafc failover: the active stops first, the target promotes, the old one rejoins',
    () =>
      diagnose(async () => {
        const from = primaryNode();
        const to = ha.other(from.id);
        const t0 = Date.now();
        const r = await ha.hafc([
          'failover',
          '-c',
          from.configFile,
          '--to',
          to.id,
          '--wait',
          '--timeout',
          '30',
        ]);
        expect(r.stdout).toContain(to.id);
        await expectFailover('switchover', from, t0);
      }),
    120_000,
  );
});
