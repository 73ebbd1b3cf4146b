/**
 * The controller (health -> electability -> elector -> fence -> transition; reconcile) in process,
 * MiniZKFCCluster-style: each node is a real Controller with a real HealthMonitor and Fencer, driving
 * a DummyService (an in-memory ServiceAgent whose role, health and misbehaviour the test sets) on
 * the in-memory store and a fake clock. A shared ledger fails the test the moment two dummies are
 * active at once.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { Controller, type ReloadParts } from '../../../src/controller/controller.js';
import { Fencer } from '../../../src/fencing/fencer.js';
import { HealthMonitor } from '../../../src/health/monitor.js';
import { createLogger } from '../../../src/log.js';
import type { Metrics } from '../../../src/metrics/metrics.js';
import { PromMetrics } from '../../../src/metrics/prom.js';
import type { FenceTarget, HookContext, ServiceAgent, ServiceRole } from '../../../src/service/agent.js';
import { clusterPaths } from '../../../src/zk/paths.js';
import { FakeClock } from '../../support/fake-clock.js';
import { FakeCoordinator, type FakeConnection } from '../../support/fake-store.js';

const paths = clusterPaths('/hafc', 'ns1');
const T = 4000;
const TO_STANDBY = 1000;

/** At most one active dummy at any moment, checked at every change. */
class Ledger {
  readonly active = new Set<string>();
  readonly violations: string[] = [];
  constructor(private readonly clock: FakeClock) {}
  set(id: string, role: ServiceRole): void {
    if (role === 'active') this.active.add(id);
    else this.active.delete(id);
    if (this.active.size > 1)
      this.violations.push(`t=${this.clock.now()}: ${[...this.active].join(' and ')} active`);
  }
}

class DummyService implements ServiceAgent {
  readonly kind = 'dummy';
  toStandbyTimeoutMs = TO_STANDBY;
  role: ServiceRole = 'standby';
  healthy = true;
  /** toActive never settles (a hook stuck in the kernel). */
  hangToActive = false;
  failToActive = false;
  /** toActive waits for this before it promotes (a slow hook the test ends by hand). */
  gate: Promise<void> | null = null;
  readonly calls: { op: string; epoch: bigint; reason: string; at: number }[] = [];
  /** Set by a test to make this dummy a replica agent. */
  follow?: (active: FenceTarget, ctx: HookContext, signal: AbortSignal) => Promise<void>;
  /** Fake times at which close() was called. */
  readonly closedAt: number[] = [];

  constructor(
    readonly id: string,
    private readonly ledger: Ledger,
    private readonly clock: FakeClock,
    private readonly peers: Map<string, DummyService>,
  ) {}

  private note(op: string, ctx: HookContext): void {
    this.calls.push({ op, epoch: ctx.epoch, reason: ctx.reason, at: this.clock.now() });
  }

  setRole(role: ServiceRole): void {
    this.role = role;
    this.ledger.set(this.id, role);
  }

  async check(): Promise<void> {
    if (!this.healthy) throw new Error(`${this.id} unhealthy`);
  }
  async toActive(ctx: HookContext): Promise<void> {
    this.note('toActive', ctx);
    if (this.hangToActive) return new Promise<void>(() => {});
    if (this.gate) await this.gate;
    if (this.failToActive) throw new Error('to-active refused');
    this.setRole('active');
  }
  async toStandby(ctx: HookContext): Promise<void> {
    this.note('toStandby', ctx);
    this.setRole('standby');
  }
  async state(): Promise<ServiceRole> {
    return this.role;
  }
  close(): void {
    this.closedAt.push(this.clock.now());
  }
  async fenceGraceful(target: FenceTarget): Promise<void> {
    const peer = this.peers.get(target.id);
    if (!peer) throw new Error(`no service ${target.id} to fence`);
    peer.setRole('standby');
  }
}

