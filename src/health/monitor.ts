/**
 * HealthMonitor: runs one HealthCheck in a loop and turns its results into a small state
 * machine with rise/fall hysteresis, in the style of Hadoop's HealthMonitor (state enum, a
 * callback only on a real change) and haproxy's rise/fall counters.
 *
 * States:
 * - INITIALIZING    no verdict yet (after start, until `rise` successes or the first failure);
 * - HEALTHY         `rise` consecutive successes;
 * - UNHEALTHY       the service answered and said no (EHEALTH_UNHEALTHY, or any unknown error);
 * - NOT_RESPONDING  the check did not finish within timeoutMs (or said EHEALTH_TIMEOUT);
 * - MONITOR_FAILED  the check can never work as configured (ECONFIG) or the loop itself broke;
 *                   terminal: the loop ends; new settings (reconfigure, on a reload) or a
 *                   restart recover.
 *
 * Rise/fall decision:
 * - INITIALIZING -> HEALTHY needs `rise` consecutive successes, the same as recovering from
 *   UNHEALTHY. Hadoop trusts the first success; we do not, because a service that is still
 *   starting often answers once and then stalls, and declaring it healthy makes it electable.
 *   Cost: becoming eligible takes (rise - 1) x intervalMs longer after start. With rise: 1 this
 *   is exactly Hadoop's behaviour.
 * - INITIALIZING -> UNHEALTHY / NOT_RESPONDING on the FIRST failure. `fall` exists to keep a
 *   healthy (possibly active) node from being demoted by one blip; a node with no verdict yet
 *   is not electable either way, so waiting would only hide the real state from operators.
 * - HEALTHY -> UNHEALTHY / NOT_RESPONDING after `fall` consecutive failures of either kind; the
 *   state entered reflects the LAST failure's kind.
 * - While UNHEALTHY or NOT_RESPONDING, each further failure moves to its own kind (a real,
 *   reported change: a crashed service that is now hanging matters to an operator), and `rise`
 *   consecutive successes return to HEALTHY. Any failure resets the success count and any
 *   success resets the failure count, so flapping inside the thresholds changes nothing.
 *
 * Timing: a check starts every intervalMs, measured from the START of the previous check, and
 * checks never overlap: a check slower than intervalMs is followed at once by the next. Each
 * check gets an AbortSignal that fires after timeoutMs; the loop does not wait for the check to
 * honour it, so a check that ignores its signal cannot stall monitoring (its late result is
 * dropped).
 *
 * Fast path (HAProxy's `fastinter`): while HEALTHY, a failure the check marked definite (refused,
 * reset, program missing: errors.ts) is followed by the next check after fastIntervalMs instead
 * of intervalMs, until `fall` is reached or a check passes. A crash is then declared after
 * (fall - 1) x fastIntervalMs from the first failed check, instead of (fall - 1) x intervalMs.
 * Timeouts and bad answers keep intervalMs: a hung or flapping service fails over no sooner than
 * without the fast path. `fall` itself is unchanged, so one refused connection still demotes no one.
 *
 * Pid watch (pidFile, pid-watch.ts): every check first verifies that the process the pid file
 * names runs; between checks that process is polled every fastIntervalMs. When it exits, the
 * check in flight is abandoned and one runs at once; it finds the process gone, a failure marked
 * 'exited', which counts as `fall` failures: an exited process is proof, and a new process under
 * the pid file must earn `rise` successes like any recovering service.
 *
 * Transitions (beginTransition): a check that times out while a transition this agent asked of
 * its service is in flight (begun before the check ended) is not counted: the daemon may serve
 * its health call only after the transition (a ResourceManager's admin server has one handler),
 * and counting it would make a slow promotion look like a hang and abandon it. The transition's
 * own deadline is the hang detector meanwhile. Other failures (refused, bad answers) still count.
 *
 * Listener contract (onChange, onResult): called synchronously from the loop, one at a time, in
 * order; a listener that throws (or returns a rejecting promise) is logged and the loop goes on.
 * Listeners must not block: the next check waits for them.
 */
import type { Clock } from '../clock.js';
import { ConfigError, HafcError } from '../errors.js';
import type { Logger } from '../log.js';
import type { HealthCheck } from './checks.js';
import {
  HealthTimeoutError,
  HealthUnhealthyError,
  classifyFailure,
  definiteCause,
  definiteOf,
  describeThrown,
  errorCode,
} from './errors.js';
import { PidWatch } from './pid-watch.js';

export type HealthState = 'INITIALIZING' | 'HEALTHY' | 'UNHEALTHY' | 'NOT_RESPONDING' | 'MONITOR_FAILED';

