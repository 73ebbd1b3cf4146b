/**
 * No failure of the agent process itself may leave its service active unnoticed. This is the
 * one place that decides what a signal or a fatal error does to the running agent:
 *
 * - SIGTERM / SIGINT / SIGQUIT: the clean stop (demote, mark the breadcrumb demoted, close the
 *   session so the standby takes over at once). A second one, a clean stop that fails or that outlives
 *   its deadline: an emergency demotion, then exit 1.
 * - SIGHUP: reload the config (cli/reload.ts) while running; logged and ignored before the agent
 *   runs and once it stops. By default it would kill the agent without a demotion.
 * - SIGUSR2: logged and ignored, for the same reason. SIGUSR1 likewise, and it never opens the
 *   inspector (see inspector-guard.ts).
 * - An uncaught exception or unhandled rejection: logged with its cause, then the emergency
 *   demotion, a bounded attempt to release the lock (so the standby need not wait for the session
 *   to expire), exit 1 so that systemd restarts the agent. Further fatal errors meanwhile are
 *   logged and do not cut the demotion short: exiting early is what would leave the service
 *   active.
 *
 * Every path that cannot demote, or skips a step of the clean stop, says so in the log. Every
 * wait has a deadline, and a backstop timer exits even if a promise never settles.
 */
import type { Clock } from '../clock.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { ExitCode } from './exit-codes.js';

/** What the guard needs of the running agent (the Controller). */
export interface GuardedAgent {
  /** Demotes the service if it may be active; bounded, never throws; true = known standby. */
  emergencyDemote(reason: string): Promise<boolean>;
  /** The clean stop. */
  stop(): Promise<void>;
}

export interface ProcessGuardOptions {
  logger: Logger;
  clock: Clock;
  /** Ends the process (process.exit in production). */
  exit: (code: number) => void;
}

/** Deadlines, known once the configuration is. */
export interface GuardLimits {
  /** Backstop for one emergency demotion (which bounds itself by the to-standby timeout). */
  demoteTimeoutMs: number;
  /** A clean stop that takes longer than this is given up for an emergency demotion. */
  stopTimeoutMs: number;
  /** After a fatal error's demotion: how long the clean stop may still take to close the session. */
  releaseTimeoutMs: number;
}

export type GuardPhase = 'starting' | 'running' | 'stopping' | 'emergency' | 'stopped';

export const STOP_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGQUIT'] as const;
export const IGNORED_SIGNALS = ['SIGHUP', 'SIGUSR1', 'SIGUSR2'] as const;
export type GuardSignal = (typeof STOP_SIGNALS)[number] | (typeof IGNORED_SIGNALS)[number];

type Settled = { ok: true } | { ok: false; error: unknown };

/** Extra fatal errors logged in full while a demotion runs; the rest are only counted. */
const MAX_LOGGED_EXTRA_ERRORS = 5;
/** Added to the backstop so that it never races the deadlines it backs up. */
const BACKSTOP_GRACE_MS = 2000;

export class ProcessGuard {
  private phase: GuardPhase = 'starting';
  private agent: GuardedAgent | null = null;
  private limits: GuardLimits = { demoteTimeoutMs: 0, stopTimeoutMs: 0, releaseTimeoutMs: 0 };
  private log: Logger;
  private stopping: Promise<Settled> | null = null;
  private extraErrors = 0;
  private reload: (() => void) | null = null;
  private resolveDone!: (code: number) => void;
  /** Resolves with the exit code when a clean stop has finished (the other paths exit). */
  readonly done: Promise<number>;

