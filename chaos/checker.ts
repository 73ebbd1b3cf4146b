/**
 * The chaos suite's verdict, from what the services themselves logged (demo service --event-log:
 * CLOCK_MONOTONIC times, one clock for all processes on the host) and what the writing client
 * saw. Pure: the same inputs always give the same violations, so a unit test can feed it the
 * histories it must catch.
 *
 * An instance (node + pid) is active from its `role -> active` line to its `role -> standby` or
 * `stop` line; if it ends without one (killed, or fenced by kill -9), to its last line, which
 * while active is at most one tick interval old. A frozen instance stops ticking, so it is
 * active until its last tick before the freeze, plus whatever it logs after a thaw.
 */

export interface ServiceEvent {
  node: string;
  pid: number;
  /** CLOCK_MONOTONIC, ms. */
  mono: number;
  event: string;
  epoch?: string;
  from?: string;
  to?: string;
  seq?: string;
}

export interface ClientOp {
  node: string;
  epoch: string;
  sentMono: number;
  doneMono: number;
  /** HTTP status, or 0 when no answer came. */
  status: number;
}

/** A span in which every fault had been healed, from healedMono until the next fault (or the end). */
export interface QuietWindow {
  fromMono: number;
  toMono: number;
  /** The fault whose heal opened the window (for messages). */
  after: string;
}

export type ViolationKind =
  | 'two-actives'
  | 'epoch-not-increasing'
  | 'stale-write'
  | 'stale-ack'
  | 'no-active-after-heal'
  | 'agent-exit';

export interface Violation {
  kind: ViolationKind;
  node: string | null;
  /** CLOCK_MONOTONIC ms where it shows. */
  atMono: number;
  toMono?: number;
  detail: string;
}

export interface ActiveInterval {
  node: string;
  pid: number;
  epoch: bigint;
  fromMono: number;
  toMono: number;
  /** How it ended: standby, stop, or last-seen (the instance went silent while active). */
  end: 'standby' | 'stop' | 'last-seen';
}

export interface CheckInput {
  events: ServiceEvent[];
  ops: ClientOp[];
  quiet: QuietWindow[];
  boundMs: number;
  /** Agents that exited without being told to, found by the runner. */
  agentExits?: { node: string; atMono: number; detail: string }[];
  /** Where the no-active gaps are measured to (the run's end). @default the last event */
  endMono?: number;
}

export interface CheckResult {
  violations: Violation[];
  intervals: ActiveInterval[];
  activations: number;
  ackedWrites: number;
  clientAcks: number;
  /** Per quiet window long enough to judge: ms from its start until an active existed. */
  recoveries: { after: string; ms: number | null }[];
  /** Spans with no active service at all between the first activation and the end, longest first. */
  gaps: { fromMono: number; toMono: number; ms: number }[];
}

/** Where no instance was active, from the first activation to `endMono`. */
export function noActiveGaps(intervals: ActiveInterval[], endMono: number): CheckResult['gaps'] {
  const sorted = [...intervals].sort((a, b) => a.fromMono - b.fromMono);
  const gaps: CheckResult['gaps'] = [];
  let covered = sorted[0]?.toMono ?? endMono;
  for (const iv of sorted.slice(1)) {
    if (iv.fromMono > covered)
      gaps.push({ fromMono: covered, toMono: iv.fromMono, ms: iv.fromMono - covered });
    covered = Math.max(covered, iv.toMono);
  }
  if (sorted.length && endMono > covered)
    gaps.push({ fromMono: covered, toMono: endMono, ms: endMono - covered });
  return gaps.sort((a, b) => b.ms - a.ms);
}

function big(e: string | undefined): bigint {
  return e !== undefined && /^\d{1,20}$/.test(e) ? BigInt(e) : -1n;
}

export function activeIntervals(events: ServiceEvent[]): ActiveInterval[] {
  const byInstance = new Map<string, ServiceEvent[]>();
  for (const e of events) {
    const k = `${e.node}/${e.pid}`;
    let list = byInstance.get(k);
    if (!list) byInstance.set(k, (list = []));
    list.push(e);
  }
  const out: ActiveInterval[] = [];
  for (const list of byInstance.values()) {
    list.sort((a, b) => a.mono - b.mono);
    let open: ActiveInterval | null = null;
    for (const e of list) {
      if (open) open.toMono = e.mono;
      if (e.event === 'role' && e.to === 'active') {
        if (open) out.push(open);
        open = {
          node: e.node,
          pid: e.pid,
          epoch: big(e.epoch),
          fromMono: e.mono,
          toMono: e.mono,
          end: 'last-seen',
        };
      } else if (open && ((e.event === 'role' && e.to === 'standby') || e.event === 'stop')) {
        open.end = e.event === 'stop' ? 'stop' : 'standby';
        out.push(open);
        open = null;
      }
    }
    if (open) out.push(open);
  }
  return out.sort((a, b) => a.fromMono - b.fromMono);
}