export type HealthResultKind = 'ok' | 'unhealthy' | 'timeout' | 'fatal';

export interface HealthResult {
  ok: boolean;
  kind: HealthResultKind;
  /** Always a HafcError with a stable code; a non-Error thrown by a check is wrapped. */
  error?: HafcError;
  /** From the start of the check to its result (or to its timeout), on the monitor's clock. */
  durationMs: number;
  /** Monotonic clock time (Clock.now) when the result became known. */
  at: number;
}

export interface HealthChangeDetail {
  /** Human-readable cause: the failing check's message, or the success streak. */
  reason: string;
  /** Length of the streak of same-kind results (successes or failures) that caused the change. */
  consecutive: number;
  /** The error behind a change to a failure state. */
  error?: HafcError;
}

export type HealthChangeListener = (next: HealthState, prev: HealthState, detail: HealthChangeDetail) => void;
export type HealthResultListener = (result: HealthResult) => void;

export interface HealthMonitorOptions {
  check: HealthCheck;
  /** Time between check starts (not from one check's end to the next one's start). */
  intervalMs: number;
  /** A check running longer is aborted and counts as NOT_RESPONDING. */
  timeoutMs: number;
  /** Consecutive failures before HEALTHY becomes UNHEALTHY / NOT_RESPONDING. */
  fall: number;
  /** Consecutive successes before INITIALIZING / UNHEALTHY / NOT_RESPONDING becomes HEALTHY. */
  rise: number;
  /**
   * Time between check starts after a definite failure while HEALTHY, and the pid watch's poll
   * period; at most intervalMs. @default intervalMs (no fast path)
   */
  fastIntervalMs?: number;
  /** The service's pid file: its process is watched (see the header). @default none */
  pidFile?: string;
  clock: Clock;
  logger: Logger;
  /**
   * Names the check in timeout messages and logs. @default the check's `description` (what it
   * checks: URL, host:port, command), else "health check"
   */
  name?: string;
}

/** Code of the error a monitor reports when its own loop breaks (a bug, never a check result). */
export const EHEALTH_MONITOR = 'EHEALTH_MONITOR';

class StopSignal extends Error {
  constructor() {
    super('health monitor stopped');
    this.name = 'StopSignal';
  }
}

/** `preempted`: the watched process exited during the check; its result no longer matters. */
type Outcome = { kind: 'done'; result: HealthResult } | { kind: 'stopped' } | { kind: 'preempted' };

/** What a reload (SIGHUP) may change in a running monitor. */
export type HealthSettings = Pick<
  HealthMonitorOptions,
  'check' | 'intervalMs' | 'timeoutMs' | 'fall' | 'rise' | 'name' | 'fastIntervalMs' | 'pidFile'
>;

export class HealthMonitor {
  private check!: HealthCheck;
  private intervalMs!: number;
  private timeoutMs!: number;
  private fall!: number;
  private rise!: number;
  private fastIntervalMs!: number;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private name!: string;
  private pidWatch: PidWatch | null = null;
  /** Aborts the wait between two checks, so new settings are looked at before the next one. */
  private pause: AbortController | null = null;
  /** Ends the check in flight as `preempted` (the watched process exited). */
  private preempt: (() => void) | null = null;
  /** The next check starts at once (set when the watched process exits). */
  private checkNow = false;
  /** Transitions of the service in flight (beginTransition). */
  private transitions = 0;
  /** A transition was in flight at some point during the current check. */
  private busyDuringCheck = false;
  /** The last failure was definite and `fall` is not reached: the next check comes sooner. */
  private fastNext = false;
  /** Checks of the current failure streak that started on the fast interval. */
  private fastChecks = 0;

  private current: HealthState = 'INITIALIZING';
  private last: HealthResult | undefined;
  private okStreak = 0;
  private failStreak = 0;
  private readonly changeListeners: HealthChangeListener[] = [];
  private readonly resultListeners: HealthResultListener[] = [];
  private readonly stopController = new AbortController();
  private loopDone: Promise<void> | undefined;
  /** The loop is running (it ends on stop() or on MONITOR_FAILED). */
  private looping = false;
  private stopped = false;

  constructor(opts: HealthMonitorOptions) {
    this.clock = opts.clock;
    this.logger = opts.logger;
    this.settle(opts);
  }