  constructor(private readonly opts: ProcessGuardOptions) {
    this.log = opts.logger;
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  getPhase(): GuardPhase {
    return this.phase;
  }

  /** The logger the guard writes to (the start-up one until the configuration is read). */
  get logger(): Logger {
    return this.log;
  }

  /** Switches from the start-up logger to the configured one. */
  setLogger(logger: Logger): void {
    this.log = logger;
  }

  /** The agent is running: from now on signals and errors act on it. */
  attach(agent: GuardedAgent, limits: GuardLimits): void {
    this.agent = agent;
    this.limits = limits;
    if (this.phase === 'starting') this.phase = 'running';
  }

  /** What SIGHUP does while the agent runs; it must not throw (a throw is logged). */
  setReloadHandler(reload: () => void): void {
    this.reload = reload;
  }

  signal(sig: GuardSignal): void {
    switch (sig) {
      case 'SIGHUP':
        this.hangUp();
        return;
      case 'SIGUSR1':
        this.log.warn('SIGUSR1 received: ignored (a signal never opens the debugger in this agent)');
        return;
      case 'SIGUSR2':
        this.log.warn('SIGUSR2 received: no action is bound to it; ignored');
        return;
      default:
        this.stopSignal(sig);
    }
  }

  private hangUp(): void {
    if (this.phase !== 'running') {
      this.log.info(`SIGHUP received while ${this.phase}: no configuration to reload; ignored`);
      return;
    }
    if (!this.reload) {
      this.log.info('SIGHUP received: reload is not supported yet; ignored');
      return;
    }
    this.log.info('SIGHUP received: reloading the configuration');
    try {
      this.reload();
    } catch (err) {
      this.log.error('reload failed to start; the configuration in force stays', {
        error: errorMessage(err),
      });
    }
  }

  /** An uncaught exception or an unhandled rejection (the process's 'origin' name). */
  fatal(origin: 'uncaughtException' | 'unhandledRejection', error: unknown): void {
    const what = origin === 'unhandledRejection' ? 'unhandled promise rejection' : 'uncaught exception';
    const fields = {
      origin,
      error: errorMessage(error),
      stack: error instanceof Error ? error.stack : undefined,
    };
    if (this.phase === 'emergency') {
      this.extraErrors++;
      if (this.extraErrors <= MAX_LOGGED_EXTRA_ERRORS) {
        this.log.error(`another ${what} while demoting before exit: the demotion goes on`, fields);
      } else if (this.extraErrors === MAX_LOGGED_EXTRA_ERRORS + 1) {
        this.log.error('more fatal errors while demoting before exit: no longer logged one by one');
      }
      return;
    }
    this.log.error(`fatal ${what}: ${errorMessage(error)}`, fields);
    if (this.phase === 'stopped') {
      this.log.error('exiting: the agent had already stopped (nothing left to demote)');
      this.opts.exit(ExitCode.FAILED);
      return;
    }
    void this.emergency(`fatal ${what}: ${errorMessage(error)}`, true);
  }

  private stopSignal(sig: GuardSignal): void {
    switch (this.phase) {
      case 'starting':
        // Nothing is running yet: no session, no election, the service was not touched.
        this.log.info(`${sig} received during start-up: exiting (the service was not touched)`);
        this.phase = 'stopped';
        this.opts.exit(ExitCode.OK);
        return;
      case 'running':
        this.phase = 'stopping';
        this.log.info(`${sig} received: stopping (demoting the service if active)`);
        this.beginCleanStop();
        return;
      case 'stopping':
        void this.emergency(`second ${sig} during the clean stop`, false);
        return;
      case 'emergency':
        this.log.warn(
          `${sig} received: already demoting the service before exit (within ${this.limits.demoteTimeoutMs + this.limits.releaseTimeoutMs} ms); ignored`,
        );
        return;
      case 'stopped':
        this.log.info(`${sig} received: already stopped`);
        return;
    }
  }

  /** The agent cannot go on (e.g. a second agent uses its node id): a clean stop, then `code`. */
  stopWith(code: number, reason: string): void {
    if (this.phase !== 'running') return;
    this.phase = 'stopping';
    this.log.error('stopping: cannot continue', { reason });
    this.beginCleanStop(code);
  }

  private beginCleanStop(code: number = ExitCode.OK): void {
    const stopping = this.startStop();
    const { stopTimeoutMs } = this.limits;
    const cancel = this.opts.clock.setTimer(stopTimeoutMs, () => {
      if (this.phase === 'stopping')
        void this.emergency(`the clean stop did not finish within ${stopTimeoutMs} ms`, false);
    });
    void stopping.then((r) => {
      cancel();
      if (this.phase !== 'stopping') return; // an emergency took over; it exits
      if (r.ok) {
        this.log.info('stopped');
        this.phase = 'stopped';
        this.resolveDone(code);
      } else {
        this.log.error('error while stopping', { error: errorMessage(r.error) });
        void this.emergency('the clean stop failed', false);
      }
    });
  }

  /** Starts the clean stop once; later callers share it. */
  private startStop(): Promise<Settled> {
    if (!this.stopping) {
      const agent = this.agent!;
      let p: Promise<void>;
      try {
        p = agent.stop();
      } catch (error) {
        p = Promise.reject(error);
      }
      this.stopping = p.then(
        (): Settled => ({ ok: true }),
        (error: unknown): Settled => ({ ok: false, error }),
      );
    }
    return this.stopping;
  }

  /**
   * Demote now, then exit 1. With `release`, also wait (bounded) for the clean stop to close the
   * session, so that the standby takes over at once instead of after the session timeout.
   */
  private async emergency(why: string, release: boolean): Promise<void> {
    this.phase = 'emergency';
    const o = this.opts;
    const l = this.limits;
    const cancelBackstop = o.clock.setTimer(
      l.demoteTimeoutMs + l.releaseTimeoutMs + BACKSTOP_GRACE_MS,
      () => {
        this.log.error('exit deadline reached while demoting: exiting now; the service may still be active');
        o.exit(ExitCode.FAILED);
      },
    );
    const agent = this.agent;
    if (!agent) {
      this.log.error(`${why}: exiting (the agent had not started; nothing to demote)`);
      cancelBackstop();
      o.exit(ExitCode.FAILED);
      return;
    }
    // The clean stop goes first, unawaited: it aborts an activation in flight and keeps the
    // election from starting a new one while we demote.
    const stopping = this.startStop();
    this.log.warn(`${why}: demoting the service now, then exiting`);
    const demoted = await this.within(agent.emergencyDemote(why), l.demoteTimeoutMs, false);
    if (demoted) {
      this.log.info('service demoted before exit');
    } else {
      this.log.error(
        'the service may still be active: its demotion failed or timed out; the next active must fence it',
      );
    }
    if (release) {
      const released = await this.within(
        stopping.then((r) => r.ok),
        l.releaseTimeoutMs,
        false,
      );
      if (!released)
        this.log.warn(
          `could not close the ZooKeeper session cleanly within ${l.releaseTimeoutMs} ms: ` +
            'the standby takes over once the session expires',
        );
    } else {
      this.log.warn(
        'skipped: the rest of the clean stop (marking the breadcrumb demoted, closing the ZooKeeper session); ' +
          'the standby takes over once the session expires',
      );
    }
    cancelBackstop();
    this.log.error('exiting with code 1', { demoted });
    o.exit(ExitCode.FAILED);
  }

  private within<T>(p: Promise<T>, ms: number, fallback: T): Promise<T> {
    return new Promise<T>((resolve) => {
      const cancel = this.opts.clock.setTimer(ms, () => resolve(fallback));
      p.then(
        (v) => {
          cancel();
          resolve(v);
        },
        () => {
          cancel();
          resolve(fallback);
        },
      );
    });
  }
}

/**
 * Routes the process's signals and fatal errors to `guard`. The listeners stay for the life of
 * the process: removing a signal listener would restore a default that kills the agent.
 */
export function installProcessGuard(guard: ProcessGuard, onSigusr1: (fn: () => void) => void): void {
  const safely = (fn: () => void) => {
    try {
      fn();
    } catch {
      // The guard itself failed: the one thing left that cannot make matters worse is to exit.
      process.exit(ExitCode.FAILED);
    }
  };
  for (const sig of [...STOP_SIGNALS, 'SIGHUP', 'SIGUSR2'] as const)
    process.on(sig, () => safely(() => guard.signal(sig)));
  onSigusr1(() => safely(() => guard.signal('SIGUSR1')));
  process.on('uncaughtException', (err, origin) => safely(() => guard.fatal(origin, err)));
  process.on('unhandledRejection', (reason) => safely(() => guard.fatal('unhandledRejection', reason)));
}
