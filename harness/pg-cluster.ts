/**
 * A PostgreSQL HA pair for integration tests and the benchmark: real servers (harness/postgres.ts)
 * each driven by a real `hafc agent` process with the postgresql agent, on a real ZooKeeper
 * ensemble. The first server starts as the primary and its agent first, so the first election
 * cannot pick the standby while the primary still writes (no breadcrumb to fence yet).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { agentConfigYaml } from './agent-config.js';
import { AgentProc, hafcBin } from './agent-proc.js';
import { PG_BIN, PgGroup, pgOsUser, type PgServer } from './postgres.js';
import { waitFor } from './wait.js';
import { TcpProxy } from './tcp-proxy.js';
import type { ZkEnsemble } from './zk-ensemble.js';

const run = promisify(execFile);

/**
 * STONITH for tests: SIGKILL the target's postmaster and its backends by its postmaster.pid. A
 * zombie (nothing reaps orphans in a container whose PID 1 is no init) counts as dead.
 */
export const KILL_POSTMASTER =
  'f="$HAFC_TEST_DIR/$HAFC_TARGET_ID/postmaster.pid"; [ -f "$f" ] || exit 0; p=$(head -n 1 "$f"); ' +
  'alive() { [ -d /proc/$p ] && ! grep -q "^State:.*Z" /proc/$p/status 2>/dev/null; }; ' +
  'pkill -9 -P "$p" 2>/dev/null; kill -9 "$p" 2>/dev/null; ' +
  'for i in $(seq 200); do alive || exit 0; sleep 0.01; done; exit 1';

export interface PgHaOptions {
  ensemble: ZkEnsemble;
  cluster: string;
  synchronous?: boolean;
  sessionTimeoutMs?: number;
  /** service.stopTimeoutMs. @default 1000 */
  stopTimeoutMs?: number;
  /** service.gracefulFenceTimeoutMs. @default the agent's requestTimeoutMs (1000) */
  gracefulFenceTimeoutMs?: number;
  maximumLagOnFailover?: number;
  /** log.level of the agents. @default debug */
  logLevel?: 'debug' | 'info';
  /** Each agent's whole config, in place of the test profile's (the benchmark's default profile). */
  configYaml?: (server: PgServer) => string;
  /**
   * Each agent reaches ZooKeeper through proxies of its own, so that partition() can cut one
   * agent off from the ensemble silently while its server and its peer still reach each other.
   */
  ownProxies?: boolean;
}

export interface PgHaNode {
  id: string;
  server: PgServer;
  configFile: string;
  agent: AgentProc | null;
}

export class PgHa {
  readonly nodes: PgHaNode[] = [];
  /** With ownProxies: each agent's private path to every ZooKeeper server. */
  private readonly proxies = new Map<string, TcpProxy[]>();

  private constructor(
    readonly group: PgGroup,
    private readonly opts: PgHaOptions,
  ) {}

  static async start(opts: PgHaOptions): Promise<PgHa> {
    const group = await PgGroup.start({ nodes: 2 });
    const ha = new PgHa(group, opts);
    try {
      for (const server of group.servers) {
        if (opts.ownProxies) {
          ha.proxies.set(
            server.id,
            await Promise.all(opts.ensemble.servers.map((srv) => TcpProxy.start(srv.clientPort))),
          );
        }
        const configFile = path.join(group.dir, `${server.id}.yaml`);
        fs.writeFileSync(configFile, ha.configYaml(server));
        ha.nodes.push({ id: server.id, server, configFile, agent: null });
      }
      await ha.hafc(['init', '-c', ha.nodes[0]!.configFile]);
      const [first, second] = ha.nodes;
      ha.startAgent(first!.id);
      await first!.agent!.waitForRole('active', 20_000);
      ha.startAgent(second!.id);
      await second!.agent!.waitForRole('standby', 20_000);
      return ha;
    } catch (err) {
      await ha.stop();
      throw err;
    }
  }

  configYaml(server: PgServer): string {
    const o = this.opts;
    if (o.configYaml) return o.configYaml(server);
    const user = pgOsUser();
    return agentConfigYaml({
      cluster: o.cluster,
      id: server.id,
      port: server.port,
      connect:
        this.proxies
          .get(server.id)
          ?.map((p) => `127.0.0.1:${p.port}`)
          .join(',') ?? o.ensemble.connectString(),
      sessionTimeoutMs: o.sessionTimeoutMs ?? 4000,
      logLevel: o.logLevel,
      fencingMethods: ['- graceful', `- shell: ${JSON.stringify(KILL_POSTMASTER)}`],
      serviceYaml: [
        '  agent: postgresql',
        `  dataDir: ${server.dataDir}`,
        `  binDir: ${PG_BIN}`,
        ...(user !== undefined ? [`  osUser: ${user}`] : []),
        `  logFile: ${server.logFile}`,
        '  requestTimeoutMs: 1000',
        `  stopTimeoutMs: ${o.stopTimeoutMs ?? 1000}`,
        ...(o.gracefulFenceTimeoutMs !== undefined
          ? [`  gracefulFenceTimeoutMs: ${o.gracefulFenceTimeoutMs}`]
          : []),
        `  synchronous: ${o.synchronous ?? false}`,
        `  maximumLagOnFailover: ${o.maximumLagOnFailover ?? 1048576}`,
      ],
    });
  }

  node(id: string): PgHaNode {
    const n = this.nodes.find((x) => x.id === id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  other(id: string): PgHaNode {
    return this.nodes.find((x) => x.id !== id)!;
  }

  /** Silently drops all traffic between this node's agent and ZooKeeper (connections stay open). */
  partition(id: string, on: boolean): void {
    const own = this.proxies.get(id);
    if (!own) throw new Error('partition() needs PgHa.start({ ownProxies: true })');
    for (const p of own) p.setBlackhole(on);
  }

  startAgent(id: string): AgentProc {
    const node = this.node(id);
    const runDir = path.join(this.group.dir, `run-${id}`);
    fs.mkdirSync(runDir, { recursive: true, mode: 0o700 });
    node.agent = AgentProc.start(id, node.configFile, {
      HAFC_TEST_DIR: this.group.dir,
      HAFC_RUNTIME_DIR: runDir,
    });
    return node.agent;
  }

  async hafc(args: string[]): Promise<{ stdout: string; stderr: string }> {
    return run(process.execPath, [hafcBin, ...args], { timeout: 30_000 });
  }

  /** Waits until `id` is the primary and every other server streams from it. */
  async waitSettled(id: string, timeoutMs = 30_000): Promise<void> {
    const primary = this.node(id).server;
    await waitFor(`${id} to be the primary`, async () => (await primary.role()) === 'primary', { timeoutMs });
    for (const n of this.nodes) {
      if (n.id === id) continue;
      await waitFor(
        `${n.id} to stream from ${id}`,
        async () => (await n.server.streamingFrom()) === `127.0.0.1:${primary.port}`,
        { timeoutMs },
      );
    }
  }

  describe(): string {
    const agents = this.nodes
      .map(
        (n) =>
          `--- agent ${n.id} (role ${n.agent?.role()})\n${(n.agent?.rawOutput() ?? '').split('\n').slice(-40).join('\n')}`,
      )
      .join('\n');
    return `${agents}\n${this.group.describe()}`;
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.agent?.stop().catch(() => undefined)));
    await this.group.stop();
    await Promise.all([...this.proxies.values()].flat().map((p) => p.close()));
  }
}