  private settle(opts: HealthSettings): void {
    if (typeof opts.check !== 'function') throw new ConfigError('health monitor: check must be a function');
    positiveInt('health.intervalMs', opts.intervalMs);
    positiveInt('health.timeoutMs', opts.timeoutMs);
    positiveInt('health.fall', opts.fall);
    positiveInt('health.rise', opts.rise);
    const fast = opts.fastIntervalMs ?? opts.intervalMs;
    positiveInt('health.fastIntervalMs', fast);
    if (fast > opts.intervalMs) {
      throw new ConfigError(
        `health.fastIntervalMs: must be at most health.intervalMs (${opts.intervalMs}), got ${fast}`,
      );
    }
    if (opts.pidFile !== undefined && (typeof opts.pidFile !== 'string' || !opts.pidFile.startsWith('/'))) {
      throw new ConfigError(`health.pidFile: must be an absolute path, got ${JSON.stringify(opts.pidFile)}`);
    }
    this.check = opts.check;
    this.intervalMs = opts.intervalMs;
    this.timeoutMs = opts.timeoutMs;
    this.fall = opts.fall;
    this.rise = opts.rise;
    this.fastIntervalMs = fast;
    this.name = opts.name ?? opts.check.description ?? 'health check';
    this.settlePidWatch(opts.pidFile, fast);
  }

  /** A new file gets a new watch (the next check reads it); the same file keeps its process. */
  private settlePidWatch(file: string | undefined, pollMs: number): void {
    if (this.pidWatch !== null && this.pidWatch.file === file) {
      this.pidWatch.setPollMs(pollMs);
      return;
    }
    this.pidWatch?.stop();
    this.pidWatch =
      file === undefined || this.stopped
        ? null
        : new PidWatch({ file, pollMs, clock: this.clock, onExit: (pid) => this.watchedExited(file, pid) });
  }

  /** From the pid watch's poll: no need to wait for the next check to learn what it will find. */
  private watchedExited(file: string, pid: number): void {
    if (this.stopped || this.pidWatch?.file !== file) return;
    this.logger.info(`health.pidFile: process ${pid} exited; checking at once`, { pidFile: file, pid });
    this.checkNow = true;
    this.preempt?.();
    this.pause?.abort();
  }

  /**
   * New settings (a reload) for the checks to come; a check in flight finishes under the old
   * ones. The state and the rise/fall streaks are kept, so a healthy (maybe active) node stays
   * HEALTHY: the streaks meet the new thresholds at the next result. The next check starts one
   * NEW interval after the last one started (at once if that is past). A monitor that had
   * stopped on MONITOR_FAILED (a check that could not work as configured) starts checking again.
   * Invalid settings throw a ConfigError and change nothing.
   */
  reconfigure(opts: HealthSettings): void {
    this.settle(opts);
    this.pause?.abort();
    if (!this.stopped && this.loopDone !== undefined && !this.looping && this.isTerminal())
      this.loopDone = this.loop();
  }

  get state(): HealthState {
    return this.current;
  }

  get lastResult(): HealthResult | undefined {
    return this.last;
  }

