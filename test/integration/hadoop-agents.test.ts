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
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentProc, hafcBin } from '../../harness/agent-proc.js';
import { hadoopAvailable, HadoopHaPair, type NameNodeProc } from '../../harness/hadoop.js';
import { waitFor } from '../../harness/wait.js';
import { ZkEnsemble } from '../../harness/zk-ensemble.js';
import { HaServiceClient } from '../../src/hadoop/ha-service.js';

const run = promisify(execFile);
const enabled = hadoopAvailable() || process.env.CI === 'true';
const SESSION_MS = 4000;

describe.runIf(enabled)('hafc agents in place of ZKFC on a real NameNode pair', () => {
  let pair: HadoopHaPair;
  let zk: ZkEnsemble;
  let dir: string;
  const agents = new Map<string, AgentProc>();
  const configOf = (id: string): string => path.join(dir, `${id}.yaml`);
  const startAgent = (id: string): AgentProc => {
    const a = AgentProc.start(id, configOf(id), { HAFC_RUNTIME_DIR: path.join(dir, `run-${id}`) });
    agents.set(id, a);
    return a;
  };
  const clients = new Map<string, HaServiceClient>();
  const doubleActive: string[] = [];
  let sampling = true;
  let sampler: Promise<void> = Promise.resolve();

  const stateOf = async (nn: NameNodeProc): Promise<string> => {
    try {
      return (await clients.get(nn.id)!.getServiceStatus({ timeoutMs: 1000 })).state;
    } catch {
      return 'unreachable';
    }
  };

  beforeAll(async () => {
    [pair, zk] = await Promise.all([
      HadoopHaPair.start({ dataNode: true }),
      ZkEnsemble.start({ servers: 1 }),
    ]);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hafc-hdfs-'));
    for (const nn of pair.nameNodes) {
      clients.set(
        nn.id,
        new HaServiceClient({
          host: '127.0.0.1',
          port: nn.rpcPort,
          user: 'hafc',
          connectTimeoutMs: 1000,
          callTimeoutMs: 1000,
        }),
      );
      const yaml = [
        'cluster: hdfs-it',
        `node: { id: ${nn.id}, host: 127.0.0.1, port: ${nn.rpcPort}, priority: ${nn.id === 'nn1' ? 10 : 5} }`,
        `zookeeper: { connect: "${zk.connectString()}", sessionTimeoutMs: ${SESSION_MS}, onConnectionLoss: hold }`,
        'health: { intervalMs: 300, timeoutMs: 800, fall: 3, rise: 1, check: agent }',
        `service: { agent: hdfs-namenode, rpcAddress: "127.0.0.1:${nn.rpcPort}", user: hafc, requestTimeoutMs: 800, transitionTimeoutMs: 10000 }`,
        // graceful = transitionToStandby on the old active; then nothing more is needed here (one
        // host, shared local edits): a dead NameNode does not serve.
        'fencing: { methods: [graceful, { shell: "true" }], timeoutMs: 5000 }',
        'control: { listen: "127.0.0.1:0" }',
        'log: { level: debug, format: json }',
        '',
      ].join('\n');
      fs.writeFileSync(path.join(dir, `${nn.id}.yaml`), yaml);
    }
    await run(process.execPath, [hafcBin, 'init', '-c', path.join(dir, 'nn1.yaml')], { timeout: 20_000 });
    sampler = (async () => {
      while (sampling) {
        const [a, b] = await Promise.all(pair.nameNodes.map(stateOf));
        if (a === 'active' && b === 'active') doubleActive.push(new Date().toISOString());
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    for (const nn of pair.nameNodes) {
      fs.mkdirSync(path.join(dir, `run-${nn.id}`), { mode: 0o700 });
      startAgent(nn.id);
    }
  }, 240_000);

  afterAll(async () => {
    sampling = false;
    await sampler;
    for (const a of agents.values()) await a.stop().catch(() => undefined);
    for (const c of clients.values()) c.close();
    await pair?.stop();
    await zk?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** What both agents last said, for a failure message. */
  const agentTails = (): string =>
    [...agents.values()]
      .map(
        (a) =>
          `--- agent ${a.id}:\n` +
          a
            .logs()
            .slice(-25)
            .map((l) => JSON.stringify(l))
            .join('\n'),
      )
      .join('\n');

  const activeNameNode = (not?: string) =>
    waitFor(
      `exactly one NameNode${not ? ` other than ${not}` : ''} to say it is active`,
      async () => {
        const states = await Promise.all(pair.nameNodes.map(stateOf));
        const act = pair.nameNodes.filter((_, i) => states[i] === 'active');
        return act.length === 1 && act[0]!.id !== not ? act[0] : undefined;
      },
      { timeoutMs: 40_000 },
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}\n${agentTails()}`);
    });

  const otherThan = (nn: NameNodeProc): NameNodeProc => pair.nameNodes.find((n) => n.id !== nn.id)!;
  const agentOf = (nn: NameNodeProc): AgentProc => agents.get(nn.id)!;

  /** Both agents settled: `active`'s agent active, the other's standby (it stands for election). */
  const settled = async (active: NameNodeProc): Promise<void> => {
    await agentOf(active).waitForRole('active', 60_000);
    await agentOf(otherThan(active)).waitForRole('standby', 60_000);
  };

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
    const first = await activeNameNode();
    const other = otherThan(first);
    const { file, text } = await writeFile(first, 'nn-kill');
    const t0 = Date.now();
    await first.kill('SIGKILL');
    const second = await activeNameNode(first.id);
    const ms = Date.now() - t0;
    console.log(`hdfs: NameNode kill -9 -> the other active in ${ms} ms`);
    expect(second.id).toBe(other.id);
    await agentOf(other).waitForRole('active');
    expect(await pair.webhdfsCat(second, file)).toBe(text);
    // Back to two: the restarted NameNode comes up standby and its agent stands by again.
    await first.start();
    await settled(second);
    expect(await stateOf(first)).toBe('standby');
    expect(doubleActive, 'samples where both NameNodes said active').toEqual([]);
  });

  it('kill -9 of the active agent: the other NameNode active once the session expires, the old one fenced by transitionToStandby', async () => {
    const old = await activeNameNode();
    const next = otherThan(old);
    const { file, text } = await writeFile(old, 'agent-kill');
    const nextAgent = agentOf(next);
    const from = nextAgent.logs().length;
    const t0 = Date.now();
    await agentOf(old).kill('SIGKILL');
    // The NameNode itself is fine and stays active until the new active's fence reaches it.
    expect(await stateOf(old)).toBe('active');
    await activeNameNode(old.id);
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
    expect(await stateOf(old)).toBe('standby');
    // Through the nameservice with the real Hadoop client: it finds the new active itself.
    const cat = await pair.dfs(['-cat', file]);
    expect(cat.code, cat.output).toBe(0);
    expect(cat.output).toContain(text.trim());
    // The restarted agent finds its NameNode standby and stands by.
    startAgent(old.id);
    await settled(next);
    expect(doubleActive, 'samples where both NameNodes said active').toEqual([]);
  });

  it('switchover with `hafc failover --to`: the active demotes first, the other promotes unfenced', async () => {
    const old = await activeNameNode();
    const next = otherThan(old);
    const { file, text } = await writeFile(old, 'switchover');
    const from = agentOf(next).logs().length;
    const t0 = Date.now();
    const r = await run(
      process.execPath,
      [hafcBin, 'failover', '-c', configOf(old.id), '--to', next.id, '--wait', '--reason', 'it'],
      { timeout: 60_000 },
    );
    const ms = Date.now() - t0;
    expect(r.stdout).toMatch(
      new RegExp(`^switchover [0-9a-f]+ done: ${old.id} -> ${next.id}, handover \\d+ ms`, 'm'),
    );
    console.log(`hdfs: switchover ${old.id} -> ${next.id}: ${r.stdout.trim()} (CLI ${ms} ms)`);
    expect(await stateOf(next)).toBe('active');
    expect(await stateOf(old)).toBe('standby');
    expect(agentOf(next).find((l) => l.msg === 'fencing the previous active', from)).toBeUndefined();
    expect(await pair.webhdfsCat(next, file)).toBe(text);
    await settled(next);
    expect(doubleActive, 'samples where both NameNodes said active').toEqual([]);
  });

  it('SIGSTOP of the active NameNode past the health timeout: its agent demotes it, SIGCONT leaves it standby, the other active', async () => {
    const old = await activeNameNode();
    const next = otherThan(old);
    const { file, text } = await writeFile(old, 'sigstop');
    const oldAgent = agentOf(old);
    const from = oldAgent.logs().length;
    const t0 = Date.now();
    await old.freeze();
    try {
      // health: 3 failed checks of 800 ms each; then the agent leaves the election and asks the
      // frozen NameNode to stand by (a call that waits in its socket).
      await oldAgent.waitForLog(
        'leaving the election',
        (l) => l.msg === 'leaving the election',
        15_000,
        from,
      );
      console.log(`hdfs: NameNode frozen -> its agent left the election after ${Date.now() - t0} ms`);
      expect(await stateOf(next)).toBe('standby');
    } finally {
      old.thaw();
    }
    await activeNameNode(old.id);
    console.log(`hdfs: NameNode SIGSTOP -> the other active in ${Date.now() - t0} ms`);
    expect(await stateOf(old)).toBe('standby');
    expect(await pair.webhdfsCat(next, file)).toBe(text);
    await settled(next);
    expect(doubleActive, 'samples where both NameNodes said active').toEqual([]);
  });
});
