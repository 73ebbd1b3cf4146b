/**
 * The benchmark's closing table: one row per fault class and profile, with the issue's target
 * for it and whether the run met it. Pure (no processes), so rendering and the verdicts are
 * unit-tested.
 */
import { summarize, type Summary } from './stats.js';

export const FAULT_CLASSES = [
  'serviceCrash',
  'serviceHang',
  'agentKill',
  'nodeFreeze',
  'partition',
  'zkLeaderLoss',
  'cleanStop',
  'switchover',
  'agentRestart',
] as const;
export type FaultClass = (typeof FAULT_CLASSES)[number];

/**
 * What a class is held to (issue 12): a bound on every trial's failover time, or no failover at
 * all. Classes the issue sets no target for have none; the table says so rather than invent one.
 */
export type Target = { kind: 'within'; ms: number; label: string } | { kind: 'noFailover' } | null;

export function targetFor(fc: FaultClass, profile: string, sessionTimeoutMs: number): Target {
  switch (fc) {
    case 'serviceCrash':
      return profile === 'fast' ? { kind: 'within', ms: 150, label: '< 150 ms' } : null;
    case 'agentKill':
    case 'nodeFreeze':
      return {
        kind: 'within',
        ms: sessionTimeoutMs + 300,
        label: `< T + 300 = ${sessionTimeoutMs + 300} ms`,
      };
    case 'switchover':
      return { kind: 'within', ms: 100, label: '< 100 ms, no overlap' };
    case 'agentRestart':
      return { kind: 'noFailover' };
    default:
      return null;
  }
}

/** One trial as the table needs it. */
export interface TrialFigures {
  /** The figure the target is about (see FIGURE), ms. */
  failoverMs: number;
  /** Client-visible outage, ms; null when it could not be measured. */
  outageMs: number | null;
  /** The client had not written again when the trial ended: outageMs is a lower bound. */
  outageOpen?: boolean;
  /** agentRestart: takes of the resource by the standby (a failover that should not happen). */
  failovers?: number;
}

/** What the failover column holds for each class (the legend under the table). */
export const FIGURE: Record<FaultClass, string> = {
  serviceCrash: 'fault -> the standby\u2019s service takes the resource',
  serviceHang: 'fault -> the standby\u2019s service takes the resource',
  agentKill: 'fault -> the standby\u2019s service takes the resource',
  nodeFreeze: 'fault -> the standby\u2019s service takes the resource',
  partition: 'fault -> the standby\u2019s service takes the resource',
  zkLeaderLoss: 'fault -> some service holds the resource again (0 if the active never let go)',
  cleanStop: 'fault -> the standby\u2019s service takes the resource',
  switchover: 'resource free: old service releases -> new one takes (the CLI start-up not counted)',
  agentRestart: 'kill -> the restarted agent resumes its session (no failover expected)',
};

export interface Row {
  profile: string;
  fault: FaultClass;
  failover: Summary | null;
  outage: Summary | null;
  /** Trials whose outage had not ended when the trial did (their figure is a lower bound). */
  outageOpen: number;
  target: Target;
  /** null: no target, or no trial to judge. */
  met: boolean | null;
  /** Split-brain violations the checker saw in this class's trials. */
  violations: number;
  /** agentRestart: total takes by the standby. */
  failovers?: number;
  /** The class could not run here (e.g. no network namespaces): why. */
  unavailable?: string;
}

export function buildRow(
  profile: string,
  fault: FaultClass,
  trials: readonly TrialFigures[],
  violations: number,
  sessionTimeoutMs: number,
  unavailable?: string,
): Row {
  const target = targetFor(fault, profile, sessionTimeoutMs);
  const failover = summarize(trials.map((t) => t.failoverMs));
  const outage = summarize(trials.flatMap((t) => (t.outageMs === null ? [] : [t.outageMs])));
  const failovers = fault === 'agentRestart' ? trials.reduce((a, t) => a + (t.failovers ?? 0), 0) : undefined;
  let met: boolean | null = null;
  if (target !== null && failover !== null) {
    met =
      target.kind === 'noFailover'
        ? failovers === 0 && violations === 0
        : failover.max < target.ms && violations === 0;
  }
  return {
    profile,
    fault,
    failover,
    outage,
    outageOpen: trials.filter((t) => t.outageOpen === true).length,
    target,
    met,
    violations,
    ...(failovers !== undefined ? { failovers } : {}),
    ...(unavailable !== undefined ? { unavailable } : {}),
  };
}

