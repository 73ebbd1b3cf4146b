/**
 * The ActiveStandbyElector of hafc: competes for the lock, fences the previous active, and tells
 * the controller (ElectorCallbacks) when to make the service active, standby or neutral.
 *
 * One serialized loop. Every input (a connection state change, a watch, a health change, a timer)
 * only `kick()`s it; `step()` reads the world and returns one named Decision (what it did and
 * why), which the log prints and the tests assert. A step is a fixed sequence of phases; each
 * either decides (and ends the step) or hands on to the next:
 *
 *   lease -> connection -> cluster -> housekeeping -> lock -> (ours: keep | theirs: standby |
 *   free: compete)
 *
 * Nothing that changes the service's role runs outside the loop's mutex, except the lease
 * watchdog's demotion (which the loop then joins), so promotions and demotions never interleave.
 * The lease and its watchdog live in lease.ts; the coordination service behind store.ts.
 */
import { errorMessage, ZkError } from '../errors.js';
import type { Logger } from '../log.js';
import { ControlState } from './control.js';
import { fencePlan, type SeenHolder } from './fence-plan.js';
import { Lease, MIN_LEASE_BUDGET_MS } from './lease.js';
import { Mutex } from './mutex.js';
import {
  FORMAT_VERSION,
  type BreadcrumbRecord,
  type LockRecord,
  type MemberRecord,
  type NodeIdentity,
  type SwitchoverRequest,
} from './records.js';
import type { ElectionConnection, ElectionStore, LockView } from './store.js';
import { switchoverPart, type SwitchoverPart } from './switchover.js';
import type { Decision, DecisionAction, ElectorOptions, ElectorState, ElectorStatus } from './types.js';

export type {
  Decision,
  DecisionAction,
  ElectorCallbacks,
  ElectorNode,
  ElectorOptions,
  ElectorState,
  ElectorStatus,
} from './types.js';

const RETRY_MS = 1000;
const MAX_MEMBER_WARNINGS = 10;
const NOT_INITIALISED_RECHECK_MS = 5000;
const LEASE_EXPIRED = 'ZooKeeper lease expired (no quorum-confirmed reply in time)';
/** Codes after which retrying the same write cannot succeed. */
const PERMANENT = new Set(['NO_AUTH', 'NOT_EMPTY', 'NO_NODE', 'BAD_VERSION', 'NODE_EXISTS', 'INVALID_ACL']);

/** Decisions an operator must act on are logged above info. */
const DECISION_LEVEL: Partial<Record<DecisionAction, 'warn' | 'error'>> = {
  fatal: 'error',
  'foreign-lock': 'error',
  'lease-too-short': 'error',
  'not-initialised': 'error',
  'duplicate-id': 'warn',
  'activation-failed': 'warn',
  'activation-ignored': 'warn',
  'breadcrumb-repaired': 'warn',
  'switchover-refused': 'warn',
  unreachable: 'warn',
};

function d(action: DecisionAction, reason: string): Decision {
  return { action, reason };
}

export class Elector {
  private state: ElectorState = 'INIT';
  private epoch: bigint | null = null;
  private conn: ElectionConnection | null = null;
  private electable = false;
  private electableReason = 'health not known yet';
  /** Since when a resumed lock has waited for the first health verdict. */
  private resumeWaitSince: number | null = null;
  /** The controller has given a first health verdict (a resumed lock waits for one). */
  private healthKnown = false;
  /** What the controller last said, before noFailover is applied (a reload may change that). */
  private healthElectable = { electable: false, reason: 'health not known yet', hung: false };
  private stopped = false;
  /** Aborts a connection attempt in flight when the agent stops (it may take a session timeout). */
  private readonly stopping = new AbortController();
  private running: Promise<void> | null = null;
  private readonly mutex = new Mutex();
  private wakeResolve: (() => void) | null = null;
  private kicked = false;
  private cancelWakeTimer: (() => void) | null = null;
  private wakeTimerAt: number | null = null;
  private readonly lease: Lease;
  /** The current activation's signal: aborted when it ends (lease, demotion, stop). */
  private activation: AbortController | null = null;
  /** An activation is being attempted (lock taken, not yet ACTIVE or abandoned). */
  private activating = false;
  private backoffUntil = 0;
  /** What the current back-off follows, for the decision log. */
  private backoffWhy = 'a failed activation';
  private freeSince: number | null = null;
  /** When and why the state last changed (published for `hafc status`). */
  private stateSince = new Date().toISOString();
  private stateReason = 'starting';
  /** Pause and switchover, from the control znode (read every step, watched). */
  private readonly control: ControlState;
  private memberDirty = true;
  private lastFailure: { reason: string; atMs: number } | null = null;
  private lastDecision: Decision | null = null;
  /** Our last activation failed and none has succeeded since (published in the member record). */
  private activationFailed = false;
  /** A clean demotion whose breadcrumb is not marked `demoted` yet. */
  private pendingMark: bigint | null = null;
  /** policy hold: the session was lost while active; the service was left active on purpose. */
  private holdingService = false;
  private serviceLost: string | null = null;
  private demoting: Promise<void> | null = null;
  private notInitialised = false;
  private budgetLogged: number | null = null;
  private duplicate: { owner: string; since: number } | null = null;
  private fatal: string | null = null;
  private seenHolder: SeenHolder | null = null;
  /** The lock as the last step read it, and through which connection (activeElsewhere). */
  private lastLockView: { view: LockView; generation: number } | null = null;
  /** Ids of sessions this agent has abandoned (bounded: only the recent ones can still hold a lock). */
  private readonly ownPastSessions = new Set<string>();
  private readonly log: Logger;

  constructor(private readonly opts: ElectorOptions) {
    this.log = opts.logger.child({ component: 'elector' });
    this.lease = new Lease({
      policy: opts.policy,
      clock: opts.clock,
      safetyMarginMs: opts.safetyMarginMs,
      toStandbyTimeoutMs: opts.toStandbyTimeoutMs,
      onExpired: () => this.onLeaseExpired(),
    });
    this.control = new ControlState(opts.cluster, this.log, (p) => opts.callbacks.onPausedChange?.(p));
  }

  // ---- public surface -------------------------------------------------------------------

  start(): void {
    if (this.running) return;
    this.running = this.loop();
  }

  /**
   * Health/eligibility, decided by the controller in one place. `hung`: the service does not
   * answer (health NOT_RESPONDING). An active node then gives the lock up BEFORE it tries to
   * demote its service, as ZKFC quits the election without a transition on
   * SERVICE_NOT_RESPONDING: a demotion of a service that does not answer can only time out, and
   * the failover would wait for it. Its breadcrumb stays unmarked, so the next active fences it,
   * exactly as after a demotion that timed out.
   */
  setElectable(electable: boolean, reason: string, opts: { hung?: boolean } = {}): void {
    this.healthElectable = { electable, reason, hung: opts.hung === true };
    if (!this.healthKnown) {
      this.healthKnown = true;
      this.kick();
    }
    const e = electable && !this.opts.node.noFailover;
    if (e === this.electable) return;
    this.log.info(e ? 'joining the election' : 'leaving the election', { reason });
    this.electable = e;
    this.electableReason = this.opts.node.noFailover ? 'noFailover is set' : reason;
    this.memberDirty = true;
    this.kick();
  }

