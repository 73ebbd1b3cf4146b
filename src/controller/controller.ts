/**
 * The ZKFC logic: health -> electability -> elector -> fence -> transition.
 *
 * - Electability is decided in exactly one place (`electableFrom`).
 * - Every transition of the local service runs inside the elector's mutex (the elector calls us
 *   from its loop; the reconcile below takes the same mutex), so promotions and demotions never
 *   interleave.
 * - Reconcile: on every health interval the service's own report is compared with our belief. A
 *   service that says active while we do not hold the lock is demoted; a service that says standby
 *   while we hold the lock makes us give the lock up and compete again, so it is promoted anew with
 *   a fresh epoch (by us or by a peer) - Hadoop's "both standby" state cannot persist here.
 * - Every call into the service agent is raced against a hard deadline (its own timeout plus the
 *   runner's kill grace and give-up time): an agent that hangs (a hook stuck in the kernel, a bug)
 *   delays a transition, never the election loop forever.
 */
import type { Clock } from '../clock.js';
import type { HafcConfig } from '../config/types.js';
import { errorMessage, HookTimeoutError } from '../errors.js';
import { Elector, type ElectorState, type ElectorStatus } from '../election/elector.js';
import { POLICIES } from '../election/lease.js';
import type { ElectionConnection } from '../election/store.js';
import type { Fencer } from '../fencing/fencer.js';
import type { HealthMonitor, HealthState } from '../health/monitor.js';
import type { Logger } from '../log.js';
import { noMetrics, type Metrics } from '../metrics/metrics.js';
import type { FenceTarget, HookContext, ServiceAgent } from '../service/agent.js';

export type Role = 'active' | 'standby' | 'neutral' | 'init';

export interface TransitionRecord {
  to: 'active' | 'standby';
  result: 'ok' | 'failed' | 'ignored';
  reason: string;
  epoch: string;
  durationMs: number;
  at: string;
  error?: string;
}

export interface ControllerStatus {
  cluster: string;
  node: string;
  role: Role;
  health: HealthState;
  electable: boolean;
  elector: ElectorStatus;
  lastTransition: TransitionRecord | null;
  lastFenceFailure: { target: string; at: string; attempts: { method: string; error?: string }[] } | null;
}

export interface ControllerDeps {
  config: HafcConfig;
  agent: ServiceAgent;
  fencer: Fencer;
  health: HealthMonitor;
  /** A fresh connection to the coordination service (one ZooKeeper session); abort = give up. */
  connect: (signal: AbortSignal) => Promise<ElectionConnection>;
  agentVersion: string;
  clock: Clock;
  logger: Logger;
  metrics?: Metrics;
  /** The agent must stop (exit code 2): e.g. another live agent uses our node id. */
  onFatal?: (reason: string) => void;
}

/**
 * How long past its own timeout an agent call may run before it is abandoned: the runner's
 * SIGTERM->SIGKILL grace, the time it waits for a process that survives SIGKILL, and slack.
 */
export const AGENT_CALL_SLACK_MS = 5000;

/** Rejects with HookTimeoutError once `ms` passed, whatever `p` does (it is left to settle alone). */
function withDeadline<T>(p: Promise<T>, ms: number, what: string, clock: Clock): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const cancel = clock.setTimer(ms, () =>
      reject(new HookTimeoutError(`${what} did not finish within ${ms} ms and was abandoned`)),
    );
    p.then(
      (v) => {
        cancel();
        resolve(v);
      },
      (err: unknown) => {
        cancel();
        reject(err);
      },
    );
  });
}

export function roleOf(state: ElectorState): Role {
  return state === 'ACTIVE'
    ? 'active'
    : state === 'STANDBY'
      ? 'standby'
      : state === 'NEUTRAL'
        ? 'neutral'
        : 'init';
}

/** The one switch that turns health (and static eligibility) into electability. */
export function electableFrom(health: HealthState, noFailover: boolean): boolean {
  return !noFailover && health === 'HEALTHY';
}

export class Controller {
  readonly elector: Elector;
  private readonly cfg: HafcConfig;
  private readonly log: Logger;
  private readonly metrics: Metrics;
  /** The longest one election step may take (the elector's net under bugs; liveness judges by it). */
  readonly stepDeadlineMs: number;
  private lastTransition: TransitionRecord | null = null;
  private lastFenceFailure: ControllerStatus['lastFenceFailure'] = null;
  private lastReconcile = -Infinity;
  private reconciling = false;
  private stopping = false;
  /** The epoch the service was last told to be active with (0 = never): to-standby hooks get it. */
  private lastToldEpoch = 0n;

