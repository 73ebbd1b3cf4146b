import { describe, expect, it } from 'vitest';
import { Prng } from '../../../chaos/prng.js';
import {
  ACTIVE,
  FAULT_KINDS,
  formatSchedule,
  makeSchedule,
  type ScheduleOptions,
} from '../../../chaos/schedule.js';

const base: ScheduleOptions = {
  seed: 42,
  durationMs: 120_000,
  nodes: ['nn1', 'nn2', 'nn3'],
  faults: [...FAULT_KINDS],
  netnsNode: 'nn3',
  shellNodes: ['nn2'],
  sessionTimeoutMs: 4000,
};

describe('Prng', () => {
  it('gives the same sequence for the same seed and a different one for another seed', () => {
    const a = new Prng(7);
    const b = new Prng(7);
    const c = new Prng(8);
    const sa = Array.from({ length: 50 }, () => a.next());
    expect(Array.from({ length: 50 }, () => b.next())).toEqual(sa);
    expect(Array.from({ length: 50 }, () => c.next())).not.toEqual(sa);
    for (const x of sa) expect(x >= 0 && x < 1).toBe(true);
  });

  it('keeps int() within its bounds and refuses a bad seed or range', () => {
    const r = new Prng(1);
    const seen = new Set<number>();
    for (let i = 0; i < 500; i++) seen.add(r.int(3, 5));
    expect([...seen].sort()).toEqual([3, 4, 5]);
    expect(() => new Prng(-1)).toThrow(/seed must be a non-negative safe integer, got -1/);
    expect(() => r.int(5, 3)).toThrow(/max 3 < min 5/);
  });
});

describe('makeSchedule', () => {
  it('replays exactly: the same seed and options give the same schedule, another seed another', () => {
    expect(makeSchedule(base)).toEqual(makeSchedule({ ...base }));
    expect(formatSchedule(makeSchedule(base))).toEqual(formatSchedule(makeSchedule(base)));
    expect(makeSchedule({ ...base, seed: 43 }).faults).not.toEqual(makeSchedule(base).faults);
  });

  it('keeps its rules: per-node and ZooKeeper-wide exclusivity, the concurrency cap, network faults on the namespaced node, every fault healed by the end', () => {
    for (let seed = 0; seed < 40; seed++) {
      const s = makeSchedule({ ...base, seed, meanGapMs: 800, maxConcurrent: 3 });
      expect(s.faults.length).toBeGreaterThan(10);
      for (const f of s.faults) {
        expect(f.atMs + f.durationMs).toBeLessThanOrEqual(s.durationMs);
        if (f.kind === 'partition' || f.kind === 'net-degrade') expect(f.node).toBe('nn3');
        const overlapping = s.faults.filter(
          (g) => g !== f && g.atMs <= f.atMs && f.atMs < g.atMs + g.durationMs,
        );
        expect(overlapping.length).toBeLessThan(3);
        if (f.node !== null) expect(overlapping.some((g) => g.node === f.node)).toBe(false);
        const zk = ['zk-leader-kill', 'quorum-loss', 'follower-isolate'];
        if (zk.includes(f.kind)) expect(overlapping.some((g) => zk.includes(g.kind))).toBe(false);
      }
    }
  });

  it('uses every kind asked for, some faults on whichever node is active, and only the kinds asked for', () => {
    const s = makeSchedule({ ...base, durationMs: 1_000_000 });
    expect(new Set(s.faults.map((f) => f.kind))).toEqual(new Set(FAULT_KINDS));
    expect(s.faults.some((f) => f.node === ACTIVE)).toBe(true);
    const only = makeSchedule({ ...base, faults: ['service-crash', 'zk-load'] });
    expect(new Set(only.faults.map((f) => f.kind))).toEqual(new Set(['service-crash', 'zk-load']));
  });

  it('refuses what it cannot schedule, naming the value', () => {
    expect(() => makeSchedule({ ...base, netnsNode: null, faults: ['partition'] })).toThrow(
      'fault partition needs a node in its own network namespace',
    );
    expect(() => makeSchedule({ ...base, faults: ['nope' as never] })).toThrow(/unknown fault kind "nope"/);
    expect(() => makeSchedule({ ...base, durationMs: 10 })).toThrow(
      'duration must be at least 1 s, got 10 ms',
    );
  });
});
