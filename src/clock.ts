import { readFileSync } from 'node:fs';

/**
 * The seam for time. Production code reads time and sleeps only through a Clock so that unit
 * tests can drive it with a fake. `now()` is MONOTONIC milliseconds (never wall time): every
 * safety deadline (lease, demotion, back-off) is computed on it, so an NTP step cannot shorten
 * or stretch a deadline; and it counts time the host spent suspended (see SuspendAwareTime).
 *
 * How the rules apply where a deadline has to reach something that is not ours:
 * - A timeout is an AbortController that `setTimer` aborts, never `AbortSignal.timeout()`, which
 *   runs on Node's own timer and would ignore a fake clock (hook runner, http client, fencer).
 * - node:http and node:net get no signal and no socket timeout of their own: we listen for the
 *   abort and destroy the request or socket ourselves, so the clock decides when they end.
 * - What the kernel and libc time by themselves is outside any Clock: the TCP connect timeout
 *   (ETIMEDOUT after about two minutes on Linux), getaddrinfo's resolver timeouts (a lookup in
 *   libuv's thread pool cannot be cancelled; an abort only stops us waiting for it), and how
 *   long a process takes to die after SIGKILL. Our deadlines bound how long we WAIT for these,
 *   never how long they run; the runner's abandon grace is the same idea for a process.
 */
export interface Clock {
  /** Monotonic milliseconds since an arbitrary origin. */
  now(): number;
  /** Resolves after `ms`; rejects with the signal's reason if aborted first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** A cancellable one-shot timer; returns a function that cancels it. */
  setTimer(ms: number, fn: () => void): () => void;
}

/**
 * CLOCK_MONOTONIC does not advance while the host (or VM) is suspended, so a lease counted on it
 * alone would survive a suspend that the ZooKeeper servers (which kept running) did not: on
 * resume, an active node would think it still had lease left long after its session expired. So
 * `now()` adds back the time the host spent suspended, measured against CLOCK_BOOTTIME (Linux's
 * /proc/uptime, which counts suspend). The check is cheap (two clock reads) unless the wall clock
 * moved ahead of the monotonic one, which is what a resume looks like; an NTP step forward looks
 * the same, costs one read of /proc/uptime, and is told apart by it. Elsewhere than Linux (no
 * /proc/uptime) a forward wall-clock jump counts as suspended time: it only shortens leases.
 *
 * Timers (setTimeout) do not count suspended time either; the session's frequent probe timers
 * (and every reply) look at now() and so notice a resume within one probe interval.
 */
export class SuspendAwareTime {
  private readonly mono0: number;
  private readonly wall0: number;
  private readonly boot0: number | null;
  private suspended = 0;
  private lastSkew = 0;

  constructor(
    private readonly mono: () => number = () => performance.now(),
    private readonly wall: () => number = () => Date.now(),
    private readonly boot: () => number | null = readBootTimeMs,
  ) {
    this.mono0 = mono();
    this.wall0 = wall();
    this.boot0 = boot();
  }

  /** Monotonic milliseconds, including any time the host spent suspended. Never goes back. */
  now(): number {
    const m = this.mono();
    // How far the wall clock ran ahead of the monotonic one since we started.
    const skew = this.wall() - this.wall0 - (m - this.mono0);
    if (skew - this.lastSkew > SUSPEND_TOLERANCE_MS) {
      this.lastSkew = skew;
      const b = this.boot();
      const gone =
        b !== null && this.boot0 !== null
          ? b - this.boot0 - (m - this.mono0) // boot time runs on through a suspend
          : skew;
      if (gone - SUSPEND_TOLERANCE_MS > this.suspended) this.suspended = gone - SUSPEND_TOLERANCE_MS;
    } else if (skew < this.lastSkew) {
      this.lastSkew = skew; // the wall clock was stepped back: nothing suspended
    }
    return m + this.suspended;
  }

  /** Milliseconds of host suspend counted so far. */
  get suspendedMs(): number {
    return this.suspended;
  }
}

/** /proc/uptime has 10 ms resolution; wall and monotonic clocks also drift a little under NTP. */
const SUSPEND_TOLERANCE_MS = 50;

function readBootTimeMs(): number | null {
  try {
    const text = readFileSync('/proc/uptime', 'utf8');
    const seconds = Number(text.split(' ')[0]);
    return Number.isFinite(seconds) ? seconds * 1000 : null;
  } catch {
    return null;
  }
}

const systemTime = new SuspendAwareTime();

export const systemClock: Clock = {
  now: () => systemTime.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal?.reason);
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
  setTimer: (ms, fn) => {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  },
};