function configYaml(id: string, priority = 0): string {
  return [
    'cluster: ns1',
    `node: { id: ${id}, host: 10.0.0.${id.length}, port: 80${id.charCodeAt(id.length - 1) % 10}, priority: ${priority} }`,
    'zookeeper: { connect: "127.0.0.1:2181", sessionTimeoutMs: 4000, requestTimeoutMs: 1000, safetyMarginMs: 1000 }',
    'health: { intervalMs: 200, timeoutMs: 300, fall: 2, rise: 1, check: { tcp: "127.0.0.1:1" } }',
    'service: { agent: http, url: "http://127.0.0.1:1", requestTimeoutMs: 1000 }',
    'fencing: { methods: [graceful], timeoutMs: 3000 }',
    'election: { backoffMs: 1000, priorityGraceMs: 1000 }',
  ].join('\n');
}

class Mini {
  readonly clock = new FakeClock();
  readonly server = new FakeCoordinator(this.clock, paths);
  readonly ledger = new Ledger(this.clock);
  readonly services = new Map<string, DummyService>();
  readonly controllers = new Map<string, Controller>();
  readonly fatal: string[] = [];
  readonly logs: string[] = [];

  /** Hosts cut off from ZooKeeper: their controllers cannot open a session. */
  readonly unreachable = new Set<string>();
  readonly conns = new Map<string, FakeConnection[]>();

  add(id: string, metrics?: Metrics): { svc: DummyService; ctl: Controller } {
    const cfg = parseConfig(configYaml(id), `${id}.yaml`, { hostname: 'test' });
    const svc = new DummyService(id, this.ledger, this.clock, this.services);
    const logger = createLogger({ level: 'debug', write: (l) => this.logs.push(l), base: { node: id } });
    const health = new HealthMonitor({
      check: () => svc.check(),
      intervalMs: cfg.health.intervalMs,
      timeoutMs: cfg.health.timeoutMs,
      fall: cfg.health.fall,
      rise: cfg.health.rise,
      clock: this.clock,
      logger,
    });
    const ctl = new Controller({
      config: cfg,
      agent: svc,
      fencer: new Fencer(cfg.fencing.methods, cfg.fencing.timeoutMs, svc, logger),
      health,
      connect: async () => {
        if (this.unreachable.has(id)) throw new Error(`${id} cannot reach ZooKeeper`);
        const c = await this.server.connect({ negotiatedTimeoutMs: T });
        this.conns.set(id, [...(this.conns.get(id) ?? []), c]);
        return c;
      },
      agentVersion: 'test',
      clock: this.clock,
      logger,
      onFatal: (r) => this.fatal.push(r),
      metrics,
    });
    this.services.set(id, svc);
    this.controllers.set(id, ctl);
    return { svc, ctl };
  }

  /** a active, b standby. */
  async pair(): Promise<{
    a: { svc: DummyService; ctl: Controller };
    b: { svc: DummyService; ctl: Controller };
  }> {
    const a = this.add('a');
    const b = this.add('b');
    a.ctl.start();
    await this.until('a active', () => a.svc.role === 'active');
    b.ctl.start();
    await this.until('b standby', () => b.ctl.role() === 'standby');
    return { a, b };
  }

  async settle(): Promise<void> {
    for (let i = 0; i < 3; i++) await new Promise<void>((r) => setImmediate(r));
  }

  async until(what: string, cond: () => boolean, maxMs = 20_000): Promise<void> {
    const start = this.clock.now();
    for (;;) {
      await this.settle();
      if (cond()) return;
      if (this.clock.now() - start >= maxMs)
        throw new Error(`not reached within ${maxMs} ms of fake time: ${what}`);
      await this.clock.advance(10);
    }
  }

  async advance(ms: number): Promise<void> {
    const end = this.clock.now() + ms;
    while (this.clock.now() < end) {
      await this.clock.advance(Math.min(10, end - this.clock.now()));
      await this.settle();
    }
  }

  async dispose(): Promise<void> {
    for (const s of this.services.values()) s.hangToActive = false;
    let done = false;
    const all = Promise.all([...this.controllers.values()].map((c) => c.stop())).then(() => {
      done = true;
    });
    await this.until('controllers stopped', () => done, 60_000);
    await all;
  }
}

