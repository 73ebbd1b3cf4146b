/**
 * Operator verbs against real agents on a real ZooKeeper, under the split-brain checker:
 * `hafc failover` (graceful switchover: zero overlap, handover printed), refused with exit 4 and a
 * per-candidate explanation, `--dry-run`; `hafc pause` stopping an automatic failover that would
 * otherwise happen and `hafc resume` letting it happen.
 */
import fs from 'node:fs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { HaCluster } from '../../harness/ha-cluster.js';
import { SharedResource } from '../../harness/shared-resource.js';
import { waitFor } from '../../harness/wait.js';
import { ZkEnsemble } from '../../harness/zk-ensemble.js';
import { decodeControl, decodeHistory } from '../../src/zk/records.js';
import { openSession } from '../../src/zk/session.js';

const SESSION_MS = 4000;
let seq = 0;
const measurements: Record<string, number> = {};

describe('operator verbs with real agents on a real ZooKeeper', () => {
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
    console.log('switchover measurements (ms):', JSON.stringify(measurements));
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
    HaCluster.start({ ensemble: zk, resource, sessionTimeoutMs: SESSION_MS, cluster: `sw${++seq}`, ...opts });

  /** A znode's data as the test's own ZooKeeper session reads it (null when empty). */
  async function znode(path: string): Promise<Buffer | null> {
    const s = await openSession({
      connect: zk.connectString(),
      sessionTimeoutMs: 10_000,
      requestTimeoutMs: 5000,
    });
    try {
      return (await s.getData(path)).data;
    } finally {
      await s.close();
    }
  }

  /** Waits until every agent's member record shows the role it has (they publish it a step later). */
  async function membersShow(roles: Record<string, string>): Promise<void> {
    await waitFor(`member records to show ${JSON.stringify(roles)}`, async () => {
      for (const [id, role] of Object.entries(roles)) {
        const data = await znode(`/hafc/${cluster!.cluster}/members/${id}`).catch(() => null);
        if (!data || JSON.parse(data.toString()).role !== role) return undefined;
      }
      return true;
    });
  }

  it('failover --wait: the active demotes first, the target promotes unfenced, zero overlap, handover printed', async () => {
    cluster = await start();
    const { active, standby } = await cluster.settled();
    await membersShow({ [active.id]: 'ACTIVE', [standby.id]: 'STANDBY' });
    const t0 = resource.now();
    const r = await cluster.hafcExit([
      'failover',
      '-c',
      active.configFile,
      '--wait',
      '--reason',
      'kernel upgrade',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const m = new RegExp(
      `^switchover [0-9a-f]+ done: ${active.id} -> ${standby.id}, handover (\\d+) ms \\(${active.id} standby -> ${standby.id} active\\), epoch \\d+$`,
    ).exec(r.stdout.trim());
    expect(m, r.stdout).not.toBeNull();
    measurements.switchoverHandover = Number(m![1]);
    const take = resource.takes(standby.id).find((e) => e.at >= t0);
    expect(take, resource.describeHistory()).toBeDefined();
    measurements.switchoverTotal = Math.round(take!.at - t0);
    expect((await active.service.role()).role).toBe('standby');
    expect(standby.agent!.find((l) => l.msg === 'fencing the previous active')).toBeUndefined();
    // The old active stays standby (it does not take the lock back).
    await active.agent!.waitForRole('standby');
    // The control znode says done; the history has the request and both halves.
    const control = decodeControl('control', await znode(`/hafc/${cluster.cluster}/control`));
    expect(control?.switchover).toBeUndefined();
    expect(control?.lastSwitchover).toMatchObject({ outcome: 'done', from: active.id, to: standby.id });
    const { record } = decodeHistory('history', await znode(`/hafc/${cluster.cluster}/history`));
    const events = record.entries.map((e) => `${e.event}${e.node ? ` ${e.node}` : ''}`);
    expect(events.slice(-3)).toEqual([
      'switchover-requested',
      `demoted ${active.id}`,
      `activated ${standby.id}`,
    ]);
    expect(record.entries.at(-1)).toMatchObject({ reason: 'kernel upgrade', fenced: [] });
    resource.assertNoViolations();
  });

  it('no eligible target: exit 4 with the reason of each candidate; --dry-run changes nothing', async () => {
    cluster = await start({ noFailover: ['nn2'], priorities: [10, 0] });
    const active = await cluster.waitForActive();
    expect(active.id).toBe('nn1');
    await cluster.node('nn2').agent!.waitForRole('neutral');
    await membersShow({ nn1: 'ACTIVE', nn2: 'NEUTRAL' });
    const r = await cluster.hafcExit(['failover', '-c', active.configFile]);
    expect(r.code, r.stdout + r.stderr).toBe(4);
    expect(r.stderr).toContain('no member is eligible to take over');
    expect(r.stderr).toMatch(
      /nn2 {2}priority 0 {2}not eligible: noFailover is set; not standing by \(NEUTRAL/,
    );
    const toSelf = await cluster.hafcExit(['failover', '-c', active.configFile, '--to', 'nn1']);
    expect(toSelf.code).toBe(4);
    expect(toSelf.stderr).toContain('nn1 is already the active node');
    const ghost = await cluster.hafcExit(['failover', '-c', active.configFile, '--to', 'nn9', '--json']);
    expect(ghost.code).toBe(4);
    expect(JSON.parse(ghost.stdout)).toMatchObject({
      requested: false,
      problem: expect.stringContaining('nn9 is not a live member'),
    });
    const before = await znode(`/hafc/${cluster.cluster}/control`);
    const dry = await cluster.hafcExit([
      'failover',
      '--zk',
      zk.connectString(),
      '--cluster',
      cluster.cluster,
      '--dry-run',
    ]);
    expect(dry.code).toBe(4); // still nobody eligible
    expect(await znode(`/hafc/${cluster.cluster}/control`)).toEqual(before);
    expect(resource.takes('nn2')).toEqual([]);
  });

  it('--dry-run with an eligible target explains and changes nothing', async () => {
    cluster = await start();
    const { active, standby } = await cluster.settled();
    await membersShow({ [active.id]: 'ACTIVE', [standby.id]: 'STANDBY' });
    const before = await znode(`/hafc/${cluster.cluster}/control`);
    const r = await cluster.hafcExit(['failover', '-c', active.configFile, '--dry-run']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`${standby.id}  priority 0  eligible`);
    expect(r.stdout).toContain(`would ask ${active.id} to hand over to ${standby.id}`);
    expect(await znode(`/hafc/${cluster.cluster}/control`)).toEqual(before);
    expect((await active.service.role()).role).toBe('active');
  });

  it('pause stops an automatic failover that would otherwise happen; resume lets it happen', async () => {
    cluster = await start();
    const { active, standby } = await cluster.settled();
    const p = await cluster.hafcExit(['pause', '-c', active.configFile, '--reason', 'storage work']);
    expect(p.code, p.stderr).toBe(0);
    expect(p.stdout).toContain('paused');
    for (const n of [active, standby])
      await n.agent!.waitForLog('the pause', (l) => l.msg.startsWith('cluster paused'));
    // A second pause is a no-op that says so.
    expect((await cluster.hafcExit(['pause', '-c', active.configFile])).stdout).toContain(
      'already paused by',
    );
    // The active's service dies: unpaused, the standby would be active within a second.
    await active.service.kill('SIGKILL');
    await active.agent!.waitForLog('health leaving HEALTHY', (l) => l.msg === 'leaving the election');
    const fromHere = active.agent!.logs().length;
    // Observe a window of several health intervals and election steps: nobody is promoted.
    await new Promise((r) => setTimeout(r, 3000));
    expect(resource.takes(standby.id)).toEqual([]);
    expect(active.agent!.find((l) => /^role active -> /.test(l.msg), fromHere)).toBeUndefined();
    const failover = await cluster.hafcExit(['failover', '-c', active.configFile]);
    expect(failover.code).toBe(4);
    expect(failover.stderr).toContain('the cluster is paused');
    const t0 = resource.now();
    const r = await cluster.hafcExit(['resume', '-c', active.configFile]);
    expect(r.code, r.stderr).toBe(0);
    const next = await cluster.waitForActive(SESSION_MS * 3, active.id);
    expect(next.id).toBe(standby.id);
    measurements.resumeToActive = Math.round(resource.takes(standby.id).find((e) => e.at >= t0)!.at - t0);
    await waitFor('the history to show pause and resume', async () => {
      const { record } = decodeHistory('history', await znode(`/hafc/${cluster!.cluster}/history`));
      const ev = record.entries.map((e) => e.event);
      return ev.includes('paused') && ev.includes('resumed') ? true : undefined;
    });
    resource.assertNoViolations();
  });
});
