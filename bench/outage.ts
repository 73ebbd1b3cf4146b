/**
 * The client-visible outage of one trial: the longest span without an accepted write, from the
 * client's last accepted write before the fault to the end of the observation. Pure, over the
 * writing client's operation log (chaos/client.ts), so it is unit-tested.
 */

export interface WriteOp {
  /** When the reply (or the failure) came, CLOCK_MONOTONIC ms. */
  doneMono: number;
  /** HTTP status; 0 for a request that failed or timed out. */
  status: number;
}

export interface Outage {
  ms: number;
  /**
   * False when no write was accepted after the longest span began, before `untilMono`: the
   * client had not recovered by then, so `ms` is only a lower bound.
   */
  recovered: boolean;
}

/**
 * Null when the client had no accepted write at or before `faultMono`: it was not writing when
 * the fault came, so there is no outage to measure (the caller treats that as a failed trial).
 */
export function longestOutage(ops: readonly WriteOp[], faultMono: number, untilMono: number): Outage | null {
  if (!(untilMono >= faultMono)) {
    throw new Error(`longestOutage: the observation ends (${untilMono}) before the fault (${faultMono})`);
  }
  const ok = ops
    .filter((o) => o.status === 200 && o.doneMono <= untilMono)
    .map((o) => o.doneMono)
    .sort((a, b) => a - b);
  let i = -1;
  for (let k = 0; k < ok.length && ok[k]! <= faultMono; k++) i = k;
  if (i < 0) return null;
  let best: Outage = { ms: 0, recovered: true };
  for (let k = i + 1; k < ok.length; k++) {
    const gap = ok[k]! - ok[k - 1]!;
    if (gap > best.ms) best = { ms: gap, recovered: true };
  }
  const tail = untilMono - ok[ok.length - 1]!;
  if (tail > best.ms) best = { ms: tail, recovered: false };
  return { ms: Math.round(best.ms), recovered: best.recovered };
}
