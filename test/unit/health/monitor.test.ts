import { afterEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../../support/fake-clock.js';
import { ConfigError, HookTimeoutError } from '../../../src/errors.js';
import type { LogFields, Logger } from '../../../src/log.js';
import type { HealthCheck } from '../../../src/health/checks.js';
import { HealthTimeoutError, HealthUnhealthyError } from '../../../src/health/errors.js';
import {
  HealthMonitor,
  type HealthChangeDetail,
  type HealthMonitorOptions,
  type HealthResult,
  type HealthState,
} from '../../../src/health/monitor.js';

/**
 * What the fake check does on one call:
 * ok / fail (EHEALTH_UNHEALTHY) / slow-timeout (EHEALTH_TIMEOUT thrown by the check itself) /
 * hang (never settles, ignores its signal) / or a custom function.
 */
type Step = 'ok' | 'fail' | 'check-timeout' | 'hang' | ((signal: AbortSignal) => Promise<void>);

interface Call {
  at: number;
  signal: AbortSignal;
}

function scripted(clock: FakeClock, steps: Step[], after: Step = 'ok') {
  const calls: Call[] = [];
  const check: HealthCheck = (signal) => {
    calls.push({ at: clock.now(), signal });
    const step = steps.shift() ?? after;
    if (typeof step === 'function') return step(signal);
    switch (step) {
      case 'ok':
        return Promise.resolve();
      case 'fail':
        return Promise.reject(new HealthUnhealthyError(`fake answered 500 (call ${calls.length})`));
      case 'check-timeout':
        return Promise.reject(new HealthTimeoutError(`fake did not answer (call ${calls.length})`));
      case 'hang':
        return new Promise<void>(() => {});
    }
  };
  return { check, calls };
}

interface LogLine {
  level: string;
  msg: string;
  fields?: LogFields;
}

function recordingLogger(lines: LogLine[]): Logger {
  const make = (): Logger => ({
    debug: (msg, fields) => lines.push({ level: 'debug', msg, fields }),
    info: (msg, fields) => lines.push({ level: 'info', msg, fields }),
    warn: (msg, fields) => lines.push({ level: 'warn', msg, fields }),
    error: (msg, fields) => lines.push({ level: 'error', msg, fields }),
    child: () => make(),
  });
  return make();
}

type Change = [HealthState, HealthState, HealthChangeDetail];

let monitors: HealthMonitor[] = [];

afterEach(async () => {
  await Promise.all(monitors.map((m) => m.stop()));
  monitors = [];
});

function setup(steps: Step[], opts: Partial<HealthMonitorOptions> = {}, after: Step = 'ok') {
  const clock = new FakeClock();
  const fake = scripted(clock, steps, after);
  const logs: LogLine[] = [];
  const monitor = new HealthMonitor({
    check: fake.check,
    intervalMs: 1000,
    timeoutMs: 500,
    fall: 3,
    rise: 2,
    clock,
    logger: recordingLogger(logs),
    ...opts,
  });
  monitors.push(monitor);
  const changes: Change[] = [];
  monitor.onChange((next, prev, detail) => changes.push([next, prev, detail]));
  const results: HealthResult[] = [];
  monitor.onResult((r) => results.push(r));
  const transitions = () => changes.map(([next, prev]) => `${prev}->${next}`);
  return { clock, monitor, calls: fake.calls, changes, results, logs, transitions };
}

/** Starts the monitor and lets the first check's result land. */
async function started(t: ReturnType<typeof setup>): Promise<void> {
  t.monitor.start();
  await t.clock.advance(0);
}

describe('HealthMonitor rise/fall', () => {
  it('stays INITIALIZING until `rise` consecutive successes, then goes HEALTHY once', async () => {
    const t = setup([]);
    expect(t.monitor.state).toBe('INITIALIZING');
    await started(t);
    expect(t.calls).toHaveLength(1);
    expect(t.monitor.state).toBe('INITIALIZING');
    expect(t.changes).toEqual([]);

    await t.clock.advance(1000);
    expect(t.calls).toHaveLength(2);
    expect(t.monitor.state).toBe('HEALTHY');
    expect(t.changes).toEqual([
      ['HEALTHY', 'INITIALIZING', { reason: '2 consecutive successful checks', consecutive: 2 }],
    ]);

    await t.clock.advance(5000);
    expect(t.calls).toHaveLength(7);
    expect(t.changes).toHaveLength(1);
  });

  it('with rise 1 goes HEALTHY on the first success (Hadoop behaviour)', async () => {
    const t = setup([], { rise: 1 });
    await started(t);
    expect(t.monitor.state).toBe('HEALTHY');
    expect(t.transitions()).toEqual(['INITIALIZING->HEALTHY']);
  });

  it('leaves INITIALIZING on the first failure, without waiting for `fall`', async () => {
    const t = setup(['fail']);
    await started(t);
    expect(t.monitor.state).toBe('UNHEALTHY');
    expect(t.changes[0]?.[2]).toMatchObject({ consecutive: 1, reason: 'fake answered 500 (call 1)' });
    expect(t.changes[0]?.[2].error?.code).toBe('EHEALTH_UNHEALTHY');
  });

  it('goes HEALTHY -> UNHEALTHY only after `fall` consecutive failures', async () => {
    const t = setup(['ok', 'ok', 'fail', 'fail', 'fail']);
    await started(t);
    await t.clock.advance(1000); // HEALTHY
    await t.clock.advance(1000); // fail 1
    await t.clock.advance(1000); // fail 2
    expect(t.monitor.state).toBe('HEALTHY');
    await t.clock.advance(1000); // fail 3
    expect(t.monitor.state).toBe('UNHEALTHY');
    expect(t.transitions()).toEqual(['INITIALIZING->HEALTHY', 'HEALTHY->UNHEALTHY']);
    expect(t.changes[1]?.[2]).toMatchObject({ consecutive: 3, reason: 'fake answered 500 (call 5)' });
  });

  it('after `fall` failures the state reflects the kind of the LAST failure', async () => {
    const a = setup(['ok', 'ok', 'fail', 'fail', 'check-timeout']);
    await started(a);
    await a.clock.advance(4000);
    expect(a.transitions()).toEqual(['INITIALIZING->HEALTHY', 'HEALTHY->NOT_RESPONDING']);

    const b = setup(['ok', 'ok', 'check-timeout', 'check-timeout', 'fail']);
    await started(b);
    await b.clock.advance(4000);
    expect(b.transitions()).toEqual(['INITIALIZING->HEALTHY', 'HEALTHY->UNHEALTHY']);
  });

  it('a HookTimeoutError from a check counts as not responding', async () => {
    const t = setup([() => Promise.reject(new HookTimeoutError('check hook timed out after 5000 ms'))]);
    await started(t);
    expect(t.monitor.state).toBe('NOT_RESPONDING');
  });

  it('moves between UNHEALTHY and NOT_RESPONDING as the failure kind changes', async () => {
    const t = setup(['fail', 'check-timeout', 'check-timeout', 'fail']);
    await started(t);
    await t.clock.advance(3000);
    expect(t.transitions()).toEqual([
      'INITIALIZING->UNHEALTHY',
      'UNHEALTHY->NOT_RESPONDING',
      'NOT_RESPONDING->UNHEALTHY',
    ]);
  });

  it('recovers UNHEALTHY -> HEALTHY after `rise` consecutive successes, a failure resets the count', async () => {
    const t = setup(['fail', 'ok', 'fail', 'ok', 'ok']);
    await started(t);
    await t.clock.advance(3000);
    expect(t.monitor.state).toBe('UNHEALTHY');
    await t.clock.advance(1000);
    expect(t.monitor.state).toBe('HEALTHY');
    expect(t.transitions()).toEqual(['INITIALIZING->UNHEALTHY', 'UNHEALTHY->HEALTHY']);
    expect(t.changes[1]?.[2]).toEqual({ reason: '2 consecutive successful checks', consecutive: 2 });
  });

  it('recovers NOT_RESPONDING -> HEALTHY after `rise` successes', async () => {
    const t = setup(['ok', 'ok', 'hang', 'hang', 'hang', 'ok', 'ok'], { rise: 2, fall: 3 });
    await started(t);
    await t.clock.advance(4000);
    expect(t.monitor.state).toBe('HEALTHY'); // third hang started at 4000, times out at 4500
    await t.clock.advance(500);
    expect(t.monitor.state).toBe('NOT_RESPONDING');
    await t.clock.advance(500);
    expect(t.monitor.state).toBe('NOT_RESPONDING');
    await t.clock.advance(1000);
    expect(t.transitions()).toEqual([
      'INITIALIZING->HEALTHY',
      'HEALTHY->NOT_RESPONDING',
      'NOT_RESPONDING->HEALTHY',
    ]);
  });

  it('flapping inside the thresholds fires no callbacks', async () => {
    const flap: Step[] = [];
    for (let i = 0; i < 20; i++) flap.push('fail', 'fail', 'ok');
    const healthy = setup(['ok', 'ok', ...flap]);
    await started(healthy);
    await healthy.clock.advance(61_000);
    expect(healthy.calls.length).toBeGreaterThan(60);
    expect(healthy.transitions()).toEqual(['INITIALIZING->HEALTHY']);

    const sick: Step[] = [];
    for (let i = 0; i < 20; i++) sick.push('ok', 'fail');
    const unhealthy = setup(['fail', ...sick], {}, 'fail');
    await started(unhealthy);
    await unhealthy.clock.advance(45_000);
    expect(unhealthy.transitions()).toEqual(['INITIALIZING->UNHEALTHY']);
  });

  it('fires listeners in order, each prev equal to the previous next', async () => {
    const t = setup(['ok', 'ok', 'fail', 'fail', 'fail', 'ok', 'ok', 'hang', 'fail', 'fail', 'ok', 'ok'], {
      rise: 2,
      fall: 3,
    });
    await started(t);
    await t.clock.advance(12_000);
    let prev: HealthState = 'INITIALIZING';
    for (const [next, p] of t.changes) {
      expect(p).toBe(prev);
      expect(next).not.toBe(p);
      prev = next;
    }
    expect(t.transitions()).toEqual([
      'INITIALIZING->HEALTHY',
      'HEALTHY->UNHEALTHY',
      'UNHEALTHY->HEALTHY',
      'HEALTHY->UNHEALTHY',
      'UNHEALTHY->HEALTHY',
    ]);
  });
});

describe('HealthMonitor timing', () => {
  it('starts checks intervalMs apart, measured from the start of the previous check', async () => {
    const t = setup([], { intervalMs: 1000, timeoutMs: 800 }, (signal) => clockSleep(t.clock, 300, signal));
    await started(t);
    await t.clock.advance(3500);
    expect(t.calls.map((c) => c.at)).toEqual([0, 1000, 2000, 3000]);
    expect(t.results.map((r) => r.durationMs)).toEqual([300, 300, 300, 300]);
  });

  it('runs a check slower than the interval back to back, never overlapping', async () => {
    let running = 0;
    let maxRunning = 0;
    const t = setup([], { intervalMs: 1000, timeoutMs: 5000 }, async (signal) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      try {
        await clockSleep(t.clock, 1500, signal);
      } finally {
        running--;
      }
    });
    await started(t);
    await t.clock.advance(6100);
    expect(t.calls.map((c) => c.at)).toEqual([0, 1500, 3000, 4500, 6000]);
    expect(maxRunning).toBe(1);
  });

  it('times out a hung check: aborts its signal, reports NOT_RESPONDING, keeps the schedule', async () => {
    const t = setup(['hang'], { intervalMs: 1000, timeoutMs: 500, rise: 1 });
    await started(t);
    expect(t.calls[0]?.signal.aborted).toBe(false);
    await t.clock.advance(499);
    expect(t.monitor.state).toBe('INITIALIZING');
    await t.clock.advance(1);
    expect(t.calls[0]?.signal.aborted).toBe(true);
    expect((t.calls[0]?.signal.reason as { code?: string }).code).toBe('EHEALTH_TIMEOUT');
    expect(t.monitor.state).toBe('NOT_RESPONDING');
    expect(t.monitor.lastResult).toMatchObject({ ok: false, kind: 'timeout', durationMs: 500, at: 500 });
    expect(t.monitor.lastResult?.error?.code).toBe('EHEALTH_TIMEOUT');
    expect(t.monitor.lastResult?.error?.message).toBe('health check did not answer within 500 ms');

    await t.clock.advance(500);
    expect(t.calls.map((c) => c.at)).toEqual([0, 1000]);
    expect(t.monitor.state).toBe('HEALTHY');
  });

  it('with timeoutMs above intervalMs, a hung check delays the next start to its timeout', async () => {
    const t = setup(['hang', 'hang'], { intervalMs: 1000, timeoutMs: 1500 });
    await started(t);
    await t.clock.advance(3500);
    expect(t.calls.map((c) => c.at)).toEqual([0, 1500, 3000]);
  });

  it('ignores a result that arrives after the timeout', async () => {
    let lateResolve: (() => void) | undefined;
    const t = setup([() => new Promise<void>((resolve) => (lateResolve = resolve)), 'fail'], { rise: 1 });
    await started(t);
    await t.clock.advance(500);
    expect(t.monitor.state).toBe('NOT_RESPONDING');
    lateResolve?.();
    await t.clock.advance(0);
    expect(t.monitor.state).toBe('NOT_RESPONDING');
    expect(t.results).toHaveLength(1);
    expect(t.logs.some((l) => l.msg.includes('after it was abandoned'))).toBe(true);
    await t.clock.advance(500);
    expect(t.monitor.state).toBe('UNHEALTHY');
    expect(t.results).toHaveLength(2);
  });

  it('reports every result to onResult with its duration', async () => {
    const t = setup(['ok', 'fail', 'hang', (s) => clockSleep(t.clock, 120, s)]);
    await started(t);
    await t.clock.advance(3200);
    expect(t.results.map((r) => [r.kind, r.ok, r.durationMs, r.at])).toEqual([
      ['ok', true, 0, 0],
      ['unhealthy', false, 0, 1000],
      ['timeout', false, 500, 2500],
      ['ok', true, 120, 3120],
    ]);
    expect(t.results[1]?.error?.message).toBe('fake answered 500 (call 2)');
  });
});

