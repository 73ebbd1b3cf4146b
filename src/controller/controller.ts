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
import { ConfigError, errorMessage, HookTimeoutError } from '../errors.js';
import { Elector, type ElectorState, type ElectorStatus } from '../election/elector.js';
import { POLICIES } from '../election/lease.js';
import type { ElectionConnection, ElectionStore } from '../election/store.js';
import type { Fencer } from '../fencing/fencer.js';
import type { HealthMonitor, HealthSettings, HealthState } from '../health/monitor.js';
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

/** The outcome of one reload (SIGHUP). */
export interface ReloadRecord {
  at: string;
  /** applied: `changed` took effect; unchanged: the file said what was in force; refused: nothing changed. */
  result: 'applied' | 'unchanged' | 'refused';
  /** The keys that changed (applied), or that could not change live (refused). */
  changed: string[];
  error?: string;
}

/** A reload's new pieces, built from the new config (cli/reload.ts). */
export interface ReloadParts {
  config: HafcConfig;
  agent: ServiceAgent;
  fencer: Fencer;
  health: HealthSettings;
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
  /** Reloads since start, by outcome, and the last one. */
  reloads: Record<ReloadRecord['result'], number>;
  lastReload: ReloadRecord | null;
  /** Replica agents: the last follow() of the active (null: never asked, or not a replica agent). */
  follow: FollowRecord | null;
}

export interface FollowRecord {
  /** The node followed, and the epoch of its activation. */
  target: string;
  epoch: string;
  result: 'ok' | 'failed';
  at: string;
  durationMs: number;
  error?: string;
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
/** A follow() without its own bound (a re-clone of a big data directory may be slow). */
export const DEFAULT_FOLLOW_TIMEOUT_MS = 600_000;
/** A failing follow() is retried at the health interval, doubling up to this. */
const FOLLOW_BACKOFF_MAX_MS = 30_000;

/** A reload that waits this long for the election step in flight says so (it goes on waiting). */
const RELOAD_WAIT_NOTICE_MS = 1000;

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
  /** The config, agent and fencer in force; a reload swaps them between two election steps. */
  private cfg: HafcConfig;
  private agent: ServiceAgent;
  private fencer: Fencer;
  private readonly reloads: ControllerStatus['reloads'] = { applied: 0, unchanged: 0, refused: 0 };
  private lastReload: ReloadRecord | null = null;
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
  /** A follow() in flight (at most one), and when the next may start. */
  private following: { ac: AbortController; done: Promise<void> } | null = null;
  /** Agents a reload replaced, waiting to be closed (see retire()), with their timers' cancels. */
  private readonly retiring = new Map<ServiceAgent, () => void>();
  private followNextAt = -Infinity;
  private followFailures = 0;
  private followedKey: string | null = null;
  private lastFollow: FollowRecord | null = null;

