/**
 * Real hafc agents (the hdfs-namenode service agent) driving a REAL NameNode HA pair through a
 * real ZooKeeper, in place of ZKFC. The split-brain check is built from the NameNodes' own view:
 * both are asked getServiceStatus every 50 ms, and no sample may find two active.
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
  const agents: AgentProc[] = [];
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
    [pair, zk] = await Promise.all([HadoopHaPair.start(), ZkEnsemble.start({ servers: 1 })]);
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
      const runDir = path.join(dir, `run-${nn.id}`);
      fs.mkdirSync(runDir, { mode: 0o700 });
      agents.push(AgentProc.start(nn.id, path.join(dir, `${nn.id}.yaml`), { HAFC_RUNTIME_DIR: runDir }));
    }
  }, 240_000);

  afterAll(async () => {
    sampling = false;
    await sampler;
    for (const a of agents) await a.stop().catch(() => undefined);
    for (const c of clients.values()) c.close();
    await pair?.stop();
    await zk?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const activeNameNode = (not?: string) =>
    waitFor(
      `exactly one NameNode${not ? ` other than ${not}` : ''} to say it is active`,
      async () => {
        const states = await Promise.all(pair.nameNodes.map(stateOf));
        const act = pair.nameNodes.filter((_, i) => states[i] === 'active');
        return act.length === 1 && act[0]!.id !== not ? act[0] : undefined;
      },
      { timeoutMs: 40_000 },
    );

  it('elects one active NameNode; kill -9 of it makes hafc promote the other', async () => {
    // Either may win the start-up race (priority only holds a free lock back for a member that has
    // published itself).
    const first = await activeNameNode();
    const other = pair.nameNodes.find((n) => n.id !== first.id)!;
    const t0 = Date.now();
    await first.kill('SIGKILL');
    const second = await activeNameNode(first.id);
    const ms = Date.now() - t0;
    console.log(`hdfs: NameNode kill -9 -> the other active in ${ms} ms`);
    expect(second.id).toBe(other.id);
    const agent2 = agents.find((a) => a.id === other.id)!;
    await agent2.waitForRole('active');
    expect(doubleActive, 'samples where both NameNodes said active').toEqual([]);
  });
});
