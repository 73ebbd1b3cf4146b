/**
 * One process hosting one node of MANY clusters (bench/scale.ts forks two: node a of every cluster
 * in one, node b in the other). Each cluster's node is a full hafc controller: its own ZooKeeper
 * session, health monitor, elector and fencer, exactly as `hafc agent` builds them; only the
 * service is in memory, so that 400 agents fit on one machine. The process sharing is what makes
 * the measurement affordable, and the bench says so in its output.
 *
 * The service reports every role change to the parent over the IPC channel; graceful fencing asks
 * the parent, which knows which process hosts the old active: a dead process's services died with
 * it (fenced), a live one is told to demote and answers when it has.
 */
import { systemClock } from '../src/clock.js';
import { zkAccess } from '../src/cli/runtime.js';
import { parseConfig } from '../src/config/load.js';
import { Controller } from '../src/controller/controller.js';
import { Fencer } from '../src/fencing/fencer.js';
import { HealthMonitor } from '../src/health/monitor.js';
import { createLogger } from '../src/log.js';
import type { FenceTarget, HookContext, ServiceAgent, ServiceRole } from '../src/service/agent.js';

export interface WorkerSpec {
  connect: string;
  sessionTimeoutMs: number;
  healthIntervalMs: number;
  node: string;
  priority: number;
  clusters: string[];
}

/** Worker -> parent. */
export type WorkerMessage =
  | { kind: 'ready' }
  | { kind: 'role'; cluster: string; node: string; role: ServiceRole; epoch: string; at: number }
  | { kind: 'fence'; id: number; cluster: string; target: string }
  | { kind: 'demoted'; id: number; ok: boolean }
  | { kind: 'stats'; rssBytes: number; cpuMicros: number; controllers: number };

/** Parent -> worker. */
export type ParentMessage =
  | { kind: 'fenced'; id: number; ok: boolean }
  | { kind: 'demote'; id: number; cluster: string }
  | { kind: 'stats' }
  | { kind: 'stop' };

const send = (m: WorkerMessage): void => {
  process.send?.(m);
};

let nextFence = 1;
const fenceWaiters = new Map<number, (ok: boolean) => void>();

class MemoryService implements ServiceAgent {
  readonly kind = 'bench-memory';
  readonly toStandbyTimeoutMs = 1000;
  private role: ServiceRole = 'standby';

  constructor(
    private readonly cluster: string,
    private readonly node: string,
  ) {}

  private set(role: ServiceRole, ctx: HookContext): void {
    this.role = role;
    send({
      kind: 'role',
      cluster: this.cluster,
      node: this.node,
      role,
      epoch: ctx.epoch.toString(),
      at: Date.now(),
    });
  }

  async check(): Promise<void> {}
  async toActive(ctx: HookContext): Promise<void> {
    this.set('active', ctx);
  }
  async toStandby(ctx: HookContext): Promise<void> {
    this.set('standby', ctx);
  }
  async state(): Promise<ServiceRole> {
    return this.role;
  }
  demoteNow(): void {
    this.set('standby', {
      cluster: this.cluster,
      nodeId: this.node,
      role: 'standby',
      epoch: 0n,
      reason: 'fenced',
    });
  }
  fenceGraceful(target: FenceTarget, _ctx: HookContext, signal: AbortSignal): Promise<void> {
    const id = nextFence++;
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        fenceWaiters.delete(id);
        reject(new Error(`fencing ${target.id} aborted`));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      fenceWaiters.set(id, (ok) => {
        signal.removeEventListener('abort', onAbort);
        if (ok) resolve();
        else reject(new Error(`the parent could not fence ${target.id}`));
      });
      send({ kind: 'fence', id, cluster: this.cluster, target: target.id });
    });
  }
}

function configYaml(spec: WorkerSpec, cluster: string): string {
  return [
    `cluster: ${cluster}`,
    `node: { id: ${spec.node}, host: 127.0.0.1, port: 1, priority: ${spec.priority} }`,
    `zookeeper: { connect: "${spec.connect}", sessionTimeoutMs: ${spec.sessionTimeoutMs}, requestTimeoutMs: 1000 }`,
    `health: { intervalMs: ${spec.healthIntervalMs}, timeoutMs: ${Math.min(1000, spec.healthIntervalMs)}, fall: 2, rise: 1, check: { tcp: "127.0.0.1:1" } }`,
    'service: { agent: http, url: "http://127.0.0.1:1", requestTimeoutMs: 1000 }',
    'fencing: { methods: [graceful], timeoutMs: 10000 }',
    'log: { level: warn }',
  ].join('\n');
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '') as WorkerSpec;
  const services = new Map<string, MemoryService>();
  const controllers: Controller[] = [];
  const logger = createLogger({ level: 'warn', base: { node: spec.node } });
  for (const cluster of spec.clusters) {
    const cfg = parseConfig(configYaml(spec, cluster), `${cluster}-${spec.node}.yaml`, { hostname: 'bench' });
    const svc = new MemoryService(cluster, spec.node);
    services.set(cluster, svc);
    const log = logger.child({ cluster });
    const zk = await zkAccess(cfg, log, svc.toStandbyTimeoutMs, false);
    const health = new HealthMonitor({
      check: () => svc.check(),
      intervalMs: cfg.health.intervalMs,
      timeoutMs: cfg.health.timeoutMs,
      fall: cfg.health.fall,
      rise: cfg.health.rise,
      clock: systemClock,
      logger: log,
    });
    const ctl = new Controller({
      config: cfg,
      agent: svc,
      fencer: new Fencer(cfg.fencing.methods, cfg.fencing.timeoutMs, svc, log),
      health,
      connect: zk.connect,
      agentVersion: 'bench',
      clock: systemClock,
      logger: log,
    });
    controllers.push(ctl);
  }
  process.on('message', (m: ParentMessage) => {
    if (m.kind === 'fenced') {
      fenceWaiters.get(m.id)?.(m.ok);
      fenceWaiters.delete(m.id);
    } else if (m.kind === 'demote') {
      const svc = services.get(m.cluster);
      svc?.demoteNow();
      send({ kind: 'demoted', id: m.id, ok: svc !== undefined });
    } else if (m.kind === 'stats') {
      const u = process.cpuUsage();
      send({
        kind: 'stats',
        rssBytes: process.memoryUsage.rss(),
        cpuMicros: u.user + u.system,
        controllers: controllers.length,
      });
    } else if (m.kind === 'stop') {
      void Promise.all(controllers.map((c) => c.stop())).then(() => process.exit(0));
    }
  });
  for (const c of controllers) c.start();
  send({ kind: 'ready' });
}

main().catch((err: unknown) => {
  process.stderr.write(`scale-worker: ${String(err)}\n`);
  process.exit(1);
});
