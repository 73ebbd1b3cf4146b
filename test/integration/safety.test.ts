/**
 * Regressions of the safety review (issue 6) and the hostile tester (issue 7), made to happen with
 * real agents, real demo services and a real ZooKeeper. Every test ends with the split-brain
 * checker (SharedResource) having seen no two actives.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AgentProc } from '../../harness/agent-proc.js';
import { HaCluster } from '../../harness/ha-cluster.js';
import { SharedResource } from '../../harness/shared-resource.js';
import { TcpProxy } from '../../harness/tcp-proxy.js';
import { waitFor } from '../../harness/wait.js';
import { ZkEnsemble } from '../../harness/zk-ensemble.js';
import { openSession } from '../../src/zk/session.js';

let seq = 0;

describe('safety with real agents', () => {
  let resource: SharedResource;
  let cluster: HaCluster | null = null;
  const extra: AgentProc[] = [];

  beforeEach(async () => {
    resource = await SharedResource.start();
  });

  afterEach(async (ctx) => {
    const diag = cluster?.describe();
    if (ctx.task.result?.state === 'fail' && diag) console.log(`agent logs of the failed test:\n${diag}`);
    await Promise.all(extra.splice(0).map((a) => a.stop()));
    await cluster?.stop();
    cluster = null;
    await resource.close();
    if (resource.violations.length) throw new Error(`split brain!\n${resource.describeHistory()}\n${diag}`);
  });

  describe('on a 3-server ensemble', () => {
    let zk: ZkEnsemble;
    beforeAll(async () => {
      zk = await ZkEnsemble.start({ servers: 3 });
    });
    afterAll(async () => {
      await zk?.stop();
    });

    it('issue 7.4 / 6.2: a second agent with the same config exits 2 naming the live session; the first stays active, no flapping', async () => {
      cluster = await HaCluster.start({ ensemble: zk, resource, cluster: `dup${++seq}`, nodes: 2 });
      const { active } = await cluster.settled();
      const takes = resource.takes(active.id).length;
      const twin = AgentProc.start(`${active.id}-twin`, active.configFile, { HAFC_TEST_DIR: cluster.dir });
      extra.push(twin);
      await waitFor('the twin agent to exit', () => twin.hasExited(), { timeoutMs: 15_000 });
      expect((await twin.exited).code).toBe(2);
      const refusal = twin.find((l) => l.msg === 'refusing to run: duplicate node id');
      expect(refusal, twin.rawOutput().slice(-3000)).toBeDefined();
      expect(String(refusal!.reason)).toContain(`node id ${active.id}`);
      expect(String(refusal!.reason)).toMatch(/another live agent \(session [0-9a-f]{16}/);
      expect(twin.find((l) => l.msg === 'acquired the lock')).toBeUndefined();
      // The first one never noticed: still active, with its one activation.
      expect(resource.holder()?.node).toBe(active.id);
      expect(resource.takes(active.id)).toHaveLength(takes);
      expect(active.agent!.role()).toBe('active');
    });

    it('issue 7.2: the breadcrumb deleted under a live active is rewritten at once', async () => {
      cluster = await HaCluster.start({ ensemble: zk, resource, cluster: `bcgone${++seq}` });
      const { active } = await cluster.settled();
      const path = `/hafc/${cluster.cluster}/breadcrumb`;
      const s = await openSession({
        connect: zk.connectString(),
        sessionTimeoutMs: 4000,
        requestTimeoutMs: 2000,
      });
      try {
        const before = JSON.parse(String((await s.getData(path)).data)) as { epoch: string; session: string };
        await s.remove(path, -1);
        const removedAt = performance.now();
        const back = await waitFor(
          'the breadcrumb to be back',
          async () => {
            const st = await s.exists(path);
            return st
              ? (JSON.parse(String((await s.getData(path)).data)) as { id: string; epoch: string })
              : null;
          },
          { timeoutMs: 5000, intervalMs: 20 },
        );
        expect(back).toMatchObject({ id: active.id, epoch: before.epoch });
        expect(performance.now() - removedAt).toBeLessThan(1000);
        expect(active.agent!.find((l) => l.msg === 'decision: breadcrumb-repaired')).toBeDefined();
        expect(active.agent!.role()).toBe('active');
      } finally {
        await s.close();
      }
    });

    it('issue 7.12: 3000 junk member znodes: at most ten warnings and a summary, not one per znode per round', async () => {
      cluster = await HaCluster.start({ ensemble: zk, resource, cluster: `junk${++seq}` });
      const { active, standby } = await cluster.settled();
      const s = await openSession({
        connect: zk.connectString(),
        sessionTimeoutMs: 10_000,
        requestTimeoutMs: 5000,
      });
      const members = `/hafc/${cluster.cluster}/members`;
      try {
        const creates: Promise<unknown>[] = [];
        for (let i = 0; i < 1500; i++) {
          creates.push(
            s.create(`${members}/junk${i}`, Buffer.from('{"formatVersion":1,"kind":"member"}'), {
              mode: 'ephemeral',
            }),
          );
          creates.push(
            s.create(`${members}/big${i}`, Buffer.from(JSON.stringify({ priority: 1e9 })), {
              mode: 'persistent',
            }),
          );
        }
        await Promise.all(creates);
        const mark = standby.agent!.logs().length;
        const t0 = resource.now();
        await active.service.kill('SIGKILL');
        await cluster.waitForActive(20_000, active.id);
        const took = resource.takes(standby.id).find((e) => e.at >= t0)!.at - t0;
        // Measured, not asserted (timing goals live in the benchmark): ~0.8-1.0 s here, was 4 s.
        console.log(`failover with 3000 junk members: ${Math.round(took)} ms`);
        const logged = standby.agent!.logs().slice(mark);
        expect(logged.filter((l) => l.msg === 'ignoring a member znode').length).toBeLessThanOrEqual(10);
        expect(
          logged.filter((l) => /^ignoring \d+ more member znodes/.test(l.msg)).length,
        ).toBeLessThanOrEqual(1);
      } finally {
        await s.close();
      }
    });

    it('issue 6.6: a child znode under the breadcrumb does not wedge anything: clean demotion, failover, rejoin', async () => {
      cluster = await HaCluster.start({ ensemble: zk, resource, cluster: `bcchild${++seq}` });
      const { active, standby } = await cluster.settled();
      const s = await openSession({
        connect: zk.connectString(),
        sessionTimeoutMs: 4000,
        requestTimeoutMs: 2000,
      });
      try {
        await s.create(`/hafc/${cluster.cluster}/breadcrumb/child`, null);
      } finally {
        await s.close();
      }
      const mark = active.agent!.logs().length;
      await active.service.setHealthy(false);
      await cluster.waitForActive(20_000, active.id);
      expect(resource.holder()?.node).toBe(standby.id);
      // It stood down cleanly, so the new active did not need to fence it.
      await standby.agent!.waitForLog('its activation after a clean stand-down', (l) =>
        String(l.reason ?? '').includes(`previous active ${active.id} stood down cleanly`),
      );
      await active.service.setHealthy(true);
      await active.agent!.waitForRole('standby', 20_000);
      const failures = active
        .agent!.logs()
        .slice(mark)
        .filter((l) => l.msg === 'election step failed; retrying');
      expect(failures, cluster.describe()).toEqual([]);
    });
  });

  describe('a follower cut off from its quorum', () => {
    it('issue 6.1: the active connected only to it demotes within its lease; no overlap with a no-op fence', async () => {
      // ZooKeeper lets a cut-off follower serve reads for syncLimit x tickTime = 10 s; the leader
      // expires the session of a client connected only to it after the session timeout (4 s).
      const zk = await ZkEnsemble.start({ servers: 3, tickTimeMs: 500, syncLimit: 20, isolatable: 2 });
      try {
        cluster = await HaCluster.start({
          ensemble: zk,
          resource,
          cluster: `isolated${++seq}`,
          priorities: [10, 0],
          connectFor: (id) => (id === 'nn1' ? zk.connectStringFor([2]) : zk.connectStringFor([0, 1])),
          // ZKFC's documented self-fencing for storage that fences itself: it proves nothing here.
          fencingMethods: () => ['- shell: "true"'],
        });
        let { active, standby } = await cluster.settled();
        if (active.id !== 'nn1') {
          // nn2 won the start-up race before nn1 published itself: hand over cleanly.
          await active.agent!.stop();
          cluster.startAgent(active.id);
          ({ active, standby } = await cluster.settled());
        }
        expect(active.id).toBe('nn1');
        const t0 = resource.now();
        zk.isolate(2, true);
        await cluster.waitForActive(20_000, active.id);
        const released = resource.history.find(
          (e) => e.at >= t0 && e.node === active.id && (e.kind === 'release' || e.kind === 'disconnect'),
        );
        const taken = resource.takes(standby.id).find((e) => e.at >= t0);
        expect(released, resource.describeHistory()).toBeDefined();
        expect(taken).toBeDefined();
        // The old active stood down before the new one started, by its lease (not by the
        // follower giving up at 10 s).
        expect(released!.at).toBeLessThan(taken!.at);
        expect(released!.at - t0).toBeLessThan(4000);
        console.log(
          `isolated follower: old active released at +${Math.round(released!.at - t0)} ms, ` +
            `new active took at +${Math.round(taken!.at - t0)} ms`,
        );
        zk.isolate(2, false);
        await active.agent!.waitForRole('standby', 30_000);
        expect(resource.holder()?.node).toBe(standby.id);
      } finally {
        await cluster?.stop();
        cluster = null;
        await zk.stop();
      }
    });
  });

  describe('messages an operator can act on', () => {
    it('issue 7.14: an agent of a cluster not initialised says so once, and joins once hafc init ran', async () => {
      const zk = await ZkEnsemble.start({ servers: 1 });
      try {
        cluster = await HaCluster.start({
          ensemble: zk,
          resource,
          cluster: `noinit${++seq}`,
          nodes: 1,
          init: false,
        });
        const node = cluster.nodes[0]!;
        await node.agent!.waitForLog(
          'the not-initialised error',
          (l) => l.msg.includes('is not initialised'),
          15_000,
        );
        await new Promise((r) => setTimeout(r, 3000)); // what it logs while it waits
        const noise = node.agent!.logs().filter((l) => l.level === 'error' || l.level === 'warn');
        expect(noise.map((l) => l.msg)).toEqual([
          `cluster ${cluster.cluster} is not initialised: its znode does not exist`,
          'decision: not-initialised',
        ]);
        expect(String(noise[0]!.fix)).toContain('hafc init');
        await cluster.hafc(['init', '-c', node.configFile]);
        await node.agent!.waitForRole('active', 15_000);
      } finally {
        await cluster?.stop();
        cluster = null;
        await zk.stop();
      }
    });
  });

  describe('stopping while ZooKeeper cannot be reached', () => {
    it('SIGTERM during a connection attempt ends the agent at once (not after the attempt times out)', async () => {
      const zk = await ZkEnsemble.start({ servers: 1 });
      try {
        // A server that accepts TCP and never answers: each attempt would last a session timeout.
        const silent = await TcpProxy.start(zk.servers[0]!.clientPort);
        silent.setBlackhole(true);
        try {
          cluster = await HaCluster.start({
            ensemble: zk,
            resource,
            cluster: `nozk${++seq}`,
            nodes: 1,
            init: false,
            sessionTimeoutMs: 10_000,
            connectFor: () => `127.0.0.1:${silent.port}`,
          });
          const node = cluster.nodes[0]!;
          await node.agent!.waitForLog('a connection attempt', (l) => l.msg === 'connecting', 15_000);
          // SIGKILLed (exit code null) if it does not end within 3 s, a third of one attempt.
          expect(await node.agent!.stop(3000)).toBe(0);
        } finally {
          await silent.close();
        }
      } finally {
        await cluster?.stop();
        cluster = null;
        await zk.stop();
      }
    });
  });

  describe('on servers whose maxSessionTimeout clamps what agents ask for', () => {
    it('issue 6.5: a clamped session that still leaves a lease: timers follow the negotiated timeout, no flapping', async () => {
      const zk = await ZkEnsemble.start({ servers: 1, maxSessionTimeoutMs: 4000 });
      try {
        cluster = await HaCluster.start({
          ensemble: zk,
          resource,
          cluster: `clamp${++seq}`,
          sessionTimeoutMs: 8000,
        });
        const { active } = await cluster.settled();
        const negotiated = active.agent!.find((l) => l.msg === 'ZooKeeper session established');
        expect(negotiated?.negotiatedTimeoutMs).toBe(4000);
        const t0 = resource.now();
        await new Promise((r) => setTimeout(r, 12_000)); // an observation window: nothing must happen
        expect(resource.history.filter((e) => e.at >= t0)).toEqual([]);
        expect(active.agent!.role()).toBe('active');
        expect(active.agent!.find((l) => l.msg.startsWith('lease expired'))).toBeUndefined();
      } finally {
        await cluster?.stop();
        cluster = null;
        await zk.stop();
      }
    });

    it('issue 6.5: a clamped session too short for a lease: NEUTRAL, never takes the lock, says what to change', async () => {
      const zk = await ZkEnsemble.start({ servers: 1, maxSessionTimeoutMs: 2500 });
      try {
        cluster = await HaCluster.start({ ensemble: zk, resource, cluster: `short${++seq}`, nodes: 1 });
        const node = cluster.nodes[0]!;
        const line = await node.agent!.waitForLog(
          'the lease-too-short decision',
          (l) => l.msg === 'decision: lease-too-short',
          15_000,
        );
        expect(String(line.reason)).toContain('negotiated session timeout 2500 ms');
        expect(String(line.reason)).toContain('raise maxSessionTimeout');
        expect(line.level).toBe('error');
        await new Promise((r) => setTimeout(r, 3000));
        expect(node.agent!.find((l) => l.msg === 'acquired the lock')).toBeUndefined();
        expect(resource.holder()).toBeNull();
        expect(node.agent!.logs().filter((l) => l.msg === 'decision: lease-too-short')).toHaveLength(1);
      } finally {
        await cluster?.stop();
        cluster = null;
        await zk.stop();
      }
    });
  });
});
