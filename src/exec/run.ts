/**
 * The hook runner: argv or `sh -c`, own process group, timeout, bounded output. What a hook is
 * given in its environment is the contract in hook-env.ts; this module only runs processes.
 *
 * How a run ends when the command does not end by itself:
 * - timeout: the whole process group gets SIGTERM, then SIGKILL after killGraceMs, so a hook
 *   that cleans up on SIGTERM gets to, and a grandchild that ignores it still dies;
 * - abort (the caller's signal): SIGKILL to the process group at once, no SIGTERM and no grace.
 *   An abort means the caller must act now (the lease watchdog aborts a to-active hook and must
 *   start to-standby within the lease budget, which has no room for a kill grace);
 * - either way, once SIGKILL is sent we wait at most abandonGraceMs for the process to be reaped.
 *   A process in uninterruptible sleep (D state: a hung NFS mount, a frozen filesystem, a dead
 *   disk) survives SIGKILL until the kernel lets go of it, which may be never; we then resolve
 *   anyway with `abandoned: true`, its pid and its /proc state. It may still be running, and
 *   dies (the SIGKILL is pending) if the kernel ever wakes it.
 * So a run ends within timeoutMs + killGraceMs + abandonGraceMs (terminationBoundMs), or within
 * abandonGraceMs of an abort, whatever the command does (plus one read of /proc).
 *
 * Built on node:child_process rather than execa: execa's timeout / forceKillAfterDelay signal the
 * direct child only, and its maxBuffer ends the run with an error when exceeded. We need the
 * opposite on both counts: a timed-out hook is taken down with its whole process group, and a
 * chatty hook keeps running while we keep only a bounded head and tail of what it printed. Both
 * are a few lines with `detached: true` and `process.kill(-pgid)`.
 *
 * Spawn failures (ENOENT, EACCES, bad cwd) do NOT throw: they resolve as a failed result with
 * `spawnError` set and the reason in `stderr`, so every caller handles one shape and
 * `assertSucceeded` turns it into a HookFailedError that says the command could not be started.
 *
 * Time (timeout, graces, durations, and the short internal waits: stream settle, group poll) is
 * read and waited on only through the Clock; under a fake clock those pass only when the test
 * advances it.
 *
 * Not covered: if hafc itself is killed, detached hooks outlive it; systemd's control-group
 * KillMode is what cleans those up.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { systemClock, type Clock } from '../clock.js';
import { HookFailedError, HookTimeoutError } from '../errors.js';
import type { Command } from '../config/types.js';

export interface RunOptions {
  /** Added to (and overriding) process.env for the child. */
  env?: Record<string, string>;
  /** Past this the whole process group is sent SIGTERM, then SIGKILL after killGraceMs. */
  timeoutMs: number;
  /** @default 2000 */
  killGraceMs?: number;
  /** After SIGKILL, how long to wait for the process to be reaped before abandoning it. @default 1000 */
  abandonGraceMs?: number;
  /** Bytes kept per stream (head plus a short tail). @default 65536 */
  maxOutputBytes?: number;
  /** Abort = SIGKILL the process group now (no SIGTERM, no grace). */
  signal?: AbortSignal;
  cwd?: string;
  /** Names the command in messages, e.g. "toActive hook". @default "command" */
  what?: string;
  /** @default systemClock */
  clock?: Clock;
}

export interface CommandResult {
  exitCode: number | null;
  /** Signal that ended the direct child, e.g. "SIGTERM". */
  signal: string | null;
  stdout: string;
  stderr: string;
  /** Some output was dropped (see maxOutputBytes). */
  truncated: boolean;
  timedOut: boolean;
  aborted: boolean;
  /**
   * The process was still there abandonGraceMs after SIGKILL and we stopped waiting for it: it
   * may still be running (see `procState`). exitCode and signal are null.
   */
  abandoned: boolean;
  durationMs: number;
  /** Printable form of the command, for logs and messages only. */
  command: string;
  /** Echo of the options, so assertSucceeded can write a complete message from the result alone. */
  what: string;
  timeoutMs: number;
  /** Signals sent to the process group by us, in order (empty unless timed out or aborted). */
  killSignals: string[];
  /** Total bytes the child wrote to each stream, including dropped ones. */
  stdoutBytes: number;
  stderrBytes: number;
  /** The direct child's pid (= its process group id); absent when nothing was started. */
  pid?: number;
  /** When abandoned: the `State:` of /proc/<pid>/status, e.g. "D (disk sleep)", if readable. */
  procState?: string;
  /** Set when the command could not be started at all (ENOENT, EACCES, ...). */
  spawnError?: string;
  /** The errno code of a spawn failure, e.g. "ENOENT" (a health check tells a missing program by it). */
  spawnErrorCode?: string;
}

