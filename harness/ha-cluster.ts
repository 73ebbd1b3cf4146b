/**
 * A whole HA group for integration tests: N demo services (real processes reporting to a
 * SharedResource, the split-brain checker) each with a real `hafc agent` process, on a real
 * ZooKeeper ensemble.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { agentConfigYaml, type HealthProfile } from './agent-config.js';
import { AgentProc, hafcBin, hafcExit, type AgentStartOptions } from './agent-proc.js';
import { startDemoService, type DemoServiceProc } from './demo-service-proc.js';
import type { NetNs } from './netns.js';
import type { SharedResource } from './shared-resource.js';
import { TcpProxy } from './tcp-proxy.js';
import { waitFor } from './wait.js';
import type { ZkEnsemble } from './zk-ensemble.js';

const run = promisify(execFile);

export interface HaClusterOptions {
  ensemble: ZkEnsemble;
  resource: SharedResource;
  nodes?: number;
  cluster?: string;
  sessionTimeoutMs?: number;
  policy?: 'demote' | 'hold';
  priorities?: number[];
  /** Node ids configured with noFailover: true. */
  noFailover?: string[];
  /** YAML lines for `fencing.methods` (each a list item), per node id. Default: graceful, then kill by pid file. */
  fencingMethods?: (id: string) => string[];
  /** Run `hafc init` before the agents start. @default true */
  init?: boolean;
  /** Runs after the services start and the cluster is initialised, before any agent starts. */
  beforeAgents?: (c: HaCluster) => Promise<void>;
  /**
   * Give every agent its own TCP proxy in front of each ZooKeeper server, so one agent alone can
   * be partitioned (silently blackholed) from the ensemble.
   */
  ownProxies?: boolean;
  /** The connect string of one node's agent (e.g. only some servers). @default every server */
  connectFor?: (id: string) => string;
  /** Digest credentials "user:password": written to a file and set as zookeeper.auth. */
  zkAuth?: string;
  /** A bearer token: written to a file and set as control.tokenFile. */
  controlToken?: string;
  /** Extra top-level YAML appended to every config. */
  extraYaml?: (id: string) => string;
  /** The http agent's graceful fence deadline. @default its requestTimeoutMs */
  gracefulFenceTimeoutMs?: number;
  /** The health profile's fast path and pid watch, per node id. @default the config's defaults */
  health?: (id: string) => HealthProfile;
  /** How each agent process is started (stderr redirection, node options), per node id. */
  agentOptions?: (id: string) => AgentStartOptions;
  /**
   * Runs a node's service and agent inside this network namespace (null: in ours). The service
   * listens on the namespace's address and reaches the resource by `resourcePath` (a Unix socket
   * crosses namespaces); the agent reaches ZooKeeper through proxies on the root end of the veth.
   * A partition of the namespace then cuts the node off from ZooKeeper, its peer and clients.
   */
  netns?: (id: string) => NetNs | null;
  /** With netns: the SharedResource's Unix socket (SharedResource.listenUnix). */
  resourcePath?: string;
}

export interface HaNode {
  id: string;
  service: DemoServiceProc;
  agent: AgentProc | null;
  configFile: string;
  /** With ownProxies: this agent's private path to each ZooKeeper server (with netns: on the veth). */
  proxies: TcpProxy[];
  netns: NetNs | null;
}

/**
 * STONITH for tests: SIGKILL the target's demo service by the pid file the test wrote, then wait
 * (10 ms polls, up to 2 s) until it is dead: no /proc entry, or a zombie. A killed service stays
 * a zombie until the harness reaps it and kill -0 succeeds on a zombie, so polling with kill -0
 * every 100 ms added up to 100 ms of the harness's own to each fencing kill.
 */
