/**
 * The agent's HTTP listener on real `hafc agent` processes of a real cluster (real ZooKeeper,
 * real demo services): the endpoints as a load balancer sees them, `promtool check metrics` on a
 * live /metrics, a real Prometheus scraping both agents through a failover, hostile clients that
 * must not cost the active its role nor slow a failover, and a listener that cannot bind.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { agentConfigYaml } from '../../harness/agent-config.js';
import { AgentProc } from '../../harness/agent-proc.js';
import { repoRoot } from '../../harness/demo-service-proc.js';
import { HaCluster, type HaNode } from '../../harness/ha-cluster.js';
import { SharedResource } from '../../harness/shared-resource.js';
import { waitFor } from '../../harness/wait.js';
import { ZkEnsemble } from '../../harness/zk-ensemble.js';
import { request } from '../support/http-client.js';
import { PrometheusServer } from './prometheus-server.js';

const SESSION_MS = 4000;
let clusterSeq = 0;
const measurements: Record<string, number> = {};

/** The agent's bound listener, from its "HTTP listening" log line (control.listen is port 0). */
async function httpPort(node: HaNode): Promise<number> {
  const l = await node.agent!.waitForLog(
    'its HTTP address',
    (x) => typeof x.address === 'string' && x.msg.startsWith('HTTP listening on'),
  );
  return Number(/:(\d+)$/.exec(String(l.address))![1]);
}

function promtoolCheckMetrics(text: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const p = execFile('promtool', ['check', 'metrics'], { timeout: 20_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: stdout + stderr }),
    );
    p.stdin!.end(text);
  });
}

/**
 * Hostile clients against one port until stopped: `hold` connections re-opened as soon as the
 * server drops them (more than its connection limit), slow-loris requests trickling a header, and
 * a tight loop of /metrics and /status requests.
 */