let minis: Mini[] = [];
function mini(): Mini {
  const m = new Mini();
  minis.push(m);
  return m;
}
afterEach(async () => {
  const ms = minis;
  minis = [];
  for (const m of ms) {
    await m.dispose();
    expect(m.ledger.violations).toEqual([]);
  }
});

describe('Controller', () => {
  it('healthy -> elected -> the service is active with the lock epoch; unhealthy -> demoted with that epoch', async () => {
    const m = mini();
    const a = m.add('a');
    a.ctl.start();
    await m.until('a active', () => a.svc.role === 'active');
    expect(a.ctl.role()).toBe('active');
    const epoch = a.ctl.elector.getEpoch()!;
    expect(a.svc.calls[0]).toMatchObject({ op: 'toActive', epoch });
    expect(m.server.get(paths.lock)?.stat.czxid).toBe(epoch);

    a.svc.healthy = false;
    await m.until('a demoted', () => a.svc.role === 'standby');
    expect(a.svc.calls.at(-1)).toMatchObject({ op: 'toStandby', epoch });
    expect(a.ctl.status().lastTransition).toMatchObject({
      to: 'standby',
      result: 'ok',
      epoch: epoch.toString(),
    });
    await m.until('lock released', () => m.server.get(paths.lock) === null);
  });

  it('failover: the standby fences the old active (graceful) and takes over; never two actives', async () => {
    const m = mini();
    const { a, b } = await m.pair();
    a.svc.healthy = false;
    await m.until('b active', () => b.svc.role === 'active');
    expect(a.svc.role).toBe('standby');
    expect(b.ctl.elector.getEpoch()!).toBeGreaterThan(a.svc.calls[0]!.epoch);
  });

  it('reconcile: a service found active without the lock is demoted; found standby while elected, re-elected with a new epoch', async () => {
    const m = mini();
    const { a, b } = await m.pair();
    const epoch1 = a.ctl.elector.getEpoch()!;

    // Behind our backs, a's service stands down: the election runs again, with a new epoch.
    a.svc.setRole('standby');
    const nodes = [a, b];
    await m.until('someone active with a new epoch', () =>
      nodes.some((n) => n.svc.role === 'active' && (n.ctl.elector.getEpoch() ?? 0n) > epoch1),
    );
    const loser = nodes.find((n) => n.svc.role !== 'active')!;
    await m.until('the other one standby', () => loser.ctl.role() === 'standby');
    // And the standby's service is promoted by hand (not through the ledger, so that only a
    // reconcile that failed to undo it would leave it there): its agent demotes it.
    loser.svc.role = 'active';
    await m.until('demoted by reconcile', () => loser.svc.role === 'standby');
    expect(loser.svc.calls.at(-1)).toMatchObject({ op: 'toStandby' });
    expect(loser.svc.calls.at(-1)!.reason).toContain('not the elected active');
  });

  it('a to-active that never returns is abandoned at its hard deadline: lock released, then retried', async () => {
    const m = mini();
    const a = m.add('a');
    a.svc.hangToActive = true;
    a.ctl.start();
    await m.until('to-active called', () => a.svc.calls.some((c) => c.op === 'toActive'));
    const calledAt = a.svc.calls[0]!.at;
    await m.until('activation abandoned', () => a.ctl.status().elector.lastFailure !== null, 30_000);
    const failure = a.ctl.status().elector.lastFailure!;
    expect(failure.reason).toContain('to-active did not finish within');
    expect(failure.atMs - calledAt).toBeLessThanOrEqual(TO_STANDBY + 5000 + 50);
    // The demotion after a failed activation tells the service which activation ended.
    const standby = a.svc.calls.find((c) => c.op === 'toStandby')!;
    expect(standby.epoch).toBe(a.svc.calls[0]!.epoch);
    expect(standby.epoch).toBeGreaterThan(0n);
    a.svc.hangToActive = false;
    await m.until('a active after the back-off', () => a.svc.role === 'active', 30_000);
  });

  it('emergencyDemote: demotes a service that may be active, leaves a standby alone', async () => {
    const m = mini();
    const { a, b } = await m.pair();
    const bCalls = b.svc.calls.length;
    await expect(b.ctl.emergencyDemote('test crash')).resolves.toBe(true);
    expect(b.svc.calls.length).toBe(bCalls);
    await expect(a.ctl.emergencyDemote('test crash')).resolves.toBe(true);
    expect(a.svc.role).toBe('standby');
    expect(a.svc.calls.at(-1)).toMatchObject({ op: 'toStandby', reason: 'emergency: test crash' });
  });

  it('a failed fence is kept in status with every attempt, and nobody is promoted', async () => {
    const m = mini();
    const { a, b } = await m.pair();
    // a's host is cut off: it demotes itself on its lease but cannot mark its breadcrumb, and its
    // service cannot be reached for graceful fencing.
    m.unreachable.add('a');
    const sA = m.conns.get('a')!.at(-1)!;
    sA.suspend();
    m.services.delete('a');
    await m.until('a lost its session', () => sA.state === 'lost' || sA.state === 'closed');
    m.server.expire(sA, { notice: false });
    await m.until('b refused to promote', () => b.ctl.status().lastFenceFailure !== null, 30_000);
    expect(a.svc.role).toBe('standby'); // it did stand down on its lease
    expect(b.ctl.status().lastFenceFailure).toMatchObject({ target: 'a' });
    expect(b.ctl.status().lastFenceFailure!.attempts[0]).toMatchObject({ method: 'graceful' });
    expect(b.ctl.status().lastFenceFailure!.attempts[0]!.error).toContain('no service a to fence');
    expect(b.svc.role).toBe('standby');
  });

  it('reports to its metrics: role, lock, epoch, health checks, transitions, fencing, lost sessions', async () => {
    const m = mini();
    const prom = (id: string) =>
      new PromMetrics({ version: 't', cluster: 'ns1', node: id, processMetrics: false });
    const ma = prom('a');
    const mb = prom('b');
    const a = m.add('a', ma);
    a.ctl.start();
    await m.until('a active', () => a.svc.role === 'active');
    const b = m.add('b', mb);
    b.ctl.start();
    await m.until('b standby', () => b.ctl.role() === 'standby');
    let ta = await ma.text();
    expect(ta).toContain('hafc_role{role="active"} 1');
    expect(ta).toContain('\nhafc_lock_acquisitions_total 1\n');
    expect(ta).toContain(`\nhafc_epoch ${a.ctl.elector.getEpoch()!}\n`);
    expect(ta).toContain('hafc_health_state{state="healthy"} 1');
    expect(ta).toMatch(/hafc_health_checks_total\{result="ok"\} [1-9]/);
    expect(ta).toContain('hafc_transitions_total{to="active",result="ok"} 1');
    expect(await mb.text()).toContain('hafc_role{role="standby"} 1');

    // a's session expires on the server: counted once; b fences a (graceful) and takes over.
    const sA = m.conns.get('a')!.at(-1)!;
    m.server.expire(sA);
    await m.until('b active', () => b.svc.role === 'active');
    ta = await ma.text();
    expect(ta).toContain('\nhafc_zookeeper_session_expirations_total 1\n');
    // Demoted on the lost session (and told to stand by again once it sees b's lock).
    expect(ta).toMatch(/hafc_transitions_total\{to="standby",result="ok"\} [1-9]/);
    expect(ta).toContain('hafc_role{role="standby"} 1');
    const tb = await mb.text();
    expect(tb).toContain('hafc_role{role="active"} 1');
    expect(tb).toContain('\nhafc_zookeeper_session_expirations_total 0\n');
    expect(tb).toMatch(/hafc_fencing_attempts_total\{method="graceful",result="ok"\} 1/);
    expect(tb).toContain('hafc_fencings_total{result="ok"} 1');
  });
});

