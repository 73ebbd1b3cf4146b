/**
 * The pure half of `npm run bench:patroni`: trial results folded into one row per setup and
 * fault, the markdown tables, and the ratios the issue's goal is about (Patroni's fastest setup
 * over hafc's, per fault). Apart so that it is unit-tested without servers.
 */

export const SETUPS = ['patroni-default', 'patroni-fast', 'hafc-default', 'hafc-fast'] as const;
export type Setup = (typeof SETUPS)[number];
export const FAULTS = ['crash', 'agentKill', 'freeze'] as const;
export type Fault = (typeof FAULTS)[number];

export interface TrialResult {
  setup: Setup;
  fault: Fault;
  /** Fault -> the sampler first saw the other server answer as primary; null: never. */
  promotedMs: number | null;
  /** Fault -> the other server acknowledged a write (the probe's); null: never. */
  failoverMs: number | null;
  /** The writing client's longest stretch without an acknowledged write, from the fault on. */
  outageMs: number;
  /** Writes the old primary acknowledged that were sent after the other server was promoted. */
  staleWrites: number;
  /** Acknowledged writes (client's and probe's) the final primary does not have. */
  ackedLost: number;
  /** Two-primaries or stale-write findings of harness/pg-checker.ts. */
  checkerViolations: number;
  /** Where the primary was once the pair had settled again. */
  endedOn: 'other' | 'same';
  /** Set when the trial did not complete; its numbers are then not counted. */
  error?: string;
}

export interface Row {
  setup: Setup;
  fault: Fault;
  trials: number;
  errors: number;
  promotedMsMedian: number | null;
  failoverMsMedian: number | null;
  failoverMsMax: number | null;
  outageMsMedian: number | null;
  outageMsMax: number | null;
  staleWritesTotal: number;
  ackedLostTotal: number;
  checkerViolationsTotal: number;
  /** Trials that ended with the other server as primary. */
  failedOver: number;
}

export function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2]! : Math.round((s[n / 2 - 1]! + s[n / 2]!) / 2);
}

const present = (xs: Array<number | null>): number[] => xs.filter((x): x is number => x !== null);
const max = (xs: number[]): number | null => (xs.length === 0 ? null : Math.max(...xs));

export function aggregate(results: TrialResult[], setups: readonly Setup[]): Row[] {
  return setups.flatMap((setup) =>
    FAULTS.map((fault) => {
      const all = results.filter((r) => r.setup === setup && r.fault === fault);
      const rs = all.filter((r) => r.error === undefined);
      const failover = present(rs.map((r) => r.failoverMs));
      const outage = rs.map((r) => r.outageMs);
      return {
        setup,
        fault,
        trials: rs.length,
        errors: all.length - rs.length,
        promotedMsMedian: median(present(rs.map((r) => r.promotedMs))),
        failoverMsMedian: median(failover),
        failoverMsMax: max(failover),
        outageMsMedian: median(outage),
        outageMsMax: max(outage),
        staleWritesTotal: rs.reduce((s, r) => s + r.staleWrites, 0),
        ackedLostTotal: rs.reduce((s, r) => s + r.ackedLost, 0),
        checkerViolationsTotal: rs.reduce((s, r) => s + r.checkerViolations, 0),
        failedOver: rs.filter((r) => r.endedOn === 'other').length,
      };
    }),
  );
}

export interface Ratio {
  fault: Fault;
  /** patroni-fast's median over hafc-fast's: failover, then client outage; null when one is missing. */
  failover: number | null;
  outage: number | null;
}

/** How many times faster hafc-fast is than patroni-fast, per fault (the issue's 4x goal). */
export function ratios(rows: Row[]): Ratio[] {
  const get = (setup: Setup, fault: Fault): Row | undefined =>
    rows.find((r) => r.setup === setup && r.fault === fault);
  const div = (a: number | null | undefined, b: number | null | undefined): number | null =>
    a == null || b == null || b === 0 ? null : Math.round((a / b) * 10) / 10;
  return FAULTS.flatMap((fault) => {
    const p = get('patroni-fast', fault);
    const h = get('hafc-fast', fault);
    if (!p || !h) return [];
    return [
      {
        fault,
        failover: div(p.failoverMsMedian, h.failoverMsMedian),
        outage: div(p.outageMsMedian, h.outageMsMedian),
      },
    ];
  });
}

export interface IdleCost {
  processes: number;
  cpuPercent: number;
  rssKiB: number;
}

const cell = (v: number | null): string => (v === null ? '-' : String(v));

export function renderTables(rows: Row[], idle: Partial<Record<Setup, IdleCost>>, rs: Ratio[]): string {
  return [
    '| setup | fault | trials | promoted median ms | failover median (max) ms | client outage median (max) ms | stale writes | acked lost | checker violations | failed over |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows.map(
      (r) =>
        `| ${r.setup} | ${r.fault} | ${r.trials}${r.errors ? ` (+${r.errors} failed)` : ''} | ${cell(r.promotedMsMedian)} | ${cell(r.failoverMsMedian)} (${cell(r.failoverMsMax)}) | ${cell(r.outageMsMedian)} (${cell(r.outageMsMax)}) | ${r.staleWritesTotal} | ${r.ackedLostTotal} | ${r.checkerViolationsTotal} | ${r.failedOver}/${r.trials} |`,
    ),
    '',
    '| setup | processes | idle CPU % (all, 10 s) | RSS KiB (all) |',
    '| --- | --- | --- | --- |',
    ...Object.entries(idle).map(([s, c]) => `| ${s} | ${c.processes} | ${c.cpuPercent} | ${c.rssKiB} |`),
    ...(rs.length
      ? [
          '',
          '| fault | patroni-fast / hafc-fast: failover | client outage |',
          '| --- | --- | --- |',
          ...rs.map((r) => `| ${r.fault} | ${cell(r.failover)}x | ${cell(r.outage)}x |`),
        ]
      : []),
  ].join('\n');
}
