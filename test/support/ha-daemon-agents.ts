/**
 * What the real-Hadoop agent tests share: one hafc agent per HA daemon (NameNode or
 * ResourceManager) on one ZooKeeper, and the split-brain check from the daemons' own view (each
 * asked getServiceStatus every 50 ms; a sample finding two active is recorded).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { AgentProc, hafcBin } from '../../harness/agent-proc.js';
import { waitFor } from '../../harness/wait.js';
import type { ZkEnsemble } from '../../harness/zk-ensemble.js';
import { HaServiceClient } from '../../src/hadoop/ha-service.js';

const run = promisify(execFile);

export interface HaDaemon {
  id: string;
  freeze(): Promise<void>;
  thaw(): void;
}

export interface HaAgentsOptions<D extends HaDaemon> {
  cluster: string;
  daemons: [D, D];
  zk: ZkEnsemble;
  sessionMs: number;
  /** Where the daemon serves HAServiceProtocol (a NameNode's RPC port, an RM's admin port). */
  haPort: (d: D) => number;
  /** The `service:` flow mapping of the daemon's agent config. */
  service: (d: D) => string;
  /** For messages: NameNode, ResourceManager. */
  kind: string;
}

export class HaDaemonAgents<D extends HaDaemon> {
  readonly agents = new Map<string, AgentProc>();
  /** Sample times at which both daemons said active. */
  readonly doubleActive: string[] = [];
  private readonly clients = new Map<string, HaServiceClient>();
  private sampling = true;
  /** Every agent process started, restarts included, for the logs kept after a run. */
  private readonly started: AgentProc[] = [];
  private sampler: Promise<void> = Promise.resolve();

  private constructor(
    readonly dir: string,
    private readonly opts: HaAgentsOptions<D>,
  ) {}