const ms = (x: number | undefined): string => (x === undefined ? '-' : `${Math.round(x)} ms`);

function targetText(t: Target): string {
  if (t === null) return '-';
  return t.kind === 'noFailover' ? 'no failover' : t.label;
}

function metText(r: Row): string {
  if (r.unavailable !== undefined) return 'not run';
  const extra = [
    ...(r.failovers !== undefined ? [`${r.failovers} failover(s)`] : []),
    ...(r.violations > 0 ? [`${r.violations} SPLIT-BRAIN`] : []),
  ];
  const verdict = r.met === null ? '-' : r.met ? 'yes' : 'NO';
  return extra.length ? `${verdict} (${extra.join(', ')})` : verdict;
}

/** A Markdown table (readable as plain text too), columns padded to line up. */
export function renderTable(rows: readonly Row[]): string {
  const head = [
    'profile',
    'fault class',
    'n',
    'failover median',
    'p95',
    'max',
    'outage median',
    'outage max',
    'target',
    'met?',
  ];
  const body = rows.map((r) => [
    r.profile,
    r.fault,
    String(r.failover?.n ?? 0),
    ms(r.failover?.median),
    ms(r.failover?.p95),
    ms(r.failover?.max),
    ms(r.outage?.median),
    r.outage ? `${ms(r.outage.max)}${r.outageOpen > 0 ? ` (${r.outageOpen} open)` : ''}` : '-',
    targetText(r.target),
    metText(r),
  ]);
  // Numbers right-aligned, words left-aligned, as a reader scans them.
  const right = head.map((_, i) => i >= 2 && i <= 7);
  // At least 3 wide: a Markdown delimiter cell needs a hyphen besides its colon.
  const width = head.map((h, i) => Math.max(3, h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]): string =>
    `| ${cells.map((c, i) => (right[i] ? c.padStart(width[i]!) : c.padEnd(width[i]!))).join(' | ')} |`;
  const rule = `| ${width.map((w, i) => (right[i] ? '-'.repeat(w - 1) + ':' : '-'.repeat(w))).join(' | ')} |`;
  const notes = rows.flatMap((r) =>
    r.unavailable ? [`${r.profile} ${r.fault} not run: ${r.unavailable}`] : [],
  );
  return [line(head), rule, ...body.map(line), ...notes].join('\n');
}

/** The idle agents' cost, per agent: one row per profile. */
export interface Overhead {
  profile: string;
  idleSeconds: number;
  rssKiB: { active: number; standby: number };
  cpuSecondsPerIdleHour: { active: number; standby: number };
  zkRequestsPerSecPerAgent: number;
  zkWritesPerSecPerAgent: number;
}

export function renderOverhead(rows: readonly Overhead[]): string {
  const head = [
    'profile',
    'idle window',
    'RSS active',
    'RSS standby',
    'CPU s/idle h active',
    'CPU s/idle h standby',
    'ZK requests/s per agent',
    'ZK writes/s per agent',
  ];
  const mib = (kib: number): string => `${(kib / 1024).toFixed(1)} MiB`;
  const body = rows.map((o) => [
    o.profile,
    `${o.idleSeconds} s`,
    mib(o.rssKiB.active),
    mib(o.rssKiB.standby),
    o.cpuSecondsPerIdleHour.active.toFixed(1),
    o.cpuSecondsPerIdleHour.standby.toFixed(1),
    o.zkRequestsPerSecPerAgent.toFixed(2),
    o.zkWritesPerSecPerAgent.toFixed(2),
  ]);
  const width = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]): string =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(width[i]!) : c.padStart(width[i]!))).join(' | ')} |`;
  const rule = `| ${width.map((w, i) => (i === 0 ? '-'.repeat(w) : '-'.repeat(w - 1) + ':')).join(' | ')} |`;
  return [line(head), rule, ...body.map(line)].join('\n');
}