  /**
   * A transition of the service (which this agent asked for) starts; call the returned function
   * when it ends, however it ends. Timeouts of checks that overlap it are not counted (header).
   */
  beginTransition(): () => void {
    this.transitions++;
    this.busyDuringCheck = true;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.transitions--;
    };
  }

  /** Registers a state-change listener; returns a function that removes it. */
  onChange(cb: HealthChangeListener): () => void {
    this.changeListeners.push(cb);
    return () => removeFrom(this.changeListeners, cb);
  }

  /** Registers a listener for every check result (for metrics); returns its remover. */
  onResult(cb: HealthResultListener): () => void {
    this.resultListeners.push(cb);
    return () => removeFrom(this.resultListeners, cb);
  }

  /** Starts the loop; the first check runs at once. Calling it again is a no-op. */
  start(): void {
    if (this.stopped)
      throw new HafcError(EHEALTH_MONITOR, 'health monitor: start() after stop(); create a new monitor');
    if (this.loopDone) return;
    this.loopDone = this.loop();
  }

  /** Aborts a running check and ends the loop; resolves once it has ended. Idempotent. */
  stop(): Promise<void> {
    if (!this.stopped) {
      this.stopped = true;
      this.pidWatch?.stop();
      this.stopController.abort(new StopSignal());
      this.pause?.abort(new StopSignal());
    }
    return this.loopDone ?? Promise.resolve();
  }

  private async loop(): Promise<void> {
    this.looping = true;
    try {
      while (!this.stopped) {
        const startedAt = this.clock.now();
        if (this.fastNext && !this.checkNow) this.fastChecks++;
        this.checkNow = false;
        const outcome = await this.runOnce(startedAt);
        if (outcome.kind === 'stopped' || this.stopped) break;
        if (outcome.kind === 'preempted') continue;
        this.record(outcome.result);
        // MONITOR_FAILED is terminal: checking again could only repeat the same setup error
        // (until a reload brings another check: reconfigure()).
        if (this.isTerminal()) break;
        await this.waitFrom(startedAt);
      }
    } catch (err) {
      if (this.stopped) return;
      // Only a bug in this file gets here; say so loudly and stop claiming to know the health.
      const error = new HafcError(EHEALTH_MONITOR, `health monitor loop failed: ${describeThrown(err)}`, {
        cause: err,
      });
      this.logger.error('health monitor loop failed', { error: err });
      this.setState('MONITOR_FAILED', { reason: error.message, consecutive: 1, error });
    } finally {
      this.looping = false;
    }
  }

  /**
   * Until one interval after `startedAt` (from the check's start, so the rate does not drift
   * with check duration): the fast one after a definite failure. A reconfigure() wakes it to look
   * at the new interval; the watched process exiting ends it.
   */
  private async waitFrom(startedAt: number): Promise<void> {
    // Its own controller per wait, which stop() aborts too: nothing is added per wait to the
    // long-lived stop signal.
    while (!this.stopped && !this.checkNow) {
      const interval = this.fastNext ? this.fastIntervalMs : this.intervalMs;
      const wait = startedAt + interval - this.clock.now();
      if (wait <= 0) return;
      const pause = new AbortController();
      this.pause = pause;
      try {
        await this.clock.sleep(wait, pause.signal);
        return;
      } catch (err) {
        // Woken by stop() (the loop ends) or by reconfigure() (look at the interval again).
        if (!pause.signal.aborted) throw err;
      } finally {
        if (this.pause === pause) this.pause = null;
      }
    }
  }

  private isTerminal(): boolean {
    return this.current === 'MONITOR_FAILED';
  }

  /**
   * Runs the check once under the timeout. Resolves at the first of: the check settles, the
   * timeout fires, stop() is called; whatever happens later to the check is ignored.
   */
  private runOnce(startedAt: number): Promise<Outcome> {
    const ac = new AbortController();
    this.busyDuringCheck = this.transitions > 0;
    const stopSignal = this.stopController.signal;
    return new Promise<Outcome>((resolve) => {
      let settled = false;
      const finish = (outcome: Outcome): boolean => {
        if (settled) return false;
        settled = true;
        this.preempt = null;
        cancelTimer();
        stopSignal.removeEventListener('abort', onStop);
        resolve(outcome);
        return true;
      };
      const result = (kind: HealthResultKind, error?: HafcError): Outcome => {
        const at = this.clock.now();
        return { kind: 'done', result: { ok: kind === 'ok', kind, error, durationMs: at - startedAt, at } };
      };
      const onStop = () => {
        finish({ kind: 'stopped' });
        ac.abort(stopSignal.reason);
      };
      const cancelTimer = this.clock.setTimer(this.timeoutMs, () => {
        const error = new HealthTimeoutError(`${this.name} did not answer within ${this.timeoutMs} ms`);
        // Settle first, then abort: the check's own reaction to the abort must not be recorded
        // as a second result.
        finish(result('timeout', error));
        ac.abort(error);
      });
      stopSignal.addEventListener('abort', onStop, { once: true });
      this.preempt = () => {
        finish({ kind: 'preempted' });
        ac.abort(new HealthUnhealthyError(`${this.name}: abandoned, the watched process exited`));
      };

      let pending: Promise<void>;
      const check = this.check;
      // Promise.resolve: a check that (wrongly) returns a non-promise must not break us.
      const run = (): Promise<void> => Promise.resolve(check(ac.signal));
      try {
        const watch = this.pidWatch;
        pending = watch === null ? run() : watch.verify(ac.signal).then(run);
      } catch (err) {
        pending = Promise.reject(err);
      }
      pending.then(
        () => {
          if (!finish(result('ok'))) this.lateResult('succeeded');
        },
        (err: unknown) => {
          const kind = classifyFailure(err);
          if (!finish(result(kind, toHafcError(err, kind)))) this.lateResult('failed', err);
        },
      );
    });
  }

  private lateResult(what: string, err?: unknown): void {
    this.logger.debug(`${this.name} ${what} after it was abandoned; result ignored`, {
      error: err === undefined ? undefined : describeThrown(err),
    });
  }

  private record(res: HealthResult): void {
    this.last = res;
    this.emitResult(res);
    const busy = this.busyDuringCheck || this.transitions > 0;
    this.busyDuringCheck = false;
    if (res.kind === 'timeout' && busy) {
      this.logger.debug(`${this.name} timed out during a service transition; not counted`, {
        reason: res.error?.message,
      });
      return;
    }

    if (res.kind === 'ok') {
      this.failStreak = 0;
      this.fastNext = false;
      this.fastChecks = 0;
      this.okStreak++;
      if (this.current !== 'HEALTHY' && this.okStreak >= this.rise) {
        this.setState('HEALTHY', {
          reason: `${this.okStreak} consecutive successful checks`,
          consecutive: this.okStreak,
        });
      }
      return;
    }

    this.okStreak = 0;
    this.failStreak++;
    const definite = res.kind === 'unhealthy' ? definiteOf(res.error) : undefined;
    // An exited process is proof the service is down, whatever the count so far.
    if (definite === 'exited') this.failStreak = Math.max(this.failStreak, this.fall);
    const detail: HealthChangeDetail = {
      reason: res.error?.message ?? res.kind,
      consecutive: this.failStreak,
      error: res.error,
    };
    if (res.kind === 'fatal') {
      this.logger.error(`${this.name} cannot work as configured; health monitoring stops`, {
        error: res.error,
      });
      this.setState('MONITOR_FAILED', detail);
      return;
    }
    const target: HealthState = res.kind === 'timeout' ? 'NOT_RESPONDING' : 'UNHEALTHY';
    if (this.current === 'HEALTHY' && this.failStreak < this.fall) {
      this.fastNext = definite !== undefined && this.fastIntervalMs < this.intervalMs;
      if (this.fastNext) {
        this.logger.info(
          `${this.name} failed definitely (${definite}); next check in ${this.fastIntervalMs} ms instead of ${this.intervalMs} (${this.failStreak}/${this.fall} before ${target})`,
          { reason: detail.reason, definite, fastIntervalMs: this.fastIntervalMs },
        );
      } else {
        this.logger.debug(`${this.name} failed (${this.failStreak}/${this.fall} before ${target})`, {
          reason: detail.reason,
        });
      }
      return;
    }
    this.fastNext = false;
    this.setState(target, detail);
    this.fastChecks = 0;
  }

  /** The one place state changes: logs `prev -> next` and notifies, only on a real change. */
  private setState(next: HealthState, detail: HealthChangeDetail): void {
    const prev = this.current;
    if (prev === next) return;
    this.current = next;
    const definite = definiteOf(detail.error);
    const fields = {
      from: prev,
      to: next,
      reason: detail.reason,
      consecutive: detail.consecutive,
      // How the failure was seen, for operators and tests: proof (and which), and how many of
      // the checks that led here came on the fast interval.
      ...(definite !== undefined ? { definite } : {}),
      ...(this.fastChecks > 0 ? { fastChecks: this.fastChecks } : {}),
    };
    if (next === 'HEALTHY') this.logger.info(`health ${prev} -> ${next}`, fields);
    else if (next === 'MONITOR_FAILED') this.logger.error(`health ${prev} -> ${next}`, fields);
    else this.logger.warn(`health ${prev} -> ${next}`, fields);

    // Copy: a listener that unsubscribes (or subscribes) must not skip or repeat another.
    for (const cb of [...this.changeListeners]) {
      this.invoke('onChange', () => cb(next, prev, detail));
    }
  }

  private emitResult(res: HealthResult): void {
    for (const cb of [...this.resultListeners]) {
      this.invoke('onResult', () => cb(res));
    }
  }

  private invoke(kind: string, call: () => unknown): void {
    try {
      const ret = call();
      if (isThenable(ret)) {
        ret.then(undefined, (err: unknown) =>
          this.logger.error(`health ${kind} listener failed`, { error: err }),
        );
      }
    } catch (err) {
      this.logger.error(`health ${kind} listener threw`, { error: err });
    }
  }
}

function toHafcError(err: unknown, kind: HealthResultKind): HafcError {
  if (err instanceof HafcError) return err;
  const message = describeThrown(err);
  if (kind === 'timeout') return new HealthTimeoutError(message, { cause: err });
  const code = errorCode(err);
  if (kind === 'fatal' && code !== undefined) return new HafcError(code, message, { cause: err });
  return new HealthUnhealthyError(message, { cause: err, definite: definiteCause(err) });
}

function positiveInt(key: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new ConfigError(`${key}: must be a positive integer, got ${JSON.stringify(value)}`);
  }
}

function removeFrom<T>(list: T[], item: T): void {
  const i = list.indexOf(item);
  if (i >= 0) list.splice(i, 1);
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (
    (typeof v === 'object' || typeof v === 'function') &&
    v !== null &&
    typeof (v as { then?: unknown }).then === 'function'
  );
}
