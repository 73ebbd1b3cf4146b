import { describe, expect, it } from 'vitest';
import { SuspendAwareTime, systemClock } from '../../src/clock.js';

/** Three clocks the test moves by hand: monotonic, wall, and boot time (counts suspend). */
function clocks(withBoot = true) {
  const c = { mono: 1000, wall: 1_700_000_000_000, boot: 50_000 };
  const time = new SuspendAwareTime(
    () => c.mono,
    () => c.wall,
    () => (withBoot ? c.boot : null),
  );
  const run = (ms: number) => {
    c.mono += ms;
    c.wall += ms;
    c.boot += ms;
  };
  return { c, time, run };
}

describe('SuspendAwareTime', () => {
  it('is the monotonic clock while nothing unusual happens', () => {
    const { time, run } = clocks();
    const t0 = time.now();
    run(1234);
    expect(time.now() - t0).toBe(1234);
    expect(time.suspendedMs).toBe(0);
  });

  it('adds back a host suspend (boot time and wall time ran on, monotonic did not)', () => {
    const { c, time, run } = clocks();
    const t0 = time.now();
    run(100);
    c.wall += 30_000; // suspended for 30 s
    c.boot += 30_000;
    const t1 = time.now();
    expect(t1 - t0).toBeGreaterThanOrEqual(100 + 30_000 - 50);
    expect(t1 - t0).toBeLessThanOrEqual(100 + 30_000);
    run(10);
    expect(time.now() - t1).toBe(10); // and only once
  });

  it('an NTP step of the wall clock alone is not a suspend, forward or back', () => {
    const { c, time, run } = clocks();
    const t0 = time.now();
    c.wall += 60_000;
    run(5);
    expect(time.now() - t0).toBe(5);
    c.wall -= 120_000;
    run(5);
    expect(time.now() - t0).toBe(10);
    expect(time.suspendedMs).toBe(0);
  });

  it('without a boot clock, a forward wall jump counts as suspended (it can only shorten a lease)', () => {
    const { c, time, run } = clocks(false);
    const t0 = time.now();
    c.wall += 10_000;
    run(1);
    expect(time.now() - t0).toBeGreaterThanOrEqual(10_000 - 50);
  });

  it('never goes back', () => {
    const { c, time, run } = clocks();
    let last = time.now();
    for (let i = 0; i < 50; i++) {
      run(7);
      if (i % 7 === 0) c.wall += (i % 2 ? 1 : -1) * 5000;
      if (i % 11 === 0) {
        c.wall += 3000;
        c.boot += 3000;
      }
      const t = time.now();
      expect(t).toBeGreaterThanOrEqual(last);
      last = t;
    }
  });

  it('the system clock is performance.now() while the host runs', () => {
    const a = systemClock.now();
    const p = performance.now();
    expect(Math.abs(a - p)).toBeLessThan(5);
  });
});
