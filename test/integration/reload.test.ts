/**
 * SIGHUP reload (issue 9 item 6) on real `hafc agent` processes and real ZooKeeper: what may
 * change live changes without a new session, a new epoch or a transition; what may not is
 * refused with the old config left in force. The lock's znode is read directly: its ephemeral
 * owner is the holder's session, its czxid the epoch.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AgentProc, hafcBin, type LogLine } from '../../harness/agent-proc.js';
import { HaCluster } from '../../harness/ha-cluster.js';
import { SharedResource } from '../../harness/shared-resource.js';
import { waitFor } from '../../harness/wait.js';
import { ZkEnsemble } from '../../harness/zk-ensemble.js';
import { openSession } from '../../src/zk/session.js';
import type { ZkSession } from '../../src/zk/types.js';

const SESSION_MS = 4000;
const HEALTH_LINE = 'health: { intervalMs: 200, timeoutMs: 300, fall: 2, rise: 1 }';
let seq = 0;
const measurements: Record<string, number> = {};

/** Rewrites a config file with `from` replaced by `to` (which must be there). */
function edit(file: string, from: string, to: string): void {
  const text = fs.readFileSync(file, 'utf8');
  if (!text.includes(from)) throw new Error(`${file} has no ${JSON.stringify(from)}:\n${text}`);
  fs.writeFileSync(file, text.replace(from, to));
}

const isReloadOutcome = (l: LogLine) => /^reload of .* (applied|refused|nothing changed)/.test(l.msg);

/** Sends SIGHUP and waits for the reload's one outcome line. */
async function reload(agent: AgentProc): Promise<LogLine> {
  const from = agent.logs().length;
  const t0 = performance.now();
  agent.child.kill('SIGHUP');
  const line = await agent.waitForLog('the outcome of the reload', isReloadOutcome, 10_000, from);
  const ms = Math.round(performance.now() - t0);
  measurements.slowestReloadMs = Math.max(measurements.slowestReloadMs ?? 0, ms);
  return line;
}

const roleLines = (agent: AgentProc, from: number) =>
  agent
    .logs()
    .slice(from)
    .filter((l) => /^role /.test(l.msg) || /^service -> /.test(l.msg));

