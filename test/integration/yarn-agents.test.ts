/**
 * Real hafc agents (the yarn-resourcemanager service agent) driving a REAL ResourceManager HA pair
 * through a real ZooKeeper. The split-brain check is built from the RMs' own view: both are asked
 * getServiceStatus every 50 ms on their admin addresses, and no sample may find two active. The
 * agents also check each RM's /isActive and /ws/v1/cluster/info against its RPC state. The cases
 * share one pair and run in order; each leaves both RMs and both agents up, one active.
 *
 * Gated on the cached YARN jars; under CI (which runs setup) a missing cache fails instead.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { yarnAvailable, YarnHaPair, type ResourceManagerProc } from '../../harness/yarn.js';
import { ZkEnsemble } from '../../harness/zk-ensemble.js';
import { IpcRemoteError } from '../../src/hadoop/ipc/errors.js';
import { HaDaemonAgents } from '../support/ha-daemon-agents.js';

const enabled = yarnAvailable() || process.env.CI === 'true';
const SESSION_MS = 4000;
// Longer than the harness's 60 s waits, so that a wait that fails says what it waited for.
vi.setConfig({ testTimeout: 150_000 });

describe.runIf(enabled)('hafc agents driving a real ResourceManager pair', () => {
  let pair: YarnHaPair;
  let zk: ZkEnsemble;
  let f: HaDaemonAgents<ResourceManagerProc>;

  beforeAll(async () => {
    [pair, zk] = await Promise.all([YarnHaPair.start(), ZkEnsemble.start({ servers: 1 })]);
    f = await HaDaemonAgents.start({
      cluster: 'yarn-it',
      kind: 'ResourceManager',
      daemons: [pair.rm1, pair.rm2],
      zk,
      sessionMs: SESSION_MS,
      haPort: (rm) => rm.adminPort,
      service: (rm) =>
        `{ agent: yarn-resourcemanager, rpcAddress: "${rm.adminAddress}", httpUrl: "${rm.webUrl}", user: hafc, requestTimeoutMs: 800, transitionTimeoutMs: 10000 }`,
    });
  }, 240_000);

  afterAll(async () => {
    await f?.stop();
    await pair?.stop();
    await zk?.stop();
  });

  const noDoubleActive = (): void => expect(f.doubleActive, 'samples where both RMs said active').toEqual([]);

  it('elects one active RM; the standby refuses a REQUEST_BY_ZKFC transition with automatic failover off', async () => {
    const active = await f.active();
    await f.settled(active);
    const standby = f.otherThan(active);
    const err = await f
      .client(standby)
      .transitionToActive('REQUEST_BY_ZKFC', { timeoutMs: 5000 })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(IpcRemoteError);
    expect((err as IpcRemoteError).errorMsg).toContain('denied since automatic failover is not enabled');
    expect(await f.stateOf(standby)).toBe('standby');
    noDoubleActive();
  });

  it('kill -9 of the active RM makes hafc promote the other', async () => {
    const first = await f.active();
    const other = f.otherThan(first);
    const t0 = Date.now();
    await first.kill('SIGKILL');
    const second = await f.active(first.id);
    console.log(`yarn: RM kill -9 -> the other active in ${Date.now() - t0} ms`);
    expect(second.id).toBe(other.id);
    await first.start();
    await f.settled(second);
    expect(await f.stateOf(first)).toBe('standby');
    noDoubleActive();
  });

  it('kill -9 of the active agent: the other RM active once the session expires, the old one fenced by transitionToStandby', async () => {
    const old = await f.active();
    const next = f.otherThan(old);
    const from = f.agentOf(next).logs().length;
    const t0 = Date.now();
    await f.agentOf(old).kill('SIGKILL');
    expect(await f.stateOf(old)).toBe('active');
    await f.active(old.id);
    const ms = Date.now() - t0;
    console.log(`yarn: active agent kill -9 -> the other RM active in ${ms} ms (session ${SESSION_MS} ms)`);
    expect(ms).toBeGreaterThanOrEqual(SESSION_MS - 1000);
    await f
      .agentOf(next)
      .waitForLog(
        `fenced ${old.id} by method graceful`,
        (l) => l.msg === `fenced ${old.id} by method graceful`,
        15_000,
        from,
      );
    expect(await f.stateOf(old)).toBe('standby');
    f.startAgent(old.id);
    await f.settled(next);
    noDoubleActive();
  });

  it('switchover with `hafc failover --to`: the active demotes first, the other promotes unfenced', async () => {
    const old = await f.active();
    const next = f.otherThan(old);
    const from = f.agentOf(next).logs().length;
    const out = await f.failover(old, next);
    expect(out).toMatch(
      new RegExp(`^switchover [0-9a-f]+ done: ${old.id} -> ${next.id}, handover \\d+ ms`, 'm'),
    );
    console.log(`yarn: ${out.trim()}`);
    expect(await f.stateOf(next)).toBe('active');
    expect(await f.stateOf(old)).toBe('standby');
    expect(f.agentOf(next).find((l) => l.msg === 'fencing the previous active', from)).toBeUndefined();
    await f.settled(next);
    noDoubleActive();
  });

  it('SIGSTOP of the active RM past the health timeout: its agent leaves the election, SIGCONT leaves it standby, the other active', async () => {
    const old = await f.lowPriorityActive();
    const next = f.otherThan(old);
    const t0 = Date.now();
    const demotionMs = await f.freezeUntilDemotion(old);
    console.log(`yarn: RM frozen -> its agent began demoting it after ${demotionMs} ms`);
    await f.active(old.id);
    console.log(`yarn: RM SIGSTOP -> the other active in ${Date.now() - t0} ms`);
    expect(await f.stateOf(old)).toBe('standby');
    await f.settled(next);
    noDoubleActive();
  });
});