export const DEFAULT_KILL_GRACE_MS = 2000;
export const DEFAULT_ABANDON_GRACE_MS = 1000;
export const DEFAULT_MAX_OUTPUT_BYTES = 64 * 1024;

/**
 * The longest runCommand takes past its timeout, whatever the command does (after an abort it
 * takes at most the abandon grace). Callers that put their own deadline around a run (the fencer)
 * add this so they never cut off the runner while it is still killing and reporting.
 */
export function terminationBoundMs(opts: Pick<RunOptions, 'killGraceMs' | 'abandonGraceMs'> = {}): number {
  return (opts.killGraceMs ?? DEFAULT_KILL_GRACE_MS) + (opts.abandonGraceMs ?? DEFAULT_ABANDON_GRACE_MS);
}

/**
 * After the direct child exits, how long we wait for its stdout/stderr to reach EOF. A hook that
 * starts a daemon without redirecting its output leaves the pipe open for as long as the daemon
 * lives; we must not wait for that (nor kill the daemon), so past this we stop capturing.
 */
const STREAM_SETTLE_MS = 200;
/** While terminating, how often we look whether the process group is gone already. */
const GROUP_POLL_MS = 50;

type Base = { command: string; what: string; timeoutMs: number; killSignals: string[] };

export async function runCommand(cmd: Command, opts: RunOptions): Promise<CommandResult> {
  const what = opts.what ?? 'command';
  const killGraceMs = opts.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
  const abandonGraceMs = opts.abandonGraceMs ?? DEFAULT_ABANDON_GRACE_MS;
  const maxOutputBytes = opts.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  const clock = opts.clock ?? systemClock;
  const command = printable(cmd);
  const started = clock.now();
  const elapsed = () => Math.round(clock.now() - started);
  const base: Base = { command, what, timeoutMs: opts.timeoutMs, killSignals: [] };

  const [file, args] = typeof cmd === 'string' ? ['/bin/sh', ['-c', cmd]] : [cmd[0], cmd.slice(1)];
  if (file === undefined || file === '') {
    return failedToStart(base, elapsed(), 'empty command');
  }
  if (opts.signal?.aborted) {
    return { ...notRun(base), aborted: true };
  }

  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  Object.assign(env, opts.env);

  let child: ChildProcess;
  try {
    child = spawn(file, args, {
      cwd: opts.cwd,
      env,
      // Own process group, so one kill(-pgid) reaches everything the hook started.
      detached: true,
      // A hook reading stdin must see EOF, not hang on our terminal.
      stdio: ['ignore', 'pipe', 'pipe'],
      windowsHide: true,
    });
  } catch (err) {
    // spawn throws synchronously for some argument errors (e.g. a NUL byte in an argument).
    return failedToStart(base, elapsed(), (err as Error).message);
  }

  const out = new BoundedCapture(maxOutputBytes);
  const errCap = new BoundedCapture(maxOutputBytes);

  return new Promise<CommandResult>((resolve) => {
    let exited = false;
    let exitCode: number | null = null;
    let exitSignal: string | null = null;
    let spawnError: string | undefined;
    let spawnErrorCode: string | undefined;
    let timedOut = false;
    let aborted = false;
    let abandoned = false;
    let procState: string | undefined;
    let terminating = false;
    let sigkillSent = false;
    let groupGone = false;
    let probing = false;
    let openStreams = 2;
    let done = false;
    const noop = (): void => {};
    let cancelTimeout = noop;
    let cancelGrace = noop;
    let cancelAbandon = noop;
    let cancelSettle: (() => void) | undefined;
    let cancelPoll = noop;

    const pgid = child.pid;

    const killGroup = (sig: NodeJS.Signals): void => {
      if (pgid === undefined) return;
      try {
        process.kill(-pgid, sig);
        base.killSignals.push(sig);
      } catch {
        // ESRCH: the group is gone already, which is what we wanted.
      }
    };
    const groupExists = (): boolean => {
      if (pgid === undefined) return false;
      try {
        process.kill(-pgid, 0);
        return true;
      } catch {
        return false;
      }
    };

    const finish = (): void => {
      if (done) return;
      done = true;
      for (const cancel of [cancelTimeout, cancelGrace, cancelAbandon, cancelSettle ?? noop, cancelPoll]) {
        cancel();
      }
      opts.signal?.removeEventListener('abort', onAbort);
      // Streams a lingering daemon still holds: keep draining (so it never blocks on a full pipe
      // or dies of SIGPIPE) but discard, and let the event loop exit without them.
      for (const s of [child.stdout, child.stderr]) {
        if (!s || s.readableEnded || s.destroyed) continue;
        s.removeAllListeners('data');
        s.on('data', () => {});
        s.on('error', () => {});
        (s as Readable & { unref?: () => void }).unref?.();
      }
      // An abandoned process must not keep hafc alive (e.g. on shutdown); node still reaps it
      // if it ever dies.
      if (abandoned) child.unref();
      resolve({
        ...base,
        exitCode,
        signal: exitSignal,
        stdout: out.text(),
        stderr:
          spawnError !== undefined
            ? `${what} \`${command}\` could not be started: ${spawnError}`
            : errCap.text(),
        truncated: out.truncated || errCap.truncated,
        timedOut,
        aborted,
        abandoned,
        durationMs: elapsed(),
        stdoutBytes: out.total,
        stderrBytes: errCap.total,
        ...(pgid !== undefined && spawnError === undefined ? { pid: pgid } : {}),
        ...(procState !== undefined ? { procState } : {}),
        ...(spawnError !== undefined ? { spawnError } : {}),
        ...(spawnErrorCode !== undefined ? { spawnErrorCode } : {}),
      });
    };

    const maybeFinish = (): void => {
      if (done || !exited) return;
      if (terminating && !sigkillSent && !groupGone) {
        // The direct child is gone but a grandchild may still be alive; we promised to take the
        // whole group down, so wait for it to vanish or for the SIGKILL.
        if (!probing && pgid !== undefined) {
          probing = true;
          void groupHasLiveMembers(pgid).then((alive) => {
            probing = false;
            if (!alive) {
              groupGone = true;
              maybeFinish();
            }
          });
        }
        return;
      }
      if (openStreams === 0) finish();
      else if (cancelSettle === undefined) cancelSettle = clock.setTimer(STREAM_SETTLE_MS, finish);
    };

    const poll = (): void => {
      cancelPoll = clock.setTimer(GROUP_POLL_MS, () => {
        if (done) return;
        maybeFinish();
        poll();
      });
    };

    /** SIGKILL now, then give the kernel abandonGraceMs to reap the process before we stop waiting. */
    const kill = (): void => {
      if (sigkillSent) return;
      cancelGrace();
      // Re-check first: once the group is gone its id can be reused by an unrelated one.
      if (groupExists()) killGroup('SIGKILL');
      sigkillSent = true;
      cancelAbandon = clock.setTimer(abandonGraceMs, () => {
        if (done) return;
        if (exited) {
          // Reaped, but a lingering process still holds the output pipes: stop capturing now,
          // this is the run's hard end.
          finish();
          return;
        }
        abandoned = true;
        void readProcState(pgid).then((state) => {
          if (abandoned) procState = state;
          finish();
        });
      });
      maybeFinish();
    };

    const onTimeout = (): void => {
      if (terminating || exited) return;
      terminating = true;
      timedOut = true;
      killGroup('SIGTERM');
      cancelGrace = clock.setTimer(killGraceMs, kill);
      poll();
    };

    const onAbort = (): void => {
      if (done || sigkillSent) return;
      // Exited in time and only settling its output: there is nothing left to kill.
      if (exited && !terminating) return;
      aborted = true;
      if (!terminating) {
        terminating = true;
        poll();
      }
      kill();
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });

    const wire = (stream: Readable | null, cap: BoundedCapture): void => {
      if (!stream) {
        openStreams--;
        return;
      }
      let closed = false;
      stream.on('data', (chunk: Buffer) => cap.push(chunk));
      const onClose = (): void => {
        if (closed) return;
        closed = true;
        openStreams--;
        maybeFinish();
      };
      stream.on('end', onClose);
      stream.on('close', onClose);
      stream.on('error', onClose);
    };
    wire(child.stdout, out);
    wire(child.stderr, errCap);

    child.on('error', (err: NodeJS.ErrnoException) => {
      // Only spawn failures reach here: we never call child.kill() and have no stdin to write.
      if (exited) return;
      spawnError = err.code ? `${err.code} (${err.message})` : err.message;
      spawnErrorCode = err.code;
      exited = true;
      openStreams = 0;
      terminating = false;
      finish();
    });

    child.on('exit', (code, sig) => {
      if (exited) return;
      exited = true;
      exitCode = code;
      exitSignal = sig;
      // Died while we were reading its /proc state to report it abandoned: it is not.
      abandoned = false;
      procState = undefined;
      // Finished within its time: the timeout no longer applies.
      if (!terminating) cancelTimeout();
      maybeFinish();
    });

    cancelTimeout = clock.setTimer(opts.timeoutMs, onTimeout);
  });
}

