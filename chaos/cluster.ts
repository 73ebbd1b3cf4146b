/**
 * The system under test of a chaos run: a 3-server ZooKeeper ensemble (server 3 isolatable), and
 * 2-3 nodes, each a demo service with its own event log and a real `hafc agent`:
 *
 *   nn1  http agent, connected to zk3 only (so the follower-isolate fault has agents on it)
 *   nn2  shell agent (chaos/hook.sh drives the service with curl), when there are 3 nodes
 *   nnN  the last node: in its own network namespace when a network fault is enabled; it reaches
 *        ZooKeeper through proxies on the root end of its veth (ZooKeeper listens on loopback)
 *
 * A supervisor plays systemd: a service or agent that exits on its own (a fencing kill -9, a
 * crash) is started again after a second, unless a fault holds it down. An agent that exits
 * without being told to is also recorded: nothing may crash the agent.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { agentConfigYaml } from '../harness/agent-config.js';
import { AgentProc, hafcBin } from '../harness/agent-proc.js';
import { repoRoot, startDemoService, type DemoServiceProc } from '../harness/demo-service-proc.js';
import { KILL_BY_PIDFILE } from '../harness/ha-cluster.js';
import { NetNs } from '../harness/netns.js';
import { TcpProxy } from '../harness/tcp-proxy.js';
import { ZkEnsemble } from '../harness/zk-ensemble.js';
import { parseConfig } from '../src/config/load.js';
import { worstCaseFailoverMs } from '../src/config/timing.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const ISOLATABLE = 2;
const RESTART_DELAY_MS = 1000;

export function mono(): number {
  return Number(process.hrtime.bigint() / 1000n) / 1000;
}

export interface ChaosNode {
  id: string;
  agentKind: 'http' | 'shell';
  host: string;
  port: number;
  netns: NetNs | null;
  eventLog: string;
  agentLog: string;
  configFile: string;
  /** The shell hooks' mode file (normal | hang | ignore-term). */
  modeFile: string;
  service: DemoServiceProc | null;
  agent: AgentProc | null;
  /** A fault keeps it down: the supervisor must not start it. */
  holdService: boolean;
  holdAgent: boolean;
  /** Set while we stop or kill the agent ourselves, so its exit is not a crash. */
  expectAgentExit: boolean;
}

export interface AgentExit {
  node: string;
  atMono: number;
  detail: string;
}

export interface ClusterOptions {
  nodes: 2 | 3;
  outDir: string;
  sessionTimeoutMs: number;
  netns: NetNs | null;
  /** Fence with `true`: the checker's self-test (split brain must then be caught). */
  noopFencing?: boolean;
  log: (msg: string) => void;
}

export class ChaosCluster {
  readonly nodes: ChaosNode[] = [];
  readonly agentExits: AgentExit[] = [];
  /** Each agent process's life (CLOCK_MONOTONIC ms), for the timeline's "down" spans. */
  readonly agentLives: { node: string; fromMono: number; toMono: number | null }[] = [];
  readonly restarts = { services: 0, agents: 0 };
  /** Proxies on the namespace's veth, one per ZooKeeper server (delay faults act on them). */
  readonly nsProxies: TcpProxy[] = [];
  private stopping = false;
  private readonly timers = new Set<NodeJS.Timeout>();
  boundMs = 0;

  private constructor(
    readonly zk: ZkEnsemble,
    private readonly o: ClusterOptions,
  ) {}

  static async start(o: ClusterOptions): Promise<ChaosCluster> {
    const zk = await ZkEnsemble.start({ servers: 3, isolatable: ISOLATABLE });
    const c = new ChaosCluster(zk, o);
    try {
      await c.setup();
    } catch (err) {
      await c.stop();
      throw err;
    }
    return c;
  }