function hostileClients(port: number, opts: { hold: number; loris: number; loop: number }) {
  let stopped = false;
  const sockets = new Set<net.Socket>();
  let opened = 0;
  let answered = 0;
  const open = (onOpen: (s: net.Socket) => void) => {
    if (stopped) return;
    const s = net.connect(port, '127.0.0.1');
    sockets.add(s);
    opened++;
    s.on('error', () => {});
    s.on('connect', () => onOpen(s));
    s.on('close', () => {
      sockets.delete(s);
      // Back at once, but never in the same tick: a flood, not a busy loop of our own.
      setTimeout(() => open(onOpen), 5);
    });
  };
  for (let i = 0; i < opts.hold; i++) open(() => {});
  for (let i = 0; i < opts.loris; i++)
    open((s) => {
      s.write('GET /status HTTP/1.1\r\nHost: x\r\nX-Slow: ');
      const t = setInterval(() => (s.writable ? s.write('a') : clearInterval(t)), 100);
      s.on('close', () => clearInterval(t));
    });
  const loops = Array.from({ length: opts.loop }, async (_, i) => {
    while (!stopped) {
      try {
        await request(port, i % 2 ? '/metrics' : '/status');
        answered++;
      } catch {
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  });
  return {
    stats: () => ({ opened, answered }),
    async stop() {
      stopped = true;
      for (const s of sockets) s.destroy();
      await Promise.all(loops);
    },
  };
}

describe('the agent HTTP listener on live agents', () => {
  let zk: ZkEnsemble;
  let resource: SharedResource;
  let cluster: HaCluster | null = null;
  let prom: PrometheusServer | null = null;

  beforeAll(async () => {
    zk = await ZkEnsemble.start({ servers: 1 });
  });

  afterAll(async () => {
    await zk?.stop();
    console.log('http listener measurements (ms):', JSON.stringify(measurements));
  });

  beforeEach(async () => {
    resource = await SharedResource.start();
  });

  afterEach(async (ctx) => {
    const diag = cluster?.describe();
    if (ctx.task.result?.state === 'fail') {
      if (diag) console.log(`agent logs of the failed test:\n${diag}`);
      if (prom) console.log(`prometheus log:\n${prom.log()}`);
    }
    await prom?.stop();
    prom = null;
    await cluster?.stop();
    cluster = null;
    await resource.close();
    if (resource.violations.length) throw new Error(`split brain!\n${resource.describeHistory()}\n${diag}`);
  });

  const start = () =>
    HaCluster.start({ ensemble: zk, resource, sessionTimeoutMs: SESSION_MS, cluster: `h${++clusterSeq}` });

  it('endpoints of an active and a standby agent; /metrics passes promtool check metrics', async () => {
    cluster = await start();
    const { active, standby } = await cluster.settled();
    const pa = await httpPort(active);
    const ps = await httpPort(standby);

    expect(await request(pa, '/active')).toMatchObject({ status: 200, body: 'active\n' });
    expect(await request(pa, '/standby')).toMatchObject({ status: 503, body: 'not standby (active)\n' });
    expect(await request(ps, '/active')).toMatchObject({ status: 503, body: 'not active (standby)\n' });
    expect(await request(ps, '/standby')).toMatchObject({ status: 200, body: 'standby\n' });
    expect(await request(pa, '/healthz')).toMatchObject({ status: 200, body: 'ok\n' });

    const st = JSON.parse((await request(pa, '/status')).body) as Record<string, unknown>;
    expect(st).toMatchObject({
      cluster: cluster.cluster,
      node: active.id,
      role: 'active',
      mayBeActive: true,
      health: 'HEALTHY',
      zookeeper: { state: 'connected' },
    });
    expect(String(st.epoch)).toMatch(/^[1-9][0-9]*$/);
    expect((st.lease as { remainingMs: number }).remainingMs).toBeGreaterThan(0);

    for (const [node, port] of [
      [active, pa],
      [standby, ps],
    ] as const) {
      const m = await request(port, '/metrics');
      expect(m.status).toBe(200);
      expect(m.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
      expect(m.body).toContain(
        `hafc_build_info{version="0.1.0",node="${node.id}",cluster="${cluster.cluster}"} 1`,
      );
      expect(m.body).toContain('hafc_zookeeper_connection_state{state="connected"} 1');
      const check = await promtoolCheckMetrics(m.body);
      expect(check, check.output).toEqual({ code: 0, output: '' });
    }
    const ma = (await request(pa, '/metrics')).body;
    expect(ma).toContain('hafc_role{role="active"} 1');
    expect(ma).toMatch(/\nhafc_lease_remaining_seconds \d/);
    expect(ma).toContain('hafc_transitions_total{to="active",result="ok"} 1');
    expect(ma).toMatch(/hafc_health_checks_total\{result="ok"\} [1-9]/);
    const ms = (await request(ps, '/metrics')).body;
    expect(ms).toContain('hafc_role{role="standby"} 1');
    expect(ms).not.toMatch(/\nhafc_lease_remaining_seconds \d/);

    // Without control.tokenFile the control calls are refused.
    expect((await request(pa, '/switchover', { method: 'POST', body: '{}' })).status).toBe(403);
  });

  it('a real Prometheus scrapes both agents and sees the role change of a failover', async () => {
    cluster = await start();
    const { active, standby } = await cluster.settled();
    const targets = [`127.0.0.1:${await httpPort(active)}`, `127.0.0.1:${await httpPort(standby)}`];
    prom = await PrometheusServer.start({
      targets,
      scrapeMs: 250,
      ruleFiles: [path.join(repoRoot(), 'monitoring/alerts.yaml')],
    });
    await prom.waitForQuery('both agents scraped', 'up{job="hafc"} == 1', (r) => r.length === 2);

    const byRole = 'hafc_role{role="active"} == 1';
    const nodeOf = `(${byRole}) * on(instance, job) group_left(node, cluster) hafc_build_info`;
    const first = await prom.waitForQuery(`${active.id} reported active`, nodeOf, (r) => r.length === 1);
    expect(first[0]!.metric).toMatchObject({ node: active.id, cluster: cluster.cluster, job: 'hafc' });
    // The recording rule of monitoring/alerts.yaml, evaluated by the real server.
    await prom.waitForQuery(
      'the cluster to count one active',
      'hafc_cluster:active_agents:sum',
      (r) => r.length === 1 && r[0]!.value[1] === '1' && r[0]!.metric.cluster === cluster!.cluster,
    );
    const standbyRole = await prom.query(
      `hafc_role{role="standby"} * on(instance, job) group_left(node) hafc_build_info`,
    );
    expect(standbyRole.find((s) => s.metric.node === standby.id)?.value[1]).toBe('1');

    // The active's service dies: the standby takes over, and Prometheus sees it.
    await active.service.kill('SIGKILL');
    await cluster.waitForActive(20_000, active.id);
    const after = await prom.waitForQuery(
      `${standby.id} reported active`,
      nodeOf,
      (r) => r.length === 1 && r[0]!.metric.node === standby.id,
    );
    expect(after[0]!.metric.cluster).toBe(cluster.cluster);
    await prom.waitForQuery(
      `${active.id} reported neutral`,
      `hafc_role{role="neutral"} * on(instance, job) group_left(node) hafc_build_info == 1`,
      (r) => r.some((s) => s.metric.node === active.id),
    );
    const acquired = await prom.waitForQuery(
      `${standby.id}'s lock acquisition counted`,
      'hafc_lock_acquisitions_total * on(instance, job) group_left(node) hafc_build_info',
      (r) => r.some((s) => s.metric.node === standby.id && s.value[1] === '1'),
    );
    expect(acquired.find((s) => s.metric.node === active.id)?.value[1]).toBe('1');
    const transitions = await prom.query(
      'hafc_transitions_total{to="active",result="ok"} * on(instance, job) group_left(node) hafc_build_info',
    );
    expect(transitions.find((s) => s.metric.node === standby.id)?.value[1]).toBe('1');
    // Two actives at most in the evaluations a failover spans. The two agents are scraped at
    // different moments, so the sum can read 2 for an evaluation or two around a failover (one
    // CI run: the old active scraped just before its demotion, the new one just after its
    // promotion; monitoring/alerts.yaml's HafcTwoActives has `for` for that reason). A real
    // overlap would show in every evaluation until it ended: count them, at the scrape step.
    const twoActive = await prom.query('sum_over_time((hafc_cluster:active_agents:sum > bool 1)[5m:250ms])');
    expect(twoActive.length).toBe(1);
    expect(Number(twoActive[0]!.value[1])).toBeLessThanOrEqual(2);
  });

  it('floods and slow clients on both listeners cost the active nothing, and failover works as usual', async () => {
    cluster = await start();
    const { active, standby } = await cluster.settled();
    const pa = await httpPort(active);
    const ps = await httpPort(standby);
    const logFrom = active.agent!.logs().length;
    const attack = [pa, ps].map((p) => hostileClients(p, { hold: 80, loris: 20, loop: 2 }));
    try {
      // Three session timeouts under attack: the active keeps its role and its one activation.
      const until = Date.now() + 3 * SESSION_MS;
      await waitFor('three session timeouts under attack', () => Date.now() >= until, {
        timeoutMs: 4 * SESSION_MS,
        intervalMs: 100,
      });
      expect(resource.holder()?.node).toBe(active.id);
      expect(active.agent!.role()).toBe('active');
      expect(standby.agent!.role()).toBe('standby');
      const roleChanges = active
        .agent!.logs()
        .slice(logFrom)
        .filter((l) => /^role /.test(l.msg));
      expect(roleChanges, cluster.describe()).toEqual([]);
      const stats = attack.map((a) => a.stats());
      // The attack really ran: far more connections than the limit, and answered requests.
      for (const s of stats) expect(s.opened).toBeGreaterThan(200);
      expect(stats.reduce((n, s) => n + s.answered, 0)).toBeGreaterThan(0);
      expect(
        active.agent!.find((l) => l.msg.startsWith('HTTP connections over the limit')),
        'the flood should have hit the connection limit',
      ).toBeDefined();

      // Still under attack: the active's service dies and the standby takes over in normal time.
      const t0 = resource.now();
      await active.service.kill('SIGKILL');
      await cluster.waitForActive(20_000, active.id);
      const take = resource.takes(standby.id).find((e) => e.at >= t0)!;
      measurements.serviceCrashUnderHttpFlood = Math.round(take.at - t0);
      measurements.floodConnectionsOpened = stats.reduce((n, s) => n + s.opened, 0);
      // Detection is health 200 ms x fall 2, then fencing and the hook: well under 5 s unloaded.
      expect(measurements.serviceCrashUnderHttpFlood).toBeLessThan(10_000);
    } finally {
      await Promise.all(attack.map((a) => a.stop()));
    }
    // Once the attack is over the listener serves again.
    await waitFor('the standby-turned-active to answer /active', async () => {
      try {
        return (await request(ps, '/active')).status === 200;
      } catch {
        return false;
      }
    });
    resource.assertNoViolations();
  });

  it('POST /switchover with the token hands over (202, zero overlap); a wrong token or none is refused', async () => {
    cluster = await HaCluster.start({
      ensemble: zk,
      resource,
      sessionTimeoutMs: SESSION_MS,
      cluster: `h${++clusterSeq}`,
      controlToken: 'tok-123',
    });
    const { active, standby } = await cluster.settled();
    const port = await httpPort(active);
    const post = (token?: string) =>
      request(port, '/switchover', {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: JSON.stringify({ reason: 'over http' }),
      });
    expect((await post()).status).toBe(401);
    expect((await post('tok-124')).status).toBe(401);
    expect(resource.takes(standby.id)).toEqual([]);
    // The standby publishes its role a step after taking it: retried while the answer is 409.
    const r = await waitFor('a 202 for the switchover', async () => {
      const x = await post('tok-123');
      return x.status === 409 ? undefined : x;
    });
    expect(r.status, r.body).toBe(202);
    expect(JSON.parse(r.body).message).toMatch(
      new RegExp(`^switchover [0-9a-f]+ requested: ${active.id} -> ${standby.id}`),
    );
    const next = await cluster.waitForActive(10_000, active.id);
    expect(next.id).toBe(standby.id);
    expect(standby.agent!.find((l) => l.msg === 'fencing the previous active')).toBeUndefined();
    resource.assertNoViolations();
  });

  it('an agent whose control.listen port is taken exits 2 at start, naming it, before it competes', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hafc-http-bind-'));
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const file = path.join(dir, 'a.yaml');
      const yaml = agentConfigYaml({
        cluster: 'bind',
        id: 'nn1',
        port: 1,
        connect: zk.connectString(),
        fencingMethods: ['- graceful'],
      }).replace('control: { listen: "127.0.0.1:0" }', `control: { listen: "127.0.0.1:${port}" }`);
      expect(yaml).toContain(`127.0.0.1:${port}`);
      fs.writeFileSync(file, yaml);
      const agent = AgentProc.start('nn1', file);
      const { code } = await agent.exited;
      expect(code, agent.rawOutput()).toBe(2);
      const line = agent.find((l) => l.msg === 'cannot start');
      expect(line?.error).toBe(
        `control.listen: cannot listen on 127.0.0.1:${port}: the address is already in use (another agent or program listens there) (EADDRINUSE)`,
      );
      expect(
        agent.find((l) => /^role /.test(l.msg) || l.msg.startsWith('hafc agent starting')),
      ).toBeUndefined();
    } finally {
      blocker.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