/** The `State:` line of /proc/<pid>/status ("D (disk sleep)"), or undefined if unreadable. */
async function readProcState(pid: number | undefined): Promise<string | undefined> {
  if (pid === undefined) return undefined;
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    return /^State:\s*(.+)$/m.exec(status)?.[1]?.trim();
  } catch {
    return undefined;
  }
}

/**
 * Whether any process of the group is still running. kill(-pgid, 0) alone is not enough: it also
 * succeeds while members are zombies, and orphaned grandchildren stay zombies for as long as
 * nothing reaps them (a container whose PID 1 is not an init), which would make every timed-out
 * hook wait out the whole kill grace. On Linux we therefore look at the members' states in /proc.
 */
async function groupHasLiveMembers(pgid: number): Promise<boolean> {
  try {
    process.kill(-pgid, 0);
  } catch {
    return false;
  }
  if (process.platform !== 'linux') return true;
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return true;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    let stat: string;
    try {
      stat = await readFile(`/proc/${e}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // "pid (comm) state ppid pgrp ...": comm may contain spaces and parentheses, hence lastIndexOf.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === pgid && fields[0] !== 'Z' && fields[0] !== 'X') return true;
  }
  return false;
}

/**
 * Throws unless the command exited 0: HookTimeoutError when it timed out, HookFailedError for a
 * non-zero exit, death by signal, abort, or failure to start. Messages name the command, what
 * happened, the duration and the end of its stderr (or stdout, when stderr is empty); for an
 * abandoned process also that it did not die after SIGKILL, its pid and its state.
 */
export function assertSucceeded(r: CommandResult): void {
  if (r.spawnError !== undefined) {
    throw new HookFailedError(`${r.what} \`${r.command}\` could not be started: ${r.spawnError}`);
  }
  const output = outputTail(r);
  const name = `${r.what} \`${r.command}\``;
  if (r.abandoned) {
    const how = r.timedOut ? `timed out after ${r.timeoutMs} ms` : 'was aborted';
    const state = r.procState !== undefined ? `, state ${r.procState}` : '';
    const message =
      `${name} ${how} and did not die after SIGKILL (pid ${r.pid ?? '?'}${state}); ` +
      `stopped waiting for it after ${r.durationMs} ms, it may still be running${output}`;
    throw r.timedOut ? new HookTimeoutError(message) : new HookFailedError(message);
  }
  if (r.timedOut) {
    const how = r.killSignals.includes('SIGKILL')
      ? 'SIGTERM, then SIGKILL'
      : r.killSignals.length > 0
        ? 'SIGTERM'
        : 'already gone';
    throw new HookTimeoutError(`${name} timed out after ${r.timeoutMs} ms and was killed (${how})${output}`);
  }
  if (r.aborted) {
    const killed = r.killSignals.includes('SIGKILL') ? ' and killed (SIGKILL)' : '';
    throw new HookFailedError(`${name} was aborted after ${r.durationMs} ms${killed}${output}`);
  }
  if (r.exitCode === 0) return;
  const how =
    r.exitCode !== null ? `exited with code ${r.exitCode}` : `was killed by signal ${r.signal ?? '?'}`;
  throw new HookFailedError(`${name} ${how} after ${r.durationMs} ms${output}`);
}

