/**
 * Whether the agent's loops are making progress, for the systemd watchdog. The event loop being
 * alive proves little: the dangerous wedge is an elector loop stuck on a promise that never
 * settles while the ZooKeeper session (its own timers) keeps the lock alive, or a health monitor
 * that stopped checking: either way a dead service would never be failed over. So each loop
 * proves progress by an event it cannot produce while wedged, within a limit that covers the
 * longest legitimate pause of that loop.
 */

export interface LoopWatch {
  readonly name: string;
  /** Null while the loop makes progress, else why it does not (for the log). */
  check(now: number): string | null;
}

/** A loop that beats on every unit of work; wedged when no beat came within `limitMs`. */
export class ProgressWatch implements LoopWatch {
  private last: number;

  constructor(
    readonly name: string,
    private readonly limitMs: number,
    now: number,
    /** Non-null: the loop has legitimately ended (that reason), so silence is not a wedge. */
    private readonly ended: () => string | null = () => null,
  ) {
    this.last = now;
  }

  beat(now: number): void {
    this.last = now;
  }

  check(now: number): string | null {
    if (this.ended() !== null) return null;
    const age = now - this.last;
    return age > this.limitMs
      ? `${this.name} made no progress for ${Math.round(age)} ms (limit ${Math.round(this.limitMs)} ms)`
      : null;
  }
}

/**
 * The health monitor's limit: results come one interval apart measured from each check's start,
 * so a gap is at most the interval plus a check that runs to its timeout; twice the interval on
 * top absorbs a late timer.
 */
export function healthProgressLimitMs(intervalMs: number, timeoutMs: number): number {
  return 2 * intervalMs + timeoutMs;
}

/**
 * The elector's limit. Its loop wakes itself at least every 2 s (its recheck), so between two
 * decisions lies one step; a step may legitimately run until the elector's own step deadline
 * (which then gives the session up). Beyond that, plus the recheck and the time it takes us to
 * notice (`pollMs`), the loop is stuck outside any step.
 */
export function electorProgressLimitMs(stepDeadlineMs: number, pollMs: number): number {
  return stepDeadlineMs + ELECTOR_MAX_RECHECK_MS + pollMs + 1000;
}

/** The elector's longest idle wait (its recheckMs() is capped at 2 s). */
export const ELECTOR_MAX_RECHECK_MS = 2000;
