/**
 * The elector's test world: nodes running a real Elector on the in-memory store
 * (test/support/fake-store.ts) and a fake clock. See elector.test.ts for how time moves.
 */
import { afterEach, vi } from 'vitest';
import { FakeClock } from '../../support/fake-clock.js';
import { Elector, type ElectorCallbacks, type ElectorState } from '../../../src/election/elector.js';
import { POLICIES } from '../../../src/election/lease.js';
import { ZkError } from '../../../src/errors.js';
import { createLogger } from '../../../src/log.js';
import { clusterPaths } from '../../../src/zk/paths.js';
import { FORMAT_VERSION, type MemberRecord } from '../../../src/zk/records.js';
import { FakeConnection, FakeCoordinator, type Hold, type HoldMatch } from '../../support/fake-store.js';

export const paths = clusterPaths('/hafc', 'ns1');
export const T = 4000;
export const MARGIN = 1000;
export const TO_STANDBY = 1000;
export const LEASE = T - MARGIN - TO_STANDBY;
export const BACKOFF = 3000;
export const GRACE = 2000;

// ---- harness -------------------------------------------------------------------------------

export interface Gate<V> {
  promise: Promise<V>;
  resolve(v: V): void;
  reject(err: unknown): void;
}

/** Rejects with the signal's reason once it aborts; otherwise behaves like `p`. */
export function abortable<V>(p: Promise<V>, signal: AbortSignal): Promise<V> {
  return new Promise<V>((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
    p.then(resolve, reject);
  });
}

export interface Call {
  at: number;
  args: unknown[];
}

export interface NodeOptions {
  policy?: 'demote' | 'hold';
  priority?: number;
  noFailover?: boolean;
  host?: string;
  port?: number;
  negotiatedTimeoutMs?: number;
  relayAllowanceMs?: number;
  backoffMs?: number;
  priorityGraceMs?: number;
  stepDeadlineMs?: number;
  controlPort?: number;
  /** The first connect re-attaches to this live session (a restarted agent); fresh if it is gone. */
  resumeSessionId?: string;
}

export type Behaviour = {
  becomeActive: ElectorCallbacks['becomeActive'];
  becomeStandby: ElectorCallbacks['becomeStandby'];
  serviceState: NonNullable<ElectorCallbacks['serviceState']>;
  demote: ElectorCallbacks['demote'];
  fenceOldActive: ElectorCallbacks['fenceOldActive'];
};

export function defaultBehaviour(): Behaviour {
  return {
    becomeActive: async () => {},
    becomeStandby: async () => {},
    serviceState: async () => 'unknown',
    demote: async () => true,
    fenceOldActive: async () => true,
  };
}

export class TestNode {
  readonly host: string;
  readonly port: number;
  readonly sessions: FakeConnection[] = [];
  readonly logs: string[] = [];
  readonly timeline = new Map<string, Call[]>();
  /** What each callback does; tests replace entries. */
  behave: Behaviour = defaultBehaviour();
  /** What the member record publishes as health. */
  healthState = 'HEALTHY';
  /** false = this host cannot reach ZooKeeper: openSession fails. */
  reachable = true;
  /** A connection attempt that neither succeeds nor fails (a server that never answers). */
  hangConnect = false;
  readonly cb;
  readonly elector: Elector;