  constructor(private readonly deps: ControllerDeps) {
    this.cfg = deps.config;
    this.agent = deps.agent;
    this.fencer = deps.fencer;
    this.log = deps.logger.child({ component: 'controller' });
    this.metrics = deps.metrics ?? noMetrics;
    const c = this.cfg;
    const agentCalls = 3 * (deps.agent.toStandbyTimeoutMs + AGENT_CALL_SLACK_MS);
    const fencing = c.fencing.methods.length * (c.fencing.timeoutMs + AGENT_CALL_SLACK_MS);
    // A net under bugs only: every call of a step is bounded by far less. Sized once: a reload
    // may not lengthen fencing past it (config/reload.ts).
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
        serviceState: (signal) => this.serviceState(signal),
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
        onPausedChange: (p) => this.metrics.paused(p !== null),
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
        { hung: next === 'NOT_RESPONDING' },
      );
      this.elector.memberChanged();
    });
    h.onResult((r) => {
      this.metrics.healthCheck(r.ok, r.durationMs);
      void this.maybeReconcile();
      this.maybeFollow();
    });
    this.metrics.role('init');
    this.metrics.health(h.state);
    this.elector.start();
    h.start();
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    await this.stopFollowing('the agent is stopping');
    await this.elector.stop();
    await this.deps.health.stop();
    for (const [old, cancel] of this.retiring) {
      cancel();
      closeAgent(old, this.log);
    }
    this.retiring.clear();
    // Not the current agent: an emergency demotion may still need it after the stop (the
    // process exits right after, which closes its connections).
  }

  /** The cluster's store through this agent's session, while connected (HTTP operator actions). */
  clusterStore(): ElectionStore | null {
    return this.elector.connectedStore();
  }

  role(): Role {
    return roleOf(this.elector.getState());
  }

  /** The health check timing in force (a reload may change it): liveness judges the monitor by it. */
  healthTiming(): { intervalMs: number; timeoutMs: number } {
    return { intervalMs: this.cfg.health.intervalMs, timeoutMs: this.cfg.health.timeoutMs };
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
      reloads: { ...this.reloads },
      lastReload: this.lastReload,
      follow: this.lastFollow,
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

  /** Counts a reload's outcome for status(). */
  recordReload(r: Omit<ReloadRecord, 'at'>): ReloadRecord {
    const rec = { ...r, at: new Date().toISOString() };
    this.reloads[r.result]++;
    this.lastReload = rec;
    return rec;
  }

  /**
   * Puts a reload's pieces in force between two election steps: under the elector's mutex, like
   * every transition, so no to-active, fencing or demotion runs with half old, half new pieces;
   * one in flight is waited for (a step ends within the step deadline). The session, the lock
   * and the role are untouched; a changed priority or noFailover is handed to the elector.
   * Throws (nothing changed) when the pieces would change what the session was sized for, or
   * when the step in flight outlives the wait.
   */
  async reload(parts: ReloadParts): Promise<void> {
    const { agent } = parts;
    if (
      agent.toStandbyTimeoutMs !== this.agent.toStandbyTimeoutMs ||
      agent.controlPort !== this.agent.controlPort
    )
      throw new ConfigError(
        `reload: the new service agent's to-standby timeout (${agent.toStandbyTimeoutMs} ms) or control port ` +
          `(${String(agent.controlPort)}) differs from the running one's (${this.agent.toStandbyTimeoutMs} ms, ` +
          `${String(this.agent.controlPort)}): a restart is needed`,
      );
    const clock = this.deps.clock;
    const waitMs = this.stepDeadlineMs + AGENT_CALL_SLACK_MS;
    const progress = { applied: false, abandoned: false };
    const notice = clock.setTimer(RELOAD_WAIT_NOTICE_MS, () =>
      this.log.info('reload waits for the election step in flight (a transition or fencing) to end', {
        waitMs,
      }),
    );
    const swapped = this.elector.exclusive(async () => {
      if (progress.abandoned) return;
      this.swap(parts);
      progress.applied = true;
    });
    try {
      await withDeadline(swapped, waitMs, 'waiting for the election step in flight', clock);
    } catch (err) {
      if (!progress.applied) {
        progress.abandoned = true;
        throw err;
      }
    } finally {
      notice();
    }
  }

  /** Synchronous, so that nothing runs between the first piece swapped and the last. */
  private swap(parts: ReloadParts): void {
    const prev = this.cfg.node;
    // First: it validates, and throws before anything is swapped.
    this.deps.health.reconfigure(parts.health);
    this.cfg = parts.config;
    const old = this.agent;
    this.agent = parts.agent;
    this.fencer = parts.fencer;
    if (old !== parts.agent) this.retire(old);
    const node = parts.config.node;
    if (node.priority !== prev.priority || node.noFailover !== prev.noFailover)
      this.elector.updateNode({ priority: node.priority, noFailover: node.noFailover });
  }

  /**
   * Closes an agent a reload replaced once nothing of it can be in flight. Transitions and
   * fencing are not (swap() runs under the elector's mutex); a follow() of the old agent is
   * stopped, and the next one runs on the new agent; a health check or a reconcile query that
   * started before the swap ends within the health timeout (an agent call within its own bound).
   */
  private retire(old: ServiceAgent): void {
    if (!old.close) return;
    void this.stopFollowing('the service agent was replaced by a reload').then(() => {
      if (this.stopping) {
        closeAgent(old, this.log);
        return;
      }
      const cancel = this.deps.clock.setTimer(this.cfg.health.timeoutMs + this.agentCallMs(), () => {
        this.retiring.delete(old);
        closeAgent(old, this.log);
      });
      this.retiring.set(old, cancel);
    });
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
    return this.agent.toStandbyTimeoutMs + AGENT_CALL_SLACK_MS;
  }

  private async toActive(epoch: bigint, reason: string, signal: AbortSignal): Promise<void> {
    const t0 = this.deps.clock.now();
    // A replica busy following the old active (rewinding, re-pointing) is stopped first: the
    // agent is never asked to follow and to promote at once.
    await this.stopFollowing(`becoming active (epoch ${epoch})`);
    this.lastToldEpoch = epoch;
    const ended = this.deps.health.beginTransition();
    try {
      await withDeadline(
        this.agent.toActive(this.ctx('active', epoch, reason), signal),
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
    } finally {
      ended();
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
  /** The service's own word on its role, bounded by the health timeout. */
  private async serviceState(signal: AbortSignal): Promise<'active' | 'standby' | 'unknown'> {
    const agent = this.deps.agent;
    if (!agent.state) return 'unknown';
    const r = await withDeadline(
      agent.state(
        this.ctx(this.role(), this.elector.getEpoch() ?? 0n, 'resuming after an agent restart'),
        signal,
      ),
      this.cfg.health.timeoutMs,
      'state query',
      this.deps.clock,
    );
    return r === 'active' || r === 'standby' ? r : 'unknown';
  }

  private async toStandby(reason: string): Promise<boolean> {
    const t0 = this.deps.clock.now();
    // The epoch the service was last told, so a to-standby hook can tell which activation ends.
    const epoch = this.elector.getEpoch() ?? this.lastToldEpoch;
    const ac = new AbortController();
    const ended = this.deps.health.beginTransition();
    // The call may wait out its whole timeout on a hung service: say when it began.
    this.log.debug('service -> standby: asking the service', { reason, epoch: epoch.toString() });
    try {
      // The agent enforces its own timeout; the deadline guards against one that does not.
      await withDeadline(
        this.agent.toStandby(this.ctx('standby', epoch, reason), ac.signal),
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
    } finally {
      ended();
    }
  }

  private async fence(target: FenceTarget, epoch: bigint, signal: AbortSignal): Promise<boolean> {
    // A follow of the old active still in flight (e.g. a replica asking a frozen master its
    // offset) holds the agent's own lock, which the graceful fence needs: measured, 200 ms of a
    // Redis failover. Following the node being fenced is pointless now; toActive stops it anyway.
    await this.stopFollowing(`fencing ${target.id} (epoch ${epoch})`);
    const outcome = await this.fencer.fence(
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
   * Replica agents: keep the service following whoever holds the lock, at most one follow() at a
   * time, at most once per health interval (backing off while it fails). Never while this node
   * may be active, holds a switchover or pause decision, or may share its node id with a twin.
   * Outside the elector's mutex: a re-clone may take minutes and the election must go on; the
   * elector's promotion path stops a follow in flight first (toActive).
   */
  private maybeFollow(): void {
    const agent = this.agent;
    if (!agent.follow || this.following || this.stopping) return;
    if (!this.elector.ownsService() || this.elector.paused() || this.elector.serviceMayBeActive()) return;
    const holder = this.elector.activeElsewhere();
    if (!holder || holder.id === this.cfg.node.id) return;
    const clock = this.deps.clock;
    const t0 = clock.now();
    if (t0 < this.followNextAt) return;
    const key = `${holder.id}@${holder.epoch}`;
    const target: FenceTarget = {
      id: holder.id,
      host: holder.host,
      port: holder.port,
      address: `${holder.host}:${holder.port}`,
      epoch: holder.epoch,
    };
    const ac = new AbortController();
    const record = (result: FollowRecord['result'], error?: string) => {
      this.lastFollow = {
        target: holder.id,
        epoch: holder.epoch.toString(),
        result,
        at: new Date().toISOString(),
        durationMs: Math.round(clock.now() - t0),
        ...(error !== undefined ? { error } : {}),
      };
    };
    const done = withDeadline(
      agent.follow(target, this.ctx('standby', holder.epoch, `following ${holder.id}`), ac.signal),
      agent.followTimeoutMs ?? DEFAULT_FOLLOW_TIMEOUT_MS,
      'follow',
      clock,
    )
      .then(() => {
        if (this.followedKey !== key || this.followFailures > 0) {
          this.log.info(`service follows ${holder.id}`, {
            target: target.address,
            epoch: holder.epoch.toString(),
          });
        }
        this.followedKey = key;
        this.followFailures = 0;
        this.followNextAt = clock.now() + this.cfg.health.intervalMs;
        record('ok');
      })
      .catch((err: unknown) => {
        ac.abort(err);
        this.followFailures++;
        const backoff = Math.min(
          FOLLOW_BACKOFF_MAX_MS,
          this.cfg.health.intervalMs * 2 ** this.followFailures,
        );
        this.followNextAt = clock.now() + backoff;
        this.followedKey = null;
        record('failed', errorMessage(err));
        this.log.warn(`could not make the service follow ${holder.id}`, {
          target: target.address,
          error: errorMessage(err),
          retryInMs: backoff,
        });
      })
      .finally(() => {
        this.following = null;
      });
    this.following = { ac, done };
  }

  /** Aborts a follow() in flight and waits for it, at most one agent call's deadline. */
  private async stopFollowing(why: string): Promise<void> {
    const f = this.following;
    if (!f) return;
    f.ac.abort(new Error(`follow aborted: ${why}`));
    let cancel: (() => void) | undefined;
    const limit = new Promise<void>((resolve) => {
      cancel = this.deps.clock.setTimer(this.agentCallMs(), () => {
        this.log.error('a follow() did not end after its abort; going on without it', { why });
        resolve();
      });
    });
    try {
      await Promise.race([f.done, limit]);
    } finally {
      cancel?.();
    }
  }

  /**
   * Compare the service's own report with our belief, at most once per health interval. The
   * report is read OUTSIDE the elector's mutex: a slow service must not hold up the election loop
   * (and with it a demotion); the belief is checked again under the mutex before acting.
   */
  private async maybeReconcile(): Promise<void> {
    const agent = this.agent;
    if (!agent.state || this.reconciling || this.stopping) return;
    const now = this.deps.clock.now();
    if (now - this.lastReconcile < this.cfg.health.intervalMs) return;
    if (this.elector.getState() === 'INIT') return; // let the first election decide
    // A twin agent with our node id may be driving this very service: hands off.
    if (!this.elector.ownsService()) return;
    // Maintenance mode: the operator owns the service's role; we only report.
    if (this.elector.paused()) return;
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
    const limitMs = this.agent.toStandbyTimeoutMs + 1000;
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

/** An agent's close() must not take the controller down with it. */
function closeAgent(agent: ServiceAgent, log: Logger): void {
  try {
    agent.close?.();
  } catch (err) {
    log.warn('closing the service agent failed', { agent: agent.kind, error: errorMessage(err) });
  }
}
