/**
 * Real hafc agents (the yarn-resourcemanager service agent) driving a REAL ResourceManager HA pair
 * through a real ZooKeeper. The split-brain check is built from the RMs' own view: both are asked
 * getServiceStatus every 50 ms on their admin addresses, and no sample may find two active. The
 * agents also check each RM's /isActive and /ws/v1/cluster/info against its RPC state. The cases
 * share one pair and run in order; each leaves both RMs and both agents up, one active.
 *
 * Gated on the cached YARN jars; under CI (which runs setup) a missing cache fails instead.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentProc, hafcBin } from '../../harness/agent-proc.js';
import { waitFor } from '../../harness/wait.js';
import { yarnAvailable, YarnHaPair, type ResourceManagerProc } from '../../harness/yarn.js';
import { ZkEnsemble } from '../../harness/zk-ensemble.js';
import { HaServiceClient } from '../../src/hadoop/ha-service.js';
import { IpcRemoteError } from '../../src/hadoop/ipc/errors.js';

const run = promisify(execFile);
const enabled = yarnAvailable() || process.env.CI === 'true';
const SESSION_MS = 4000;

describe.runIf(enabled)('hafc agents driving a real ResourceManager pair', () => {
  let pair: YarnHaPair;
  let zk: ZkEnsemble;
  let dir: string;
  const agents = new Map<string, AgentProc>();
  const clients = new Map<string, HaServiceClient>();
  const doubleActive: string[] = [];
  let sampling = true;
  let sampler: Promise<void> = Promise.resolve();

  const configOf = (id: string): string => path.join(dir, `${id}.yaml`);
  const startAgent = (id: string): AgentProc => {
    const a = AgentProc.start(id, configOf(id), { HAFC_RUNTIME_DIR: path.join(dir, `run-${id}`) });
    agents.set(id, a);
    return a;
  };
  const stateOf = async (rm: ResourceManagerProc): Promise<string> => {
    try {
      return (await clients.get(rm.id)!.getServiceStatus({ timeoutMs: 1000 })).state;
    } catch {
      return 'unreachable';
    }
  };

  beforeAll(async () => {
    [pair, zk] = await Promise.all([YarnHaPair.start(), ZkEnsemble.start({ servers: 1 })]);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hafc-yarn-it-'));
    for (const rm of pair.resourceManagers) {
      clients.set(
        rm.id,
        new HaServiceClient({
          host: '127.0.0.1',
          port: rm.adminPort,
          user: 'hafc',
          connectTimeoutMs: 1000,
          callTimeoutMs: 1000,
        }),
      );
      const yaml = [
        'cluster: yarn-it',
        `node: { id: ${rm.id}, host: 127.0.0.1, port: ${rm.adminPort}, priority: ${rm.id === 'rm1' ? 10 : 5} }`,
        `zookeeper: { connect: "${zk.connectString()}", sessionTimeoutMs: ${SESSION_MS}, onConnectionLoss: hold }`,
        'health: { intervalMs: 300, timeoutMs: 800, fall: 3, rise: 1, check: agent }',
        `service: { agent: yarn-resourcemanager, rpcAddress: "${rm.adminAddress}", httpUrl: "${rm.webUrl}", user: hafc, requestTimeoutMs: 800, transitionTimeoutMs: 10000 }`,
        // graceful = transitionToStandby on the old active; a dead RM serves nothing, so the shell
        // method after it stands in for the STONITH a real deployment configures.
        'fencing: { methods: [graceful, { shell: "true" }], timeoutMs: 5000 }',
        'control: { listen: "127.0.0.1:0" }',
        'log: { level: debug, format: json }',
        '',
      ].join('\n');
      fs.writeFileSync(configOf(rm.id), yaml);
    }
    await run(process.execPath, [hafcBin, 'init', '-c', configOf('rm1')], { timeout: 20_000 });
    sampler = (async () => {
      while (sampling) {
        const [a, b] = await Promise.all(pair.resourceManagers.map(stateOf));
        if (a === 'active' && b === 'active') doubleActive.push(new Date().toISOString());
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    for (const rm of pair.resourceManagers) {
      fs.mkdirSync(path.join(dir, `run-${rm.id}`), { mode: 0o700 });
      startAgent(rm.id);
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

  const activeRm = (not?: string) =>
    waitFor(
      `exactly one ResourceManager${not ? ` other than ${not}` : ''} to say it is active`,
      async () => {
        const states = await Promise.all(pair.resourceManagers.map(stateOf));
        const act = pair.resourceManagers.filter((_, i) => states[i] === 'active');
        return act.length === 1 && act[0]!.id !== not ? act[0] : undefined;
      },
      { timeoutMs: 60_000 },
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}\n${agentTails()}`);
    });
  const otherThan = (rm: ResourceManagerProc): ResourceManagerProc =>
    pair.resourceManagers.find((r) => r.id !== rm.id)!;
  const agentOf = (rm: ResourceManagerProc): AgentProc => agents.get(rm.id)!;
  const settled = async (active: ResourceManagerProc): Promise<void> => {
    await agentOf(active).waitForRole('active', 60_000);
    await agentOf(otherThan(active)).waitForRole('standby', 60_000);
  };

  it('elects one active RM; the standby refuses a REQUEST_BY_ZKFC transition with automatic failover off', async () => {
    const active = await activeRm();
    await settled(active);
    const standby = otherThan(active);
    const err = await clients
      .get(standby.id)!
      .transitionToActive('REQUEST_BY_ZKFC', { timeoutMs: 5000 })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(IpcRemoteError);
    expect((err as IpcRemoteError).errorMsg).toContain('denied since automatic failover is not enabled');
    expect(await stateOf(standby)).toBe('standby');
    expect(doubleActive, 'samples where both RMs said active').toEqual([]);
  });

  it('kill -9 of the active RM makes hafc promote the other', async () => {
    const first = await activeRm();
    const other = otherThan(first);
    const t0 = Date.now();
    await first.kill('SIGKILL');
    const second = await activeRm(first.id);
    console.log(`yarn: RM kill -9 -> the other active in ${Date.now() - t0} ms`);
    expect(second.id).toBe(other.id);
    await first.start();
    await settled(second);
    expect(await stateOf(first)).toBe('standby');
    expect(doubleActive, 'samples where both RMs said active').toEqual([]);
  });

  it('kill -9 of the active agent: the other RM active once the session expires, the old one fenced by transitionToStandby', async () => {
    const old = await activeRm();
    const next = otherThan(old);
    const from = agentOf(next).logs().length;
    const t0 = Date.now();
    await agentOf(old).kill('SIGKILL');
    expect(await stateOf(old)).toBe('active');
    await activeRm(old.id);
    const ms = Date.now() - t0;
    console.log(`yarn: active agent kill -9 -> the other RM active in ${ms} ms (session ${SESSION_MS} ms)`);
    expect(ms).toBeGreaterThanOrEqual(SESSION_MS - 1000);
    await agentOf(next).waitForLog(
      `fenced ${old.id} by method graceful`,
      (l) => l.msg === `fenced ${old.id} by method graceful`,
      15_000,
      from,
    );
    expect(await stateOf(old)).toBe('standby');
    startAgent(old.id);
    await settled(next);
    expect(doubleActive, 'samples where both RMs said active').toEqual([]);
  });

  it('switchover with `hafc failover --to`: the active demotes first, the other promotes unfenced', async () => {
    const old = await activeRm();
    const next = otherThan(old);
    const from = agentOf(next).logs().length;
    const r = await run(
      process.execPath,
      [hafcBin, 'failover', '-c', configOf(old.id), '--to', next.id, '--wait', '--reason', 'it'],
      { timeout: 60_000 },
    );
    expect(r.stdout).toMatch(
      new RegExp(`^switchover [0-9a-f]+ done: ${old.id} -> ${next.id}, handover \\d+ ms`, 'm'),
    );
    console.log(`yarn: ${r.stdout.trim()}`);
    expect(await stateOf(next)).toBe('active');
    expect(await stateOf(old)).toBe('standby');
    expect(agentOf(next).find((l) => l.msg === 'fencing the previous active', from)).toBeUndefined();
    await settled(next);
    expect(doubleActive, 'samples where both RMs said active').toEqual([]);
  });
});