  private async setup(): Promise<void> {
    const o = this.o;
    for (const d of ['events', 'agents', 'run']) fs.mkdirSync(path.join(o.outDir, d), { recursive: true });
    if (o.netns) {
      for (const s of this.zk.servers) {
        this.nsProxies.push(await TcpProxy.start(s.clientPort, { host: o.netns.rootAddr }));
      }
    }
    const hook = path.join(repoRoot(), 'chaos', 'hook.sh');
    for (let i = 0; i < o.nodes; i++) {
      const id = `nn${i + 1}`;
      const inNs = o.netns !== null && i === o.nodes - 1;
      const agentKind = o.nodes === 3 && i === 1 ? 'shell' : 'http';
      const node: ChaosNode = {
        id,
        agentKind,
        host: inNs ? o.netns!.nsAddr : '127.0.0.1',
        port: 0,
        netns: inNs ? o.netns : null,
        eventLog: path.join(o.outDir, 'events', `${id}.jsonl`),
        agentLog: path.join(o.outDir, 'agents', `${id}.log`),
        configFile: path.join(o.outDir, `${id}.yaml`),
        modeFile: path.join(o.outDir, 'run', `${id}.hookmode`),
        service: null,
        agent: null,
        holdService: false,
        holdAgent: false,
        expectAgentExit: false,
      };
      fs.writeFileSync(node.modeFile, 'normal\n');
      this.nodes.push(node);
      await this.startService(node);
      node.port = node.service!.port;
      const connect = inNs
        ? this.nsProxies.map((p) => `${o.netns!.rootAddr}:${p.port}`).join(',')
        : i === 0
          ? this.zk.connectStringFor([ISOLATABLE])
          : this.zk.connectString();
      const yaml = agentConfigYaml({
        cluster: 'chaos',
        id,
        port: node.port,
        connect,
        sessionTimeoutMs: o.sessionTimeoutMs,
        // graceful asks through this node's own service agent; the shell agent has no such call.
        fencingMethods: o.noopFencing
          ? ['- shell: "true"']
          : [...(agentKind === 'http' ? ['- graceful'] : []), `- shell: ${JSON.stringify(KILL_BY_PIDFILE)}`],
        logLevel: 'info',
      });
      const cfg = parseYaml(yaml) as Record<string, unknown>;
      (cfg.node as Record<string, unknown>).host = node.host;
      const url = `http://${node.host}:${node.port}`;
      cfg.service =
        node.agentKind === 'shell'
          ? {
              agent: 'shell',
              toActive: ['/bin/sh', hook, 'promote', url, node.modeFile],
              toStandby: ['/bin/sh', hook, 'demote', url, node.modeFile],
              state: ['/bin/sh', hook, 'role', url, node.modeFile],
              hookTimeoutMs: 1000,
            }
          : { agent: 'http', url, requestTimeoutMs: 1000 };
      if (node.agentKind === 'shell') {
        (cfg.health as Record<string, unknown>).check = { http: `${url}/health` };
      }
      const text = stringifyYaml(cfg);
      fs.writeFileSync(node.configFile, text);
      const parsed = parseConfig(text, node.configFile);
      const bound = worstCaseFailoverMs(parsed) + parsed.election.backoffMs + parsed.election.priorityGraceMs;
      this.boundMs = Math.max(this.boundMs, bound);
    }
    await run(process.execPath, [hafcBin, 'init', '-c', this.nodes[0]!.configFile], { timeout: 20_000 });
    for (const n of this.nodes) this.startAgent(n);
  }

  node(id: string): ChaosNode {
    const n = this.nodes.find((x) => x.id === id);
    if (!n) throw new Error(`chaos: no node ${id}`);
    return n;
  }

  private later(fn: () => void, ms: number): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  async startService(n: ChaosNode): Promise<void> {
    if (this.stopping) return;
    const svc = await startDemoService({
      id: n.id,
      host: n.host,
      port: n.port,
      writeIntervalMs: 0,
      args: ['--event-log', n.eventLog, '--event-tick-ms', '50'],
      ...(n.netns ? { wrapper: n.netns.exec() } : {}),
    });
    n.service = svc;
    fs.writeFileSync(path.join(this.o.outDir, 'run', `${n.id}.pid`), String(svc.pid));
    void svc.exited.then(() => {
      if (n.service !== svc || this.stopping) return;
      n.service = null;
      if (n.holdService) return;
      this.later(() => {
        if (n.service !== null || n.holdService || this.stopping) return;
        this.restarts.services++;
        this.startService(n).catch((err: unknown) =>
          this.o.log(`cannot restart service ${n.id}: ${String(err)}`),
        );
      }, RESTART_DELAY_MS);
    });
  }