  /** Writes the configs, runs `hafc init`, starts the sampler and both agents. */
  static async start<D extends HaDaemon>(opts: HaAgentsOptions<D>): Promise<HaDaemonAgents<D>> {
    const f = new HaDaemonAgents(fs.mkdtempSync(path.join(os.tmpdir(), `hafc-${opts.cluster}-`)), opts);
    for (const [i, d] of opts.daemons.entries()) {
      f.clients.set(
        d.id,
        new HaServiceClient({
          host: '127.0.0.1',
          port: opts.haPort(d),
          user: 'hafc',
          connectTimeoutMs: 1000,
          callTimeoutMs: 1000,
        }),
      );
      const yaml = [
        `cluster: ${opts.cluster}`,
        `node: { id: ${d.id}, host: 127.0.0.1, port: ${opts.haPort(d)}, priority: ${i === 0 ? 10 : 5} }`,
        `zookeeper: { connect: "${opts.zk.connectString()}", sessionTimeoutMs: ${opts.sessionMs}, onConnectionLoss: hold }`,
        'health: { intervalMs: 300, timeoutMs: 800, fall: 3, rise: 1, check: agent }',
        `service: ${opts.service(d)}`,
        // graceful = transitionToStandby on the old active; a dead daemon serves nothing, so the
        // shell method after it stands in for the STONITH a real deployment configures.
        'fencing: { methods: [graceful, { shell: "true" }], timeoutMs: 5000 }',
        'control: { listen: "127.0.0.1:0" }',
        'log: { level: debug, format: json }',
        '',
      ].join('\n');
      fs.writeFileSync(f.configOf(d.id), yaml);
      fs.mkdirSync(path.join(f.dir, `run-${d.id}`), { mode: 0o700 });
    }
    await run(process.execPath, [hafcBin, 'init', '-c', f.configOf(opts.daemons[0].id)], {
      timeout: 20_000,
    });
    f.sampler = (async () => {
      while (f.sampling) {
        const [a, b] = await Promise.all(opts.daemons.map((d) => f.stateOf(d)));
        if (a === 'active' && b === 'active') f.doubleActive.push(new Date().toISOString());
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    for (const d of opts.daemons) f.startAgent(d.id);
    return f;
  }

  configOf(id: string): string {
    return path.join(this.dir, `${id}.yaml`);
  }

  /** Starts (or restarts, after a kill) the agent of daemon `id`. */
  startAgent(id: string): AgentProc {
    const a = AgentProc.start(id, this.configOf(id), { HAFC_RUNTIME_DIR: path.join(this.dir, `run-${id}`) });
    this.agents.set(id, a);
    this.started.push(a);
    return a;
  }

  agentOf(d: D): AgentProc {
    return this.agents.get(d.id)!;
  }

  otherThan(d: D): D {
    return this.opts.daemons.find((x) => x.id !== d.id)!;
  }

  /** The daemon's own word (getServiceStatus), or 'unreachable'. */
  async stateOf(d: D): Promise<string> {
    try {
      return (await this.clients.get(d.id)!.getServiceStatus({ timeoutMs: 1000 })).state;
    } catch {
      return 'unreachable';
    }
  }

  /** HAServiceProtocol client of daemon `d` (SIMPLE user hafc, 1 s deadlines). */
  client(d: D): HaServiceClient {
    return this.clients.get(d.id)!;
  }

  /**
   * Waits until exactly one daemon (not `not`) says it is active, and its agent says so too;
   * fails with both agents' tails.
   */
  active(not?: string): Promise<D> {
    return waitFor(
      `exactly one ${this.opts.kind}${not ? ` other than ${not}` : ''} to say it is active, its agent too`,
      async () => {
        const states = await Promise.all(this.opts.daemons.map((d) => this.stateOf(d)));
        const act = this.opts.daemons.filter((_, i) => states[i] === 'active');
        // Its agent must say so too: a daemon can be active for a moment without the lock (a
        // promotion whose answer was lost, undone by the agent's next reconcile).
        return act.length === 1 && act[0]!.id !== not && this.agentOf(act[0]!).role() === 'active'
          ? act[0]
          : undefined;
      },
      { timeoutMs: 60_000 },
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}\n${this.agentTails()}`);
    });
  }

  /** Both agents settled: `active`'s agent active, the other's standby (it stands for election). */
  async settled(active: D): Promise<void> {
    await this.agentOf(active).waitForRole('active', 60_000);
    await this.agentOf(this.otherThan(active)).waitForRole('standby', 60_000);
  }

  /**
   * Makes the lower-priority daemon the active one (a switchover if need be) and returns it. A
   * fault case that expects the OTHER node to take over after a frozen daemon is thawed needs
   * this: a thawed higher-priority node is healthy and electable again at once, and it rightly
   * takes the free lock back while the lower-priority one defers to it (election.priorityGraceMs).
   */
  async lowPriorityActive(): Promise<D> {
    const low = this.opts.daemons[1];
    const active = await this.active();
    if (active.id !== low.id) {
      await this.failover(active, low);
      await this.settled(low);
    }
    return low;
  }

  /**
   * SIGSTOPs the active daemon `old` until its agent has sent it the demotion (3 health checks
   * timing out, then "leaving the election", then the to-standby call that waits in the frozen
   * daemon's socket), checks that the other daemon stayed standby meanwhile, and thaws it.
   * Returns the ms from the freeze until the demotion was sent. Thawing earlier (at "leaving the
   * election") lets a check that passes after SIGCONT make the node electable again before the
   * elector acts on it, and the agent then rightly keeps its daemon active.
   */
  async freezeUntilDemotion(old: D): Promise<number> {
    const agent = this.agentOf(old);
    const from = agent.logs().length;
    const t0 = Date.now();
    await old.freeze();
    try {
      await agent.waitForLog(
        'the demotion of the frozen daemon to begin',
        (l) =>
          l.msg === 'service -> standby: asking the service' &&
          String(l['reason']).startsWith('no longer electable'),
        15_000,
        from,
      );
      const ms = Date.now() - t0;
      const other = await this.stateOf(this.otherThan(old));
      if (other !== 'standby')
        throw new Error(`the other ${this.opts.kind} was ${other} while ${old.id} was frozen`);
      return ms;
    } finally {
      old.thaw();
    }
  }

  /** `hafc failover --to <to> --wait` from `from`'s config. */
  async failover(from: D, to: D): Promise<string> {
    const r = await run(
      process.execPath,
      [hafcBin, 'failover', '-c', this.configOf(from.id), '--to', to.id, '--wait', '--reason', 'it'],
      { timeout: 60_000 },
    );
    return r.stdout;
  }

  /** What both agents last said, for a failure message. */
  agentTails(): string {
    return [...this.agents.values()]
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
  }

  async stop(): Promise<void> {
    this.sampling = false;
    await this.sampler;
    for (const a of this.agents.values()) await a.stop().catch(() => undefined);
    for (const c of this.clients.values()) c.close();
    if (process.env.HAFC_KEEP_HADOOP_DIRS === '1') {
      for (const [i, a] of this.started.entries()) {
        fs.writeFileSync(path.join(this.dir, `agent-${a.id}-${i}.log`), a.rawLog());
      }
      console.log(`${this.opts.kind} agents' configs and logs kept in ${this.dir}`);
    } else {
      fs.rmSync(this.dir, { recursive: true, force: true });
    }
  }
}
