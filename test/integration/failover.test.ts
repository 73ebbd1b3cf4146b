/**
 * The failover paths of CONTRACT.md section 2, made to happen for real: real ZooKeeper ensemble,
 * real `hafc agent` processes, real demo services, real kill -9 / SIGSTOP / server loss. The
 * SharedResource is the split-brain checker: every test ends by asserting it never saw two
 * actives (nor a stale epoch taking over).
 */
import fs from 'node:fs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { HaCluster, KILL_BY_PIDFILE } from '../../harness/ha-cluster.js';
import { SharedResource } from '../../harness/shared-resource.js';
import { waitFor } from '../../harness/wait.js';
import { ZkEnsemble } from '../../harness/zk-ensemble.js';

const SESSION_MS = 4000;
let clusterSeq = 0;
const measurements: Record<string, number> = {};

/** From `t0` (the fault) to the moment `node`'s service took the shared resource. */
function failoverMs(resource: SharedResource, node: string, t0: number): number {
  const take = resource.takes(node).find((e) => e.at >= t0);
  if (!take)
    throw new Error(`${node} never took the resource after the fault\n${resource.describeHistory()}`);
  return Math.round(take.at - t0);
}

describe('failover with real agents on a real ZooKeeper', () => {
  let zk: ZkEnsemble;
  let resource: SharedResource;
  let cluster: HaCluster | null = null;

  beforeAll(async () => {
    zk = await ZkEnsemble.start({ servers: 3 });
  });

  afterAll(async () => {
    await zk?.stop();
    const out = process.env.HAFC_MEASUREMENTS_FILE;
    if (out) fs.writeFileSync(out, JSON.stringify(measurements, null, 2));
    console.log('failover measurements (ms):', JSON.stringify(measurements));
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

  const start = (opts: Partial<Parameters<typeof HaCluster.start>[0]> = {}) =>
    HaCluster.start({
      ensemble: zk,
      resource,
      sessionTimeoutMs: SESSION_MS,
      cluster: `c${++clusterSeq}`,
      ...opts,
    });

  it('elects exactly one active; a crashed active service is replaced', async () => {
    cluster = await start();
    const { active: first, standby: other } = await cluster.settled();
    expect((await first.service.role()).role).toBe('active');
    expect((await other.service.role()).role).toBe('standby');

    const t0 = resource.now();
    await first.service.kill('SIGKILL');
    const second = await cluster.waitForActive(20_000, first.id);
    expect(second.id).toBe(other.id);
    measurements.serviceCrash = failoverMs(resource, other.id, t0);
    await first.agent!.waitForRole('neutral');
    resource.assertNoViolations();
  });

  it('kill -9 of the active agent: the standby fences the old service and takes over after the session timeout', async () => {
    cluster = await start();
    const { active: first, standby: other } = await cluster.settled();

    const t0 = resource.now();
    await first.agent!.kill('SIGKILL');
    await cluster.waitForActive(SESSION_MS * 4, first.id);
    measurements.agentKill9 = failoverMs(resource, other.id, t0);
    // Fenced gracefully: the old service is alive and was told to stand by before the promotion.
    expect(first.service.hasExited()).toBe(false);
    expect((await first.service.role()).role).toBe('standby');
    const fenced = other.agent!.find((l) => /^fenced nn\d by method graceful$/.test(l.msg));
    expect(fenced, cluster.describe()).toBeDefined();
    resource.assertNoViolations();
  });

  it('kill -9 of the active agent and a restart within the session timeout: no failover (the session is resumed)', async () => {
    cluster = await start();
    const { active: first, standby: other } = await cluster.settled();
    const t0 = resource.now();
    await first.agent!.kill('SIGKILL');
    const agent = cluster.startAgent(first.id); // systemd's Restart=on-failure
    await agent.waitForLog('the resumed session', (l) => l.msg === 'decision: resumed', SESSION_MS * 2);
    measurements.agentRestartResumed = Math.round(resource.now() - t0);
    await agent.waitForRole('active');
    // Observe past the session timeout: the lock never went away, so the standby never moved.
    await waitFor('a session timeout to pass', () => resource.now() - t0 > SESSION_MS * 1.5 || undefined, {
      timeoutMs: SESSION_MS * 3,
    });
    expect(resource.takes(other.id).filter((e) => e.at >= t0)).toEqual([]);
    expect(other.agent!.find((l) => /^role \w+ -> active$/.test(l.msg))).toBeUndefined();
    expect(other.agent!.find((l) => l.msg === 'fencing the previous active')).toBeUndefined();
    expect(first.service.hasExited()).toBe(false);
    expect((await first.service.role()).role).toBe('active');
    // The service kept the resource throughout: no release, no new take.
    expect(resource.history.filter((e) => e.at >= t0 && e.node === first.id)).toEqual([]);
    resource.assertNoViolations();
  });

  it('SIGTERM of the active agent: it demotes cleanly, marks its breadcrumb demoted and closes its session, so the standby takes over without fencing', async () => {
    cluster = await start();
    const { active: first, standby: other } = await cluster.settled();
    const t0 = resource.now();
    expect(await first.agent!.stop()).toBe(0);
    await cluster.waitForActive(SESSION_MS * 2, first.id);
    measurements.cleanStop = failoverMs(resource, other.id, t0);
    expect((await first.service.role()).role).toBe('standby');
    // A breadcrumb marked by a cleanly demoted node: nothing to fence.
    await other.agent!.waitForLog('its activation after a clean stand-down', (l) =>
      String(l.reason ?? '').includes(`previous active ${first.id} stood down cleanly`),
    );
    expect(
      other.agent!.find((l) => l.msg === 'fencing the previous active'),
      cluster.describe(),
    ).toBeUndefined();
    resource.assertNoViolations();
  });

  it('SIGSTOP of the active agent past the session timeout: after SIGCONT the old agent never serves beside the new active', async () => {
    cluster = await start();
    const { active: first, standby: other } = await cluster.settled();

    const t0 = resource.now();
    first.agent!.freeze();
    await cluster.waitForActive(SESSION_MS * 4, first.id);
    measurements.agentSigstop = failoverMs(resource, other.id, t0);
    const mark = first.agent!.logs().length;
    first.agent!.thaw();
    // The thawed agent must notice its lease is long gone and demote (never re-promote).
    await first.agent!.waitForLog(
      'a demotion after thaw',
      (l) => /^role active -> (neutral|standby)$/.test(l.msg),
      15_000,
      mark,
    );
    await first.agent!.waitForRole('standby', 15_000);
    expect(resource.holder()?.node).toBe(other.id);
    expect((await first.service.role()).role).toBe('standby');
    resource.assertNoViolations();
  });

  it('a silent network partition of the active agent: it demotes within its lease, the standby takes over after expiry', async () => {
    cluster = await start({ ownProxies: true });
    const { active: first, standby: other } = await cluster.settled();

    const t0 = resource.now();
    cluster.partition(first.id, true);
    // The library would keep saying "connected" (no read timeout); our lease must not.
    await resource.waitForHolder(null, SESSION_MS * 2);
    const release = resource.history.find((e) => e.at >= t0 && e.node === first.id && e.kind === 'release');
    expect(release, resource.describeHistory()).toBeDefined();
    measurements.partitionDemotion = Math.round(release!.at - t0);
    // Safety: the old active stood down before its session could have expired on the server.
    expect(release!.at - t0).toBeLessThan(SESSION_MS);
    await cluster.waitForActive(SESSION_MS * 4, first.id);
    measurements.partitionFailover = failoverMs(resource, other.id, t0);
    expect(first.agent!.find((l) => l.msg.startsWith('lease expired'))).toBeDefined();

    // Healing the partition: the old agent comes back as a standby, never a second active.
    cluster.partition(first.id, false);
    await first.agent!.waitForRole('standby', SESSION_MS * 4);
    expect(resource.holder()?.node).toBe(other.id);
    resource.assertNoViolations();
  });

  it('a hung active service (NOT_RESPONDING): its agent gives the lock up before its demotion; the standby fences it, then takes over', async () => {
    cluster = await start();
    const { active: first, standby: other } = await cluster.settled();
    const t0 = resource.now();
    // /health and /role hang; /write still answers, so the checker sees any overlap.
    await first.service.setHang(true);
    const second = await cluster.waitForActive(20_000, first.id);
    expect(second.id).toBe(other.id);
    measurements.serviceHang = failoverMs(resource, other.id, t0);
    // The lock went before the demotion was tried (that call can only time out on a hung service)...
    expect(
      first.agent!.find((l) => l.msg.startsWith('released the lock before demoting')),
      cluster.describe(),
    ).toBeDefined();
    // ...so the breadcrumb stayed unmarked and the new active fenced the old one first.
    expect(other.agent!.find((l) => l.msg === 'fencing the previous active')).toBeDefined();
    expect(other.agent!.find((l) => String(l.reason ?? '').includes('stood down cleanly'))).toBeUndefined();
    resource.assertNoViolations();
  });

  it('"both standby" cannot persist: a service demoted behind the agent\'s back is re-elected with a new epoch', async () => {
    cluster = await start();
    const first = await cluster.waitForActive();
    const { epoch } = await first.service.role();
    // Someone (an operator, a crash-restart of the service) demotes the active service directly.
    expect((await first.service.setRole('standby', epoch, 'operator')).status).toBe(200);
    const next = await waitFor(
      'an active service again, with a new epoch',
      () => {
        const h = resource.holder();
        return h && h.epoch > BigInt(epoch) ? h : null;
      },
      { timeoutMs: 15_000 },
    );
    expect(next.epoch).toBeGreaterThan(BigInt(epoch));
    expect(
      first.agent!.find((l) => l.msg.startsWith('service reports standby while this node holds the lock')),
    ).toBeDefined();
    resource.assertNoViolations();
  });

  it("a standby service promoted behind the agent's back is demoted by its agent", async () => {
    // This test makes a split brain on purpose (by hand), so its services report elsewhere.
    const scratch = await SharedResource.start();
    try {
      cluster = await start({ resource: scratch });
      const { active: first, standby: other } = await cluster.settled();
      expect((await other.service.setRole('active', '9223372036854775807', 'operator')).status).toBe(200);
      await other.agent!.waitForLog(
        'the demotion of its service',
        (l) => l.msg === 'service reports active but this node does not hold the lock: demoting it',
      );
      await waitFor(
        'the hand-promoted service to be standby again',
        async () => (await other.service.role()).role === 'standby',
        {
          timeoutMs: 10_000,
        },
      );
      expect(other.agent!.role()).toBe('standby');
      expect((await first.service.role()).role).toBe('active');
    } finally {
      await cluster?.stop();
      cluster = null;
      await scratch.close();
    }
  });

  it('the fencing script gets the target in HAFC_TARGET_* and ZKFC variable names', async () => {
    cluster = await start({ fencingMethods: () => [`- shell: ${JSON.stringify(KILL_BY_PIDFILE)}`] });
    const { active: first, standby: other } = await cluster.settled();
    await first.agent!.kill('SIGKILL');
    await cluster.waitForActive(SESSION_MS * 4, first.id);
    const env = cluster.fenceEnv(other.id, first.id);
    expect(env, 'fence hook wrote no environment dump').not.toBeNull();
    expect(env!.HAFC_TARGET_ID).toBe(first.id);
    expect(env!.HAFC_TARGET_HOST).toBe('127.0.0.1');
    expect(env!.HAFC_TARGET_PORT).toBe(String(first.service.port));
    expect(env!.HAFC_TARGET_ADDRESS).toBe(`127.0.0.1:${first.service.port}`);
    expect(env!.target_host).toBe('127.0.0.1');
    expect(env!.target_port).toBe(String(first.service.port));
    expect(env!.target_address).toBe(`127.0.0.1:${first.service.port}`);
    expect(env!.HAFC_CLUSTER).toBe(cluster.cluster);
    expect(env!.HAFC_NODE_ID).toBe(other.id);
    expect(BigInt(env!.HAFC_TARGET_EPOCH!)).toBeGreaterThan(0n);
    expect(BigInt(env!.HAFC_EPOCH!)).toBeGreaterThan(BigInt(env!.HAFC_TARGET_EPOCH!));
    // The old service was killed by the fence, then the new one took over.
    await first.service.exited;
    resource.assertNoViolations();
  });

  it('when every fencing method fails nobody is promoted, and the reason is logged', async () => {
    cluster = await start({ fencingMethods: () => ['- shell: "echo no power switch here >&2; exit 1"'] });
    const { active: first, standby: other } = await cluster.settled();
    await first.agent!.kill('SIGKILL');
    const line = await other.agent!.waitForLog(
      'a refusal to promote',
      (l) => l.msg === 'not promoted' && String(l.reason).includes(`fencing of previous active ${first.id}`),
      SESSION_MS * 4,
    );
    expect(String(line.reason)).toContain('failed by every method');
    // It keeps trying after its back-off, and keeps refusing: the old service stays the only active.
    const mark = other.agent!.logs().length;
    await other.agent!.waitForLog(
      'a second refusal after back-off',
      (l) => l.msg === 'not promoted',
      10_000,
      mark,
    );
    expect(resource.holder()?.node).toBe(first.id);
    expect(resource.takes(other.id)).toHaveLength(0);
    expect(other.agent!.role()).not.toBe('active');
    resource.assertNoViolations();
  });

  it('garbage in the breadcrumb: no promotion, a clear error naming the znode; an operator fix recovers', async () => {
    cluster = await start({ nodes: 1 });
    const only = cluster.nodes[0]!;
    await cluster.waitForActive();
    // Kill the agent, then corrupt the breadcrumb it left behind.
    await only.agent!.kill('SIGKILL');
    const { openSession } = await import('../../src/zk/session.js');
    const s = await openSession({
      connect: zk.connectString(),
      sessionTimeoutMs: 4000,
      requestTimeoutMs: 2000,
    });
    const bcPath = `/hafc/${cluster.cluster}/breadcrumb`;
    try {
      await s.setData(bcPath, Buffer.from('\u0000garbage{not json'), -1);
      // A member znode of a foreign shape must not disturb anything either.
      await s.create(`/hafc/${cluster.cluster}/members/zz`, Buffer.from('[1,2,3]'), { mode: 'persistent' });
      const agent = cluster.startAgent(only.id);
      const line = await agent.waitForLog(
        'a refusal naming the breadcrumb',
        (l) => l.msg === 'not promoted' && String(l.reason).includes(bcPath),
        SESSION_MS * 4,
      );
      expect(String(line.reason)).toContain('not JSON');
      expect(agent.hasExited()).toBe(false);
      await s.remove(bcPath, -1);
      await waitFor(
        'the agent to promote after the breadcrumb was removed',
        () => agent.role() === 'active',
        {
          timeoutMs: 15_000,
        },
      );
      expect(agent.find((l) => String(l.problem ?? '').includes('members/zz'))).toBeDefined();
    } finally {
      await s.close();
    }
    resource.assertNoViolations();
  });

  it('a foreign persistent znode on the lock path: nobody becomes active, the agents stay up', async () => {
    cluster = await start({ nodes: 2 });
    const first = await cluster.waitForActive();
    const { openSession } = await import('../../src/zk/session.js');
    const s = await openSession({
      connect: zk.connectString(),
      sessionTimeoutMs: 4000,
      requestTimeoutMs: 2000,
    });
    const lockPath = `/hafc/${cluster.cluster}/lock`;
    try {
      // Stop both agents cleanly (the lock goes with their sessions), then plant a foreign node.
      for (const n of cluster.nodes) await n.agent!.stop();
      await waitFor('the lock to be released', async () => (await s.exists(lockPath)) === null);
      await s.create(lockPath, Buffer.alloc(300_000, 0x41), { mode: 'persistent' });
      const a = cluster.startAgent(first.id);
      await a
        .waitForLog(
          'an error about the foreign lock',
          (l) => l.msg === 'decision: foreign-lock' && l.level === 'error',
          SESSION_MS * 3,
        )
        .catch((e: unknown) => {
          throw new Error(`${String(e)}\n${a.rawOutput().slice(-3000)}`);
        });
      expect(a.role()).not.toBe('active');
      await s.remove(lockPath, -1);
      await a.waitForRole('active', 15_000);
    } finally {
      await s.close();
    }
    resource.assertNoViolations();
  });

  it('with zookeeper.auth every cluster znode is writable only with the credentials', async () => {
    cluster = await start({ zkAuth: 'hafc:s3cret-pw' });
    const first = await cluster.waitForActive();
    const base = `/hafc/${cluster.cluster}`;
    const { openSession } = await import('../../src/zk/session.js');
    const { ZkError } = await import('../../src/errors.js');
    const s = await openSession({
      connect: zk.connectString(),
      sessionTimeoutMs: 4000,
      requestTimeoutMs: 2000,
    });
    const code = (p: Promise<unknown>) =>
      p.then(
        () => 'ok',
        (err: unknown) => (err instanceof ZkError ? err.zkCode : String(err)),
      );
    try {
      // Readable by anyone (hafc status from any host), changeable by nobody else.
      expect(await s.exists(`${base}/lock`)).not.toBeNull();
      expect(await code(s.getData(`${base}/breadcrumb`))).toBe('ok');
      expect(await code(s.remove(`${base}/lock`, -1))).toBe('NO_AUTH');
      expect(await code(s.setData(`${base}/breadcrumb`, Buffer.from('x'), -1))).toBe('NO_AUTH');
      expect(await code(s.create(`${base}/members/intruder`, null))).toBe('NO_AUTH');
      const { acl } = await s.getACL(`${base}/lock`);
      expect(acl.map((a) => `${a.scheme}:${a.id.split(':')[0]}:${a.perms}`).sort()).toEqual([
        'digest:hafc:31',
        'world:anyone:1',
      ]);
    } finally {
      await s.close();
    }
    expect(first.agent!.find((l) => l.msg.includes('does not protect the cluster'))).toBeUndefined();
    resource.assertNoViolations();
  });

  it('a noFailover node never takes the lock', async () => {
    cluster = await start({ noFailover: ['nn2'] });
    const nn1 = cluster.node('nn1');
    const nn2 = cluster.node('nn2');
    await cluster.waitForActive();
    expect(resource.holder()?.node).toBe('nn1');
    const { openSession } = await import('../../src/zk/session.js');
    const s = await openSession({
      connect: zk.connectString(),
      sessionTimeoutMs: 4000,
      requestTimeoutMs: 2000,
    });
    try {
      await nn1.agent!.kill('SIGKILL');
      await nn1.service.kill('SIGKILL');
      await waitFor(
        "nn1's lock to expire",
        async () => (await s.exists(`/hafc/${cluster!.cluster}/lock`)) === null,
        {
          timeoutMs: SESSION_MS * 3,
        },
      );
      // An observation window, not synchronisation: several election rechecks long.
      const until = Date.now() + 3000;
      let lockTaken = false;
      await waitFor(
        'the observation window to end (or the lock to be taken)',
        async () => {
          lockTaken = (await s.exists(`/hafc/${cluster!.cluster}/lock`)) !== null;
          return lockTaken || Date.now() > until;
        },
        { timeoutMs: 6000, intervalMs: 100 },
      );
      expect(lockTaken, 'the noFailover node took the lock').toBe(false);
    } finally {
      await s.close();
    }
    expect(resource.takes('nn2')).toHaveLength(0);
    expect(nn2.agent!.role()).not.toBe('active');
    resource.assertNoViolations();
  });

  /** nn1, nn2 priority 0 and nn3 priority 100; nn3 healthy only after one of the others is active. */
  async function priorityCluster(): Promise<{ c: HaCluster; a: string; b: string }> {
    const c = await start({
      nodes: 3,
      priorities: [0, 0, 100],
      beforeAgents: (cl) => cl.node('nn3').service.setHealthy(false),
    });
    const active = await c.waitForActive();
    expect(active.id).not.toBe('nn3');
    const b = active.id === 'nn1' ? 'nn2' : 'nn1';
    await c.node(b).agent!.waitForRole('standby');
    await c.node('nn3').service.setHealthy(true);
    await c.node('nn3').agent!.waitForRole('standby');
    // The others defer to what nn3's member znode says, which it writes just after its role
    // changes: wait until the znode says healthy, or a freeze right now would catch the old one.
    await waitFor('nn3 published as a healthy standby', async () => {
      const r = await c.hafc(['status', '--json', '-c', c.node('nn3').configFile]);
      const m = (JSON.parse(r.stdout) as { members: { node: string; health: string; role: string }[] })
        .members;
      return m.some((x) => x.node === 'nn3' && x.health === 'HEALTHY' && x.role === 'STANDBY');
    });
    return { c, a: active.id, b };
  }

  it('a free lock goes to the highest-priority healthy candidate', async () => {
    const { c, a, b } = await priorityCluster();
    cluster = c;
    await c.node(a).service.kill('SIGKILL');
    const next = await c.waitForActive(20_000, a);
    expect(next.id).toBe('nn3');
    expect(resource.takes(b)).toHaveLength(0);
    resource.assertNoViolations();
  });

  it('a higher-priority candidate that does not claim within the grace period is passed over', async () => {
    const { c, a, b } = await priorityCluster();
    cluster = c;
    // nn3 stays a healthy member in ZooKeeper (its znode lives until its session expires) but
    // cannot act: the lower-priority standby must wait out the grace, then take over.
    c.node('nn3').agent!.freeze();
    await c.node(a).service.kill('SIGKILL');
    const next = await c.waitForActive(20_000, a);
    expect(next.id).toBe(b);
    expect(
      c
        .node(b)
        .agent!.find(
          (l) => l.msg === 'decision: deferring' && String(l.reason).includes('higher-priority nn3'),
        ),
      c.describe(),
    ).toBeDefined();
    c.node('nn3').agent!.thaw();
    await c.node('nn3').agent!.waitForRole('standby', 20_000);
    expect(resource.holder()?.node).toBe(b);
    resource.assertNoViolations();
  });

  it('losing the ZooKeeper quorum under demote: the active demotes itself before its session can expire', async () => {
    cluster = await start();
    const first = await cluster.waitForActive();
    const t0 = resource.now();
    await Promise.all([zk.servers[1]!.kill(), zk.servers[2]!.kill()]);
    await resource.waitForHolder(null, SESSION_MS * 2);
    const released = resource.history.find(
      (e) => e.at >= t0 && (e.kind === 'release' || e.kind === 'disconnect'),
    );
    expect(released?.node).toBe(first.id);
    // The safety property itself: demoted within the session timeout of the last possible reply.
    measurements.quorumLossDemotion = Math.round(released!.at - t0);
    expect(released!.at - t0).toBeLessThan(SESSION_MS);
    await Promise.all([zk.servers[1]!.restart(), zk.servers[2]!.restart()]);
    await zk.waitForQuorum(30_000);
    await cluster.waitForActive(30_000);
    resource.assertNoViolations();
  });

  it('losing the ZooKeeper quorum under hold: the active keeps serving, nobody else is promoted', async () => {
    cluster = await start({ policy: 'hold' });
    const first = await cluster.waitForActive();
    await cluster.nodes.find((n) => n.id !== first.id)!.agent!.waitForRole('standby');
    await Promise.all([zk.servers[1]!.kill(), zk.servers[2]!.kill()]);
    const t0 = Date.now();
    let holderSeen: string | undefined = first.id;
    await waitFor(
      '1.5 session timeouts to pass (or the holder to change)',
      () => {
        holderSeen = resource.holder()?.node;
        return holderSeen !== first.id || Date.now() - t0 > SESSION_MS * 1.5;
      },
      { timeoutMs: SESSION_MS * 3, intervalMs: 50 },
    );
    expect(holderSeen, 'under hold the active must keep serving through the quorum loss').toBe(first.id);
    await Promise.all([zk.servers[1]!.restart(), zk.servers[2]!.restart()]);
    await zk.waitForQuorum(30_000);
    await cluster.waitForActive(30_000);
    // Settled: exactly the agent whose service holds the resource is active, the other standby.
    await waitFor(
      'one agent active (holding the resource) and the other standby',
      () => {
        const h = resource.holder()?.node;
        return h && cluster!.nodes.every((n) => n.agent!.role() === (n.id === h ? 'active' : 'standby'));
      },
      { timeoutMs: 30_000 },
    );
    // With hold, the agent that kept its service active re-takes the lock itself: no failover.
    expect(resource.holder()?.node).toBe(first.id);
    resource.assertNoViolations();
  });
});