describe('HealthMonitor lifecycle', () => {
  it('stop() during a hung check aborts it and resolves; no callbacks after', async () => {
    const t = setup(['ok', 'ok', 'hang'], { timeoutMs: 900 });
    await started(t);
    await t.clock.advance(2000);
    expect(t.calls).toHaveLength(3);
    const hung = t.calls[2]!;
    expect(hung.signal.aborted).toBe(false);
    let stopped = false;
    const p = t.monitor.stop().then(() => (stopped = true));
    await t.clock.advance(0);
    expect(stopped).toBe(true);
    await p;
    expect(hung.signal.aborted).toBe(true);
    await t.clock.advance(10_000);
    expect(t.calls).toHaveLength(3);
    expect(t.transitions()).toEqual(['INITIALIZING->HEALTHY']);
    expect(t.results).toHaveLength(2);
  });

  it('stop() while sleeping between checks resolves at once; stop is idempotent', async () => {
    const t = setup([]);
    await started(t);
    await Promise.all([t.monitor.stop(), t.monitor.stop()]);
    await t.monitor.stop();
    await t.clock.advance(10_000);
    expect(t.calls).toHaveLength(1);
  });

  it('stop() before start() resolves; start() after stop() is refused', async () => {
    const t = setup([]);
    await t.monitor.stop();
    expect(() => t.monitor.start()).toThrow(/start\(\) after stop\(\)/);
    expect(t.calls).toHaveLength(0);
  });

  it('start() twice runs one loop', async () => {
    const t = setup([]);
    t.monitor.start();
    t.monitor.start();
    await t.clock.advance(2500);
    expect(t.calls.map((c) => c.at)).toEqual([0, 1000, 2000]);
  });

  it('a listener that throws is logged and does not stop the loop or other listeners', async () => {
    const t = setup(['ok', 'ok', 'fail', 'fail', 'fail', 'ok', 'ok']);
    const seen: string[] = [];
    t.monitor.onChange(() => {
      throw new Error('listener bug');
    });
    t.monitor.onChange(async () => {
      throw new Error('async listener bug');
    });
    t.monitor.onChange((next) => seen.push(next));
    t.monitor.onResult(() => {
      throw new Error('metrics bug');
    });
    await started(t);
    await t.clock.advance(6000);
    expect(t.transitions()).toEqual(['INITIALIZING->HEALTHY', 'HEALTHY->UNHEALTHY', 'UNHEALTHY->HEALTHY']);
    expect(seen).toEqual(['HEALTHY', 'UNHEALTHY', 'HEALTHY']);
    const errors = t.logs.filter((l) => l.level === 'error').map((l) => l.msg);
    expect(errors.filter((m) => m === 'health onChange listener threw')).toHaveLength(3);
    expect(errors.filter((m) => m === 'health onChange listener failed')).toHaveLength(3);
    expect(errors.filter((m) => m === 'health onResult listener threw')).toHaveLength(7);
  });

  it('an unsubscribed listener is not called again', async () => {
    const t = setup(['ok', 'ok', 'fail', 'fail', 'fail']);
    const seen: string[] = [];
    const off = t.monitor.onChange((next) => {
      seen.push(next);
      off();
    });
    await started(t);
    await t.clock.advance(4000);
    expect(seen).toEqual(['HEALTHY']);
    expect(t.transitions()).toEqual(['INITIALIZING->HEALTHY', 'HEALTHY->UNHEALTHY']);
  });

  it('goes MONITOR_FAILED on a setup error (ECONFIG), and stops checking', async () => {
    const t = setup(['ok', 'ok', () => Promise.reject(new ConfigError('health.check.command: bad'))]);
    await started(t);
    await t.clock.advance(2000);
    expect(t.monitor.state).toBe('MONITOR_FAILED');
    expect(t.transitions()).toEqual(['INITIALIZING->HEALTHY', 'HEALTHY->MONITOR_FAILED']);
    expect(t.changes[1]?.[2].error?.code).toBe('ECONFIG');
    expect(t.changes[1]?.[2].reason).toBe('health.check.command: bad');
    await t.clock.advance(10_000);
    expect(t.calls).toHaveLength(3);
    await t.monitor.stop();
    expect(t.monitor.state).toBe('MONITOR_FAILED');
  });

  it('treats a plain object with code ECONFIG as a setup error too', async () => {
    const t = setup([() => Promise.reject({ code: 'ECONFIG', message: 'no' })]);
    await started(t);
    expect(t.monitor.state).toBe('MONITOR_FAILED');
    expect(t.monitor.lastResult?.error?.code).toBe('ECONFIG');
  });

  it('goes MONITOR_FAILED when its own loop breaks (here: a clock whose sleep fails)', async () => {
    class BrokenClock extends FakeClock {
      override sleep(): Promise<void> {
        return Promise.reject(new Error('clock broke'));
      }
    }
    const clock = new BrokenClock();
    const logs: LogLine[] = [];
    const monitor = new HealthMonitor({
      check: () => Promise.resolve(),
      intervalMs: 1000,
      timeoutMs: 500,
      fall: 3,
      rise: 1,
      clock,
      logger: recordingLogger(logs),
    });
    monitors.push(monitor);
    const changes: string[] = [];
    monitor.onChange((next, prev, d) => changes.push(`${prev}->${next}: ${d.reason}`));
    monitor.start();
    await clock.advance(0);
    expect(changes).toEqual([
      'INITIALIZING->HEALTHY: 1 consecutive successful checks',
      'HEALTHY->MONITOR_FAILED: health monitor loop failed: clock broke',
    ]);
    await monitor.stop();
  });

  it('rejects bad options with a message naming the option and the value', () => {
    const clock = new FakeClock();
    const base = {
      check: () => Promise.resolve(),
      intervalMs: 1000,
      timeoutMs: 500,
      fall: 3,
      rise: 2,
      clock,
    };
    const logger = recordingLogger([]);
    expect(() => new HealthMonitor({ ...base, logger, fall: 0 })).toThrow(
      'health.fall: must be a positive integer, got 0',
    );
    expect(() => new HealthMonitor({ ...base, logger, rise: 1.5 })).toThrow(
      'health.rise: must be a positive integer, got 1.5',
    );
    expect(() => new HealthMonitor({ ...base, logger, intervalMs: NaN })).toThrow(/health.intervalMs/);
    expect(() => new HealthMonitor({ ...base, logger, timeoutMs: -1 })).toThrow(/health.timeoutMs/);
    expect(() => new HealthMonitor({ ...base, logger, fall: 0 })).toThrow(ConfigError);
  });
});

