/**
 * Sends sd_notify messages ("READY=1", "STATUS=...", "WATCHDOG=1", "STOPPING=1") to the service
 * manager without ever blocking or failing the agent.
 *
 * Node cannot open an AF_UNIX datagram socket, so each message is handed to `systemd-notify`
 * (see docs/systemd.md for why that and not something else). At most one runs at a time; what is
 * asked for meanwhile is merged into the next message (the latest STATUS wins, one WATCHDOG=1
 * stands for many), so a slow or stuck service manager costs one child process, not a pile.
 */
import { spawn } from 'node:child_process';
import type { Clock } from '../clock.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';

/** Sends one datagram made of `assignments` (KEY=VALUE); rejects if it could not. */
export type NotifySend = (assignments: string[]) => Promise<void>;

/** A send that cannot work however often it is retried (the program is missing). */
export class NotifyUnavailableError extends Error {
  override name = 'NotifyUnavailableError';
}

/** Stderr kept from a failing systemd-notify, for the log line. */
const MAX_STDERR = 1024;

export interface SystemdNotifyOptions {
  socket: string;
  clock: Clock;
  /** @default 'systemd-notify' (looked up on PATH) */
  command?: string;
  /**
   * How long one systemd-notify may run. It waits (up to 5 s, its own limit) for the manager to
   * confirm reception, which is what makes the message count (see docs/systemd.md); a child
   * that outlives this is killed and the message counts as failed.
   * @default 10000
   */
  timeoutMs?: number;
}

/**
 * A NotifySend that runs `systemd-notify KEY=VALUE...` with only NOTIFY_SOCKET and PATH in its
 * environment. Run as a direct child, so that systemd-notify (when privileged) sends with the
 * agent's pid as sender, which NotifyAccess=main accepts.
 */
export function systemdNotifySend(opts: SystemdNotifyOptions): NotifySend {
  const command = opts.command ?? 'systemd-notify';
  const timeoutMs = opts.timeoutMs ?? 10_000;
  return (assignments) =>
    new Promise<void>((resolve, reject) => {
      let settled = false;
      const finish = (err?: Error) => {
        if (settled) return;
        settled = true;
        cancel();
        if (err) reject(err);
        else resolve();
      };
      let child;
      try {
        child = spawn(command, assignments, {
          stdio: ['ignore', 'ignore', 'pipe'],
          env: { NOTIFY_SOCKET: opts.socket, PATH: process.env.PATH ?? '/usr/bin:/bin' },
        });
      } catch (err) {
        reject(new Error(`cannot run ${command}: ${errorMessage(err)}`));
        return;
      }
      // The agent's exit must not wait for a notification (STOPPING=1 may be in flight then).
      child.unref();
      let stderr = '';
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (chunk: string) => {
        if (stderr.length < MAX_STDERR) stderr += chunk.slice(0, MAX_STDERR - stderr.length);
      });
      (child.stderr as { unref?: () => void }).unref?.();
      const cancel = opts.clock.setTimer(timeoutMs, () => {
        child.kill('SIGKILL');
        finish(new Error(`${command} did not finish within ${timeoutMs} ms (killed)`));
      });
      child.on('error', (err: NodeJS.ErrnoException) => {
        finish(
          err.code === 'ENOENT'
            ? new NotifyUnavailableError(`${command} not found on PATH (${process.env.PATH ?? ''})`)
            : new Error(`cannot run ${command}: ${err.message}`),
        );
      });
      child.on('close', (code, signal) => {
        if (code === 0) finish();
        else
          finish(
            new Error(
              `${command} ${signal ? `was killed by ${signal}` : `exited with code ${code}`}` +
                (stderr.trim() ? `: ${stderr.trim()}` : ''),
            ),
          );
      });
    });
}

export interface NotifierOptions {
  send: NotifySend;
  clock: Clock;
  logger: Logger;
  /** Pause before a failed message is tried again. @default 1000 */
  retryMs?: number;
  /** A run of failures is logged at most this often (the first one at once). @default 600000 */
  failureLogIntervalMs?: number;
}

/** Keys sent once that must not be lost to a failed send. */
const STICKY = new Set(['READY', 'STOPPING']);

export class Notifier {
  private pending = new Map<string, string>();
  private busy = false;
  private retryTimer: (() => void) | null = null;
  private disabled: string | null = null;
  private closed = false;
  private failures = 0;
  private failuresUnlogged = 0;
  private lastFailureLogAt = -Infinity;
  private sent = 0;

  constructor(private readonly opts: NotifierOptions) {}

  /** Queues `fields` (merged with what waits); returns at once; never throws. */
  notify(fields: Record<string, string>): void {
    if (this.disabled || this.closed) return;
    for (const [k, v] of Object.entries(fields)) this.pending.set(k, v);
    this.pump();
  }

  /** Messages sent successfully, and sends that failed (for tests and the status line). */
  counts(): { sent: number; failed: number } {
    return { sent: this.sent, failed: this.failures };
  }

  /** No more messages; one in flight finishes on its own. */
  close(): void {
    this.closed = true;
    this.pending.clear();
    this.retryTimer?.();
    this.retryTimer = null;
  }

  private pump(): void {
    if (this.busy || this.retryTimer || this.pending.size === 0 || this.disabled || this.closed) return;
    const batch = this.pending;
    this.pending = new Map();
    this.busy = true;
    let sending: Promise<void>;
    try {
      sending = this.opts.send([...batch].map(([k, v]) => `${k}=${v}`));
    } catch (err) {
      sending = Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    sending.then(
      () => {
        this.busy = false;
        this.sent++;
        this.pump();
      },
      (err: unknown) => {
        this.busy = false;
        this.failed(batch, err);
      },
    );
  }

  private failed(batch: Map<string, string>, err: unknown): void {
    this.failures++;
    const now = this.opts.clock.now();
    if (err instanceof NotifyUnavailableError) {
      this.disabled = err.message;
      this.pending.clear();
      this.opts.logger.error(
        'cannot notify systemd: no more READY/STATUS/WATCHDOG messages (under Type=notify the unit ' +
          'will not count as started, and WatchdogSec= will restart it)',
        { error: err.message },
      );
      return;
    }
    if (now - this.lastFailureLogAt >= (this.opts.failureLogIntervalMs ?? 600_000)) {
      this.opts.logger.warn('could not notify systemd; retrying', {
        error: errorMessage(err),
        fields: [...batch.keys()],
        failedSinceLastReport: this.failuresUnlogged,
      });
      this.lastFailureLogAt = now;
      this.failuresUnlogged = 0;
    } else {
      this.failuresUnlogged++;
    }
    // What was asked for meanwhile is newer; a lost READY or STOPPING is sent again.
    for (const [k, v] of batch)
      if (!this.pending.has(k) && (STICKY.has(k) || k === 'STATUS')) this.pending.set(k, v);
    this.retryTimer = this.opts.clock.setTimer(this.opts.retryMs ?? 1000, () => {
      this.retryTimer = null;
      this.pump();
    });
  }
}