describe('SIGHUP reload', () => {
  let zk: ZkEnsemble;
  let s: ZkSession;
  let resource: SharedResource;
  let cluster: HaCluster | null = null;

  beforeAll(async () => {
    zk = await ZkEnsemble.start();
    s = await openSession({ connect: zk.connectString(), sessionTimeoutMs: 4000, requestTimeoutMs: 2000 });
  });

  afterAll(async () => {
    await s?.close();
    await zk?.stop();
    console.log('reload measurements (ms):', JSON.stringify(measurements));
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

  /** nn1 active (nn2 unhealthy until then), nn2 standby; `nn1Health` replaces nn1's health line. */
  const start = async (nn1Health?: string) => {
    const c = await HaCluster.start({
      ensemble: zk,
      resource,
      sessionTimeoutMs: SESSION_MS,
      cluster: `rl${++seq}`,
      beforeAgents: async (c) => {
        if (nn1Health) edit(c.node('nn1').configFile, HEALTH_LINE, nn1Health);
        await c.node('nn2').service.setHealthy(false);
      },
    });
    cluster = c;
    await resource.waitForHolder('nn1', 20_000);
    await c.node('nn2').service.setHealthy(true);
    await c.node('nn2').agent!.waitForRole('standby');
    const { active } = await c.settled();
    expect(active.id).toBe('nn1');
    return { c, active };
  };

  const lockOf = async (c: HaCluster) => {
    const st = await s.exists(`/hafc/${c.cluster}/lock`);
    return st && { owner: st.ephemeralOwner, epoch: st.czxid };
  };
  const memberOf = async (c: HaCluster, id: string) =>
    JSON.parse(String((await s.getData(`/hafc/${c.cluster}/members/${id}`)).data)) as {
      priority: number;
      session: string;
    };

  it('an ACTIVE agent takes a new health interval and priority: same session, same epoch, no transition', async () => {
    const checks = path.join(os.tmpdir(), `hafc-reload-checks-${process.pid}-${seq + 1}`);
    fs.rmSync(checks, { force: true });
    const health = (intervalMs: number) =>
      `health: { intervalMs: ${intervalMs}, timeoutMs: 300, fall: 2, rise: 1, check: { command: "date +%s%N >> ${checks}" } }`;
    const { c, active } = await start(health(160));
    const agent = active.agent!;
    const lock = await lockOf(c);
    expect(lock).not.toBeNull();
    const from = agent.logs().length;

    edit(active.configFile, health(160), health(700));
    edit(active.configFile, 'priority: 0', 'priority: 42');
    const reloadedAt = Date.now();
    const line = await reload(agent);
    // fastIntervalMs defaults to intervalMs / 4 at most 50, so it changes with it (40 -> 50).
    expect(line.msg).toBe(
      `reload of ${active.configFile} applied: node.priority, health.intervalMs, health.fastIntervalMs`,
    );
    expect(line.changed).toEqual(['node.priority', 'health.intervalMs', 'health.fastIntervalMs']);

    const member = await waitFor('members/nn1 to show priority 42', async () => {
      const m = await memberOf(c, 'nn1');
      return m.priority === 42 ? m : null;
    });
    expect(member.session).toBe(lock!.owner);
    // Checks after the reload come 700 ms apart (start to start), not 160.
    const stamps = await waitFor(
      'five health checks after the reload',
      () => {
        const all = fs.existsSync(checks) ? fs.readFileSync(checks, 'utf8').trim().split('\n') : [];
        const after = all.map((t) => Number(BigInt(t) / 1_000_000n)).filter((ms) => ms > reloadedAt + 800);
        return after.length >= 5 ? after : null;
      },
      { timeoutMs: 10_000 },
    );
    const gaps = stamps.slice(1).map((t, i) => t - stamps[i]!);
    const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length;
    measurements.checkGapAfterReloadMs = Math.round(mean);
    expect(mean).toBeGreaterThan(600);
    expect(mean).toBeLessThan(1000);

    expect(await lockOf(c)).toEqual(lock);
    expect(roleLines(agent, from)).toEqual([]);
    expect(agent.role()).toBe('active');
    expect(resource.holder()?.node).toBe('nn1');
    expect(resource.takes('nn1')).toHaveLength(1);
    fs.rmSync(checks, { force: true });
  });

  it('a changed zookeeper.connect refuses the whole reload; the agent goes on with the old one', async () => {
    const { c, active } = await start();
    const agent = active.agent!;
    const lock = await lockOf(c);
    const from = agent.logs().length;
    const old = zk.connectString();
    edit(active.configFile, `connect: ${old}`, 'connect: 127.0.0.1:1');
    edit(active.configFile, 'priority: 0', 'priority: 9');
    const line = await reload(agent);
    expect(line.level).toBe('error');
    expect(line.msg).toBe(
      `reload of ${active.configFile} refused, the configuration in force stays: restart needed to change ` +
        `zookeeper.connect "${old}" -> "127.0.0.1:1" (the ZooKeeper session is opened with it at start)`,
    );
    expect(line.refused).toEqual(['zookeeper.connect']);
    // Nothing of the file took effect, not even the live priority.
    expect((await memberOf(c, 'nn1')).priority).toBe(0);
    // Still the same session on the old servers: a failover away works, and it stands by, through it.
    expect(await lockOf(c)).toEqual(lock);
    expect(roleLines(agent, from)).toEqual([]);
    await c.node('nn1').service.setHealthy(false);
    await resource.waitForHolder('nn2', 20_000);
    await c.node('nn1').service.setHealthy(true);
    await agent.waitForRole('standby');
    expect((await memberOf(c, 'nn1')).session).toBe(lock!.owner);
    expect(agent.hasExited()).toBe(false);
  });

  it("a broken file is refused with the loader's message; the agent is unaffected", async () => {
    const { c, active } = await start();
    const agent = active.agent!;
    const lock = await lockOf(c);
    const from = agent.logs().length;
    fs.appendFileSync(active.configFile, '\nnode: { id: [\n');
    const line = await reload(agent);
    expect(line.level).toBe('error');
    expect(line.msg).toContain(
      `reload of ${active.configFile} refused, the configuration in force stays: config ${active.configFile}: line `,
    );
    expect(line.msg).toContain('invalid YAML');
    // And a file that loads but names a hook program that is not there: refused by preflight.
    const text = fs.readFileSync(active.configFile, 'utf8').replace('\nnode: { id: [\n', '');
    fs.writeFileSync(
      active.configFile,
      text.replace('  methods:\n', '  methods:\n    - shell: /nonexistent/fence-it\n'),
    );
    const missing = await reload(agent);
    expect(missing.msg).toContain('fencing.methods[0].shell: program "/nonexistent/fence-it" does not exist');
    expect(await lockOf(c)).toEqual(lock);
    expect(roleLines(agent, from)).toEqual([]);
    expect(agent.role()).toBe('active');
    expect(agent.hasExited()).toBe(false);
  });

  it('a new shell to-active command is the one the NEXT activation runs', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hafc-reload-shell-'));
    const healthy = path.join(dir, 'healthy');
    const hooks = path.join(dir, 'hooks.log');
    const file = path.join(dir, 's1.yaml');
    const name = `rs${++seq}`;
    fs.writeFileSync(
      file,
      [
        `cluster: ${name}`,
        'node: { id: s1, host: 127.0.0.1, port: 1 }',
        `zookeeper: { connect: "${zk.connectString()}", sessionTimeoutMs: ${SESSION_MS}, requestTimeoutMs: 1000 }`,
        `health: { intervalMs: 200, timeoutMs: 300, fall: 2, rise: 1, check: { command: "test -e ${healthy}" } }`,
        'service:',
        '  agent: shell',
        `  toActive: "echo one $HAFC_EPOCH >> ${hooks}"`,
        `  toStandby: "echo standby $HAFC_EPOCH >> ${hooks}"`,
        '  hookTimeoutMs: 1000',
        'fencing: { methods: [{ shell: "true" }], timeoutMs: 1000 }',
        'election: { backoffMs: 200, priorityGraceMs: 200 }',
        'control: { listen: "127.0.0.1:0" }',
        'log: { level: debug, format: json }',
      ].join('\n'),
    );
    const lines = () => (fs.existsSync(hooks) ? fs.readFileSync(hooks, 'utf8').trim().split('\n') : []);
    const activations = () => lines().filter((l) => !l.startsWith('standby'));
    let agent: AgentProc | null = null;
    try {
      await promisify(execFile)(process.execPath, [hafcBin, 'init', '-c', file], { timeout: 20_000 });
      fs.writeFileSync(healthy, '');
      agent = AgentProc.start('s1', file);
      await agent.waitForRole('active', 20_000);
      const [first] = await waitFor('the first to-active hook', () =>
        activations().length === 1 ? activations() : null,
      );
      expect(first).toMatch(/^one \d+$/);

      edit(file, 'echo one', 'echo two');
      const before = lines();
      const line = await reload(agent);
      expect(line.changed).toEqual(['service.toActive']);
      expect(lines()).toEqual(before); // reloading runs no hook

      fs.rmSync(healthy);
      await agent.waitForRole('neutral');
      fs.writeFileSync(healthy, '');
      await agent.waitForRole('active', 20_000);
      const after = await waitFor('the second to-active hook', () =>
        activations().length === 2 ? lines() : null,
      );
      const epoch1 = first!.split(' ')[1]!;
      expect(after.slice(-2)[0]).toBe(`standby ${epoch1}`);
      const second = after.at(-1)!;
      expect(second).toMatch(/^two \d+$/);
      expect(BigInt(second.split(' ')[1]!)).toBeGreaterThan(BigInt(epoch1));
    } finally {
      await agent?.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
