/**
 * The seam for time. Production code reads time and sleeps only through a Clock so that unit
 * tests can drive it with a fake. `now()` is MONOTONIC milliseconds (never wall time): every
 * safety deadline (lease, demotion, back-off) is computed on it, so an NTP step cannot shorten
 * or stretch a deadline.
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

export const systemClock: Clock = {
  now: () => performance.now(),
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