  startAgent(n: ChaosNode): void {
    if (this.stopping || n.agent !== null) return;
    fs.appendFileSync(n.agentLog, '');
    const agent = AgentProc.start(
      n.id,
      n.configFile,
      { HAFC_TEST_DIR: path.join(this.o.outDir, 'run'), HAFC_RUNTIME_DIR: this.runtimeDir(n) },
      { stderr: { file: n.agentLog }, ...(n.netns ? { wrapper: n.netns.exec() } : {}) },
    );
    n.agent = agent;
    n.expectAgentExit = false;
    const life = { node: n.id, fromMono: mono(), toMono: null as number | null };
    this.agentLives.push(life);
    void agent.exited.then(({ code, signal }) => {
      life.toMono = mono();
      if (n.agent !== agent) return;
      n.agent = null;
      if (this.stopping) return;
      if (!n.expectAgentExit) {
        const detail = `agent ${n.id} (pid ${agent.pid}) exited by itself: code ${code}, signal ${signal}; see ${n.agentLog}`;
        this.agentExits.push({ node: n.id, atMono: mono(), detail });
        this.o.log(detail);
      }
      if (n.holdAgent) return;
      this.later(() => {
        if (n.agent !== null || n.holdAgent || this.stopping) return;
        this.restarts.agents++;
        this.startAgent(n);
      }, RESTART_DELAY_MS);
    });
  }

  private runtimeDir(n: ChaosNode): string {
    const d = path.join(this.o.outDir, 'run', `rt-${n.id}`);
    fs.mkdirSync(d, { recursive: true, mode: 0o700 });
    return d;
  }

  /** kill -9 of the agent, which stays down until releaseAgent(). */
  async killAgent(n: ChaosNode): Promise<void> {
    n.holdAgent = true;
    const a = n.agent;
    if (!a) return;
    n.expectAgentExit = true;
    await a.kill('SIGKILL');
  }

  releaseAgent(n: ChaosNode): void {
    n.holdAgent = false;
    if (n.agent === null) this.startAgent(n);
  }

  async killService(n: ChaosNode): Promise<void> {
    n.holdService = true;
    await n.service?.kill('SIGKILL');
  }

  async releaseService(n: ChaosNode): Promise<void> {
    n.holdService = false;
    if (n.service === null) await this.startService(n);
  }

  /** Every process running and thawed, every fault of the cluster's own undone. */
  async healAll(): Promise<void> {
    for (const n of this.nodes) {
      n.agent?.thaw();
      n.service?.thaw();
      fs.writeFileSync(n.modeFile, 'normal\n');
      if (n.netns) await n.netns.heal();
    }
    for (const p of this.nsProxies) p.setDelay(0);
    for (const s of this.zk.servers) {
      if (s.isFrozen()) s.thaw();
      if (!s.isRunning()) await s.restart();
    }
    if (this.zk.isIsolated(ISOLATABLE)) this.zk.isolate(ISOLATABLE, false);
    await this.zk.waitForQuorum(60_000);
    for (const n of this.nodes) {
      if (n.service === null) await this.releaseService(n);
      else n.holdService = false;
      if (n.service)
        await n.service
          .request('POST', '/fault', { healthy: true, hang: false, roleHang: false })
          .catch(() => undefined);
      this.releaseAgent(n);
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const n of this.nodes) n.expectAgentExit = true;
    await Promise.all(this.nodes.map((n) => n.agent?.stop(10_000).catch(() => undefined)));
    await Promise.all(this.nodes.map((n) => n.service?.stop().catch(() => undefined)));
    await Promise.all(this.nsProxies.map((p) => p.close()));
    await this.zk.stop().catch((err: unknown) => this.o.log(`stopping ZooKeeper: ${String(err)}`));
  }
}