  constructor(private readonly deps: ControllerDeps) {
    this.cfg = deps.config;
    this.log = deps.logger.child({ component: 'controller' });
    this.metrics = deps.metrics ?? noMetrics;
    const c = this.cfg;
    const agentCalls = 3 * (deps.agent.toStandbyTimeoutMs + AGENT_CALL_SLACK_MS);
    const fencing = c.fencing.methods.length * (c.fencing.timeoutMs + AGENT_CALL_SLACK_MS);
    // A net under bugs only: every call of a step is bounded by far less.
    this.stepDeadlineMs = agentCalls + fencing + 30 * c.zookeeper.requestTimeoutMs;
    this.elector = new Elector({
      cluster: c.cluster,
      node: { ...c.node, control: c.control.listen, controlPort: deps.agent.controlPort },
      connect: (signal) => this.connect(signal),
      policy: POLICIES[c.zookeeper.onConnectionLoss],
      safetyMarginMs: c.zookeeper.safetyMarginMs,
      toStandbyTimeoutMs: deps.agent.toStandbyTimeoutMs,
      backoffMs: c.election.backoffMs,
      priorityGraceMs: c.election.priorityGraceMs,
      stepDeadlineMs: this.stepDeadlineMs,
      agentVersion: deps.agentVersion,
      health: () => deps.health.state,
      clock: deps.clock,
      logger: deps.logger,
      callbacks: {
        becomeActive: (epoch, reason, signal) => this.toActive(epoch, reason, signal),
        becomeStandby: (reason) => this.toStandby(reason).then(() => undefined),
        demote: (reason) => this.toStandby(reason),
        fenceOldActive: (target, epoch, signal) => this.fence(target, epoch, signal),
        onStateChange: (next, prev, reason, epoch) => {
          this.metrics.role(roleOf(next));
          if (epoch !== null) this.metrics.epoch(epoch);
          if (next === 'ACTIVE') this.metrics.lockAcquired();
          this.log.info(`role ${roleOf(prev)} -> ${roleOf(next)}`, {
            reason,
            epoch: epoch?.toString() ?? null,
          });
        },
        onActivationFailed: (reason) => this.log.error('not promoted', { reason }),
        onFatal: (reason) => deps.onFatal?.(reason),
      },
    });
  }

  start(): void {
    const h = this.deps.health;
    h.onChange((next, _prev, detail) => {
      this.metrics.health(next);
      this.elector.setElectable(
        electableFrom(next, this.cfg.node.noFailover),
        `health ${next}: ${detail.reason}`,
      );
      this.elector.memberChanged();
    });
    h.onResult((r) => {
      this.metrics.healthCheck(r.ok, r.durationMs);
      void this.maybeReconcile();
    });
    this.metrics.role('init');
    this.metrics.health(h.state);
    this.elector.start();
    h.start();
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    await this.elector.stop();
    await this.deps.health.stop();
  }

  role(): Role {
    return roleOf(this.elector.getState());
  }

  /** Clock.now() of the health monitor's last result, null before the first (liveness). */
  lastHealthResultAt(): number | null {
    return this.deps.health.lastResult?.at ?? null;
  }

  status(): ControllerStatus {
    const health = this.deps.health.state;
    return {
      cluster: this.cfg.cluster,
      node: this.cfg.node.id,
      role: this.role(),
      health,
      electable: electableFrom(health, this.cfg.node.noFailover),
      elector: this.elector.status(),
      lastTransition: this.lastTransition,
      lastFenceFailure: this.lastFenceFailure,
    };
  }

  /**
   * Every session the elector uses comes through here, so a lost one is counted here (the elector
   * itself reports no session events). A session lost before we could listen counts too.
   */
  private async connect(signal: AbortSignal): Promise<ElectionConnection> {
    const conn = await this.deps.connect(signal);
    if (conn.state === 'lost') this.metrics.sessionExpired();
    else
      conn.onState((next) => {
        if (next === 'lost') this.metrics.sessionExpired();
      });
    return conn;
  }

  private ctx(role: string, epoch: bigint, reason: string): HookContext {
    return { cluster: this.cfg.cluster, nodeId: this.cfg.node.id, role, epoch, reason };
  }

  private record(t: Omit<TransitionRecord, 'at'>): void {
    this.lastTransition = { ...t, at: new Date().toISOString() };
    this.metrics.transition(t.to, t.result, t.durationMs);
    const fields = { ...t };
    if (t.result === 'ok') this.log.info(`service -> ${t.to}`, fields);
    else this.log.error(`service -> ${t.to} ${t.result}`, fields);
  }

  /** The hard deadline of one agent call. */
  private agentCallMs(): number {
    return this.deps.agent.toStandbyTimeoutMs + AGENT_CALL_SLACK_MS;
  }

  private async toActive(epoch: bigint, reason: string, signal: AbortSignal): Promise<void> {
    const t0 = this.deps.clock.now();
    this.lastToldEpoch = epoch;
    try {
      await withDeadline(
        this.deps.agent.toActive(this.ctx('active', epoch, reason), signal),
        this.agentCallMs(),
        'to-active',
        this.deps.clock,
      );
    } catch (err) {
      this.record({
        to: 'active',
        result: 'failed',
        reason,
        epoch: epoch.toString(),
        durationMs: Math.round(this.deps.clock.now() - t0),
        error: errorMessage(err),
      });
      throw err;
    }
    this.record({
      to: 'active',
      result: 'ok',
      reason,
      epoch: epoch.toString(),
      durationMs: Math.round(this.deps.clock.now() - t0),
    });
  }