describe('HealthMonitor survives whatever a check does', () => {
  const weird: [string, Step, string][] = [
    ['throws a string', () => Promise.reject('boom'), 'boom'],
    [
      'rejects with undefined',
      () => Promise.reject(undefined),
      'undefined (a check threw or rejected with no value)',
    ],
    ['rejects with null', () => Promise.reject(null), 'null'],
    ['rejects with an object', () => Promise.reject({ weird: true }), '{"weird":true}'],
    [
      'throws synchronously',
      () => {
        throw new TypeError('not a function');
      },
      'not a function',
    ],
    [
      'rejects with an object whose getters throw',
      () =>
        Promise.reject(
          Object.defineProperty({}, 'code', {
            get() {
              throw new Error('getter');
            },
          }),
        ),
      '{}',
    ],
  ];
  for (const [name, step, message] of weird) {
    it(`counts a check that ${name} as unhealthy and keeps going`, async () => {
      const t = setup([step, 'ok', 'ok']);
      await started(t);
      expect(t.monitor.state).toBe('UNHEALTHY');
      expect(t.monitor.lastResult?.error?.code).toBe('EHEALTH_UNHEALTHY');
      expect(t.monitor.lastResult?.error?.message).toBe(message);
      await t.clock.advance(2000);
      expect(t.monitor.state).toBe('HEALTHY');
    });
  }

  it('accepts a check that returns a non-promise', async () => {
    const t = setup([(() => undefined) as unknown as Step, 'ok'], { rise: 1 });
    await started(t);
    expect(t.monitor.state).toBe('HEALTHY');
  });

  it('ignores a check that rejects late, after its abort', async () => {
    const t = setup(
      [
        (signal) =>
          new Promise<void>((_resolve, reject) => {
            signal.addEventListener('abort', () => setTimeout(() => reject(new Error('late')), 0));
          }),
        'ok',
      ],
      { rise: 1 },
    );
    await started(t);
    await t.clock.advance(500);
    expect(t.monitor.state).toBe('NOT_RESPONDING');
    await new Promise((r) => setTimeout(r, 5));
    await t.clock.advance(500);
    expect(t.monitor.state).toBe('HEALTHY');
    expect(t.results.map((r) => r.kind)).toEqual(['timeout', 'ok']);
  });
});