const MESSAGE_TAIL_CHARS = 500;

function outputTail(r: CommandResult): string {
  const pick =
    r.stderr.trim() !== '' ? ['stderr', r.stderr] : r.stdout.trim() !== '' ? ['stdout', r.stdout] : null;
  if (!pick) return '; no output';
  const text = pick[1]!.trim();
  const tail = text.length > MESSAGE_TAIL_CHARS ? '...' + text.slice(-MESSAGE_TAIL_CHARS) : text;
  return `; ${pick[0]}: ${tail}`;
}

/** Printable form of a command, quoting argv elements a shell would split, for messages only. */
export function printable(cmd: Command): string {
  const s = typeof cmd === 'string' ? cmd : cmd.map(quoteArg).join(' ');
  return s.length > 300 ? s.slice(0, 300) + '...' : s;
}

function quoteArg(a: string): string {
  if (a !== '' && /^[A-Za-z0-9_./:=@%+,-]+$/.test(a)) return a;
  return `'${a.replace(/'/g, `'\\''`)}'`;
}

function notRun(base: Base): CommandResult {
  return {
    ...base,
    exitCode: null,
    signal: null,
    stdout: '',
    stderr: '',
    truncated: false,
    timedOut: false,
    aborted: false,
    abandoned: false,
    durationMs: 0,
    stdoutBytes: 0,
    stderrBytes: 0,
  };
}

function failedToStart(base: Base, durationMs: number, reason: string): CommandResult {
  return {
    ...notRun(base),
    stderr: `${base.what} \`${base.command}\` could not be started: ${reason}`,
    durationMs,
    spawnError: reason,
  };
}

