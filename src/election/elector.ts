/**
 * The ActiveStandbyElector of hafc: competes for the ephemeral lock znode, fences the breadcrumb
 * holder, and tells the controller (through ElectorCallbacks) when to become active, standby or
 * neutral.
 *
 * Design: one serialized reconcile loop. Every input (session state change, lock watch, health
 * change, a timer) only `kick()`s the loop; `step()` then reads the world and makes at most one
 * decision. Nothing that changes the service's role runs outside the loop's mutex, so there is no
 * interleaving of promotions and demotions to reason about.
 *
 * The lease: an active node under policy `demote` must have demoted its service before its session
 * can have expired on the server. The server counts the session timeout from the last packet it
 * heard; the latest moment we KNOW it heard us is when the last answered request was sent
 * (`session.lastReplySentAt`). So the service may stay active only until
 *   lastReplySentAt + negotiatedTimeout - safetyMargin - toStandbyTimeout
 * on the local monotonic clock. A watchdog timer enforces that even while the loop is busy (it
 * aborts an activation in flight).
 */
import type { Clock } from '../clock.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { FenceTarget } from '../service/agent.js';
import { ClusterStore } from '../zk/lock.js';
import type { ClusterPaths } from '../zk/paths.js';
import { FORMAT_VERSION, type BreadcrumbRecord, type LockRecord, type MemberRecord } from '../zk/records.js';
import type { Acl, SessionState, ZkSession } from '../zk/types.js';
import { Mutex } from './mutex.js';

export type ElectorState = 'INIT' | 'ACTIVE' | 'STANDBY' | 'NEUTRAL';

export interface ElectorCallbacks {
  /** Make the local service active with this epoch. Throws on failure; abort = give up now. */
  becomeActive(epoch: bigint, reason: string, signal: AbortSignal): Promise<void>;
  /** Another node holds the lock: make sure the local service is standby. Errors are logged. */
  becomeStandby(reason: string): Promise<void>;
  /**
   * We stop competing or cannot know whether we hold the lock. With `demote` the service must be
   * demoted (it may have been active); returns true when the service is known to be standby.
   */
  enterNeutralMode(reason: string, demote: boolean): Promise<boolean>;
  /** Fence the node named in the breadcrumb; true = it can no longer serve as active. */
  fenceOldActive(target: FenceTarget, epoch: bigint, signal: AbortSignal): Promise<boolean>;
  /** Every state change, after it happened (logs, metrics, status). Must not throw. */
  onStateChange?(next: ElectorState, prev: ElectorState, reason: string, epoch: bigint | null): void;
  /** An activation that did not happen (fencing failed, to-active failed, bad breadcrumb). */
  onActivationFailed?(reason: string): void;
}

export interface ElectorNode {
  id: string;
  host: string;
  port: number;
  priority: number;
  noFailover: boolean;
  control: string;
}

export interface ElectorOptions {
  cluster: string;
  node: ElectorNode;
  paths: ClusterPaths;
  acl?: Acl[];
  openSession: () => Promise<ZkSession>;
  policy: 'demote' | 'hold';
  safetyMarginMs: number;
  toStandbyTimeoutMs: number;
  backoffMs: number;
  priorityGraceMs: number;
  agentVersion: string;
  /** Health string published in the member record. */
  health: () => string;
  clock: Clock;
  logger: Logger;
  callbacks: ElectorCallbacks;
}

export interface ElectorStatus {
  state: ElectorState;
  epoch: string | null;
  sessionId: string | null;
  sessionState: SessionState | 'none';
  electable: boolean;
  /** Milliseconds of lease left while active (policy demote), else null. */
  leaseRemainingMs: number | null;
  lastFailure: { reason: string; atMs: number } | null;
  backoffRemainingMs: number;
  holdingServiceWithoutLock: boolean;
}

const SESSION_RETRY_MS = 1000;
const LEASE_EXPIRED =
  'ZooKeeper lease expired (no reply within sessionTimeout - margin - to-standby timeout)';

