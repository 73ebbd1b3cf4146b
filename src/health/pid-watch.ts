/**
 * health.pidFile: watch the managed service's process, so that its exit is noticed within one
 * short poll instead of at the next failed probes. Node has no pidfd (and a process we did not
 * start sends us no SIGCHLD), so the process is polled: one read of /proc/<pid>/stat every
 * pollMs, a few microseconds of work.
 *
 * Two halves:
 * - verify(), run by the monitor at the start of every probe: reads the pid file and checks the
 *   process it names. A missing or garbage file is a health failure naming the file and what it
 *   held (the operator said the service writes it; a service that does not is not known to run);
 *   a pid that is not running is a definite failure ('exited'). A live one is watched from then on.
 * - the poll: while a live process is watched, it is looked at every pollMs; once it is gone
 *   (no /proc entry, a zombie, or another process under the same pid: a different start time),
 *   onExit is called once and the poll stops until a probe's verify() finds a live process again.
 *
 * The /proc read is synchronous on purpose: procfs answers from kernel memory and cannot hang
 * (unlike the pid file, which may sit on a stuck mount and is read asynchronously under the
 * probe's deadline), and a synchronous read costs a fraction of a thread-pool round trip.
 *
 * What it cannot see: a stale pid file whose pid was reused by another process looks alive; the
 * probes themselves still find the service down. With /proc mounted hidepid, another user's
 * process has no visible entry: kill(pid, 0) is asked then (EPERM = it exists), without the
 * start-time check.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Clock } from '../clock.js';
import { HealthUnhealthyError, describeThrown, errorCode } from './errors.js';

/** Linux's largest pid (pid_max can be raised to 2^22). */
const MAX_PID = 4_194_304;
/** A pid file holds a number and a newline; more than this is not a pid file. */
const MAX_PID_FILE_CHARS = 64;
/** How much of a garbage pid file the message quotes. */
const QUOTE_CHARS = 40;

export interface PidWatchOptions {
  /** The pid file (health.pidFile), an absolute path. */
  file: string;
  /** How often the watched process is looked at (health.fastIntervalMs). */
  pollMs: number;
  clock: Clock;
  /** Called (from the poll) once per watched process, when it is seen gone. */
  onExit: (pid: number) => void;
}

interface Watched {
  pid: number;
  /** Field 22 of /proc/<pid>/stat (start time in clock ticks since boot); null when hidden. */
  start: string | null;
}

/** A zombie keeps its command name (comm), which says what exited under that pid. */
type ProcState =
  | { alive: true; start: string | null }
  | { alive: false; why: string; zombie: false }
  | { alive: false; why: string; zombie: true; comm: string };

export class PidWatch {
  readonly file: string;
  private pollMs: number;
  private readonly clock: Clock;
  private readonly onExit: (pid: number) => void;
  private watched: Watched | null = null;
  private cancelPoll: (() => void) | null = null;
  private stopped = false;

  constructor(opts: PidWatchOptions) {
    this.file = opts.file;
    this.pollMs = opts.pollMs;
    this.clock = opts.clock;
    this.onExit = opts.onExit;
  }

  /** The process being watched, if any (for status and tests). */
  get pid(): number | null {
    return this.watched?.pid ?? null;
  }

  setPollMs(ms: number): void {
    this.pollMs = ms;
  }

  /**
   * Reads the pid file and checks its process; resolves if it is running (and watches it),
   * rejects with a HealthUnhealthyError otherwise ('exited' when the named process is gone).
   */
  async verify(signal: AbortSignal): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.file, { encoding: 'utf8', signal });
    } catch (err) {
      if (signal.aborted) throw err;
      throw new HealthUnhealthyError(
        `health.pidFile ${this.file}: cannot be read: ${errorCode(err) ?? describeThrown(err)}`,
        { cause: err },
      );
    }
    const pid = parsePid(text);
    if (pid === undefined) {
      const shown = text.length > QUOTE_CHARS ? `${text.slice(0, QUOTE_CHARS)}...` : text;
      throw new HealthUnhealthyError(
        `health.pidFile ${this.file}: expected a process id (an integer from 1 to ${MAX_PID}), got ${JSON.stringify(shown)}`,
      );
    }
    const state = procState(pid);
    if (!state.alive) {
      if (this.watched?.pid === pid) this.unwatch();
      throw new HealthUnhealthyError(
        `health.pidFile ${this.file}: process ${pid} is not running (${state.why})`,
        {
          definite: 'exited',
        },
      );
    }
    if (this.stopped) return;
    const w = this.watched;
    if (w !== null && w.pid === pid && w.start === state.start) return;
    this.unwatch();
    this.watched = { pid, start: state.start };
    this.arm();
  }

  stop(): void {
    this.stopped = true;
    this.unwatch();
  }

  private unwatch(): void {
    this.cancelPoll?.();
    this.cancelPoll = null;
    this.watched = null;
  }

  private arm(): void {
    this.cancelPoll = this.clock.setTimer(this.pollMs, () => this.poll());
  }

  private poll(): void {
    this.cancelPoll = null;
    const w = this.watched;
    if (w === null || this.stopped) return;
    const state = procState(w.pid);
    const reused = state.alive && w.start !== null && state.start !== null && state.start !== w.start;
    if (state.alive && !reused) {
      this.arm();
      return;
    }
    this.watched = null;
    this.onExit(w.pid);
  }
}

/** The pid in a pid file's text: digits with optional surrounding white space, nothing else. */
export function parsePid(text: string): number | undefined {
  if (text.length > MAX_PID_FILE_CHARS) return undefined;
  const t = text.trim();
  if (!/^[0-9]{1,7}$/.test(t)) return undefined;
  const pid = Number(t);
  // Never 0 or less: kill(0, ...) and kill(-1, ...) address process groups, not one process.
  return pid >= 1 && pid <= MAX_PID ? pid : undefined;
}

/** Whether `pid` runs, from /proc/<pid>/stat (a zombie has exited: it only waits to be reaped). */
export function procState(pid: number): ProcState {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return signalZero(pid)
      ? { alive: true, start: null }
      : { alive: false, why: 'no such process', zombie: false };
  }
  // The command name (field 2) is in parentheses and may hold spaces and ')': skip past the last.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  if (state === 'Z' || state === 'X') {
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    return { alive: false, why: 'exited, not yet reaped', zombie: true, comm };
  }
  return { alive: true, start: fields[19] ?? null };
}

/** kill(pid, 0): ESRCH = no such process; EPERM = it exists but is not ours to signal. */
function signalZero(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errorCode(err) === 'EPERM';
  }
}
