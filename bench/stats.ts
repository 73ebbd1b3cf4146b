/** The benchmark's statistics: pure, so the figures in the table can be checked by unit tests. */

export interface Summary {
  n: number;
  min: number;
  median: number;
  p90: number;
  p95: number;
  max: number;
  samples: number[];
}

/**
 * Median: mean of the two middle values for an even count, rounded. p90 and p95: nearest rank,
 * so with fewer than 20 samples p95 is the largest one (it never invents a value between two).
 */
export function summarize(samples: readonly number[]): Summary | null {
  const bad = samples.find((x) => !Number.isFinite(x));
  if (bad !== undefined) throw new Error(`summarize: every sample must be a finite number, got ${bad}`);
  if (samples.length === 0) return null;
  const s = [...samples].sort((a, b) => a - b);
  const n = s.length;
  const median = n % 2 === 1 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
  return {
    n,
    min: s[0]!,
    median: Math.round(median),
    p90: nearestRank(s, 90),
    p95: nearestRank(s, 95),
    max: s[n - 1]!,
    samples: [...samples],
  };
}

function nearestRank(sorted: number[], p: number): number {
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
