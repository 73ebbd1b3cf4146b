/**
 * Tells systemd what the agent is doing (Type=notify): READY=1 once it is connected to ZooKeeper
 * and knows its service's health, STATUS=<role> epoch <n> health <h> ... on every change
 * (rate-limited), WATCHDOG=1 every half WatchdogSec while every loop makes progress
 * (liveness.ts), STOPPING=1 once it stops. Everything is polled from the agent's status: the
 * agent's own code knows nothing of systemd.
 */
import type { Clock } from '../clock.js';
import type { Logger } from '../log.js';
import type { LoopWatch } from './liveness.js';
import type { Notifier } from './notifier.js';

/** What the supervisor reads from the agent (a subset of ControllerStatus). */
export interface SupervisedStatus {
  role: string;
  health: string;
  elector: {
    epoch: string | null;
    sessionState: string;
    lastDecision: { action: string; reason: string } | null;
    fatal: string | null;
  };
}

export interface SupervisorOptions {
  notifier: Notifier;
  clock: Clock;
  logger: Logger;
  status: () => SupervisedStatus;
  /** WatchdogSec= in ms, or null: no pings. */
  watchdogMs: number | null;
  watches: LoopWatch[];
  /** Called on every poll with the status just read (e.g. to let a watch see progress). */
  onPoll?: (s: SupervisedStatus, now: number) => void;
  /** How often the status is read. @default 500 */
  pollMs?: number;
  /** At most one STATUS per this many ms; a change meanwhile is sent when it is up. @default 1000 */
  statusIntervalMs?: number;
}

/** READY: connected, and the first health verdict is in (the node knows whether it may compete). */
export function isReady(s: SupervisedStatus): boolean {
  return s.elector.sessionState === 'connected' && s.health !== 'INITIALIZING';
}

/** The one-line STATUS= text: role, epoch, health first, as `systemctl status` shows it. */
export function statusLine(s: SupervisedStatus): string {
  let line = `${s.role} epoch ${s.elector.epoch ?? '-'} health ${s.health} zk ${s.elector.sessionState}`;
  if (s.elector.fatal !== null) line += `; fatal: ${s.elector.fatal}`;
  else if (s.elector.lastDecision) line += `; ${s.elector.lastDecision.action}`;
  // One datagram line per assignment: a newline would start a new KEY=VALUE.
  return line.replace(/[\r\n]+/g, ' ').slice(0, 400);
}

export class SystemdSupervisor {
  private ready = false;
  private stopping = false;
  private closed = false;
  private lastStatus: string | null = null;
  private lastStatusAt = -Infinity;
  private stalled: string | null = null;
  private cancelPoll: (() => void) | null = null;
  private cancelPing: (() => void) | null = null;

  constructor(private readonly opts: SupervisorOptions) {}

  start(): void {
    this.poll();
    if (this.opts.watchdogMs !== null) this.ping();
  }

  /** The agent is stopping: STOPPING=1; pings go on unconditionally (the stop bounds itself). */
  markStopping(reason: string): void {
    if (this.stopping || this.closed) return;
    this.stopping = true;
    this.opts.notifier.notify({ STOPPING: '1', STATUS: `stopping: ${reason}`.replace(/[\r\n]+/g, ' ') });
    this.lastStatus = null;
  }

  close(): void {
    this.closed = true;
    this.cancelPoll?.();
    this.cancelPing?.();
  }

  private poll(): void {
    if (this.closed) return;
    try {
      const now = this.opts.clock.now();
      const s = this.opts.status();
      this.opts.onPoll?.(s, now);
      const fields: Record<string, string> = {};
      if (!this.ready && isReady(s)) {
        this.ready = true;
        fields.READY = '1';
      }
      if (!this.stopping) {
        const line = statusLine(s);
        if (line !== this.lastStatus && (fields.READY || now - this.lastStatusAt >= this.interval())) {
          fields.STATUS = line;
          this.lastStatus = line;
          this.lastStatusAt = now;
        }
      }
      if (Object.keys(fields).length > 0) this.opts.notifier.notify(fields);
    } catch (err) {
      // A status that cannot be read is a bug elsewhere; it must not end the polling.
      this.opts.logger.warn('systemd status poll failed', { error: String(err) });
    }
    this.cancelPoll = this.opts.clock.setTimer(this.opts.pollMs ?? 500, () => this.poll());
  }

  private interval(): number {
    return this.opts.statusIntervalMs ?? 1000;
  }

  private ping(): void {
    if (this.closed) return;
    const now = this.opts.clock.now();
    const why = this.stopping ? [] : this.opts.watches.map((w) => w.check(now)).filter((x) => x !== null);
    if (why.length === 0) {
      if (this.stalled !== null) {
        this.opts.logger.info('the agent makes progress again: watchdog pings resumed', {
          was: this.stalled,
        });
        this.stalled = null;
      }
      this.opts.notifier.notify({ WATCHDOG: '1' });
    } else {
      const text = why.join('; ');
      if (this.stalled === null)
        this.opts.logger.error(
          'watchdog pings withheld: a loop of the agent is stuck; systemd will restart it',
          {
            stuck: text,
            watchdogMs: this.opts.watchdogMs,
          },
        );
      this.stalled = text;
    }
    this.cancelPing = this.opts.clock.setTimer(this.opts.watchdogMs! / 2, () => this.ping());
  }
}