  constructor(
    private readonly world: World,
    readonly id: string,
    n: number,
    opts: NodeOptions,
  ) {
    this.host = opts.host ?? `10.0.0.${n}`;
    this.port = opts.port ?? 8000 + n;
    const rec =
      <A extends unknown[]>(name: string) =>
      (...args: A) => {
        const list = this.timeline.get(name) ?? [];
        list.push({ at: world.clock.now(), args });
        this.timeline.set(name, list);
      };
    const onBecomeActive = rec<Parameters<Behaviour['becomeActive']>>('becomeActive');
    const onBecomeStandby = rec<[string]>('becomeStandby');
    const onDemote = rec<[string]>('demote');
    const onFence = rec<Parameters<Behaviour['fenceOldActive']>>('fenceOldActive');
    const onState = rec<[ElectorState, ElectorState, string, bigint | null]>('state');
    const onFailed = rec<[string]>('activationFailed');
    this.cb = {
      becomeActive: vi.fn<ElectorCallbacks['becomeActive']>((epoch, reason, signal) => {
        onBecomeActive(epoch, reason, signal);
        return this.behave.becomeActive(epoch, reason, signal);
      }),
      becomeStandby: vi.fn<ElectorCallbacks['becomeStandby']>((reason) => {
        onBecomeStandby(reason);
        return this.behave.becomeStandby(reason);
      }),
      serviceState: vi.fn<NonNullable<ElectorCallbacks['serviceState']>>((signal) =>
        this.behave.serviceState(signal),
      ),
      demote: vi.fn<ElectorCallbacks['demote']>((reason) => {
        onDemote(reason);
        return this.behave.demote(reason);
      }),
      fenceOldActive: vi.fn<ElectorCallbacks['fenceOldActive']>((target, epoch, signal) => {
        onFence(target, epoch, signal);
        return this.behave.fenceOldActive(target, epoch, signal);
      }),
      onStateChange: vi.fn<NonNullable<ElectorCallbacks['onStateChange']>>((next, prev, reason, epoch) =>
        onState(next, prev, reason, epoch),
      ),
      onActivationFailed: vi.fn<NonNullable<ElectorCallbacks['onActivationFailed']>>((reason) =>
        onFailed(reason),
      ),
      onFatal: vi.fn<NonNullable<ElectorCallbacks['onFatal']>>(),
    };
    this.elector = new Elector({
      cluster: 'ns1',
      node: {
        id,
        host: this.host,
        port: this.port,
        priority: opts.priority ?? 1,
        noFailover: opts.noFailover ?? false,
        control: `127.0.0.1:${9000 + n}`,
        ...(opts.controlPort !== undefined ? { controlPort: opts.controlPort } : {}),
      },
      connect: async (signal) => {
        if (this.hangConnect) {
          return new Promise<never>((_, reject) =>
            signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true }),
          );
        }
        if (!this.reachable) {
          throw new ZkError('CONNECT_TIMEOUT', `could not open a ZooKeeper session (host ${id} partitioned)`);
        }
        const base = {
          negotiatedTimeoutMs: opts.negotiatedTimeoutMs ?? T,
          relayAllowanceMs: opts.relayAllowanceMs ?? 0,
        };
        let s: FakeConnection | undefined;
        if (opts.resumeSessionId !== undefined && this.sessions.length === 0) {
          s = await world.server
            .connect({ ...base, resumeSessionId: opts.resumeSessionId })
            .catch(() => undefined);
        }
        s ??= await world.server.connect(base);
        this.sessions.push(s);
        return s;
      },
      policy: POLICIES[opts.policy ?? 'demote'],
      safetyMarginMs: MARGIN,
      toStandbyTimeoutMs: TO_STANDBY,
      backoffMs: opts.backoffMs ?? BACKOFF,
      priorityGraceMs: opts.priorityGraceMs ?? GRACE,
      stepDeadlineMs: opts.stepDeadlineMs ?? 600_000,
      agentVersion: 'test',
      health: () => this.healthState,
      clock: world.clock,
      logger: createLogger({ level: 'debug', write: (line) => this.logs.push(line) }),
      callbacks: this.cb,
    });
  }

  start(electable = true): void {
    this.elector.setElectable(electable, electable ? 'health HEALTHY' : 'health UNHEALTHY');
    this.elector.start();
  }

  session(): FakeConnection {
    const s = this.sessions.at(-1);
    if (!s) throw new Error(`${this.id} has no session yet`);
    return s;
  }

  calls(name: string): Call[] {
    return this.timeline.get(name) ?? [];
  }

  /** States entered, in order, with their epochs. */
  states(): { state: ElectorState; epoch: bigint | null; reason: string }[] {
    return this.calls('state').map((c) => ({
      state: c.args[0] as ElectorState,
      reason: c.args[2] as string,
      epoch: c.args[3] as bigint | null,
    }));
  }

  /** The abort signal handed to the latest becomeActive (the activation's own signal). */
  activationSignal(): AbortSignal {
    const call = this.cb.becomeActive.mock.calls.at(-1);
    if (!call) throw new Error(`${this.id} was never asked to become active`);
    return call[2];
  }

  /** Demotion requests. */
  demotions(): Call[] {
    return this.calls('demote');
  }

  /** The elector's decisions, as logged ("decision: ACTION"). */
  decisions(): string[] {
    return this.logs.flatMap((l) => {
      const m = /"msg":"decision: ([a-z-]+)"/.exec(l);
      return m ? [m[1]!] : [];
    });
  }

  /** The host loses ZooKeeper: its session is suspended and no new one can be opened. */
  partition(): void {
    this.reachable = false;
    if (this.session().state === 'connected') this.session().suspend();
  }
}