export const KILL_BY_PIDFILE =
  'p=$(cat "$HAFC_TEST_DIR/$HAFC_TARGET_ID.pid") && env | grep -E "^(HAFC_|target_)" | sort > "$HAFC_TEST_DIR/fence-$HAFC_NODE_ID-$HAFC_TARGET_ID.env"; kill -9 "$p" 2>/dev/null; ' +
  'alive() { [ -d "/proc/$p" ] && ! grep -q "^State:.*Z" "/proc/$p/status" 2>/dev/null; }; ' +
  'for i in $(seq 200); do alive || exit 0; sleep 0.01; done; exit 1';

export class HaCluster {
  readonly nodes: HaNode[] = [];
  readonly dir: string;
  readonly cluster: string;

  private constructor(private readonly opts: HaClusterOptions) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hafc-ha-'));
    this.cluster = opts.cluster ?? 'ns1';
  }

  static async start(opts: HaClusterOptions): Promise<HaCluster> {
    const c = new HaCluster(opts);
    const n = opts.nodes ?? 2;
    for (let i = 0; i < n; i++) {
      const id = `nn${i + 1}`;
      const ns = opts.netns?.(id) ?? null;
      if (ns && opts.resourcePath === undefined) throw new Error('HaCluster: netns needs resourcePath');
      const service = await startDemoService(
        ns
          ? { id, host: ns.nsAddr, wrapper: ns.exec(), resourcePath: opts.resourcePath }
          : { id, resourcePort: opts.resource.port },
      );
      fs.writeFileSync(c.pidFile(id), String(service.pid));
      const configFile = path.join(c.dir, `${id}.yaml`);
      const proxyHost = ns?.rootAddr ?? '127.0.0.1';
      const proxies =
        opts.ownProxies || ns
          ? await Promise.all(
              opts.ensemble.servers.map((srv) => TcpProxy.start(srv.clientPort, { host: proxyHost })),
            )
          : [];
      const connect =
        opts.ownProxies || ns
          ? proxies.map((p) => `${proxyHost}:${p.port}`).join(',')
          : (opts.connectFor?.(id) ?? opts.ensemble.connectString());
      c.nodes.push({ id, service, agent: null, configFile, proxies, netns: ns });
      fs.writeFileSync(configFile, c.configYaml(id, service.port, opts.priorities?.[i] ?? 0, connect));
    }
    if (opts.init !== false) await c.hafc(['init', '-c', c.nodes[0]!.configFile]);
    await opts.beforeAgents?.(c);
    for (const node of c.nodes) c.startAgent(node.id);
    return c;
  }

  configYaml(id: string, port: number, priority: number, connect: string): string {
    const o = this.opts;
    const health = o.health?.(id);
    return agentConfigYaml({
      cluster: this.cluster,
      id,
      port,
      host: this.nodes.find((n) => n.id === id)?.netns?.nsAddr,
      connect,
      priority,
      noFailover: o.noFailover?.includes(id) ?? false,
      sessionTimeoutMs: o.sessionTimeoutMs,
      policy: o.policy,
      credentialsFile: o.zkAuth ? this.credentialsFile() : undefined,
      tokenFile: o.controlToken ? this.tokenFile() : undefined,
      fencingMethods: o.fencingMethods?.(id) ?? ['- graceful', `- shell: ${JSON.stringify(KILL_BY_PIDFILE)}`],
      extraYaml: o.extraYaml?.(id),
      healthFastIntervalMs: health?.fastIntervalMs,
      healthPidFile: health?.watchPid ? this.pidFile(id) : undefined,
      gracefulFenceTimeoutMs: o.gracefulFenceTimeoutMs,
    });
  }

  /** The demo service's pid file (what KILL_BY_PIDFILE and health.pidFile read). */
  pidFile(id: string): string {
    return path.join(this.dir, `${id}.pid`);
  }

  private tokenFile(): string {
    const f = path.join(this.dir, 'control.token');
    if (!fs.existsSync(f)) fs.writeFileSync(f, `${this.opts.controlToken}\n`, { mode: 0o600 });
    return f;
  }

  private credentialsFile(): string {
    const f = path.join(this.dir, 'zk.secret');
    if (!fs.existsSync(f)) fs.writeFileSync(f, `${this.opts.zkAuth}\n`, { mode: 0o600 });
    return f;
  }

  node(id: string): HaNode {
    const n = this.nodes.find((x) => x.id === id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  startAgent(id: string, opts: AgentStartOptions | undefined = this.opts.agentOptions?.(id)): AgentProc {
    const node = this.node(id);
    // Each node its own runtime directory, as systemd's RuntimeDirectory would be: the agent keeps
    // its session there for a restart.
    const runDir = path.join(this.dir, `run-${id}`);
    fs.mkdirSync(runDir, { recursive: true, mode: 0o700 });
    node.agent = AgentProc.start(
      id,
      node.configFile,
      { HAFC_TEST_DIR: this.dir, HAFC_RUNTIME_DIR: runDir },
      node.netns ? { ...opts, wrapper: node.netns.exec() } : opts,
    );
    return node.agent;
  }

  async hafc(args: string[]): Promise<{ stdout: string; stderr: string }> {
    return run(process.execPath, [hafcBin, ...args], { timeout: 20_000 });
  }

  /** Runs the CLI and reports its exit code instead of throwing on a non-zero one. */
  hafcExit(args: string[], timeoutMs = 60_000): Promise<{ code: number; stdout: string; stderr: string }> {
    return hafcExit(args, timeoutMs);
  }

  /** The node holding the shared resource (the active as the services themselves see it). */
  async waitForActive(timeoutMs = 20_000, not?: string): Promise<HaNode> {
    const holder = await waitFor(
      `some node${not ? ` other than ${not}` : ''} to hold the shared resource`,
      () => {
        const h = this.opts.resource.holder();
        return h && h.node !== not ? h : null;
      },
      { timeoutMs },
    );
    return this.node(holder.node);
  }

  /** A two-node group at rest: one node's service holds the resource, the other agent is standby. */
  async settled(timeoutMs = 20_000): Promise<{ active: HaNode; standby: HaNode }> {
    const active = await this.waitForActive(timeoutMs);
    const standby = this.nodes.find((n) => n.id !== active.id)!;
    await active.agent!.waitForRole('active', timeoutMs);
    await standby.agent!.waitForRole('standby', timeoutMs);
    return { active, standby };
  }

  /** Silently drops all traffic between this node's agent and ZooKeeper (connections stay open). */
  partition(id: string, on: boolean): void {
    const node = this.node(id);
    if (node.proxies.length === 0) throw new Error('partition() needs HaCluster.start({ ownProxies: true })');
    for (const p of node.proxies) p.setBlackhole(on);
  }

  /** Reads a fencing env dump written by KILL_BY_PIDFILE. */
  fenceEnv(fencer: string, target: string): Record<string, string> | null {
    const f = path.join(this.dir, `fence-${fencer}-${target}.env`);
    if (!fs.existsSync(f)) return null;
    const env: Record<string, string> = {};
    for (const line of fs.readFileSync(f, 'utf8').split('\n')) {
      const i = line.indexOf('=');
      if (i > 0) env[line.slice(0, i)] = line.slice(i + 1);
    }
    return env;
  }

  /** Diagnostics for a failed assertion: each agent's last log lines. */
  describe(): string {
    return this.nodes
      .map(
        (n) =>
          `--- ${n.id} (role ${n.agent?.role()})\n${(n.agent?.rawOutput() ?? '').split('\n').slice(-40).join('\n')}`,
      )
      .join('\n');
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.agent?.stop().catch(() => undefined)));
    await Promise.all(this.nodes.map((n) => n.service.stop().catch(() => undefined)));
    await Promise.all(this.nodes.flatMap((n) => n.proxies.map((p) => p.close())));
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
