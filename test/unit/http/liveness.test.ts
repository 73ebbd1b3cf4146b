import { describe, expect, it } from 'vitest';
import { Liveness } from '../../../src/http/liveness.js';
import { FakeClock } from '../../support/fake-clock.js';

function setup() {
  const clock = new FakeClock();
  const s = { decision: {} as unknown, healthAt: null as number | null, health: 'INITIALIZING' };
  const live = new Liveness({
    clock,
    electorStaleMs: 10_000,
    healthStaleMs: () => 3000,
    sampleMs: 500,
    signals: {
      electorDecision: () => s.decision,
      healthResultAt: () => s.healthAt,
      healthState: () => s.health,
    },
  });
  live.start();
  return { clock, s, live };
}

describe('Liveness (/healthz)', () => {
  it('is ok while the election loop keeps deciding and health results keep coming', async () => {
    const { clock, s, live } = setup();
    for (let i = 0; i < 40; i++) {
      await clock.advance(1000);
      s.decision = { step: i };
      s.healthAt = clock.now();
    }
    expect(live.check()).toEqual({ ok: true, problems: [] });
  });

  it('a loop that stops deciding is reported once past its limit, not before', async () => {
    const { clock, s, live } = setup();
    s.decision = { step: 1 };
    await clock.advance(500); // sampled
    for (let i = 0; i < 19; i++) {
      await clock.advance(500);
      s.healthAt = clock.now();
    }
    expect(live.check().ok).toBe(true); // 9.5 s without a new decision
    for (let i = 0; i < 3; i++) {
      await clock.advance(500);
      s.healthAt = clock.now();
    }
    expect(live.check()).toEqual({
      ok: false,
      problems: ['the election loop has not finished a step for 11000 ms (limit 10000 ms)'],
    });
    s.decision = { step: 2 };
    expect(live.check().ok).toBe(true);
  });

  it('a health monitor that stops delivering, or has failed for good, is reported', async () => {
    const { clock, s, live } = setup();
    await clock.advance(3000);
    s.decision = {};
    expect(live.check().ok).toBe(true); // 3 s since start, no result yet: at the limit
    await clock.advance(500);
    s.decision = {};
    expect(live.check().problems).toEqual([
      'the health monitor has not delivered a result for 3500 ms (limit 3000 ms)',
    ]);
    s.healthAt = clock.now();
    expect(live.check().ok).toBe(true);
    s.health = 'MONITOR_FAILED';
    expect(live.check().problems).toEqual([
      'the health monitor has stopped (MONITOR_FAILED); a restart or a reload with a working check recovers it',
    ]);
  });
});