describe('Controller.reload', () => {
  /** What cli/reload.ts would hand over: a new config and a new dummy for the same service. */
  function partsFor(m: Mini, id: string, priority: number): { svc: DummyService; parts: ReloadParts } {
    const config = parseConfig(configYaml(id, priority), `${id}.yaml`, { hostname: 'test' });
    const svc = new DummyService(id, m.ledger, m.clock, m.services);
    const logger = createLogger({ level: 'debug', write: (l) => m.logs.push(l), base: { node: id } });
    const h = config.health;
    return {
      svc,
      parts: {
        config,
        agent: svc,
        fencer: new Fencer(config.fencing.methods, config.fencing.timeoutMs, svc, logger),
        health: {
          check: () => svc.check(),
          intervalMs: h.intervalMs,
          timeoutMs: h.timeoutMs,
          fall: h.fall,
          rise: h.rise,
        },
      },
    };
  }

  const member = (m: Mini, id: string) =>
    JSON.parse(String(m.server.get(paths.member(id))?.data)) as { priority: number };

  it('waits for a to-active in flight, then swaps: same lock, same epoch, new priority, new agent for what follows', async () => {
    const m = mini();
    const a = m.add('a');
    let release!: () => void;
    a.svc.gate = new Promise<void>((r) => (release = r));
    a.ctl.start();
    await m.until('to-active in flight', () => a.svc.calls.some((c) => c.op === 'toActive'));
    const lock = m.server.get(paths.lock)!.stat;
    const { svc: next, parts } = partsFor(m, 'a', 7);
    let reloaded = false;
    const reload = a.ctl.reload(parts).then(() => (reloaded = true));
    await m.advance(2000);
    expect(reloaded, 'a reload waits while a to-active is in flight').toBe(false);
    expect(m.logs.some((l) => l.includes('reload waits for the election step in flight'))).toBe(true);
    release();
    await m.until('reloaded', () => reloaded);
    await reload;
    // The activation ran to its end with the old agent; nothing else happened to the service.
    expect(a.svc.role).toBe('active');
    expect(a.ctl.role()).toBe('active');
    expect(next.calls).toEqual([]);
    expect(m.server.get(paths.lock)!.stat).toEqual(lock);
    expect(a.ctl.elector.getEpoch()).toBe(lock.czxid);
    await m.until('member record republished', () => member(m, 'a').priority === 7);
    // From now on the new agent acts: its health check, its demotion.
    next.role = 'active';
    next.healthy = false;
    await m.until('demoted through the new agent', () => next.role === 'standby');
    expect(next.calls.at(-1)).toMatchObject({ op: 'toStandby', epoch: lock.czxid });
    expect(a.svc.calls.filter((c) => c.op === 'toStandby')).toEqual([]);
  });

  it('refuses pieces that would change what the session was sized for; nothing changes', async () => {
    const m = mini();
    const a = m.add('a');
    a.ctl.start();
    await m.until('a active', () => a.svc.role === 'active');
    const { svc, parts } = partsFor(m, 'a', 7);
    svc.toStandbyTimeoutMs = TO_STANDBY + 1;
    await expect(a.ctl.reload(parts)).rejects.toThrow(
      "reload: the new service agent's to-standby timeout (1001 ms) or control port (undefined) differs " +
        "from the running one's (1000 ms, undefined): a restart is needed",
    );
    await m.advance(1000);
    expect(member(m, 'a').priority).toBe(0);
    a.svc.healthy = false;
    await m.until('demoted through the old agent', () => a.svc.role === 'standby');
    expect(svc.calls).toEqual([]);
  });

  it('closes the replaced agent once nothing of it can be in flight; never the running one', async () => {
    const m = mini();
    const a = m.add('a');
    a.ctl.start();
    await m.until('a active', () => a.svc.role === 'active');
    const { svc: next, parts } = partsFor(m, 'a', 7);
    await a.ctl.reload(parts);
    const swappedAt = m.clock.now();
    // A check or reconcile query of the old agent may have started just before the swap: it is
    // closed only after the health timeout (300) plus an agent call's bound (to-standby 1000 + slack).
    await m.advance(300);
    expect(a.svc.closedAt, 'closed while a health check could still be using it').toEqual([]);
    await m.until('the old agent closed', () => a.svc.closedAt.length === 1, 10_000);
    expect(a.svc.closedAt[0]! - swappedAt).toBeGreaterThanOrEqual(300 + TO_STANDBY);
    expect(next.closedAt).toEqual([]);
    // The new agent runs the service from now on; a stop leaves it open, as an emergency
    // demotion may still need it before the process exits.
    expect(a.ctl.role()).toBe('active');
    await a.ctl.stop();
    expect(next.closedAt).toEqual([]);
    expect(a.svc.closedAt).toHaveLength(1);
  });

  it('a stop right after a reload closes the replaced agent too, at once', async () => {
    const m = mini();
    const a = m.add('a');
    a.ctl.start();
    await m.until('a active', () => a.svc.role === 'active');
    const { svc: next, parts } = partsFor(m, 'a', 7);
    await a.ctl.reload(parts);
    await m.settle();
    let stopped = false;
    const stop = a.ctl.stop().then(() => (stopped = true));
    await m.until('stopped', () => stopped);
    await stop;
    expect(a.svc.closedAt).toHaveLength(1);
    expect(next.closedAt).toEqual([]);
  });

  it('status counts reloads by outcome and keeps the last one', () => {
    const m = mini();
    const a = m.add('a');
    expect(a.ctl.status()).toMatchObject({
      reloads: { applied: 0, unchanged: 0, refused: 0 },
      lastReload: null,
    });
    a.ctl.recordReload({ result: 'applied', changed: ['node.priority'] });
    a.ctl.recordReload({ result: 'refused', changed: ['zookeeper.connect'], error: 'restart needed' });
    expect(a.ctl.status()).toMatchObject({
      reloads: { applied: 1, unchanged: 0, refused: 1 },
      lastReload: { result: 'refused', changed: ['zookeeper.connect'], error: 'restart needed' },
    });
    expect(Date.parse(a.ctl.status().lastReload!.at)).not.toBeNaN();
  });
});