export class Elector {
  private state: ElectorState = 'INIT';
  private epoch: bigint | null = null;
  private session: ZkSession | null = null;
  private store: ClusterStore | null = null;
  private electable = false;
  private electableReason = 'health not known yet';
  private stopped = false;
  private running: Promise<void> | null = null;
  private readonly mutex = new Mutex();
  private wakeResolve: (() => void) | null = null;
  private kicked = false;
  private cancelWakeTimer: (() => void) | null = null;
  private wakeTimerAt: number | null = null;
  private cancelLeaseTimer: (() => void) | null = null;
  private activation: AbortController | null = null;
  private backoffUntil = 0;
  private freeSince: number | null = null;
  private lockWatchArmed = false;
  private memberDirty = true;
  private lastFailure: { reason: string; atMs: number } | null = null;
  /** Epoch of an activation we demoted cleanly but whose breadcrumb we could not delete yet. */
  private staleOwnBreadcrumb: bigint | null = null;
  /** policy hold: the session was lost while active; the service was left active on purpose. */
  private holdingService = false;
  private lastForeignLog = -Infinity;
  private serviceLost: string | null = null;
  private demoting: Promise<void> | null = null;
  /** The watchdog found the current activation's lease run out (cleared by the next activation). */
  private leaseExpired = false;
  /** Ids of sessions this agent has abandoned (bounded: only the recent ones can still hold a lock). */
  private readonly ownPastSessions = new Set<string>();
  private readonly log: Logger;

  constructor(private readonly opts: ElectorOptions) {
    this.log = opts.logger.child({ component: 'elector' });
  }

  // ---- public surface -------------------------------------------------------------------

  start(): void {
    if (this.running) return;
    this.running = this.loop();
  }