  /** Never throws: returns whether the service is known to be standby now. */
  private async toStandby(reason: string): Promise<boolean> {
    const t0 = this.deps.clock.now();
    // The epoch the service was last told, so a to-standby hook can tell which activation ends.
    const epoch = this.elector.getEpoch() ?? this.lastToldEpoch;
    const ac = new AbortController();
    try {
      // The agent enforces its own timeout; the deadline guards against one that does not.
      await withDeadline(
        this.deps.agent.toStandby(this.ctx('standby', epoch, reason), ac.signal),
        this.agentCallMs(),
        'to-standby',
        this.deps.clock,
      );
      this.record({
        to: 'standby',
        result: 'ok',
        reason,
        epoch: epoch.toString(),
        durationMs: Math.round(this.deps.clock.now() - t0),
      });
      return true;
    } catch (err) {
      ac.abort(err);
      this.record({
        to: 'standby',
        result: 'failed',
        reason,
        epoch: epoch.toString(),
        durationMs: Math.round(this.deps.clock.now() - t0),
        error: errorMessage(err),
      });
      return false;
    }
  }

  private async fence(target: FenceTarget, epoch: bigint, signal: AbortSignal): Promise<boolean> {
    const outcome = await this.deps.fencer.fence(
      target,
      this.ctx('active', epoch, `fencing previous active ${target.id}`),
      signal,
    );
    for (const a of outcome.attempts)
      this.metrics.fencingAttempt(a.method, a.ok ? 'ok' : 'failed', a.durationMs);
    this.metrics.fencing(outcome.ok ? 'ok' : 'failed');
    if (!outcome.ok) {
      this.lastFenceFailure = {
        target: target.id,
        at: new Date().toISOString(),
        attempts: outcome.attempts.map((a) => ({ method: a.method, error: a.error })),
      };
    }
    return outcome.ok;
  }

  /**
   * Compare the service's own report with our belief, at most once per health interval. The
   * report is read OUTSIDE the elector's mutex: a slow service must not hold up the election loop
   * (and with it a demotion); the belief is checked again under the mutex before acting.
   */
  private async maybeReconcile(): Promise<void> {
    const agent = this.deps.agent;
    if (!agent.state || this.reconciling || this.stopping) return;
    const now = this.deps.clock.now();
    if (now - this.lastReconcile < this.cfg.health.intervalMs) return;
    if (this.elector.getState() === 'INIT') return; // let the first election decide
    // A twin agent with our node id may be driving this very service: hands off.
    if (!this.elector.ownsService()) return;
    this.lastReconcile = now;
    this.reconciling = true;
    const ac = new AbortController();
    try {
      const epoch = this.elector.getEpoch() ?? 0n;
      const reported = await withDeadline(
        agent.state(this.ctx(this.role(), epoch, 'reconcile'), ac.signal),
        this.cfg.health.timeoutMs,
        'state query',
        this.deps.clock,
      );
      if (reported === 'active') {
        await this.elector.exclusive(async () => {
          if (this.elector.serviceShouldBeActive() || !this.elector.ownsService()) return;
          this.log.warn('service reports active but this node does not hold the lock: demoting it');
          await this.toStandby('service reported active while this node is not the elected active');
        });
      } else if (
        reported === 'standby' &&
        this.elector.getState() === 'ACTIVE' &&
        this.elector.getEpoch() === epoch
      ) {
        this.log.warn('service reports standby while this node holds the lock: re-running the election');
        this.elector.serviceLostActive('service reported standby while this node held the lock');
      }
    } catch (err) {
      ac.abort(err);
      this.log.warn('could not reconcile the service state', { error: errorMessage(err) });
    } finally {
      this.reconciling = false;
    }
  }

  /**
   * Last resort (a crash, a fatal signal): demote the service if it may be active; never throws.
   * Resolves true when the service is known to be standby. Bounded by the to-standby timeout + 1 s.
   * A STANDBY node with no activation in flight is left alone (its service was told to stand by
   * and nothing since told it otherwise); anything else is demoted. Not under the elector's mutex:
   * a step in flight (fencing, a ZooKeeper request) may hold it longer than the deadline allows.
   */
  async emergencyDemote(reason: string): Promise<boolean> {
    if (!this.elector.serviceMayBeActive() && this.elector.getState() === 'STANDBY') return true;
    const limitMs = this.deps.agent.toStandbyTimeoutMs + 1000;
    let cancel: (() => void) | undefined;
    try {
      const deadline = new Promise<boolean>((resolve) => {
        cancel = this.deps.clock.setTimer(limitMs, () => {
          this.log.error(`emergency demotion did not finish within ${limitMs} ms`, { reason });
          resolve(false);
        });
      });
      return await Promise.race([this.toStandby(`emergency: ${reason}`), deadline]);
    } catch (err) {
      this.log.error('emergency demotion failed', { reason, error: errorMessage(err) });
      return false;
    } finally {
      cancel?.();
    }
  }
}