  /** A reload (SIGHUP) changed our priority or noFailover: republish, and re-decide electability. */
  updateNode(patch: { priority?: number; noFailover?: boolean }): void {
    const n = this.opts.node;
    if (patch.priority !== undefined) n.priority = patch.priority;
    if (patch.noFailover !== undefined) n.noFailover = patch.noFailover;
    this.memberDirty = true;
    const h = this.healthElectable;
    this.setElectable(h.electable, h.reason, { hung: h.hung });
    this.kick();
  }

  /** Re-publish our member record (health or role changed). */
  memberChanged(): void {
    this.memberDirty = true;
    this.kick();
  }

  getState(): ElectorState {
    return this.state;
  }

  getEpoch(): bigint | null {
    return this.epoch;
  }

  /**
   * True while this node may act as active: it holds the lock and, under `demote`, the lease.
   * (What the agent's `GET /active` answers a load-balancer probe: routing here must stop the
   * moment it is false.)
   */
  mayBeActive(): boolean {
    return this.state === 'ACTIVE' && !this.lease.expired && this.lease.remaining(this.conn) > 0;
  }

  /** The service is active on purpose (our ACTIVE state, or policy hold after a lost session). */
  serviceShouldBeActive(): boolean {
    return this.state === 'ACTIVE' || this.holdingService;
  }

  /**
   * Whether this agent may act on its service outside an election decision (reconcile): not while
   * another live agent may be driving the same service under our node id.
   */
  ownsService(): boolean {
    return this.duplicate === null && this.fatal === null;
  }

  /** The service may be active right now (elected, held, or an activation in flight). */
  serviceMayBeActive(): boolean {
    return this.serviceShouldBeActive() || this.activating;
  }

  /**
   * The service stopped being active behind our back (it reports standby while we hold the lock).
   * The elector demotes cleanly, gives the lock up and competes again: a re-promotion is a new
   * activation with a new epoch, never a replay of the old one.
   */
  serviceLostActive(reason: string): void {
    this.serviceLost = reason;
    this.kick();
  }

  /** The store of our session while it is connected (operator actions through this agent). */
  connectedStore(): ElectionStore | null {
    const c = this.conn;
    return c && c.state === 'connected' ? c.store : null;
  }

  /**
   * Another node holds the lock, as the last step read it through the connection we still have:
   * who, at which service address, under which epoch. Null when the lock is free, ours, foreign,
   * unreadable, or the connection it was read through is gone. Only for following an active
   * (a replica re-pointing its replication): nothing here may decide that WE may be active.
   */
  activeElsewhere(): (NodeIdentity & { epoch: bigint }) | null {
    const last = this.lastLockView;
    const c = this.conn;
    if (!last || !c || c.generation !== last.generation || c.state !== 'connected') return null;
    if (last.view.state !== 'theirs') return null;
    const seen = this.seenHolder;
    if (!seen?.identity || seen.owner !== last.view.owner || seen.epoch !== last.view.epoch) return null;
    return { ...seen.identity, epoch: last.view.epoch };
  }

  /** Maintenance mode (from the control znode, as last read). */
  paused(): boolean {
    return this.control.paused !== null;
  }

  /** Runs `fn` exclusively with every role change the elector makes. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.mutex.run(fn);
  }

  status(): ElectorStatus {
    const now = this.opts.clock.now();
    const c = this.conn;
    return {
      state: this.state,
      epoch: this.epoch?.toString() ?? null,
      sessionId: c?.sessionId ?? null,
      sessionState: c?.state ?? 'none',
      electable: this.electable,
      leaseRemainingMs:
        this.state === 'ACTIVE' && this.lease.leased ? Math.round(this.lease.remaining(c)) : null,
      leaseBudgetMs: c && this.lease.leased ? Math.round(this.lease.budgetMs(c)) : null,
      lastFailure: this.lastFailure,
      lastDecision: this.lastDecision,
      backoffRemainingMs: Math.max(0, Math.round(this.backoffUntil - now)),
      holdingServiceWithoutLock: this.holdingService,
      fatal: this.fatal,
      paused: this.control.paused,
      switchover: this.control.pendingSwitchover,
    };
  }

  /**
   * Graceful stop: demote an active service (joining a demotion already in flight), mark our
   * breadcrumb `demoted` when the demotion was clean, and close the session so the lock vanishes
   * at once (the standby need not wait a session timeout, nor fence us).
   */
  async stop(): Promise<void> {
    if (this.stopped) {
      await this.running;
      return;
    }
    this.stopped = true;
    this.activation?.abort(new Error('agent stopping'));
    this.stopping.abort(new Error('agent stopping'));
    this.kick();
    await this.running;
    await this.mutex.run(async () => {
      this.lease.stop();
      this.cancelWakeTimer?.();
      this.wakeTimerAt = null;
      if (this.demoting) await this.demoting;
      if (this.state === 'ACTIVE' || this.holdingService) await this.demote('agent stopping');
      const c = this.conn;
      this.conn = null;
      await c?.close();
    });
  }

  // ---- the loop -------------------------------------------------------------------------

  private kick(): void {
    this.kicked = true;
    const r = this.wakeResolve;
    this.wakeResolve = null;
    r?.();
  }

