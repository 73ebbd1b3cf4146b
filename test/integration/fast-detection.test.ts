/**
 * Fast crash detection on real agents (health.fastIntervalMs, health.pidFile): a real ZooKeeper,
 * real `hafc agent` processes, real demo services killed with kill -9, the SharedResource
 * checking for split brain. The assertions are on what the agents logged they decided (which
 * path saw the crash), never on how fast: the timing is the benchmark's (bench/README.md).
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FAST_HEALTH } from '../../harness/agent-config.js';
import type { LogLine } from '../../harness/agent-proc.js';
import { HaCluster } from '../../harness/ha-cluster.js';
import { SharedResource } from '../../harness/shared-resource.js';
import { ZkEnsemble } from '../../harness/zk-ensemble.js';

const SESSION_MS = 4000;
let clusterSeq = 0;

const isUnhealthy = (l: LogLine) => l.msg === 'health HEALTHY -> UNHEALTHY';

describe('fast crash detection with real agents', () => {
  let zk: ZkEnsemble;
  let resource: SharedResource;
  let cluster: HaCluster | null = null;

  beforeAll(async () => {
    zk = await ZkEnsemble.start({ servers: 1 });
  });

  afterAll(async () => {
    await zk?.stop();
  });

  beforeEach(async () => {
    resource = await SharedResource.start();
  });

  afterEach(async (ctx) => {
    const diag = cluster?.describe();
    if (ctx.task.result?.state === 'fail' && diag) console.log(`agent logs of the failed test:\n${diag}`);
    await cluster?.stop();
    cluster = null;
    await resource.close();
    if (resource.violations.length) throw new Error(`split brain!\n${resource.describeHistory()}\n${diag}`);
  });

  const start = (health: Parameters<typeof HaCluster.start>[0]['health']) =>
    HaCluster.start({
      ensemble: zk,
      resource,
      sessionTimeoutMs: SESSION_MS,
      cluster: `fast${++clusterSeq}`,
      health,
    });

  it('a refused health check is re-probed at fastIntervalMs, and the crash fails over', async () => {
    cluster = await start(() => ({ fastIntervalMs: 25 }));
    const { active, standby } = await cluster.settled();
    const from = active.agent!.logs().length;
    await active.service.kill('SIGKILL');
    expect((await cluster.waitForActive(20_000, active.id)).id).toBe(standby.id);

    const down = await active.agent!.waitForLog('the health verdict', isUnhealthy, 10_000, from);
    // Proof, and it came on the fast interval: fall 2 = the first failure, then one fast check.
    expect(['refused', 'reset']).toContain(down.definite);
    expect(down.fastChecks).toBe(1);
    const decision = active.agent!.find((l) => String(l.msg).includes('failed definitely'), from);
    expect(decision, cluster.describe()).toMatchObject({ fastIntervalMs: 25 });
    expect(String(decision?.msg)).toMatch(/next check in 25 ms instead of 200 \(1\/2 before UNHEALTHY\)$/);
    await active.agent!.waitForRole('neutral');
    resource.assertNoViolations();
  });

  it('with the fast profile the pid watch sees the exit and the service is unhealthy at once', async () => {
    cluster = await start(() => FAST_HEALTH);
    const { active, standby } = await cluster.settled();
    const from = active.agent!.logs().length;
    const pid = active.service.pid;
    await active.service.kill('SIGKILL');
    expect((await cluster.waitForActive(20_000, active.id)).id).toBe(standby.id);

    const down = await active.agent!.waitForLog('the health verdict', isUnhealthy, 10_000, from);
    expect(down.definite).toBe('exited');
    expect(down.consecutive).toBe(2);
    // The demo service's parent (this test process) may not have reaped it yet: a zombie has
    // exited too, and says so.
    const reason = `health.pidFile ${cluster.pidFile(active.id)}: process ${pid} is not running`;
    expect([`${reason} (no such process)`, `${reason} (exited, not yet reaped)`]).toContain(down.reason);
    // Which of the pid watch's poll or a check due at that moment looked first varies (the poll
    // usually, every 25 ms against every 200 ms); the verdict is the pid's either way: 'exited'.
    await active.agent!.waitForRole('neutral');
    resource.assertNoViolations();
  });

  it('a service that answers unhealthy takes no fast path: fall checks at intervalMs', async () => {
    cluster = await start(() => FAST_HEALTH);
    const { active, standby } = await cluster.settled();
    const from = active.agent!.logs().length;
    await active.service.setHealthy(false);
    expect((await cluster.waitForActive(20_000, active.id)).id).toBe(standby.id);

    const down = await active.agent!.waitForLog('the health verdict', isUnhealthy, 10_000, from);
    expect(down.definite).toBeUndefined();
    expect(down.fastChecks).toBeUndefined();
    expect(active.agent!.find((l) => String(l.msg).includes('failed definitely'), from)).toBeUndefined();
    // The process is still there: the pid watch said nothing.
    expect(active.agent!.find((l) => String(l.msg).startsWith('health.pidFile'), from)).toBeUndefined();
    resource.assertNoViolations();
  });
});