  /** Health/eligibility decided by the controller, in one place. */
  setElectable(electable: boolean, reason: string): void {
    const e = electable && !this.opts.node.noFailover;
    if (e === this.electable) return;
    this.log.info(e ? 'joining the election' : 'leaving the election', { reason });
    this.electable = e;
    this.electableReason = this.opts.node.noFailover ? 'noFailover is set' : reason;
    this.memberDirty = true;
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
   * (What GET /active must answer: a load balancer must stop routing here the moment it is false.)
   */
  mayBeActive(): boolean {
    if (this.state !== 'ACTIVE') return false;
    if (this.opts.policy === 'hold') return true;
    return this.leaseRemaining() > 0;
  }

  /** The service is active on purpose (our ACTIVE state, or policy hold after a lost session). */
  serviceShouldBeActive(): boolean {
    return this.state === 'ACTIVE' || this.holdingService;
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

  /** Runs `fn` exclusively with every role change the elector makes. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.mutex.run(fn);
  }

  status(): ElectorStatus {
    const now = this.opts.clock.now();
    return {
      state: this.state,
      epoch: this.epoch?.toString() ?? null,
      sessionId: this.session?.sessionId ?? null,
      sessionState: this.session?.state ?? 'none',
      electable: this.electable,
      leaseRemainingMs:
        this.state === 'ACTIVE' && this.opts.policy === 'demote' ? Math.round(this.leaseRemaining()) : null,
      lastFailure: this.lastFailure,
      backoffRemainingMs: Math.max(0, Math.round(this.backoffUntil - now)),
      holdingServiceWithoutLock: this.holdingService,
    };
  }

  /**
   * Graceful stop: demote an active service, delete our breadcrumb when the demotion was clean,
   * and close the session so the lock vanishes at once (the standby need not wait a session
   * timeout).
   */
  async stop(): Promise<void> {
    if (this.stopped) {
      await this.running;
      return;
    }
    this.stopped = true;
    this.activation?.abort(new Error('agent stopping'));
    this.kick();
    await this.running;
    await this.mutex.run(async () => {
      this.stopLeaseWatchdog();
      this.cancelWakeTimer?.();
      this.wakeTimerAt = null;
      if (this.state === 'ACTIVE' || this.holdingService) {
        const epoch = this.epoch;
        const clean = await this.opts.callbacks.enterNeutralMode('agent stopping', true);
        this.holdingService = false;
        if (clean && epoch !== null && this.store && this.session?.state === 'connected') {
          await this.store.deleteOwnBreadcrumb(this.opts.node.id, epoch).catch((err: unknown) => {
            this.log.warn('could not delete our breadcrumb on stop; the next active will fence us', {
              error: errorMessage(err),
            });
          });
        }
        this.setState('NEUTRAL', 'agent stopping', null);
      }
      const s = this.session;
      this.session = null;
      this.store = null;
      await s?.close();
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
      try {
        await this.mutex.run(() => this.step());
      } catch (err) {
        this.log.warn('election step failed; retrying', { error: errorMessage(err) });
        this.wakeAt(this.opts.clock.now() + SESSION_RETRY_MS);
      }
      if (this.stopped) break;
      if (this.kicked) continue;
      this.wakeAt(this.opts.clock.now() + this.recheckMs());
      await new Promise<void>((resolve) => {
        this.wakeResolve = resolve;
      });
    }
  }

  /** A safety net for a missed watch: look again at least this often. */
  private recheckMs(): number {
    const t = this.session?.negotiatedTimeoutMs ?? 3000;
    return Math.max(200, Math.min(2000, t / 3));
  }

  private leaseDeadline(): number {
    const s = this.session;
    if (!s) return -Infinity;
    return (
      s.lastReplySentAt + s.negotiatedTimeoutMs - this.opts.safetyMarginMs - this.opts.toStandbyTimeoutMs
    );
  }

  private leaseRemaining(): number {
    const s = this.session;
    if (!s || s.state === 'lost' || s.state === 'closed' || s.state === 'connecting') return 0;
    return this.leaseDeadline() - this.opts.clock.now();
  }

  /**
   * Arms the lease watchdog (idempotent). Its verdict is sticky: once the lease ran out, this
   * activation is over even if a reply arrives before the busy loop gets to demote - the
   * activation's signal was already aborted, and a half-ended activation is not one to keep.
   */
  private startLeaseWatchdog(): void {
    if (this.opts.policy !== 'demote' || this.cancelLeaseTimer || this.leaseExpired) return;
    const arm = () => {
      const remaining = this.leaseRemaining();
      if (remaining <= 0) {
        this.cancelLeaseTimer = null;
        this.leaseExpired = true;
        this.log.warn('lease expired: no ZooKeeper reply in time; demoting before the session can expire', {
          sessionState: this.session?.state,
        });
        this.activation?.abort(new Error('ZooKeeper lease expired'));
        // Now, not when the loop gets to it: the loop may be waiting out a request timeout.
        if (this.state === 'ACTIVE') {
          void this.demote(LEASE_EXPIRED).finally(() => this.kick());
        }
        this.kick();
        return;
      }
      // Exactly at the deadline, not after it: a timer that fires early just re-arms.
      this.cancelLeaseTimer = this.opts.clock.setTimer(remaining, arm);
    };
    arm();
  }

  private stopLeaseWatchdog(): void {
    this.cancelLeaseTimer?.();
    this.cancelLeaseTimer = null;
  }

  private setState(next: ElectorState, reason: string, epoch: bigint | null): void {
    const prev = this.state;
    const prevEpoch = this.epoch;
    this.epoch = epoch;
    if (next !== 'ACTIVE') this.stopLeaseWatchdog();
    if (prev === next && prevEpoch === epoch) return;
    this.state = next;
    this.memberDirty = true;
    this.log.info(`elector ${prev} -> ${next}`, { reason, epoch: epoch?.toString() ?? null });
    try {
      this.opts.callbacks.onStateChange?.(next, prev, reason, epoch);
    } catch (err) {
      this.log.error('onStateChange listener threw', { error: errorMessage(err) });
    }
  }

  private fail(reason: string): void {
    this.lastFailure = { reason, atMs: this.opts.clock.now() };
    this.backoffUntil = this.opts.clock.now() + this.opts.backoffMs;
    this.log.error('activation abandoned; backing off', { reason, backoffMs: this.opts.backoffMs });
    try {
      this.opts.callbacks.onActivationFailed?.(reason);
    } catch (err) {
      this.log.error('onActivationFailed listener threw', { error: errorMessage(err) });
    }
    this.wakeAt(this.backoffUntil);
  }

  private async step(): Promise<void> {
    if (this.stopped) return;

    // 1. The lease comes first: whatever the library claims, an active node past its lease
    //    demotes now (policy demote).
    if (
      this.state === 'ACTIVE' &&
      this.opts.policy === 'demote' &&
      (this.leaseExpired || this.leaseRemaining() <= 0)
    ) {
      await this.demote(LEASE_EXPIRED);
    }

    // Belt and braces: an ACTIVE node always has a running watchdog.
    if (this.state === 'ACTIVE') this.startLeaseWatchdog();

    if (this.serviceLost !== null) {
      const reason = this.serviceLost;
      this.serviceLost = null;
      if (this.state === 'ACTIVE') await this.demote(reason);
    }

    // 2. A session we can use.
    let s = this.session;
    if (!s || s.state === 'lost' || s.state === 'closed') {
      if (s) await this.onSessionGone(s);
      s = await this.openSession();
      if (!s) return;
    }
    const store = this.store!;

    if (s.state !== 'connected') {
      if (this.state === 'ACTIVE') {
        // Ride out a blip while the lease lasts (demote) or for as long as the session (hold);
        // the watchdog / the 'lost' event wakes us.
        return;
      }
      if (this.state !== 'NEUTRAL') this.setState('NEUTRAL', `ZooKeeper session ${s.state}`, null);
      return;
    }

    // 3. Housekeeping that needs a live session.
    await this.deleteStaleOwnBreadcrumb(store);
    if (this.memberDirty) {
      this.memberDirty = false;
      await store.putMember(this.memberRecord()).catch((err: unknown) => {
        this.memberDirty = true;
        this.log.warn('could not publish member record', { error: errorMessage(err) });
      });
    }

    let view;
    try {
      view = await store.viewLock(this.lockWatcher(s));
    } catch (err) {
      // The watch may not have been set: arm it again on the next look.
      this.lockWatchArmed = false;
      throw err;
    }

    // 4. Not competing: give everything up.
    if (!this.electable) {
      if (this.state === 'ACTIVE' || this.holdingService) {
        await this.demote(`no longer electable: ${this.electableReason}`);
      }
      if (view.state === 'ours') await store.releaseLock();
      if (this.state !== 'NEUTRAL') this.setState('NEUTRAL', `not electable: ${this.electableReason}`, null);
      return;
    }

    switch (view.state) {
      case 'ours': {
        if (this.state === 'ACTIVE' && this.epoch === view.epoch) return;
        // A lock we are not acting on (aborted activation, demotion on lease, a reconnect):
        // give it up and compete afresh, so that every activation gets a new epoch.
        this.log.info('releasing a lock we hold but do not act on', { epoch: view.epoch.toString() });
        await this.deleteStaleOwnBreadcrumb(store);
        await store.releaseLock();
        this.kick();
        return;
      }
      case 'theirs': {
        if (this.ownPastSessions.has(view.owner)) {
          // Our own lock from a session we already gave up on (lost, then closed here): nobody
          // acts on it, so waiting for the server to expire it would only keep the cluster
          // without a (new) active for up to a session timeout.
          this.log.info('removing the lock left by an earlier session of this agent', {
            session: view.owner,
          });
          // Compete at once: under policy hold our service is still active, and winning now
          // spares the cluster a needless failover.
          if (await store.removeLockOf(view.owner)) await this.onLockFree(store, s);
          else this.kick();
          return;
        }
        this.freeSince = null;
        let demoted = false;
        if (this.state === 'ACTIVE' || this.holdingService) {
          // Only possible after our session was replaced: someone else won meanwhile.
          await this.demote(`another session (${view.owner}) holds the lock`);
          demoted = true;
        }
        if (this.state !== 'STANDBY' && demoted) {
          this.setState('STANDBY', `lock held by session ${view.owner} (epoch ${view.epoch})`, null);
        } else if (this.state !== 'STANDBY') {
          // Another node holds the lock whatever our service does; reconcile demotes it later
          // if it still claims to be active.
          await this.opts.callbacks
            .becomeStandby(`lock held by session ${view.owner}`)
            .catch((err: unknown) => {
              this.log.error('to-standby failed while another node holds the lock', {
                error: errorMessage(err),
              });
            });
          this.setState('STANDBY', `lock held by session ${view.owner} (epoch ${view.epoch})`, null);
        }
        return;
      }
      case 'foreign': {
        const now = this.opts.clock.now();
        if (now - this.lastForeignLog > 30_000) {
          this.lastForeignLog = now;
          this.log.error(
            'the lock path holds a foreign znode; nobody can become active until an operator removes it',
            {
              detail: view.detail,
            },
          );
        }
        if (this.state === 'ACTIVE') await this.demote(view.detail);
        if (this.state !== 'NEUTRAL') this.setState('NEUTRAL', view.detail, null);
        return;
      }
      case 'free':
        await this.onLockFree(store, s);
        return;
    }
  }

  private lockWatcher(s: ZkSession): ((e: unknown) => void) | undefined {
    if (this.lockWatchArmed) return undefined;
    this.lockWatchArmed = true;
    const gen = s.generation;
    return () => {
      if (this.session?.generation !== gen) return; // stale client: ignore
      this.lockWatchArmed = false;
      this.kick();
    };
  }

  private async onLockFree(store: ClusterStore, s: ZkSession): Promise<void> {
    const now = this.opts.clock.now();
    // (A service held active under policy hold is not demoted here: if we win, it stays active;
    // if another node wins, it fences it.)
    if (this.state === 'ACTIVE') await this.demote('the lock vanished while we were active');
    if (now < this.backoffUntil) {
      if (this.state === 'INIT') this.setState('NEUTRAL', 'backing off after a failed activation', null);
      this.wakeAt(this.backoffUntil);
      return;
    }
    this.freeSince ??= now;
    // A node whose service is still active (policy hold) reclaims without deferring: handing the
    // lock to anyone else means a failover.
    const higher = this.holdingService ? null : await this.higherPriorityCandidate(store);
    if (higher && now < this.freeSince + this.opts.priorityGraceMs) {
      this.log.info('lock is free; leaving it to a higher-priority candidate for the grace period', {
        candidate: higher.id,
        priority: higher.priority,
        graceMs: this.opts.priorityGraceMs,
      });
      this.wakeAt(this.freeSince + this.opts.priorityGraceMs);
      return;
    }
    await this.tryBecomeActive(store, s);
  }

  private async higherPriorityCandidate(store: ClusterStore): Promise<MemberRecord | null> {
    const { members, errors } = await store.listMembers();
    for (const e of errors) this.log.warn('ignoring unreadable member record', { error: e });
    const mine = this.opts.node.priority;
    let best: MemberRecord | null = null;
    for (const m of members) {
      if (m.id === this.opts.node.id || m.noFailover || m.health !== 'HEALTHY') continue;
      if (m.priority > mine && (!best || m.priority > best.priority)) best = m;
    }
    return best;
  }

  private async tryBecomeActive(store: ClusterStore, s: ZkSession): Promise<void> {
    const gen = s.generation;
    const view = await store.tryAcquire(this.lockRecord());
    if (view.state !== 'ours') {
      this.kick();
      return;
    }
    const epoch = view.epoch;
    this.freeSince = null;
    this.log.info('acquired the lock', { epoch: epoch.toString() });

    const ac = new AbortController();
    this.activation = ac;
    this.leaseExpired = false;
    this.startLeaseWatchdog();
    try {
      // Fence whoever the breadcrumb names, unless it is us.
      const bc = await store.readBreadcrumb();
      if (bc && 'error' in bc) {
        await this.abandon(store, `cannot tell which node to fence: ${bc.error}`);
        return;
      }
      if (bc && bc.record.id !== this.opts.node.id) {
        const target: FenceTarget = {
          id: bc.record.id,
          host: bc.record.host,
          port: bc.record.port,
          address: `${bc.record.host}:${bc.record.port}`,
          epoch: BigInt(bc.record.epoch),
        };
        this.log.info('fencing the previous active', { target: target.id, targetEpoch: bc.record.epoch });
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
          await this.abandon(store, `fencing of previous active ${target.id} (epoch ${target.epoch}) ${why}`);
          return;
        }
      }
      if (!this.sessionUsable(gen)) {
        await this.abandon(store, 'ZooKeeper session suspended or lost during fencing');
        return;
      }
      // The breadcrumb goes down BEFORE the service becomes active: if we die half way, the next
      // active fences us.
      await store.writeBreadcrumb(this.breadcrumbRecord(epoch), bc ? bc.stat : null);

      const reason = bc ? `won election; previous active ${bc.record.id} fenced or demoted` : 'won election';
      try {
        await this.opts.callbacks.becomeActive(epoch, reason, ac.signal);
      } catch (err) {
        await this.opts.callbacks.enterNeutralMode(`to-active failed: ${errorMessage(err)}`, true);
        await this.abandon(store, `to-active failed: ${errorMessage(err)}`);
        return;
      }
      // Stale-session guard: the result counts only if the session that started it still
      // stands and (policy demote) the lease never ran out meanwhile.
      if (!this.sessionUsable(gen) || ac.signal.aborted) {
        this.log.warn('to-active finished after its session or lease was gone: result ignored, demoting', {
          epoch: epoch.toString(),
        });
        await this.opts.callbacks.enterNeutralMode('activation outlived its ZooKeeper session', true);
        this.setState('NEUTRAL', 'activation outlived its session', null);
        this.kick();
        return;
      }
      this.holdingService = false;
      this.setState('ACTIVE', reason, epoch);
    } finally {
      // While ACTIVE the controller stays abortable: the watchdog aborts it when the lease ends.
      if (this.state !== 'ACTIVE') {
        this.activation = null;
        this.stopLeaseWatchdog();
      }
    }
  }

  private sessionUsable(gen: number): boolean {
    const s = this.session;
    if (!s || s.generation !== gen || this.stopped) return false;
    if (s.state === 'lost' || s.state === 'closed') return false;
    if (this.opts.policy === 'demote') return this.leaseRemaining() > 0;
    return true;
  }

  /** Give the lock up after a failed activation and back off. */
  private async abandon(store: ClusterStore, reason: string): Promise<void> {
    try {
      await store.releaseLock();
    } catch (err) {
      this.log.warn('could not release the lock after a failed activation (it goes with the session)', {
        error: errorMessage(err),
      });
    }
    if (this.state !== 'NEUTRAL') this.setState('NEUTRAL', reason, null);
    this.fail(reason);
  }

  /**
   * Demote the local service and become NEUTRAL. After a clean demotion our breadcrumb goes
   * BEFORE the lock is released (the caller releases it afterwards), so the next active need not
   * fence a service that already stood down; if ZooKeeper is out of reach now, it goes on the
   * next step that has a session, which again runs before any lock handling.
   *
   * Callers share one demotion in flight: the lease watchdog starts it without waiting for the
   * loop (which may sit in a ZooKeeper request for a whole request timeout), and the loop then
   * joins it instead of demoting twice.
   */
  private demote(reason: string): Promise<void> {
    this.demoting ??= this.doDemote(reason).finally(() => {
      this.demoting = null;
    });
    return this.demoting;
  }

  private async doDemote(reason: string): Promise<void> {
    const epoch = this.epoch;
    this.activation?.abort(new Error(reason));
    this.activation = null;
    const clean = await this.opts.callbacks.enterNeutralMode(reason, true);
    this.holdingService = false;
    this.setState('NEUTRAL', reason, null);
    if (!clean || epoch === null) return;
    this.staleOwnBreadcrumb = epoch;
    if (this.store && this.session?.state === 'connected' && this.leaseRemaining() > 0) {
      await this.deleteStaleOwnBreadcrumb(this.store).catch((err: unknown) => {
        this.log.warn('could not delete our breadcrumb yet; will retry', { error: errorMessage(err) });
      });
    }
  }

  private async deleteStaleOwnBreadcrumb(store: ClusterStore): Promise<void> {
    const epoch = this.staleOwnBreadcrumb;
    if (epoch === null) return;
    await store.deleteOwnBreadcrumb(this.opts.node.id, epoch);
    this.staleOwnBreadcrumb = null;
  }

  private async onSessionGone(s: ZkSession): Promise<void> {
    this.log.warn('ZooKeeper session gone', { sessionId: s.sessionId, state: s.state });
    this.rememberPastSession(s.sessionId);
    this.session = null;
    this.store = null;
    this.lockWatchArmed = false;
    this.memberDirty = true;
    if (this.state === 'ACTIVE') {
      if (this.opts.policy === 'hold') {
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
    } else if (this.state !== 'NEUTRAL') {
      this.setState('NEUTRAL', 'ZooKeeper session lost', null);
    }
    await s.close().catch(() => undefined);
  }

  private rememberPastSession(id: string): void {
    if (!id || /^0+$/.test(id)) return;
    this.ownPastSessions.add(id);
    if (this.ownPastSessions.size > 16) {
      const oldest = this.ownPastSessions.values().next().value;
      if (oldest !== undefined) this.ownPastSessions.delete(oldest);
    }
  }

  private async openSession(): Promise<ZkSession | null> {
    let s: ZkSession;
    try {
      s = await this.opts.openSession();
    } catch (err) {
      if (this.state !== 'NEUTRAL' && this.state !== 'ACTIVE')
        this.setState('NEUTRAL', 'ZooKeeper unreachable', null);
      this.log.warn('cannot open a ZooKeeper session; retrying', {
        error: errorMessage(err),
        retryMs: SESSION_RETRY_MS,
      });
      this.wakeAt(this.opts.clock.now() + SESSION_RETRY_MS);
      return null;
    }
    if (this.stopped) {
      await s.close();
      return null;
    }
    this.session = s;
    this.store = new ClusterStore(s, this.opts.paths, this.opts.acl);
    this.lockWatchArmed = false;
    this.memberDirty = true;
    const gen = s.generation;
    s.on('state', (next, prev) => {
      if (this.session?.generation !== gen) return;
      this.log.info(`ZooKeeper session ${prev} -> ${next}`, { sessionId: s.sessionId });
      this.kick();
    });
    this.log.info('ZooKeeper session established', {
      sessionId: s.sessionId,
      negotiatedTimeoutMs: s.negotiatedTimeoutMs,
    });
    if (this.opts.policy === 'demote') {
      const budget = s.negotiatedTimeoutMs - this.opts.safetyMarginMs - this.opts.toStandbyTimeoutMs;
      if (budget < 500) {
        this.log.error(
          'negotiated session timeout leaves no lease to act on; this node cannot become active safely',
          {
            negotiatedTimeoutMs: s.negotiatedTimeoutMs,
            safetyMarginMs: this.opts.safetyMarginMs,
            toStandbyTimeoutMs: this.opts.toStandbyTimeoutMs,
          },
        );
      }
    }
    if (!(await this.store.clusterExists())) {
      this.log.error(`cluster not initialised: ${this.opts.paths.cluster} does not exist (run hafc init)`);
    } else if (this.opts.acl) {
      const problems = await this.store.aclProblems();
      if (problems.length) {
        this.log.error(
          `the ACL of ${this.opts.paths.cluster} does not protect the cluster: ${problems.join('; ')}`,
          {
            fix: 'hafc init --force --yes with zookeeper.auth set recreates it with the right ACL',
          },
        );
      }
    }
    return s;
  }

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

  private lockRecord(): LockRecord {
    return {
      ...this.recordBase('lock'),
      priority: this.opts.node.priority,
      pid: process.pid,
      agentVersion: this.opts.agentVersion,
      acquiredAt: new Date().toISOString(),
    };
  }

  private breadcrumbRecord(epoch: bigint): BreadcrumbRecord {
    return { ...this.recordBase('breadcrumb'), epoch: epoch.toString(), writtenAt: new Date().toISOString() };
  }

  private memberRecord(): MemberRecord {
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
    };
  }
}