  /** Wakes the loop at `at` (or earlier, if an earlier wake is already set). */
  private wakeAt(at: number): void {
    if (this.wakeTimerAt !== null && this.wakeTimerAt <= at) return;
    this.cancelWakeTimer?.();
    this.wakeTimerAt = at;
    this.cancelWakeTimer = this.opts.clock.setTimer(Math.max(0, at - this.opts.clock.now()), () => {
      this.wakeTimerAt = null;
      this.cancelWakeTimer = null;
      this.kick();
    });
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      this.kicked = false;
      let decision: Decision;
      try {
        decision = await this.mutex.run(() => this.guardedStep());
      } catch (err) {
        decision = d('error', errorMessage(err));
        // A missing parent (the cluster znode deleted under us) is not worth a retry a second:
        // the next step checks for the cluster and says what to do.
        if (err instanceof ZkError && err.zkCode === 'NO_NODE') this.notInitialised = true;
        this.wakeAt(this.opts.clock.now() + RETRY_MS);
      }
      this.report(decision);
      if (this.stopped) break;
      if (this.kicked) continue;
      this.wakeAt(this.opts.clock.now() + this.recheckMs());
      await new Promise<void>((resolve) => {
        this.wakeResolve = resolve;
      });
    }
  }

  private report(decision: Decision): void {
    const prev = this.lastDecision;
    this.lastDecision = decision;
    const same = prev?.action === decision.action && prev.reason === decision.reason;
    if (decision.action === 'error') {
      // The same failure again is news to nobody: once at warn, then at debug.
      this.log[same ? 'debug' : 'warn']('election step failed; retrying', { error: decision.reason });
    } else if (!same) {
      this.log[DECISION_LEVEL[decision.action] ?? 'info'](`decision: ${decision.action}`, {
        reason: decision.reason,
        state: this.state,
        epoch: this.epoch?.toString() ?? null,
      });
    }
  }

  /**
   * Every callback and request a step makes is bounded, so a step always ends; if one does not
   * (a bug), the elector stops renewing its claim: it gives the session up so that the lock goes
   * and another node can take over (after fencing us).
   */
  private async guardedStep(): Promise<Decision> {
    const cancel = this.opts.clock.setTimer(this.opts.stepDeadlineMs, () => {
      const c = this.conn;
      this.log.error(
        'election step is stuck; giving the ZooKeeper session up so another node can take over',
        {
          stepDeadlineMs: this.opts.stepDeadlineMs,
        },
      );
      this.activation?.abort(new Error('election step stuck'));
      if (c) void c.close().catch(() => undefined);
    });
    try {
      return await this.step();
    } finally {
      cancel();
    }
  }

  /** A safety net for a missed watch: look again at least this often. */
  private recheckMs(): number {
    const t = this.conn?.negotiatedTimeoutMs ?? 3000;
    return Math.max(200, Math.min(2000, t / 3));
  }

  private onLeaseExpired(): void {
    this.log.warn(
      'lease expired: no quorum-confirmed ZooKeeper reply in time; demoting before the session can expire',
      {
        sessionState: this.conn?.state,
      },
    );
    this.activation?.abort(new Error('ZooKeeper lease expired'));
    // Now, not when the loop gets to it: the loop may be waiting out a request timeout.
    if (this.state === 'ACTIVE') void this.demote(LEASE_EXPIRED).finally(() => this.kick());
    this.kick();
  }

  private setState(next: ElectorState, reason: string, epoch: bigint | null): void {
    const prev = this.state;
    const prevEpoch = this.epoch;
    this.epoch = epoch;
    if (next !== 'ACTIVE' && !this.activating) this.lease.stop();
    if (prev === next && prevEpoch === epoch) return;
    this.state = next;
    this.stateSince = new Date().toISOString();
    this.stateReason = reason;
    this.memberDirty = true;
    // Another step publishes the member record now, not at the next unrelated event: peers and
    // `hafc failover` read roles from it.
    this.kick();
    this.log.info(`elector ${prev} -> ${next}`, { reason, epoch: epoch?.toString() ?? null });
    try {
      this.opts.callbacks.onStateChange?.(next, prev, reason, epoch);
    } catch (err) {
      this.log.error('onStateChange listener threw', { error: errorMessage(err) });
    }
  }

  private neutral(reason: string): void {
    if (this.state !== 'NEUTRAL') this.setState('NEUTRAL', reason, null);
  }

  // ---- the step --------------------------------------------------------------------------

  private async step(): Promise<Decision> {
    if (this.stopped) return d('stopped', 'agent stopping');
    if (this.fatal !== null) return d('fatal', this.fatal);

    const leaseDecision = await this.leasePhase();
    if (leaseDecision) return leaseDecision;

    const c = await this.connectionPhase();
    if (!('store' in c)) return c;
    const store = c.store;

    const clusterDecision = await this.clusterPhase(c);
    if (clusterDecision) return clusterDecision;

    const houseDecision = await this.housekeepingPhase(c);
    if (houseDecision) return houseDecision;

    await this.control.refresh(store, this.controlWatcher(c));

    return this.lockPhase(c, store);
  }

  /** 1. The lease and the service's own word come first. */
  private async leasePhase(): Promise<Decision | null> {
    if (
      this.state === 'ACTIVE' &&
      this.lease.leased &&
      (this.lease.expired || this.lease.remaining(this.conn) <= 0)
    ) {
      await this.demote(LEASE_EXPIRED);
      this.kick();
      return d('demoted', LEASE_EXPIRED);
    }
    // Belt and braces: an ACTIVE node always has a running watchdog.
    if (this.state === 'ACTIVE') this.lease.watch(() => this.conn);
    if (this.serviceLost !== null) {
      const reason = this.serviceLost;
      this.serviceLost = null;
      if (this.state === 'ACTIVE') {
        await this.demote(reason);
        // Not straight back into the race: a service that stopped being active on its own (a
        // crash seen by the state query before the health monitor's fall count) would be won back
        // at once and restarted in place while its health verdict was still pending; measured
        // with PostgreSQL, that restart was promoted, then demoted 200 ms later as UNHEALTHY, and
        // the standby's promotion then forked the same timeline id. A healthy peer takes over;
        // alone, this node competes again after the back-off.
        this.backoffUntil = this.opts.clock.now() + this.opts.backoffMs;
        this.backoffWhy = 'its service stopped being active on its own';
        this.kick();
        return d('demoted', reason);
      }
    }
    return null;
  }

  /** 2. A connected session, or a decision about riding out the lack of one. */
  private async connectionPhase(): Promise<ElectionConnection | Decision> {
    let c = this.conn;
    if (!c || c.state === 'lost' || c.state === 'closed') {
      if (c) await this.onConnectionGone(c);
      const opened = await this.openConnection();
      if ('action' in opened) return opened;
      c = opened;
    }
    if (c.state !== 'connected') {
      if (this.state === 'ACTIVE') {
        // Ride out a blip while the lease lasts (demote) or the session lives (hold); the
        // watchdog / the 'lost' state wakes us.
        const left = this.lease.leased
          ? `${Math.round(this.lease.remaining(c))} ms of lease left`
          : 'policy hold';
        return d('riding-out', `ZooKeeper session ${c.state}; ${left}`);
      }
      this.neutral(`ZooKeeper session ${c.state}`);
      return d('neutral', `ZooKeeper session ${c.state}`);
    }
    return c;
  }

  /** 3. Is there a cluster to take part in, and does the session leave a usable lease? */
  private async clusterPhase(c: ElectionConnection): Promise<Decision | null> {
    if (this.notInitialised) {
      if (!(await c.store.clusterExists())) {
        this.neutral('cluster not initialised');
        this.wakeAt(this.opts.clock.now() + NOT_INITIALISED_RECHECK_MS);
        return d('not-initialised', 'the cluster znode does not exist: run hafc init -c FILE');
      }
      this.notInitialised = false;
      this.log.info('the cluster znode exists now; joining');
    }
    if (!this.lease.leased) return null;
    const budget = this.lease.budgetMs(c);
    if (budget >= MIN_LEASE_BUDGET_MS) return null;
    const why =
      `negotiated session timeout ${c.negotiatedTimeoutMs} ms leaves a lease budget of ${Math.round(budget)} ms ` +
      `(= ${c.negotiatedTimeoutMs} - relay allowance ${Math.round(c.relayAllowanceMs)} - safety margin ` +
      `${this.opts.safetyMarginMs} - to-standby timeout ${this.opts.toStandbyTimeoutMs}), below the ` +
      `${MIN_LEASE_BUDGET_MS} ms an active node needs to demote itself in time; raise maxSessionTimeout on ` +
      `the ZooKeeper servers (they cap zookeeper.sessionTimeoutMs), or lower zookeeper.safetyMarginMs or the ` +
      `to-standby timeout`;
    if (this.budgetLogged !== c.generation) {
      this.budgetLogged = c.generation;
      this.log.error('this node cannot become active safely with this ZooKeeper session', { reason: why });
    }
    if (this.state === 'ACTIVE') await this.demote('lease budget too short');
    const view = await c.store.viewLock();
    if (view.state === 'ours') await c.store.releaseLock();
    this.neutral('lease budget too short');
    return d('lease-too-short', why);
  }

  /** 4. Housekeeping that needs a live session: the clean-demotion mark, our member record. */
  private async housekeepingPhase(c: ElectionConnection): Promise<Decision | null> {
    await this.markDemoted(c.store);
    if (!this.memberDirty) return null;
    this.memberDirty = false;
    let put;
    try {
      put = await c.store.putMember(this.memberRecord(c), this.ownPastSessions);
    } catch (err) {
      this.memberDirty = true;
      this.log.warn('could not publish member record', { error: errorMessage(err) });
      return null;
    }
    if (put.ok) {
      if (this.duplicate) this.log.info('our member znode is ours now; joining the election');
      this.duplicate = null;
      return null;
    }
    // Another live session holds members/<our id>: a second agent with our node id, or a
    // previous run of this agent whose session has not expired yet. Wait one session timeout for
    // the latter; past that it is alive, and two agents must never share an id.
    this.memberDirty = true;
    const now = this.opts.clock.now();
    if (this.duplicate?.owner !== put.owner) this.duplicate = { owner: put.owner, since: now };
    const r = put.record;
    const who = r ? ` (host ${r.host}${r.pid !== undefined ? `, pid ${r.pid}` : ''})` : '';
    const holder = `session ${put.owner}${who}`;
    if (this.state === 'ACTIVE' || this.holdingService)
      await this.demote(`another agent with node id ${this.opts.node.id} appeared`);
    const waitMs = c.negotiatedTimeoutMs + this.opts.safetyMarginMs;
    const waited = now - this.duplicate.since;
    if (waited < waitMs) {
      this.neutral(`node id ${this.opts.node.id} in use by ${holder}`);
      this.wakeAt(this.duplicate.since + waitMs);
      return d(
        'duplicate-id',
        `members/${this.opts.node.id} belongs to ${holder}; waiting up to ${waitMs - Math.round(waited)} ms for it ` +
          'to expire (a previous run of this agent?) before refusing a duplicate node id',
      );
    }
    this.fatal =
      `another live agent (${holder}) uses node id ${this.opts.node.id} in cluster ${this.opts.cluster}: ` +
      'two agents must never share a node id (a copied config, or the same unit started twice?); stop the ' +
      'other one or give this node its own node.id';
    this.neutral('duplicate node id');
    this.log.error('refusing to run: duplicate node id', { reason: this.fatal });
    try {
      this.opts.callbacks.onFatal?.(this.fatal);
    } catch (err) {
      this.log.error('onFatal listener threw', { error: errorMessage(err) });
    }
    return d('fatal', this.fatal);
  }

  /** 5. The lock. */
  private async lockPhase(c: ElectionConnection, store: ElectionStore): Promise<Decision> {
    let view: LockView;
    try {
      view = await store.viewLock(this.lockWatcher(c));
    } catch (err) {
      // The watch may not have been set: arm it again on the next look.
      this.armed.lock = false;
      this.lastLockView = null;
      throw err;
    }
    this.lastLockView = { view, generation: c.generation };

    if (view.state === 'ours' && this.state === 'INIT' && c.resumed) {
      const adopted = await this.adoptResumedLock(c, store, view.epoch);
      if (adopted) return adopted;
    }

    if (!this.electable) {
      // Even out of the race: who held the lock matters if we join later and the breadcrumb is gone.
      if (view.state === 'theirs') await this.noteHolder(store, view);
      const paused = this.control.paused;
      if (paused && this.state === 'ACTIVE' && view.state === 'ours' && this.epoch === view.epoch) {
        // Maintenance mode: no automatic demotion. The lease still rules (phase 1), so this
        // never outlives our session.
        return d(
          'paused',
          `not electable (${this.electableReason}) but the cluster is paused: staying active`,
        );
      }
      if (
        !this.healthElectable.electable &&
        this.healthElectable.hung &&
        this.state === 'ACTIVE' &&
        !this.holdingService &&
        view.state === 'ours' &&
        this.epoch === view.epoch
      ) {
        // The breadcrumb is left as it is: only a demotion that succeeds marks it (markDemoted
        // writes it conditionally, and not once another active has replaced it).
        try {
          await store.releaseLock();
          this.log.warn(
            'released the lock before demoting: the service does not answer; the next active fences it',
            { reason: this.electableReason },
          );
        } catch (err) {
          // The demotion must not wait on ZooKeeper: it runs now, and the next step releases
          // the lock we still hold (not electable, not active).
          this.log.warn('could not release the lock before demoting; demoting first', {
            error: errorMessage(err),
          });
        }
        await this.demote(`no longer electable: ${this.electableReason}`);
        this.neutral(`not electable: ${this.electableReason}`);
        return d('not-electable', this.electableReason);
      }
      if (this.state === 'ACTIVE' || this.holdingService) {
        await this.demote(`no longer electable: ${this.electableReason}`);
      }
      if (view.state === 'ours') await store.releaseLock();
      this.neutral(`not electable: ${this.electableReason}`);
      return d('not-electable', this.electableReason);
    }

    switch (view.state) {
      case 'ours':
        if (this.state === 'ACTIVE' && this.epoch === view.epoch) return this.keepActive(c, view.epoch);
        // A lock we are not acting on (aborted activation, demotion on lease, a reconnect):
        // give it up and compete afresh, so that every activation gets a new epoch.
        await this.markDemoted(store);
        await store.releaseLock();
        this.kick();
        return d('released', `holding lock epoch ${view.epoch} without acting on it`);
      case 'theirs':
        return this.lockIsTheirs(c, store, view);
      case 'foreign':
        if (this.state === 'ACTIVE') await this.demote(view.detail);
        this.neutral(view.detail);
        return d('foreign-lock', `${view.detail}; nobody can become active until an operator removes it`);
      case 'free':
        return this.onLockFree(c, store);
    }
  }

  /**
   * ACTIVE and the lock is ours: keep the breadcrumb true. If someone removed or replaced it, a
   * successor would not know to fence us: rewrite it, or stop being active if we cannot.
   */
  private async keepActive(c: ElectionConnection, epoch: bigint): Promise<Decision> {
    const bc = await c.store.readBreadcrumb(this.breadcrumbWatcher(c));
    const r = bc && 'record' in bc ? bc.record : null;
    if (
      r &&
      r.id === this.opts.node.id &&
      r.epoch === epoch.toString() &&
      r.session === c.sessionId &&
      r.demoted !== true
    ) {
      if (this.control.pendingSwitchover) return this.switchoverAsActive(c, epoch);
      return d('kept', `active with epoch ${epoch}`);
    }
    const found =
      bc === null ? 'it is missing' : 'error' in bc ? bc.error : `it names ${r?.id} epoch ${r?.epoch}`;
    this.log.error("the active node's breadcrumb was removed or changed behind its back; rewriting it", {
      found,
    });
    try {
      await c.store.writeBreadcrumb(this.breadcrumbRecord(epoch, c), bc ? bc.version : null);
      this.armed.breadcrumb = false;
      this.kick();
      return d('breadcrumb-repaired', `breadcrumb rewritten (${found})`);
    } catch (err) {
      const reason = `cannot keep the breadcrumb true (${found}): ${errorMessage(err)}`;
      await this.demote(reason);
      await c.store.releaseLock().catch(() => undefined);
      this.kick();
      return d('demoted', reason);
    }
  }

  /**
   * This process resumed the session of its previous run, which holds the lock: take the
   * activation over instead of failing over. Only with the evidence that the previous run got as
   * far as promoting: the breadcrumb names us, this session and the lock's epoch, undemoted (it
   * is written after fencing, before to-active). The service is asked for its state; one that is
   * not active is told to-active again with the SAME epoch (nobody else can have held the lock
   * meanwhile: its znode never went away). Before the first health verdict we wait; an
   * unhealthy service is not adopted (the normal path demotes and releases). Null = not ours to
   * adopt: the normal path releases the lock and competes afresh.
   */
  private async adoptResumedLock(
    c: ElectionConnection,
    store: ElectionStore,
    epoch: bigint,
  ): Promise<Decision | null> {
    const now = this.opts.clock.now();
    this.resumeWaitSince ??= now;
    const waitedTooLong = now - this.resumeWaitSince >= c.negotiatedTimeoutMs;
    if (!this.healthKnown && !waitedTooLong) {
      // setElectable kicks the loop when the first verdict arrives; past one session timeout
      // without one, the service is treated as not electable (demoted, the lock released).
      this.wakeAt(this.resumeWaitSince + c.negotiatedTimeoutMs);
      return d(
        'resuming',
        `resumed session holds the lock (epoch ${epoch}); waiting for the first health verdict`,
      );
    }
    if (!this.electable || !this.healthKnown) {
      // The previous run's activation may still be serving: stand it down while we hold the lock
      // and say so in the breadcrumb, so the next active need not fence it.
      const clean = await this.opts.callbacks.demote(
        `agent restarted with the lock (epoch ${epoch}) but not electable: ${
          this.healthKnown ? this.electableReason : 'no health verdict within a session timeout'
        }`,
      );
      if (clean) {
        this.pendingMark = epoch;
        await this.markDemoted(store);
      }
      return null;
    }
    const bc = await store.readBreadcrumb();
    const r = bc && 'record' in bc ? bc.record : null;
    const n = this.opts.node;
    if (
      !r ||
      r.id !== n.id ||
      r.host !== n.host ||
      r.port !== n.port ||
      r.session !== c.sessionId ||
      r.epoch !== epoch.toString() ||
      r.demoted === true
    ) {
      this.log.info(
        'resumed session holds the lock, but the breadcrumb does not show our activation; competing afresh',
        {
          epoch: epoch.toString(),
        },
      );
      return null;
    }
    const gen = c.generation;
    const ac = new AbortController();
    this.activation = ac;
    this.activating = true;
    this.lease.reset();
    this.lease.watch(() => this.conn);
    try {
      let reported: string = 'unknown';
      try {
        reported = (await this.opts.callbacks.serviceState?.(ac.signal)) ?? 'unknown';
      } catch (err) {
        this.log.warn('could not ask the service for its state while resuming', { error: errorMessage(err) });
      }
      const reason = `agent restarted: resumed its ZooKeeper session, lock epoch ${epoch} and breadcrumb are still ours (service reports ${reported})`;
      if (reported !== 'active') {
        if (!this.mayPromote(gen, ac))
          return await this.abandon(store, 'ZooKeeper session or lease gone while resuming');
        try {
          await this.opts.callbacks.becomeActive(epoch, reason, ac.signal);
        } catch (err) {
          await this.opts.callbacks.demote(`to-active failed while resuming: ${errorMessage(err)}`);
          return await this.abandon(store, `to-active failed while resuming: ${errorMessage(err)}`);
        }
      }
      if (!this.mayPromote(gen, ac)) {
        await this.opts.callbacks.demote('resumed activation outlived its ZooKeeper session');
        this.neutral('resumed activation outlived its session');
        this.kick();
        return d('activation-ignored', 'resumed activation outlived its session or lease');
      }
      this.armed.breadcrumb = false;
      this.setState('ACTIVE', reason, epoch);
      this.kick();
      this.control.appendHistory(store, {
        event: 'activated',
        node: n.id,
        from: n.id,
        cause: reason,
        epoch: epoch.toString(),
        fenced: [],
      });
      return d('resumed', reason);
    } finally {
      this.activating = false;
      if (this.state !== 'ACTIVE') {
        this.activation = null;
        this.lease.stop();
      }
    }
  }

  /** ACTIVE with a pending switchover: hand over (demote, mark, release), or refuse it. */
  private async switchoverAsActive(c: ElectionConnection, epoch: bigint): Promise<Decision> {
    const store = c.store;
    const { members } = await store.listMembers();
    const part = switchoverPart({
      control: this.control.record,
      me: this.opts.node.id,
      active: true,
      members,
      nowWallMs: Date.now(),
    });
    if (part.kind === 'refuse' || part.kind === 'expire') {
      const outcome = part.kind === 'refuse' ? 'refused' : 'expired';
      const detail = part.kind === 'refuse' ? part.why : `not carried out by ${part.req.expiresAt}`;
      this.log.warn(`switchover ${outcome}`, { id: part.req.id, to: part.req.to, detail });
      if (await this.control.finish(store, part.req, { outcome, detail })) {
        this.control.appendHistory(store, {
          event: part.kind === 'refuse' ? 'switchover-refused' : 'switchover-expired',
          node: this.opts.node.id,
          from: part.req.from,
          to: part.req.to,
          cause: detail,
          epoch: epoch.toString(),
          switchover: part.req.id,
          by: part.req.by,
          ...(part.req.reason !== undefined ? { reason: part.req.reason } : {}),
        });
      } else this.kick();
      return d('switchover-refused', `switchover ${part.req.id} to ${part.req.to} ${outcome}: ${detail}`);
    }
    if (part.kind !== 'hand-over') return d('kept', `active with epoch ${epoch}`);
    const req = part.req;
    const reason = `switchover ${req.id} to ${req.to} requested by ${req.by}${req.reason ? `: ${req.reason}` : ''}`;
    this.log.info('switchover: demoting our service before letting the lock go', {
      id: req.id,
      to: req.to,
      epoch: epoch.toString(),
    });
    // Demote while we still hold the lock (nobody can promote meanwhile), mark the breadcrumb
    // demoted, and only then release: the target need not fence us. A failed demotion leaves the
    // breadcrumb unmarked, so the target fences us - safe either way.
    await this.demote(reason);
    await this.markDemoted(store);
    await store.releaseLock();
    this.kick();
    return d('handed-over', `${reason}; lock released`);
  }

  private async lockIsTheirs(
    c: ElectionConnection,
    store: ElectionStore,
    view: Extract<LockView, { state: 'theirs' }>,
  ): Promise<Decision> {
    if (this.ownPastSessions.has(view.owner)) {
      // Our own lock from a session we already gave up on (lost, then closed here): nobody acts
      // on it, so waiting for the server to expire it would only keep the cluster without a (new)
      // active for up to a session timeout. Compete at once: under policy hold our service is
      // still active, and winning now spares the cluster a needless failover.
      if (await store.removeLockOf(view.owner)) return this.onLockFree(c, store);
      this.kick();
      return d('removed-own-stale-lock', `lock of our earlier session ${view.owner} is gone`);
    }
    await this.noteHolder(store, view);
    this.freeSince = null;
    const why = `lock held by session ${view.owner} (epoch ${view.epoch})`;
    if (this.state === 'ACTIVE' || this.holdingService) {
      // Only possible after our session was replaced: someone else won meanwhile.
      await this.demote(`another session (${view.owner}) holds the lock`);
      this.setState('STANDBY', why, null);
    } else if (this.state !== 'STANDBY' && this.control.paused) {
      // Maintenance mode: the service is left as it is.
      this.setState('STANDBY', `${why} (paused: service left alone)`, null);
    } else if (this.state !== 'STANDBY') {
      // Whatever our service does, another node holds the lock; reconcile demotes it later if it
      // still claims to be active.
      await this.opts.callbacks.becomeStandby(`lock held by session ${view.owner}`).catch((err: unknown) => {
        this.log.error('to-standby failed while another node holds the lock', { error: errorMessage(err) });
      });
      this.setState('STANDBY', why, null);
    }
    return d('standby', why);
  }

  /** Remembers who holds the lock, so that a vanished breadcrumb cannot hide them. */
  private async noteHolder(
    store: ElectionStore,
    view: Extract<LockView, { state: 'theirs' }>,
  ): Promise<void> {
    if (this.seenHolder?.owner === view.owner && this.seenHolder.epoch === view.epoch) return;
    const seen: SeenHolder = { owner: view.owner, epoch: view.epoch };
    try {
      const h = await store.lockHolder();
      if (h && h.owner === view.owner && h.record) {
        seen.identity = { id: h.record.id, host: h.record.host, port: h.record.port };
      }
    } catch (err) {
      this.log.debug('could not read the lock holder record', { error: errorMessage(err) });
    }
    this.seenHolder = seen;
  }

  /** One watch per znode at a time (each one set stays registered until it fires). */
  private readonly armed = { lock: false, breadcrumb: false, control: false };

  private watcher(which: 'lock' | 'breadcrumb' | 'control', c: ElectionConnection): (() => void) | undefined {
    if (this.armed[which]) return undefined;
    this.armed[which] = true;
    const gen = c.generation;
    return () => {
      if (this.conn?.generation !== gen) return; // stale connection: ignore
      this.armed[which] = false;
      this.kick();
    };
  }

  private lockWatcher(c: ElectionConnection): (() => void) | undefined {
    return this.watcher('lock', c);
  }

  private controlWatcher(c: ElectionConnection): (() => void) | undefined {
    return this.watcher('control', c);
  }

  private breadcrumbWatcher(c: ElectionConnection): (() => void) | undefined {
    return this.watcher('breadcrumb', c);
  }

  // ---- competing --------------------------------------------------------------------------

  private async onLockFree(c: ElectionConnection, store: ElectionStore): Promise<Decision> {
    const now = this.opts.clock.now();
    // (A service held active under policy hold is not demoted here: if we win, it stays active;
    // if another node wins, it fences it.)
    if (this.state === 'ACTIVE') {
      await this.demote('the lock vanished while we were active');
      this.kick();
      return d('demoted', 'the lock vanished while we were active');
    }
    const paused = this.control.paused;
    if (paused) {
      if (this.state !== 'NEUTRAL') this.setState('NEUTRAL', 'lock is free; cluster paused', null);
      return d(
        'paused',
        `lock is free but the cluster is paused (${paused.reason ?? 'no reason given'}, by ${paused.by}): nobody is promoted`,
      );
    }
    let part: SwitchoverPart = { kind: 'none' };
    if (this.control.pendingSwitchover) {
      const { members } = await store.listMembers();
      part = switchoverPart({
        control: this.control.record,
        me: this.opts.node.id,
        active: false,
        members,
        nowWallMs: Date.now(),
      });
    }
    if (part.kind === 'take-over') {
      this.freeSince ??= now;
      return this.tryBecomeActive(c, store, part.req);
    }
    if (part.kind === 'stand-aside') {
      if (this.state === 'INIT') this.setState('NEUTRAL', part.why, null);
      // Re-checked every second: if the target goes away, nobody should wait for the expiry.
      this.wakeAt(Math.min(now + 1000, now + Math.max(0, Date.parse(part.req.expiresAt) - Date.now())));
      return d('deferring', `lock is free; standing aside: ${part.why}`);
    }
    if (now < this.backoffUntil) {
      if (this.state === 'INIT') this.setState('NEUTRAL', `backing off after ${this.backoffWhy}`, null);
      this.wakeAt(this.backoffUntil);
      return d('backing-off', `after ${this.backoffWhy}, ${Math.round(this.backoffUntil - now)} ms left`);
    }
    this.freeSince ??= now;
    // A node whose service is still active (policy hold) reclaims without deferring: handing the
    // lock to anyone else means a failover.
    const higher = this.holdingService ? null : await this.higherPriorityCandidate(store);
    if (higher && now < this.freeSince + this.opts.priorityGraceMs) {
      this.wakeAt(this.freeSince + this.opts.priorityGraceMs);
      return d(
        'deferring',
        `lock is free; leaving it to higher-priority ${higher.id} (priority ${higher.priority}) for ` +
          `${Math.round(this.freeSince + this.opts.priorityGraceMs - now)} ms`,
      );
    }
    return this.tryBecomeActive(c, store);
  }

  private async higherPriorityCandidate(store: ElectionStore): Promise<MemberRecord | null> {
    const { members, problems } = await store.listMembers();
    // New problems only (the store reports each znode once); a flood is summarised, not printed.
    for (const p of problems.slice(0, MAX_MEMBER_WARNINGS))
      this.log.warn('ignoring a member znode', { problem: p });
    if (problems.length > MAX_MEMBER_WARNINGS) {
      this.log.warn(
        `ignoring ${problems.length - MAX_MEMBER_WARNINGS} more member znodes that are not live agents`,
        {
          example: problems[MAX_MEMBER_WARNINGS],
        },
      );
    }
    const mine = this.opts.node.priority;
    let best: MemberRecord | null = null;
    for (const m of members) {
      // INITIALIZING too: at a cold start the higher node's first check may not be in yet, and
      // the grace bounds the wait if it never becomes healthy.
      if (m.id === this.opts.node.id || m.noFailover) continue;
      if (m.health !== 'HEALTHY' && m.health !== 'INITIALIZING') continue;
      // One that just failed to activate would take the lock back after its back-off and fail
      // again, forever: it does not get the lock held back for it.
      if (m.activationFailed === true) continue;
      if (m.priority > mine && (!best || m.priority > best.priority)) best = m;
    }
    return best;
  }

  private async tryBecomeActive(
    c: ElectionConnection,
    store: ElectionStore,
    switchover?: SwitchoverRequest,
  ): Promise<Decision> {
    const gen = c.generation;
    const view = await store.tryAcquire(this.lockRecord(c));
    if (view.state !== 'ours') {
      this.kick();
      return d('lost-race', `lock is ${view.state} after our create`);
    }
    const epoch = view.epoch;
    const clock = this.opts.clock;
    const acquiredAt = clock.now();
    const lockWaitMs = this.freeSince === null ? undefined : Math.round(acquiredAt - this.freeSince);
    this.freeSince = null;
    this.log.info('acquired the lock', { epoch: epoch.toString() });

    const ac = new AbortController();
    this.activation = ac;
    this.activating = true;
    this.lease.reset();
    this.lease.watch(() => this.conn);
    try {
      const bc = await store.readBreadcrumb();
      const plan = fencePlan({
        breadcrumb: bc,
        node: this.opts.node,
        sessionId: c.sessionId,
        pastSessions: this.ownPastSessions,
        seenHolder: this.seenHolder,
        log: this.log,
      });
      if ('error' in plan) return await this.abandon(store, plan.error);
      const fenceStart = clock.now();
      for (const target of plan.targets) {
        this.log.info('fencing the previous active', {
          target: target.id,
          targetEpoch: target.epoch.toString(),
          epoch: epoch.toString(),
        });
        let fenced: boolean;
        let why = 'failed by every method';
        try {
          fenced = await this.opts.callbacks.fenceOldActive(target, epoch, ac.signal);
        } catch (err) {
          // A fencing bug is a failed fence, never a reason to skip the back-off.
          fenced = false;
          why = `threw: ${errorMessage(err)}`;
        }
        if (!fenced) {
          return await this.abandon(
            store,
            `fencing of previous active ${target.id} (epoch ${target.epoch}) ${why}`,
          );
        }
      }
      if (!this.mayPromote(gen, ac)) {
        return await this.abandon(store, 'ZooKeeper session or lease gone during fencing');
      }
      // The breadcrumb goes down BEFORE the service becomes active: if we die half way, the next
      // active fences us.
      await store.writeBreadcrumb(this.breadcrumbRecord(epoch, c), bc ? bc.version : null);
      // Checked again right before the call that promotes: a process frozen while the write was
      // in flight handles the reply before its overdue timers run, so the watchdog may not have
      // spoken yet although the lease is gone.
      if (!this.mayPromote(gen, ac)) {
        return await this.abandon(store, 'ZooKeeper session or lease gone before to-active');
      }
      const fencingMs = Math.round(clock.now() - fenceStart);
      const prev = bc && 'record' in bc ? bc.record : null;
      const won = switchover ? `switchover ${switchover.id} from ${switchover.from}` : 'won election';
      const reason = plan.targets.length
        ? `${won}; previous active ${plan.targets.map((t) => t.id).join(', ')} fenced`
        : prev?.demoted
          ? `${won}; previous active ${prev.id} stood down cleanly`
          : won;
      const hookStart = clock.now();
      try {
        await this.opts.callbacks.becomeActive(epoch, reason, ac.signal);
      } catch (err) {
        await this.opts.callbacks.demote(`to-active failed: ${errorMessage(err)}`);
        this.holdingService = false;
        return await this.abandon(store, `to-active failed: ${errorMessage(err)}`);
      }
      // Stale-session guard: the result counts only if the session that started it still stands
      // and (policy demote) the lease never ran out meanwhile.
      if (!this.mayPromote(gen, ac)) {
        this.log.warn('to-active finished after its session or lease was gone: result ignored, demoting', {
          epoch: epoch.toString(),
        });
        await this.opts.callbacks.demote('activation outlived its ZooKeeper session');
        this.holdingService = false;
        this.neutral('activation outlived its session');
        this.kick();
        return d('activation-ignored', 'to-active finished after its session or lease was gone');
      }
      this.holdingService = false;
      if (this.activationFailed) {
        this.activationFailed = false;
        this.memberDirty = true;
      }
      this.armed.breadcrumb = false;
      this.setState('ACTIVE', reason, epoch);
      this.kick(); // publish the member record, arm the breadcrumb watch
      const hookMs = Math.round(clock.now() - hookStart);
      let handoverMs: number | undefined;
      if (switchover && prev?.demoted && prev.id === switchover.from && prev.demotedAt) {
        // Two hosts' wall clocks: as good as their synchronisation (same host: exact).
        handoverMs = Math.max(0, Date.now() - Date.parse(prev.demotedAt));
      }
      if (switchover) {
        await this.control.finish(store, switchover, {
          outcome: 'done',
          detail: reason,
          epoch: epoch.toString(),
          ...(handoverMs !== undefined ? { handoverMs } : {}),
        });
      }
      this.control.appendHistory(store, {
        event: 'activated',
        node: this.opts.node.id,
        ...(prev ? { from: prev.id } : {}),
        cause: reason,
        epoch: epoch.toString(),
        fenced: plan.targets.map((t) => t.id),
        durations: {
          ...(lockWaitMs !== undefined ? { lockWaitMs } : {}),
          fencingMs,
          hookMs,
          ...(handoverMs !== undefined ? { handoverMs } : {}),
        },
        ...(switchover
          ? {
              switchover: switchover.id,
              by: switchover.by,
              ...(switchover.reason !== undefined ? { reason: switchover.reason } : {}),
            }
          : {}),
      });
      return d('activated', reason);
    } finally {
      this.activating = false;
      // While ACTIVE the activation stays abortable and the watchdog armed: it demotes when the
      // lease ends.
      if (this.state !== 'ACTIVE') {
        this.activation = null;
        this.lease.stop();
      }
    }
  }

  private mayPromote(gen: number, ac: AbortController): boolean {
    const c = this.conn;
    if (!c || c.generation !== gen || this.stopped || ac.signal.aborted) return false;
    if (c.state !== 'connected') return false;
    return !this.lease.expired && this.lease.remaining(c) > 0;
  }

  /** Give the lock up after a failed activation and back off. */
  private async abandon(store: ElectionStore, reason: string): Promise<Decision> {
    if (this.holdingService) {
      // policy hold: the reclaim failed, so our service is active without the lock; it must not
      // stay so (nor slip past reconcile, which trusts holdingService).
      await this.opts.callbacks.demote(`reclaim failed: ${reason}`);
      this.holdingService = false;
    }
    const now = this.opts.clock.now();
    this.lastFailure = { reason, atMs: now };
    this.backoffUntil = now + this.opts.backoffMs;
    this.backoffWhy = 'a failed activation';
    this.activationFailed = true;
    // Peers must see the failure before the lock is free, or a lower-priority node would hold
    // the lock back for us again.
    try {
      await store.putMember(this.memberRecord(this.conn), this.ownPastSessions);
    } catch (err) {
      this.memberDirty = true;
      this.log.debug('could not publish the failed activation', { error: errorMessage(err) });
    }
    try {
      await store.releaseLock();
    } catch (err) {
      this.log.warn('could not release the lock after a failed activation (it goes with the session)', {
        error: errorMessage(err),
      });
    }
    this.neutral(reason);
    this.log.error('activation abandoned; backing off', { reason, backoffMs: this.opts.backoffMs });
    this.control.appendHistory(store, { event: 'activation-failed', node: this.opts.node.id, cause: reason });
    try {
      this.opts.callbacks.onActivationFailed?.(reason);
    } catch (err) {
      this.log.error('onActivationFailed listener threw', { error: errorMessage(err) });
    }
    this.wakeAt(this.backoffUntil);
    return d('activation-failed', reason);
  }

  // ---- demotion ---------------------------------------------------------------------------

  /**
   * Demote the local service and become NEUTRAL. After a clean demotion our breadcrumb is marked
   * `demoted` BEFORE the lock is released (the caller releases it afterwards), so the next active
   * need not fence a service that already stood down; if ZooKeeper is out of reach now, the mark
   * goes on the next step that has a session, which again runs before any lock handling.
   *
   * Callers share one demotion in flight: the lease watchdog starts it without waiting for the
   * loop (which may sit in a ZooKeeper request for a whole request timeout), and the loop (or
   * stop()) then joins it instead of demoting twice.
   */
  private demote(reason: string): Promise<void> {
    this.demoting ??= this.doDemote(reason).finally(() => {
      this.demoting = null;
    });
    return this.demoting;
  }

  private async doDemote(reason: string): Promise<void> {
    const epoch = this.epoch;
    const wasActive = this.state === 'ACTIVE';
    this.activation?.abort(new Error(reason));
    this.activation = null;
    const start = this.opts.clock.now();
    const clean = await this.opts.callbacks.demote(reason);
    this.holdingService = false;
    this.setState('NEUTRAL', reason, null);
    const c0 = this.conn;
    if (wasActive && c0 && c0.state === 'connected') {
      this.control.appendHistory(c0.store, {
        event: 'demoted',
        node: this.opts.node.id,
        cause: clean ? reason : `${reason} (the to-standby hook failed: the next active fences this node)`,
        ...(epoch !== null ? { epoch: epoch.toString() } : {}),
        durations: { hookMs: Math.round(this.opts.clock.now() - start) },
      });
    }
    if (!clean || epoch === null) return;
    this.pendingMark = epoch;
    const c = this.conn;
    if (c && c.state === 'connected') await this.markDemoted(c.store);
  }

  /**
   * Marks our breadcrumb `demoted` after a clean demotion. Never throws: a write that cannot
   * succeed (no permission, someone else's breadcrumb by now) is given up with a log line - the
   * next active then fences us, which is safe - and a transient failure is retried next step.
   */
  private async markDemoted(store: ElectionStore): Promise<void> {
    const epoch = this.pendingMark;
    if (epoch === null) return;
    try {
      const bc = await store.readBreadcrumb();
      if (
        !bc ||
        'error' in bc ||
        bc.record.id !== this.opts.node.id ||
        bc.record.epoch !== epoch.toString()
      ) {
        this.pendingMark = null; // not ours any more: nothing to mark
        return;
      }
      if (bc.record.demoted !== true) {
        await store.writeBreadcrumb(
          { ...bc.record, demoted: true, demotedAt: new Date().toISOString() },
          bc.version,
        );
      }
      this.pendingMark = null;
    } catch (err) {
      if (err instanceof ZkError && PERMANENT.has(err.zkCode)) {
        this.pendingMark = null;
        this.log.warn('cannot mark our breadcrumb as cleanly demoted; the next active will fence this node', {
          error: errorMessage(err),
        });
      } else {
        this.log.debug('could not mark our breadcrumb as demoted yet; will retry', {
          error: errorMessage(err),
        });
      }
    }
  }

  // ---- connections ------------------------------------------------------------------------

  private async onConnectionGone(c: ElectionConnection): Promise<void> {
    this.log.warn('ZooKeeper session gone', { sessionId: c.sessionId, state: c.state });
    this.rememberPastSession(c.sessionId);
    this.conn = null;
    this.armed.lock = false;
    this.armed.breadcrumb = false;
    this.armed.control = false;
    this.memberDirty = true;
    if (this.state === 'ACTIVE') {
      if (this.opts.policy.onSessionLost === 'keep') {
        // ZKFC behaviour: the service stays active; the next active fences it (its storage fences).
        this.holdingService = true;
        this.setState(
          'NEUTRAL',
          'ZooKeeper session lost; service left active (onConnectionLoss: hold)',
          null,
        );
      } else {
        await this.demote('ZooKeeper session lost');
      }
    } else {
      this.neutral('ZooKeeper session lost');
    }
    await c.close().catch(() => undefined);
  }

  private rememberPastSession(id: string): void {
    if (!id || /^0+$/.test(id)) return;
    this.ownPastSessions.add(id);
    if (this.ownPastSessions.size > 16) {
      const oldest = this.ownPastSessions.values().next().value;
      if (oldest !== undefined) this.ownPastSessions.delete(oldest);
    }
  }

  private async openConnection(): Promise<ElectionConnection | Decision> {
    let c: ElectionConnection;
    try {
      c = await this.opts.connect(this.stopping.signal);
    } catch (err) {
      if (this.state !== 'NEUTRAL' && this.state !== 'ACTIVE')
        this.setState('NEUTRAL', 'ZooKeeper unreachable', null);
      this.wakeAt(this.opts.clock.now() + RETRY_MS);
      return d('unreachable', `cannot open a ZooKeeper session: ${errorMessage(err)}`);
    }
    if (this.stopped) {
      await c.close();
      return d('stopped', 'agent stopping');
    }
    this.conn = c;
    this.armed.lock = false;
    this.armed.breadcrumb = false;
    this.armed.control = false;
    this.memberDirty = true;
    const gen = c.generation;
    c.onState((next, prev) => {
      if (this.conn?.generation !== gen) return;
      this.log.info(`ZooKeeper session ${prev} -> ${next}`, { sessionId: c.sessionId });
      // A lost session ends the lease now, not when its timer would have fired.
      this.lease.check();
      this.kick();
    });
    this.log.info('ZooKeeper session established', {
      sessionId: c.sessionId,
      negotiatedTimeoutMs: c.negotiatedTimeoutMs,
      relayAllowanceMs: Math.round(c.relayAllowanceMs),
      leaseBudgetMs: this.lease.leased ? Math.round(this.lease.budgetMs(c)) : undefined,
    });
    if (!(await c.store.clusterExists())) {
      this.notInitialised = true;
      this.log.error(`cluster ${this.opts.cluster} is not initialised: its znode does not exist`, {
        fix: 'run hafc init -c FILE once for the cluster (with the same zookeeper.connect and root)',
      });
    } else {
      const problems = await c.store.aclProblems();
      if (problems.length) {
        this.log.error(
          `the ACL of cluster ${this.opts.cluster} does not protect it: ${problems.join('; ')}`,
          {
            fix: 'stop the agents, then hafc init --force --yes with zookeeper.auth set recreates it with the right ACL',
          },
        );
      }
    }
    return c;
  }

  // ---- records ----------------------------------------------------------------------------

  /** The identity every record of ours starts with. */
  private recordBase<K extends 'lock' | 'breadcrumb' | 'member'>(kind: K) {
    const n = this.opts.node;
    return {
      formatVersion: FORMAT_VERSION,
      kind,
      cluster: this.opts.cluster,
      id: n.id,
      host: n.host,
      port: n.port,
    };
  }

  private lockRecord(c: ElectionConnection): LockRecord {
    return {
      ...this.recordBase('lock'),
      priority: this.opts.node.priority,
      pid: this.opts.pid ?? process.pid,
      agentVersion: this.opts.agentVersion,
      acquiredAt: new Date().toISOString(),
      session: c.sessionId,
    };
  }

  private breadcrumbRecord(epoch: bigint, c: ElectionConnection): BreadcrumbRecord {
    return {
      ...this.recordBase('breadcrumb'),
      epoch: epoch.toString(),
      writtenAt: new Date().toISOString(),
      session: c.sessionId,
      ...(this.opts.node.controlPort !== undefined ? { controlPort: this.opts.node.controlPort } : {}),
    };
  }

  private memberRecord(c: ElectionConnection | null): MemberRecord {
    const n = this.opts.node;
    return {
      ...this.recordBase('member'),
      priority: n.priority,
      noFailover: n.noFailover,
      health: this.opts.health(),
      role: this.state,
      epoch: (this.epoch ?? 0n).toString(),
      agentVersion: this.opts.agentVersion,
      control: n.control,
      updatedAt: new Date().toISOString(),
      pid: this.opts.pid ?? process.pid,
      ...(c ? { session: c.sessionId } : {}),
      activationFailed: this.activationFailed,
      // Why it cannot take over, in the service's own words (a lagging replica, safe mode...).
      ...(this.electable ? {} : { notElectableReason: this.electableReason.slice(0, 300) }),
      since: this.stateSince,
      sinceReason: this.stateReason.slice(0, 300),
      ...(this.lastFailure
        ? {
            lastFailure: {
              reason: this.lastFailure.reason.slice(0, 300),
              at: new Date(Date.now() - (this.opts.clock.now() - this.lastFailure.atMs)).toISOString(),
            },
          }
        : {}),
    };
  }
}
