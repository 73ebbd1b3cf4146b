/**
 * A Redis pair under real `hafc agent` processes (the redis service agent), on a real ZooKeeper
 * ensemble: what the integration test and the benchmark drive. Both servers start as replicas of
 * the placeholder (a cold start: hafc picks the master). A supervisor restarts a server that
 * dies, after `restartDelayMs`, as systemd's Restart= would; the fencing is graceful (REPLICAOF on
 * the old master), then STONITH by the pid file the supervisor keeps current.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { AgentProc, hafcBin, hafcExit } from './agent-proc.js';
import { KILL_BY_PIDFILE } from './ha-cluster.js';
import { RedisPair, type RedisServer } from './redis.js';
import { TcpProxy } from './tcp-proxy.js';
import { waitFor } from './wait.js';
import type { ZkEnsemble } from './zk-ensemble.js';

const run = promisify(execFile);

export interface RedisClusterOptions {
  ensemble: ZkEnsemble;
  cluster?: string;
  password?: string;
  sessionTimeoutMs?: number;
  /** @default 200 */
  restartDelayMs?: number;
  /** service.gracefulFenceTimeoutMs. @default the agent's requestTimeoutMs */
  gracefulFenceTimeoutMs?: number;
  /** service.requestTimeoutMs (also the to-standby timeout of the lease budget). @default 500 */
  requestTimeoutMs?: number;
  /** The health section, as YAML flow. @default the tests' profile: 200 ms x fall 2, timeout 300 */
  health?: string;
  /** service.maximumLagOnFailover. @default the agent's */
  maxLag?: number;
  /** Start the agents (else the pair alone, e.g. for Sentinel). @default true */
  agents?: boolean;
  /**
   * Each agent reaches ZooKeeper through proxies of its own, so that partition() can cut one
   * agent off from the ensemble silently while its server and its peer still reach each other.
   */
  ownProxies?: boolean;
}

export class RedisCluster {
  readonly dir: string;
  readonly cluster: string;
  readonly agents = new Map<string, AgentProc>();
  /** With ownProxies: each agent's private path to every ZooKeeper server. */
  private readonly proxies = new Map<string, TcpProxy[]>();
  private supervising = true;
  private readonly restarts: Promise<void>[] = [];

