/**
 * `hafc init` against a real ZooKeeper and real agents: it must never wipe a cluster whose agents
 * run (that hands the lock to a standby while the old active still serves), and it answers in one
 * line.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { hafcBin } from '../../harness/agent-proc.js';
import { HaCluster } from '../../harness/ha-cluster.js';
import { SharedResource } from '../../harness/shared-resource.js';
import { ZkEnsemble } from '../../harness/zk-ensemble.js';
import { openSession } from '../../src/zk/session.js';

const run = promisify(execFile);

async function hafc(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [hafcBin, ...args], { timeout: 20_000 });
    return { code: 0, ...r };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('hafc init', () => {
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
  afterEach(async () => {
    await cluster?.stop();
    cluster = null;
    await resource.close();
    resource.assertNoViolations();
  });

  it('--force --yes refuses while agents run, naming the lock holder and the live members; works once they stopped', async () => {
    cluster = await HaCluster.start({ ensemble: zk, resource, cluster: 'initc' });
    const { active, standby } = await cluster.settled();
    const s = await openSession({
      connect: zk.connectString(),
      sessionTimeoutMs: 4000,
      requestTimeoutMs: 2000,
    });
    try {
      const before = await s.exists('/hafc/initc/lock');
      const r = await hafc(['init', '--force', '--yes', '-c', active.configFile]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('refusing to wipe cluster initc');
      expect(r.stderr).toContain(`node ${active.id} at 127.0.0.1:${active.service.port}`);
      expect(r.stderr).toContain(`member ${active.id} is live`);
      expect(r.stderr).toContain(`member ${standby.id} is live`);
      expect(r.stderr).toContain('Stop every agent');
      expect(r.stdout).toBe('');
      // Nothing changed: same lock, the breadcrumb still there, the same node active.
      expect((await s.exists('/hafc/initc/lock'))?.czxid).toBe(before?.czxid);
      expect(await s.exists('/hafc/initc/breadcrumb')).not.toBeNull();
      expect(resource.holder()?.node).toBe(active.id);

      await Promise.all(cluster.nodes.map((n) => n.agent!.stop()));
      const again = await hafc(['init', '--force', '--yes', '-c', active.configFile]);
      expect(again).toMatchObject({ code: 0, stderr: '' });
      expect(again.stdout).toBe('initialised cluster initc at /hafc/initc\n');
      expect(await s.exists('/hafc/initc/breadcrumb')).toBeNull();
    } finally {
      await s.close();
    }
  });

  it('prints one line and nothing else when the cluster exists; --force without --yes is a usage error', async () => {
    cluster = await HaCluster.start({ ensemble: zk, resource, cluster: 'initd', nodes: 1 });
    const node = cluster.nodes[0]!;
    const r = await hafc(['init', '-c', node.configFile]);
    expect(r).toMatchObject({
      code: 0,
      stdout: 'cluster initd already initialised at /hafc/initd\n',
      stderr: '',
    });
    const u = await hafc(['init', '--force', '-c', node.configFile]);
    expect(u.code).toBe(2);
    expect(u.stderr).toContain('add --yes');
  });
});
