import { describe, expect, it } from 'vitest';
import { summarize } from '../../../bench/stats.js';

describe('summarize', () => {
  it('is null for no samples', () => {
    expect(summarize([])).toBeNull();
  });

  it('takes the middle sample of an odd count and nearest-rank percentiles', () => {
    const s = summarize([50, 10, 40, 20, 30])!;
    expect(s).toMatchObject({ n: 5, min: 10, median: 30, p90: 50, p95: 50, max: 50 });
    // The samples keep the order they were taken in.
    expect(s.samples).toEqual([50, 10, 40, 20, 30]);
  });

  it('averages the two middle samples of an even count, rounded', () => {
    expect(summarize([1, 2, 4, 100])!.median).toBe(3);
    expect(summarize([10, 11])!.median).toBe(11);
  });

  it('puts p95 below the maximum only once there are 20 samples or more', () => {
    const twenty = Array.from({ length: 20 }, (_, i) => i + 1);
    expect(summarize(twenty)).toMatchObject({ p90: 18, p95: 19, max: 20 });
    expect(summarize(twenty.slice(0, 19))).toMatchObject({ p95: 19, max: 19 });
  });

  it('refuses a sample that is not a finite number, naming it', () => {
    expect(() => summarize([1, NaN])).toThrow(/finite number, got NaN/);
    expect(() => summarize([Infinity])).toThrow(/got Infinity/);
  });
});
