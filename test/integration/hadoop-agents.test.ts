/**
 * Real hafc agents (the hdfs-namenode service agent) driving a REAL NameNode HA pair (and one
 * DataNode) through a real ZooKeeper, in place of ZKFC. The split-brain check is built from the
 * NameNodes' own view: both are asked getServiceStatus every 50 ms, and no sample may find two
 * active. Each failure case writes a file through the active before it and reads it back through
 * the new active after it. The cases share one pair (JVM starts are slow on 2 cores) and run in
 * order; each leaves both NameNodes and both agents up, one active.
 *
 * Gated on the cached Hadoop jars; under CI (which runs setup) a missing cache fails instead.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { hadoopAvailable, HadoopHaPair, type NameNodeProc } from '../../harness/hadoop.js';
import { ZkEnsemble } from '../../harness/zk-ensemble.js';
import { HaDaemonAgents } from '../support/ha-daemon-agents.js';

const enabled = hadoopAvailable() || process.env.CI === 'true';
const SESSION_MS = 4000;
// Longer than the harness's 60 s waits, so that a wait that fails says what it waited for.
vi.setConfig({ testTimeout: 150_000 });

describe.runIf(enabled)('hafc agents in place of ZKFC on a real NameNode pair', () => {
  let pair: HadoopHaPair;
  let zk: ZkEnsemble;
  let f: HaDaemonAgents<NameNodeProc>;

  beforeAll(async () => {
    [pair, zk] = await Promise.all([
      HadoopHaPair.start({ dataNode: true }),
      ZkEnsemble.start({ servers: 1 }),
    ]);
    f = await HaDaemonAgents.start({
      cluster: 'hdfs-it',
      kind: 'NameNode',
      daemons: [pair.nn1, pair.nn2],
      zk,
      sessionMs: SESSION_MS,
      haPort: (nn) => nn.rpcPort,
      service: (nn) =>
        `{ agent: hdfs-namenode, rpcAddress: "${nn.rpcAddress}", user: hafc, requestTimeoutMs: 800, transitionTimeoutMs: 10000 }`,
    });
  }, 240_000);

  afterAll(async () => {
    await f?.stop();
    await pair?.stop();
    await zk?.stop();
  });

  const noDoubleActive = (): void =>
    expect(f.doubleActive, 'samples where both NameNodes said active').toEqual([]);

  /** A file written through `nn` now, to be read back through the next active. */
  const writeFile = async (nn: NameNodeProc, name: string): Promise<{ file: string; text: string }> => {
    const file = `/hafc-it/${name}.txt`;
    const text = `written through ${nn.id} before ${name} at ${new Date().toISOString()}\n`;
    await pair.webhdfsPut(nn, file, text);
    return { file, text };
  };

  it('elects one active NameNode; kill -9 of it makes hafc promote the other; HDFS keeps the file', async () => {
    // Either may win the start-up race (priority only holds a free lock back for a member that has
    // published itself).
    const first = await f.active();
    const other = f.otherThan(first);
    const { file, text } = await writeFile(first, 'nn-kill');
    const t0 = Date.now();
    await first.kill('SIGKILL');
    const second = await f.active(first.id);
    const ms = Date.now() - t0;
    console.log(`hdfs: NameNode kill -9 -> the other active in ${ms} ms`);
    expect(second.id).toBe(other.id);
    await f.agentOf(other).waitForRole('active');
    expect(await pair.webhdfsCat(second, file)).toBe(text);
    // Back to two: the restarted NameNode comes up standby and its agent stands by again.
    await first.start();
    await f.settled(second);
    expect(await f.stateOf(first)).toBe('standby');
    noDoubleActive();
  });

  it('kill -9 of the active agent: the other NameNode active once the session expires, the old one fenced by transitionToStandby', async () => {
    const old = await f.active();
    const next = f.otherThan(old);
    const { file, text } = await writeFile(old, 'agent-kill');
    const nextAgent = f.agentOf(next);
    const from = nextAgent.logs().length;
    const t0 = Date.now();
    await f.agentOf(old).kill('SIGKILL');
    // The NameNode itself is fine and stays active until the new active's fence reaches it.
    expect(await f.stateOf(old)).toBe('active');
    await f.active(old.id);
    const ms = Date.now() - t0;
    console.log(
      `hdfs: active agent kill -9 -> the other NameNode active in ${ms} ms (session ${SESSION_MS} ms)`,
    );
    expect(ms).toBeGreaterThanOrEqual(SESSION_MS - 1000);
    await nextAgent.waitForLog(
      `fenced ${old.id} by method graceful`,
      (l) => l.msg === `fenced ${old.id} by method graceful`,
      15_000,
      from,
    );
    expect(await f.stateOf(old)).toBe('standby');
    // Through the nameservice with the real Hadoop client: it finds the new active itself.
    const cat = await pair.dfs(['-cat', file]);
    expect(cat.code, cat.output).toBe(0);
    expect(cat.output).toContain(text.trim());
    // The restarted agent finds its NameNode standby and stands by.
    f.startAgent(old.id);
    await f.settled(next);
    noDoubleActive();
  });

  it('switchover with `hafc failover --to`: the active demotes first, the other promotes unfenced', async () => {
    const old = await f.active();
    const next = f.otherThan(old);
    const { file, text } = await writeFile(old, 'switchover');
    const from = f.agentOf(next).logs().length;
    const t0 = Date.now();
    const out = await f.failover(old, next);
    const ms = Date.now() - t0;
    expect(out).toMatch(
      new RegExp(`^switchover [0-9a-f]+ done: ${old.id} -> ${next.id}, handover \\d+ ms`, 'm'),
    );
    console.log(`hdfs: ${out.trim()} (CLI ${ms} ms)`);
    expect(await f.stateOf(next)).toBe('active');
    expect(await f.stateOf(old)).toBe('standby');
    expect(f.agentOf(next).find((l) => l.msg === 'fencing the previous active', from)).toBeUndefined();
    expect(await pair.webhdfsCat(next, file)).toBe(text);
    await f.settled(next);
    noDoubleActive();
  });

  // Was skipped under CI as a known defect (2 of 6 runs: no NameNode active within 60 s). Two
  // causes: the shared IPC connection (a health call timing out behind a slow promotion destroyed
  // it, and the promotion with it: agents/ha-service-agent.ts ownTransition); and this test
  // thawed the NameNode at "leaving the election", so a check passing right after SIGCONT could
  // make the node electable again before the elector acted on it, and it then rightly stayed
  // active. It thaws now once the demotion has been sent. And the frozen node is the
  // lower-priority one: a thawed nn1 (priority 10) took the free lock straight back in one CI
  // run, correctly, while nn2 deferred to it.
  it('SIGSTOP of the active NameNode past the health timeout: its agent demotes it, SIGCONT leaves it standby, the other active', async () => {
    const old = await f.lowPriorityActive();
    const next = f.otherThan(old);
    const { file, text } = await writeFile(old, 'sigstop');
    const t0 = Date.now();
    const demotionMs = await f.freezeUntilDemotion(old);
    console.log(`hdfs: NameNode frozen -> its agent began demoting it after ${demotionMs} ms`);
    await f.active(old.id);
    console.log(`hdfs: NameNode SIGSTOP -> the other active in ${Date.now() - t0} ms`);
    expect(await f.stateOf(old)).toBe('standby');
    expect(await pair.webhdfsCat(next, file)).toBe(text);
    await f.settled(next);
    noDoubleActive();
  });
});