export function check(input: CheckInput): CheckResult {
  const violations: Violation[] = [];
  const intervals = activeIntervals(input.events);

  // 1. Never two actives: any two instances' active spans that overlap at all.
  for (let i = 0; i < intervals.length; i++) {
    const a = intervals[i]!;
    for (let j = i + 1; j < intervals.length; j++) {
      const b = intervals[j]!;
      if (b.fromMono >= a.toMono) break;
      if (a.node === b.node && a.pid === b.pid) continue;
      violations.push({
        kind: 'two-actives',
        node: b.node,
        atMono: b.fromMono,
        toMono: Math.min(a.toMono, b.toMono),
        detail:
          `${b.node} (pid ${b.pid}) active with epoch ${b.epoch} from ${b.fromMono.toFixed(1)} while ${a.node} ` +
          `(pid ${a.pid}, epoch ${a.epoch}) was active until ${a.toMono.toFixed(1)} ` +
          `(overlap ${(Math.min(a.toMono, b.toMono) - b.fromMono).toFixed(1)} ms; it ended by ${a.end})`,
      });
    }
  }

  // 2. Epochs strictly increase over activations; the one exception is the same node taking up
  //    its own epoch again with nobody else active in between (a resumed session re-promoting
  //    its restarted service: the same activation, not a new one).
  const acts = input.events
    .filter((e) => e.event === 'role' && e.to === 'active')
    .sort((a, b) => a.mono - b.mono);
  let maxEpoch = -1n;
  let maxBy: string | null = null;
  for (const e of acts) {
    const ep = big(e.epoch);
    if (ep > maxEpoch) {
      maxEpoch = ep;
      maxBy = e.node;
    } else if (!(ep === maxEpoch && maxBy === e.node)) {
      violations.push({
        kind: 'epoch-not-increasing',
        node: e.node,
        atMono: e.mono,
        detail: `${e.node} became active with epoch ${ep}, not above ${maxEpoch} (last taken by ${maxBy})`,
      });
    }
  }

  // 3. No write acknowledged under an epoch older than an activation that had already happened.
  const firstActivationAbove = (ep: bigint): { mono: number; node: string; epoch: bigint } | null => {
    let best: { mono: number; node: string; epoch: bigint } | null = null;
    for (const a of acts) {
      const ae = big(a.epoch);
      if (ae > ep && (best === null || a.mono < best.mono)) best = { mono: a.mono, node: a.node, epoch: ae };
    }
    return best;
  };
  const newerCache = new Map<string, { mono: number; node: string; epoch: bigint } | null>();
  const newer = (epoch: string | undefined): { mono: number; node: string; epoch: bigint } | null => {
    const k = epoch ?? '';
    if (!newerCache.has(k)) newerCache.set(k, firstActivationAbove(big(epoch)));
    return newerCache.get(k)!;
  };
  let acked = 0;
  for (const w of input.events) {
    if (w.event !== 'write') continue;
    acked++;
    const n = newer(w.epoch);
    if (n && n.mono < w.mono) {
      violations.push({
        kind: 'stale-write',
        node: w.node,
        atMono: w.mono,
        detail:
          `${w.node} acknowledged write seq ${w.seq} under epoch ${w.epoch} ` +
          `${(w.mono - n.mono).toFixed(1)} ms after ${n.node} became active with epoch ${n.epoch}`,
      });
    }
  }
  let clientAcks = 0;
  for (const op of input.ops) {
    if (op.status !== 200) continue;
    clientAcks++;
    const n = newer(op.epoch);
    if (n && n.mono < op.sentMono) {
      violations.push({
        kind: 'stale-ack',
        node: op.node,
        atMono: op.doneMono,
        detail:
          `the client got an acknowledgement from ${op.node} under epoch ${op.epoch} for a write sent ` +
          `${(op.sentMono - n.mono).toFixed(1)} ms after ${n.node} became active with epoch ${n.epoch}`,
      });
    }
  }

  // 4. After every heal, an active within the bound (judged only where the quiet lasted that long
  //    or an active showed up before the next fault).
  const recoveries: CheckResult['recoveries'] = [];
  for (const q of input.quiet) {
    const covering = intervals.filter((iv) => iv.toMono >= q.fromMono && iv.fromMono <= q.toMono);
    const first = covering.length
      ? Math.max(q.fromMono, Math.min(...covering.map((iv) => iv.fromMono)))
      : null;
    const ms = first === null ? null : first - q.fromMono;
    if (ms !== null && ms <= input.boundMs) {
      recoveries.push({ after: q.after, ms });
      continue;
    }
    if (q.toMono - q.fromMono < input.boundMs) continue;
    recoveries.push({ after: q.after, ms });
    violations.push({
      kind: 'no-active-after-heal',
      node: null,
      atMono: q.fromMono,
      toMono: q.fromMono + input.boundMs,
      detail:
        `no active within ${input.boundMs} ms after every fault was healed (after ${q.after}); ` +
        (ms === null ? 'none at all before the next fault' : `the first came after ${ms.toFixed(0)} ms`),
    });
  }

  for (const x of input.agentExits ?? []) {
    violations.push({ kind: 'agent-exit', node: x.node, atMono: x.atMono, detail: x.detail });
  }
  violations.sort((a, b) => a.atMono - b.atMono);
  const end = input.endMono ?? Math.max(0, ...input.events.map((e) => e.mono));
  const gaps = noActiveGaps(intervals, end);
  return {
    violations,
    intervals,
    activations: acts.length,
    ackedWrites: acked,
    clientAcks,
    recoveries,
    gaps,
  };
}