/** A check body that takes `ms` on the fake clock and honours its signal. */
function clockSleep(clock: FakeClock, ms: number, signal: AbortSignal): Promise<void> {
  return clock.sleep(ms, signal);
}

describe('HealthMonitor.reconfigure (a reload)', () => {
  const settings = (check: HealthCheck, o: Partial<HealthMonitorOptions> = {}) => ({
    check,
    intervalMs: 1000,
    timeoutMs: 500,
    fall: 3,
    rise: 2,
    ...o,
  });

  it('keeps the state; the next check runs the new check one NEW interval after the last start', async () => {
    const t = setup([], { rise: 1 });
    await started(t);
    expect(t.monitor.state).toBe('HEALTHY');
    await t.clock.advance(100);
    const next = scripted(t.clock, []);
    t.monitor.reconfigure(settings(next.check, { intervalMs: 300, rise: 1 }));
    // The wait in progress (until t=1000) is cut short: the next start is 0 + 300.
    await t.clock.advance(199);
    expect(next.calls).toHaveLength(0);
    await t.clock.advance(1);
    expect(next.calls.map((c) => c.at)).toEqual([300]);
    await t.clock.advance(600);
    expect(next.calls.map((c) => c.at)).toEqual([300, 600, 900]);
    expect(t.calls).toHaveLength(1);
    expect(t.monitor.state).toBe('HEALTHY');
    expect(t.transitions()).toEqual(['INITIALIZING->HEALTHY']);
  });

  it('a longer interval takes effect for the wait in progress too', async () => {
    const t = setup([], { rise: 1 });
    await started(t);
    await t.clock.advance(100);
    t.monitor.reconfigure(settings(scripted(t.clock, []).check, { intervalMs: 5000 }));
    await t.clock.advance(4899);
    expect(t.calls).toHaveLength(1);
    expect(t.monitor.state).toBe('HEALTHY');
  });

  it('new fall and rise meet the streaks counted so far at the next result', async () => {
    const t = setup(['ok', 'fail'], { rise: 1, fall: 3 }, 'fail');
    await started(t);
    await t.clock.advance(1000);
    expect(t.monitor.state).toBe('HEALTHY'); // one failure of three
    const failing = scripted(t.clock, [], 'fail');
    t.monitor.reconfigure(settings(failing.check, { fall: 2, rise: 1 }));
    await t.clock.advance(1000);
    expect(t.monitor.state).toBe('UNHEALTHY'); // the second failure: two of the new two
  });

  it('a check in flight finishes under its old timeout', async () => {
    const t = setup(['hang'], { timeoutMs: 500 });
    await started(t);
    t.monitor.reconfigure(settings(scripted(t.clock, []).check, { timeoutMs: 900 }));
    await t.clock.advance(500);
    expect(t.monitor.lastResult?.kind).toBe('timeout');
    expect(t.monitor.lastResult?.durationMs).toBe(500);
  });

  it('invalid settings throw a ConfigError naming the value and change nothing', async () => {
    const t = setup([], { rise: 1 });
    await started(t);
    const other = scripted(t.clock, []);
    expect(() => t.monitor.reconfigure(settings(other.check, { fall: 0 }))).toThrow(
      'health.fall: must be a positive integer, got 0',
    );
    await t.clock.advance(1000);
    expect(other.calls).toHaveLength(0);
    expect(t.calls).toHaveLength(2);
  });

  it('a monitor stopped on MONITOR_FAILED checks again with a new check', async () => {
    const t = setup([() => Promise.reject(new ConfigError('health.check: no check command'))]);
    await started(t);
    expect(t.monitor.state).toBe('MONITOR_FAILED');
    await t.clock.advance(5000);
    expect(t.calls).toHaveLength(1);
    const fixed = scripted(t.clock, []);
    t.monitor.reconfigure(settings(fixed.check, { rise: 1 }));
    await t.clock.advance(0);
    expect(fixed.calls).toHaveLength(1);
    expect(t.monitor.state).toBe('HEALTHY');
    await t.clock.advance(2000);
    expect(fixed.calls).toHaveLength(3);
    // And a second reconfigure of a running monitor starts no second loop.
    t.monitor.reconfigure(settings(fixed.check, { rise: 1 }));
    await t.clock.advance(1000);
    expect(fixed.calls).toHaveLength(4);
  });

  it('after stop(), reconfigure starts nothing', async () => {
    const t = setup([() => Promise.reject(new ConfigError('bad'))]);
    await started(t);
    await t.monitor.stop();
    const fixed = scripted(t.clock, []);
    t.monitor.reconfigure(settings(fixed.check));
    await t.clock.advance(5000);
    expect(fixed.calls).toHaveLength(0);
  });
});