/**
 * Keeps the first bytes of a stream and a short rolling tail, dropping the middle: the head shows
 * what the hook set out to do, the tail usually holds the error it died with. Memory stays at
 * `max` bytes however much the child prints.
 */
class BoundedCapture {
  private readonly headMax: number;
  private readonly tailMax: number;
  private head: Buffer[] = [];
  private headLen = 0;
  private tail: Buffer = Buffer.alloc(0);
  total = 0;

  constructor(max: number) {
    this.tailMax = Math.min(4096, Math.floor(max / 4));
    this.headMax = Math.max(0, max - this.tailMax);
  }

  get truncated(): boolean {
    return this.total > this.headMax + this.tailMax;
  }

  push(chunk: Buffer): void {
    this.total += chunk.length;
    let rest = chunk;
    if (this.headLen < this.headMax) {
      const take = Math.min(this.headMax - this.headLen, rest.length);
      // Copy: a subarray would pin the whole (up to 64 KiB) pipe chunk in memory.
      this.head.push(Buffer.from(rest.subarray(0, take)));
      this.headLen += take;
      rest = rest.subarray(take);
    }
    if (rest.length === 0 || this.tailMax === 0) return;
    if (rest.length >= this.tailMax) {
      this.tail = Buffer.from(rest.subarray(rest.length - this.tailMax));
    } else {
      const keep = this.tail.subarray(Math.max(0, this.tail.length - (this.tailMax - rest.length)));
      this.tail = Buffer.concat([keep, rest]);
    }
  }

  text(): string {
    const head = Buffer.concat(this.head).toString('utf8');
    if (this.tail.length === 0) return head;
    if (!this.truncated) return head + this.tail.toString('utf8');
    const dropped = this.total - this.headLen - this.tail.length;
    return `${head}\n[... hafc: ${dropped} bytes omitted ...]\n${this.tail.toString('utf8')}`;
  }
}