describe('Controller: replica agents follow the active', () => {
  /** A follow() that runs until its signal aborts it; when it started and ended. */
  function hangingFollow(m: Mini, n: { svc: DummyService }) {
    const times = { startedAt: null as number | null, endedAt: null as number | null };
    n.svc.follow = (_t, _ctx, signal) =>
      new Promise<void>((_resolve, reject) => {
        times.startedAt ??= m.clock.now();
        signal.addEventListener('abort', () => {
          times.endedAt = m.clock.now();
          reject(signal.reason as Error);
        });
      });
    return times;
  }

  it('a standby follows the lock holder at its service address and epoch, and the new one after a failover; never while it may be active', async () => {
    const m = mini();
    const { a, b } = await m.pair();
    const followed: { by: string; id: string; address: string; epoch: bigint; at: number }[] = [];
    const whileActive: string[] = [];
    for (const n of [a, b]) {
      n.svc.follow = async (t, ctx) => {
        n.svc.calls.push({ op: 'follow', epoch: t.epoch, reason: ctx.reason, at: m.clock.now() });
        if (n.ctl.elector.serviceMayBeActive())
          whileActive.push(`${n.svc.id} followed ${t.id} at ${m.clock.now()}`);
        followed.push({ by: n.svc.id, id: t.id, address: t.address, epoch: t.epoch, at: m.clock.now() });
      };
    }
    await m.until('b follows a', () => followed.some((f) => f.by === 'b'));
    const epochA = a.ctl.elector.getEpoch()!;
    // a's config: host 10.0.0.<length of id>, port 80<char code of the id's last letter mod 10>.
    expect(followed.find((f) => f.by === 'b')).toMatchObject({
      id: 'a',
      address: '10.0.0.1:807',
      epoch: epochA,
    });
    expect(b.ctl.status().follow).toMatchObject({ target: 'a', epoch: epochA.toString(), result: 'ok' });
    // Cheap when already following: asked again at the health interval, not in a tight loop.
    const before = followed.length;
    await m.advance(1000);
    expect(followed.length - before).toBeGreaterThan(0);
    expect(followed.length - before).toBeLessThanOrEqual(6);

    a.svc.healthy = false;
    await m.until('b active', () => b.svc.role === 'active');
    const epochB = b.ctl.elector.getEpoch()!;
    await m.until('a follows b', () => followed.some((f) => f.by === 'a' && f.id === 'b'));
    expect(followed.find((f) => f.by === 'a')).toMatchObject({ id: 'b', epoch: epochB });
    // In call order: once told to be active, b is never asked to follow (a call at the same
    // instant just before is fine: the promotion aborts it first, see the next test).
    const ops = b.svc.calls.map((c) => c.op);
    expect(ops.slice(ops.indexOf('toActive')).filter((op) => op === 'follow')).toEqual([]);
    expect(whileActive).toEqual([]);
  });

  it('a follow in flight is aborted, and has ended, before the node is promoted', async () => {
    const m = mini();
    const { a, b } = await m.pair();
    // A re-clone that only stops when told to.
    const follow = hangingFollow(m, b);
    await m.until('b is following', () => follow.startedAt !== null);
    a.svc.healthy = false;
    await m.until('b active', () => b.svc.role === 'active');
    const toActiveAt = b.svc.calls.find((c) => c.op === 'toActive')!.at;
    expect(follow.endedAt).not.toBeNull();
    expect(follow.endedAt!).toBeLessThanOrEqual(toActiveAt);
    expect(b.ctl.status().follow).toMatchObject({ target: 'a', result: 'failed' });
    expect(b.ctl.status().follow!.error).toContain('becoming active');
  });

  it('a follow of the old active in flight has ended before the graceful fence of it runs', async () => {
    const m = mini();
    const { a, b } = await m.pair();
    let fencedAt: number | null = null;
    // Like a replica's offset query to a frozen master: it holds the agent until aborted.
    const follow = hangingFollow(m, b);
    const fenceGraceful = b.svc.fenceGraceful.bind(b.svc);
    b.svc.fenceGraceful = async (t: FenceTarget) => {
      fencedAt = m.clock.now();
      expect(follow.endedAt).not.toBeNull(); // the follow was over before the fence began
      return fenceGraceful(t);
    };
    await m.until('b is following', () => follow.startedAt !== null);
    // a's demotion fails, so its breadcrumb stays unmarked and b must fence it.
    a.svc.toStandby = async () => {
      throw new Error('to-standby failed');
    };
    a.svc.healthy = false;
    await m.until('b active', () => b.svc.role === 'active');
    expect(fencedAt).not.toBeNull();
    expect(follow.endedAt!).toBeLessThanOrEqual(fencedAt!);
    expect(b.ctl.status().follow!.error).toContain('fencing a');
  });

  it('a failing follow is retried with a doubling backoff, and recorded until it succeeds', async () => {
    const m = mini();
    const { b } = await m.pair();
    let calls = 0;
    let fail = true;
    b.svc.follow = async () => {
      calls++;
      if (fail) throw new Error('pg_rewind: exit 1');
    };
    await m.until('first attempt', () => calls > 0);
    await m.advance(6000);
    // At the 200 ms health interval, backoff 400, 800, 1600, 3200 ms: 4-5 attempts, not 30.
    expect(calls).toBeGreaterThanOrEqual(3);
    expect(calls).toBeLessThanOrEqual(6);
    expect(b.ctl.status().follow).toMatchObject({
      target: 'a',
      result: 'failed',
      error: 'pg_rewind: exit 1',
    });
    fail = false;
    await m.until('a successful follow', () => b.ctl.status().follow?.result === 'ok', 60_000);
  });
});
