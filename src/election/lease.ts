/**
 * The lease of an active node, and its watchdog (docs/safety.md).
 *
 * Under `onConnectionLoss: demote` the local service may stay active only until
 *   connection.expiryNotBefore - safetyMargin - toStandbyTimeout
 * on the local monotonic clock: `expiryNotBefore` is the earliest moment the server can expire our
 * session, as proven by replies that went through the quorum (see zk/session.ts for what counts),
 * so the service has finished demoting before any other node can take the lock. The watchdog
 * enforces that deadline with its own timer, whatever the election loop is busy with.
 *
 * Under `hold` there is no lease: the service's own storage fences (ZKFC's behaviour).
 */
import type { Clock } from '../clock.js';
import type { ElectionConnection } from './store.js';

/** What an active node does when it loses ZooKeeper (zookeeper.onConnectionLoss). */
export interface ConnectionLossPolicy {
  readonly name: 'demote' | 'hold';
  /** The service's active time is bounded by the session's proven expiry. */
  readonly leased: boolean;
  /** What happens to an ACTIVE node's service when its session is lost. */
  readonly onSessionLost: 'demote' | 'keep';
}

export const POLICIES: Record<'demote' | 'hold', ConnectionLossPolicy> = {
  demote: { name: 'demote', leased: true, onSessionLost: 'demote' },
  hold: { name: 'hold', leased: false, onSessionLost: 'keep' },
};

/** The shortest lease budget worth acting on: less leaves no room for a hiccup or a GC pause. */
export const MIN_LEASE_BUDGET_MS = 1000;

export interface LeaseOptions {
  policy: ConnectionLossPolicy;
  clock: Clock;
  safetyMarginMs: number;
  toStandbyTimeoutMs: number;
  /** Called (once per activation) when the watchdog finds the lease run out. Must not throw. */
  onExpired: () => void;
}

function usable(c: ElectionConnection | null): c is ElectionConnection {
  return c !== null && c.state !== 'lost' && c.state !== 'closed' && c.state !== 'connecting';
}

export class Lease {
  private cancelTimer: (() => void) | null = null;
  private current: () => ElectionConnection | null = () => null;
  private expiredFlag = false;

  constructor(private readonly opts: LeaseOptions) {}

  get leased(): boolean {
    return this.opts.policy.leased;
  }

  /**
   * The lease budget a connection leaves: how long after the last proof of the session the
   * service may stay active. Below MIN_LEASE_BUDGET_MS a node must not compete.
   */
  budgetMs(c: ElectionConnection): number {
    return (
      c.negotiatedTimeoutMs - c.relayAllowanceMs - this.opts.safetyMarginMs - this.opts.toStandbyTimeoutMs
    );
  }

  /** Monotonic time by which the service must have been told to stand down. */
  deadline(c: ElectionConnection | null): number {
    if (!this.leased) return usable(c) ? Infinity : -Infinity;
    if (!usable(c)) return -Infinity;
    return c.expiryNotBefore - this.opts.safetyMarginMs - this.opts.toStandbyTimeoutMs;
  }

  remaining(c: ElectionConnection | null): number {
    return this.deadline(c) - this.opts.clock.now();
  }

  /**
   * The watchdog found this activation's lease run out. Sticky until `reset()`: a reply that
   * arrives before the busy loop got to demote does not resurrect an activation whose signal was
   * already aborted.
   */
  get expired(): boolean {
    return this.expiredFlag;
  }

  /** A new activation starts with a fresh verdict. */
  reset(): void {
    this.stop();
    this.expiredFlag = false;
  }

  /** Arms the watchdog for the activation in progress (idempotent). */
  watch(connection: () => ElectionConnection | null): void {
    this.current = connection;
    if (!this.leased || this.cancelTimer || this.expiredFlag) return;
    this.arm();
  }

  /** Re-evaluates at once (e.g. the connection changed state) while a watch is armed. */
  check(): void {
    if (!this.cancelTimer) return;
    this.stop();
    this.arm();
  }

  stop(): void {
    this.cancelTimer?.();
    this.cancelTimer = null;
  }

  private arm(): void {
    const left = this.remaining(this.current());
    if (left <= 0) {
      this.cancelTimer = null;
      this.expiredFlag = true;
      this.opts.onExpired();
      return;
    }
    // Exactly at the deadline, not after it: a timer that fires early just re-arms.
    this.cancelTimer = this.opts.clock.setTimer(left, () => {
      this.cancelTimer = null;
      this.arm();
    });
  }
}
