/**
 * The fault schedule of a chaos run, made up front from the seed and the options alone (no clock,
 * no machine state), so printing it says everything that will be done and `--seed N` with the
 * same options replays it exactly. Only how the cluster reacts differs between two runs.
 *
 * Rules that keep a schedule meaningful: one fault at a time per node; one ZooKeeper-wide fault
 * at a time (leader kill, quorum loss, follower isolation), plus at most one load burst; at most
 * `maxConcurrent` faults at once; network faults only on the node in its own namespace; every
 * fault ends (is healed) by the end of the run.
 */
import { Prng } from './prng.js';

export const FAULT_KINDS = [
  'agent-kill',
  'agent-freeze',
  'node-freeze',
  'service-crash',
  'service-hang',
  'hook-hang',
  'flapping-health',
  'zk-leader-kill',
  'quorum-loss',
  'follower-isolate',
  'partition',
  'net-degrade',
  'zk-load',
] as const;

export type FaultKind = (typeof FAULT_KINDS)[number];

/** What each kind does, for --help and the printed schedule. */
export const FAULT_DOCS: Record<FaultKind, string> = {
  'agent-kill': 'kill -9 of an agent; started again at the end of the fault',
  'agent-freeze': 'SIGSTOP of an agent (mostly past the session timeout), then SIGCONT',
  'node-freeze': 'SIGSTOP of an agent and its service, then SIGCONT',
  'service-crash': 'kill -9 of a service; started again at the end of the fault',
  'service-hang': 'SIGSTOP of a service, then SIGCONT',
  'hook-hang':
    'to-active/to-standby hang (http agent: POST /role hangs; shell agent: the hook hangs, or ignores SIGTERM)',
  'flapping-health': 'the health endpoint flips between healthy and failing every 100-700 ms',
  'zk-leader-kill': 'kill -9 of the ZooKeeper leader; restarted at the end of the fault',
  'quorum-loss': 'two of three ZooKeeper servers killed or frozen; back at the end of the fault',
  'follower-isolate':
    "the isolatable follower (nn1's only server) cut off from the quorum, its clients still connected",
  partition: "the namespaced node's link: down, or 100% packet loss (nftables)",
  'net-degrade':
    "the namespaced node's link: random loss 10-50% (nftables), or 100-1500 ms delay on its ZooKeeper traffic",
  'zk-load': 'a separate client process hammering the ensemble with creates and reads',
};

/** Kinds that act on the whole ensemble; at most one of them at a time. */
/** A fault's node that is resolved when it starts: the node whose service is active then. */
export const ACTIVE = '@active';

const ZK_WIDE: ReadonlySet<FaultKind> = new Set(['zk-leader-kill', 'quorum-loss', 'follower-isolate']);
const NET: ReadonlySet<FaultKind> = new Set(['partition', 'net-degrade']);

export interface ScheduleOptions {
  seed: number;
  durationMs: number;
  /** Node ids, e.g. nn1..nn3. */
  nodes: string[];
  faults: FaultKind[];
  /** The node in its own network namespace (network faults only hit it), if any. */
  netnsNode: string | null;
  /** Nodes whose agent runs shell hooks (hook-hang can ignore SIGTERM there). */
  shellNodes: string[];
  sessionTimeoutMs: number;
  /** @default 2 */
  maxConcurrent?: number;
  /** No fault starts before this (the cluster settles first). @default 3000 */
  warmupMs?: number;
  /** Mean pause between two fault starts. @default 2500 */
  meanGapMs?: number;
}

export interface Fault {
  /** f1, f2, ... in start order. */
  id: string;
  kind: FaultKind;
  /**
   * The node it hits: an id, or ACTIVE (whichever node's service is active when the fault
   * starts: the faults that matter most hit the active); null for ZooKeeper-wide faults.
   */
  node: string | null;
  /** Offset from the chaos start, ms. */
  atMs: number;
  durationMs: number;
  /** Kind-specific choices, all made here: a variant, a percentage, a flap period, a server pick. */
  params: Record<string, string | number>;
}

export interface Schedule {
  seed: number;
  durationMs: number;
  faults: Fault[];
}

function durationFor(kind: FaultKind, rng: Prng, sessionTimeoutMs: number): number {
  const T = sessionTimeoutMs;
  switch (kind) {
    case 'agent-freeze':
    case 'node-freeze':
      // Mostly past the session timeout (the peer must fence), sometimes a short stall to ride out.
      return rng.chance(0.8) ? rng.int(T + 500, 2 * T) : rng.int(300, Math.max(400, Math.floor(T / 3)));
    case 'agent-kill':
      return rng.int(1000, 2 * T);
    case 'service-crash':
      return rng.int(500, 5000);
    case 'quorum-loss':
      return rng.int(3000, 10_000);
    case 'follower-isolate':
      return rng.int(3000, 12_000);
    default:
      return rng.int(2000, 8000);
  }
}