describe('HealthMonitor during a service transition (beginTransition)', () => {
  it('does not count timeouts of checks that overlap a transition; the streak resumes after it', async () => {
    const t = setup(['ok', 'ok'], { fall: 3 }, 'hang');
    await started(t);
    await t.clock.advance(1000);
    expect(t.monitor.state).toBe('HEALTHY');
    // A slow promotion: the daemon answers no health call until it is done.
    const ended = t.monitor.beginTransition();
    await t.clock.advance(5000); // checks from 2000 to 6000, four of them timed out by now
    expect(t.monitor.state).toBe('HEALTHY');
    expect(t.logs.filter((l) => l.msg.includes('timed out during a service transition'))).toHaveLength(4);
    ended();
    // The check that started while the transition was in flight is still excused; the next
    // ones count, and `fall` of them are NOT_RESPONDING as ever.
    await t.clock.advance(1000);
    expect(t.monitor.state).toBe('HEALTHY');
    await t.clock.advance(2000); // timeouts at 7500 and 8500 count
    expect(t.monitor.state).toBe('HEALTHY');
    await t.clock.advance(500); // and the third, at 9500
    expect(t.monitor.state).toBe('NOT_RESPONDING');
  });

  it('excuses a check during which a transition began and ended', async () => {
    const t = setup(['ok', 'ok', 'hang', 'ok'], { fall: 1 });
    await started(t);
    await t.clock.advance(1000);
    await t.clock.advance(1000); // the hanging check starts
    t.monitor.beginTransition()();
    await t.clock.advance(500); // it times out, after the transition ended
    expect(t.monitor.state).toBe('HEALTHY');
  });

  it('still counts a service that answers "unhealthy" during a transition', async () => {
    const t = setup(['ok', 'ok', 'fail', 'fail', 'fail'], { fall: 3 });
    await started(t);
    await t.clock.advance(1000);
    const ended = t.monitor.beginTransition();
    await t.clock.advance(3000);
    ended();
    expect(t.monitor.state).toBe('UNHEALTHY');
  });
});
