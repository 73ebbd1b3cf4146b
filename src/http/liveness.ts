/**
 * GET /healthz: are the agent's loops running? An answer at all proves the event loop turns; on
 * top of that:
 *
 * - the election loop finishes a step at least every recheck interval (2 s at most) when idle,
 *   and a busy step (fencing, a hook) is bounded by the elector's step deadline. Every step leaves
 *   a new Decision object in the elector's status, so a sampler notes when that object last
 *   changed; no new decision for `electorStaleMs` (step deadline + slack) = stuck.
 * - the health monitor delivers a result at least every max(interval, timeout); none for
 *   `healthStaleMs` (interval + timeout + slack, as in force now) = stuck. MONITOR_FAILED ends
 *   that loop until a restart or a reload, so it counts as not running too.
 *
 * Deliberately not part of it: the service's health, the role, ZooKeeper being reachable. A
 * supervisor that restarts an agent on a failing liveness probe must not do so for those.
 */
import type { Clock } from '../clock.js';

export interface LoopSignals {
  /** The elector's last decision (a new object after every step). */
  electorDecision(): unknown;
  /** Clock.now() of the health monitor's last result; null before the first. */
  healthResultAt(): number | null;
  healthState(): string;
}

export interface LivenessOptions {
  signals: LoopSignals;
  clock: Clock;
  electorStaleMs: number;
  /** Read at every check: a reload may change the health timing. */
  healthStaleMs: () => number;
  /** How often the election loop's progress is sampled. @default 500 */
  sampleMs?: number;
}

export interface LivenessVerdict {
  ok: boolean;
  problems: string[];
}

export class Liveness {
  private readonly startedAt: number;
  private lastDecision: unknown;
  private decisionAt: number;
  private cancel: (() => void) | null = null;

  constructor(private readonly opts: LivenessOptions) {
    this.startedAt = opts.clock.now();
    this.decisionAt = this.startedAt;
    this.lastDecision = opts.signals.electorDecision();
  }

  start(): void {
    const every = this.opts.sampleMs ?? 500;
    const tick = () => {
      this.sample();
      this.cancel = this.opts.clock.setTimer(every, tick);
    };
    this.cancel = this.opts.clock.setTimer(every, tick);
  }

  stop(): void {
    this.cancel?.();
    this.cancel = null;
  }

  check(): LivenessVerdict {
    this.sample();
    const now = this.opts.clock.now();
    const problems: string[] = [];
    const sinceStep = Math.round(now - this.decisionAt);
    if (sinceStep > this.opts.electorStaleMs)
      problems.push(
        `the election loop has not finished a step for ${sinceStep} ms (limit ${this.opts.electorStaleMs} ms)`,
      );
    const s = this.opts.signals;
    if (s.healthState() === 'MONITOR_FAILED') {
      problems.push(
        'the health monitor has stopped (MONITOR_FAILED); a restart or a reload with a working check recovers it',
      );
    } else {
      const since = Math.round(now - (s.healthResultAt() ?? this.startedAt));
      const limit = this.opts.healthStaleMs();
      if (since > limit)
        problems.push(`the health monitor has not delivered a result for ${since} ms (limit ${limit} ms)`);
    }
    return { ok: problems.length === 0, problems };
  }

  private sample(): void {
    const d = this.opts.signals.electorDecision();
    if (d !== this.lastDecision) {
      this.lastDecision = d;
      this.decisionAt = this.opts.clock.now();
    }
  }
}