  private constructor(
    readonly pair: RedisPair,
    private readonly opts: RedisClusterOptions,
  ) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hafc-redis-ha-'));
    this.cluster = opts.cluster ?? 'redis-it';
  }

  static async start(opts: RedisClusterOptions): Promise<RedisCluster> {
    const pair = await RedisPair.start({ password: opts.password });
    const c = new RedisCluster(pair, opts);
    if (opts.password) fs.writeFileSync(c.passwordFile(), `${opts.password}\n`, { mode: 0o600 });
    for (const s of pair.servers) {
      c.writePid(s);
      if (opts.ownProxies) {
        c.proxies.set(
          s.id,
          await Promise.all(opts.ensemble.servers.map((srv) => TcpProxy.start(srv.clientPort))),
        );
      }
      fs.writeFileSync(c.configFile(s.id), c.configYaml(s));
      c.supervise(s);
    }
    if (opts.agents !== false) {
      await run(process.execPath, [hafcBin, 'init', '-c', c.configFile(pair.r1.id)], { timeout: 20_000 });
      for (const s of pair.servers) c.startAgent(s.id);
    }
    return c;
  }

  passwordFile(): string {
    return path.join(this.dir, 'redis.secret');
  }

  configFile(id: string): string {
    return path.join(this.dir, `${id}.yaml`);
  }

  configYaml(s: RedisServer): string {
    return [
      `cluster: ${this.cluster}`,
      `node: { id: ${s.id}, host: 127.0.0.1, port: ${s.port} }`,
      'zookeeper:',
      `  connect: ${this.connectFor(s.id)}`,
      `  sessionTimeoutMs: ${this.opts.sessionTimeoutMs ?? 4000}`,
      '  requestTimeoutMs: 1000',
      `health: ${this.opts.health ?? '{ intervalMs: 200, timeoutMs: 300, fall: 2, rise: 1, check: agent }'}`,
      'service:',
      '  agent: redis',
      `  requestTimeoutMs: ${this.opts.requestTimeoutMs ?? 500}`,
      ...(this.opts.gracefulFenceTimeoutMs !== undefined
        ? [`  gracefulFenceTimeoutMs: ${this.opts.gracefulFenceTimeoutMs}`]
        : []),
      ...(this.opts.maxLag !== undefined ? [`  maximumLagOnFailover: ${this.opts.maxLag}`] : []),
      ...(this.opts.password ? [`  passwordFile: ${this.passwordFile()}`] : []),
      'fencing:',
      '  timeoutMs: 2000',
      '  methods:',
      '    - graceful',
      `    - shell: ${JSON.stringify(KILL_BY_PIDFILE)}`,
      'election: { backoffMs: 1000, priorityGraceMs: 1000 }',
      'control: { listen: "127.0.0.1:0" }',
      'log: { level: debug, format: json }',
      '',
    ].join('\n');
  }

  private connectFor(id: string): string {
    const own = this.proxies.get(id);
    return own ? own.map((p) => `127.0.0.1:${p.port}`).join(',') : this.opts.ensemble.connectString();
  }

  /** Silently drops all traffic between this node's agent and ZooKeeper (connections stay open). */
  partition(id: string, on: boolean): void {
    const own = this.proxies.get(id);
    if (!own) throw new Error('partition() needs RedisCluster.start({ ownProxies: true })');
    for (const p of own) p.setBlackhole(on);
  }

  startAgent(id: string): AgentProc {
    const runDir = path.join(this.dir, `run-${id}`);
    fs.mkdirSync(runDir, { recursive: true, mode: 0o700 });
    const a = AgentProc.start(id, this.configFile(id), { HAFC_TEST_DIR: this.dir, HAFC_RUNTIME_DIR: runDir });
    this.agents.set(id, a);
    return a;
  }

  agent(id: string): AgentProc {
    const a = this.agents.get(id);
    if (!a) throw new Error(`no agent ${id}`);
    return a;
  }

  private writePid(s: RedisServer): void {
    fs.writeFileSync(path.join(this.dir, `${s.id}.pid`), String(s.pid() ?? ''));
  }

  /** Restarts `s` whenever it dies while supervised (polled: the server object owns the child). */
  private supervise(s: RedisServer): void {
    const loop = async (): Promise<void> => {
      while (this.supervising) {
        if (!s.isRunning()) {
          await new Promise((r) => setTimeout(r, this.opts.restartDelayMs ?? 200));
          if (!this.supervising) break;
          try {
            await s.restart();
            this.writePid(s);
          } catch {
            // Port taken or a slow start: the next round tries again.
          }
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    this.restarts.push(loop());
  }

  /** The server whose ROLE says master while the other says replica of it with the link up. */
  async settled(timeoutMs = 20_000, not?: string): Promise<{ master: RedisServer; replica: RedisServer }> {
    return waitFor(
      `one Redis master${not ? ` other than ${not}` : ''} with the other its replica, link up`,
      async () => {
        for (const m of this.pair.servers) {
          if (m.id === not) continue;
          const r = this.pair.servers.find((x) => x !== m)!;
          const mr = (await m.command(['ROLE']).catch(() => null)) as unknown[] | null;
          const rr = (await r.command(['ROLE']).catch(() => null)) as unknown[] | null;
          if (
            mr?.[0] === 'master' &&
            rr?.[0] === 'slave' &&
            Number(rr[2]) === m.port &&
            rr[3] === 'connected'
          )
            return { master: m, replica: r };
        }
        return null;
      },
      { timeoutMs, intervalMs: 50 },
    );
  }

  /** Runs the CLI and reports its exit code instead of throwing on a non-zero one. */
  hafcExit(args: string[], timeoutMs = 60_000): Promise<{ code: number; stdout: string; stderr: string }> {
    return hafcExit(args, timeoutMs);
  }

  describe(): string {
    return [...this.agents.values()]
      .map((a) => `--- ${a.id} (role ${a.role()})\n${a.rawOutput().split('\n').slice(-30).join('\n')}`)
      .join('\n');
  }

  async stop(): Promise<void> {
    this.supervising = false;
    await Promise.all(this.restarts);
    await Promise.all([...this.agents.values()].map((a) => a.stop().catch(() => undefined)));
    await this.pair.stop();
    await Promise.all([...this.proxies.values()].flat().map((p) => p.close()));
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