function paramsFor(kind: FaultKind, node: string | null, rng: Prng, o: ScheduleOptions): Fault['params'] {
  switch (kind) {
    case 'quorum-loss':
      return { how: rng.pick(['kill', 'freeze']), keep: rng.int(0, 2) };
    case 'partition':
      return { how: rng.pick(['link-down', 'drop']) };
    case 'net-degrade':
      return rng.chance(0.5)
        ? { how: 'loss', percent: rng.int(10, 50) }
        : { how: 'delay', delayMs: rng.int(100, 1500) };
    case 'hook-hang':
      // ignore-term needs a hook process (a shell node); an http node hangs either way.
      return {
        how:
          node === ACTIVE || (node !== null && o.shellNodes.includes(node))
            ? rng.pick(['hang', 'ignore-term'])
            : 'hang',
      };
    case 'flapping-health':
      return { periodMs: rng.int(100, 700) };
    case 'zk-load':
      return { concurrency: rng.int(4, 32) };
    default:
      return {};
  }
}

export function validateScheduleOptions(o: ScheduleOptions): void {
  if (!Number.isSafeInteger(o.seed) || o.seed < 0)
    throw new Error(`seed must be a non-negative integer, got ${o.seed}`);
  if (!Number.isInteger(o.durationMs) || o.durationMs < 1000) {
    throw new Error(`duration must be at least 1 s, got ${o.durationMs} ms`);
  }
  if (o.faults.length === 0) throw new Error('no fault kinds given');
  for (const f of o.faults) {
    if (!FAULT_KINDS.includes(f))
      throw new Error(`unknown fault kind ${JSON.stringify(f)}; known: ${FAULT_KINDS.join(', ')}`);
    if (NET.has(f) && o.netnsNode === null)
      throw new Error(`fault ${f} needs a node in its own network namespace`);
  }
}

export function makeSchedule(o: ScheduleOptions): Schedule {
  validateScheduleOptions(o);
  const rng = new Prng(o.seed);
  const maxConcurrent = o.maxConcurrent ?? 2;
  const meanGap = o.meanGapMs ?? 2500;
  const faults: Fault[] = [];
  const activeAt = (t: number): Fault[] => faults.filter((f) => f.atMs <= t && t < f.atMs + f.durationMs);
  let t = o.warmupMs ?? 3000;
  for (;;) {
    // Exponential gaps (a Poisson process), floored so two starts are never on top of each other.
    t += Math.max(200, Math.round(-Math.log(1 - rng.next()) * meanGap));
    if (t >= o.durationMs - 500) break;
    const busy = activeAt(t);
    if (busy.length >= maxConcurrent) continue;
    const busyNodes = new Set(busy.flatMap((f) => (f.node === null ? [] : [f.node])));
    const zkBusy = busy.some((f) => ZK_WIDE.has(f.kind));
    const loadBusy = busy.some((f) => f.kind === 'zk-load');
    const candidates = o.faults.filter((k) => {
      if (ZK_WIDE.has(k)) return !zkBusy;
      if (k === 'zk-load') return !loadBusy;
      if (NET.has(k)) return o.netnsNode !== null && !busyNodes.has(o.netnsNode);
      return o.nodes.some((n) => !busyNodes.has(n)) || !busyNodes.has(ACTIVE);
    });
    if (candidates.length === 0) continue;
    const kind = rng.pick(candidates);
    let node: string | null = null;
    if (NET.has(kind)) node = o.netnsNode;
    else if (!ZK_WIDE.has(kind) && kind !== 'zk-load') {
      const free = [...o.nodes, ACTIVE].filter((n) => !busyNodes.has(n));
      // Half the node faults hit whichever node is active then.
      node = !busyNodes.has(ACTIVE) && rng.chance(0.5) ? ACTIVE : rng.pick(free);
    }
    const params = paramsFor(kind, node, rng, o);
    const durationMs = Math.min(durationFor(kind, rng, o.sessionTimeoutMs), o.durationMs - t);
    faults.push({ id: `f${faults.length + 1}`, kind, node, atMs: t, durationMs, params });
  }
  return { seed: o.seed, durationMs: o.durationMs, faults };
}

/** The schedule as printed before a run and in a failure report. */
export function formatSchedule(s: Schedule): string {
  const lines = [
    `schedule (seed ${s.seed}, ${s.faults.length} faults over ${(s.durationMs / 1000).toFixed(1)} s):`,
  ];
  for (const f of s.faults) {
    const p = Object.entries(f.params)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    lines.push(
      `  ${f.id.padEnd(5)} +${(f.atMs / 1000).toFixed(3).padStart(8)} s  ${(f.durationMs / 1000).toFixed(3).padStart(7)} s  ` +
        `${f.kind.padEnd(16)} ${(f.node ?? 'zookeeper').padEnd(9)} ${p}`.trimEnd(),
    );
  }
  return lines.join('\n');
}