export class World {
  readonly clock = new FakeClock();
  readonly server = new FakeCoordinator(this.clock, paths);
  readonly nodes: TestNode[] = [];
  private readonly gates: Gate<unknown>[] = [];
  private readonly holds: Hold[] = [];

  node(id: string, opts: NodeOptions = {}): TestNode {
    const n = new TestNode(this, id, this.nodes.length + 1, opts);
    this.nodes.push(n);
    return n;
  }

  gate<V = void>(): Gate<V> {
    let resolve!: (v: V) => void;
    let reject!: (err: unknown) => void;
    const promise = new Promise<V>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const g = { promise, resolve, reject };
    this.gates.push(g as Gate<unknown>);
    return g;
  }

  hold(match: HoldMatch): Hold {
    const h = this.server.hold(match);
    this.holds.push(h);
    return h;
  }

  /** Lets every pending microtask (and the chains they start) run; time does not move. */
  async settle(): Promise<void> {
    for (let i = 0; i < 3; i++) await new Promise<void>((r) => setImmediate(r));
    // A retry loop that never waits would spin here forever; the fake parks it and says so.
    if (this.server.storm) throw new Error(this.server.storm);
  }

  /** Moves the fake clock to `t` in steps of `step` ms, settling after each. */
  async advanceTo(t: number, step = 10): Promise<void> {
    await this.settle();
    while (this.clock.now() < t) {
      await this.clock.advance(Math.min(step, t - this.clock.now()));
      await this.settle();
    }
  }

  advance(ms: number, step = 10): Promise<void> {
    return this.advanceTo(this.clock.now() + ms, step);
  }

  /** Polls `cond` between clock steps; fails after `maxMs` of fake time. */
  async until(
    what: string,
    cond: () => boolean,
    opts: { step?: number; maxMs?: number } = {},
  ): Promise<void> {
    const step = opts.step ?? 10;
    const maxMs = opts.maxMs ?? 30_000;
    const start = this.clock.now();
    for (;;) {
      await this.settle();
      if (cond()) return;
      if (this.clock.now() - start >= maxMs) {
        throw new Error(`not reached within ${maxMs} ms of fake time: ${what}`);
      }
      await this.clock.advance(step);
    }
  }

  lockStat() {
    return this.server.get(paths.lock)?.stat ?? null;
  }

  record<R>(path: string): R | null {
    const n = this.server.get(path);
    return n?.data ? (JSON.parse(n.data.toString('utf8')) as R) : null;
  }

  /** Stops every elector (unblocking anything a failed test left hanging first). */
  async dispose(): Promise<void> {
    if (this.server.storm) return; // parked requests never settle: stopping would hang
    for (const h of this.holds) h.release();
    for (const g of this.gates) g.resolve(undefined);
    for (const n of this.nodes) n.behave = defaultBehaviour();
    let done = false;
    const all = Promise.all(this.nodes.map((n) => n.elector.stop())).then(() => {
      done = true;
    });
    await this.until('every elector stopped', () => done, { maxMs: 60_000 });
    await all;
  }
}

/** lost, or already closed by the elector that noticed the loss. */
export function gone(s: FakeConnection): boolean {
  return s.state === 'lost' || s.state === 'closed';
}

export function member(id: string, priority: number, health = 'HEALTHY', noFailover = false): MemberRecord {
  return {
    formatVersion: FORMAT_VERSION,
    kind: 'member',
    cluster: 'ns1',
    id,
    host: `10.0.1.${priority}`,
    port: 7000,
    priority,
    noFailover,
    health,
    role: 'STANDBY',
    epoch: '0',
    agentVersion: 'test',
    control: '127.0.0.1:9999',
    updatedAt: new Date(0).toISOString(),
  };
}

export let worlds: World[] = [];

export function world(): World {
  const w = new World();
  worlds.push(w);
  return w;
}

/** A fresh world where a is ACTIVE and b STANDBY. */
export async function activeStandby(): Promise<{ w: World; a: TestNode; b: TestNode }> {
  const w = world();
  const a = w.node('a');
  const b = w.node('b');
  a.start();
  await w.until('a ACTIVE', () => a.elector.getState() === 'ACTIVE');
  b.start();
  await w.until('b STANDBY', () => b.elector.getState() === 'STANDBY');
  return { w, a, b };
}

afterEach(async () => {
  const ws = worlds;
  worlds = [];
  for (const w of ws) await w.dispose();
});
