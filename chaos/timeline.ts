/**
 * The chaos run's timeline model (src/cli/render/timeline-html.ts draws it), from the agents' JSON
 * logs, the fault records and the checker's verdict. Which log lines mark what:
 *
 *   role over time        controller "role A -> B" (epoch on the line when B is active);
 *                         "hafc agent starting" begins a fresh init segment after a restart
 *   to-active hook        controller "service -> active" (durationMs: the call itself)
 *   fencing               elector "fencing the previous active" .. fencing "fenced X by method M"
 *   lock hand-over        the old active's "role active -> standby|neutral" (another lane) ..
 *                         this node's "acquired the lock"; absent when the old agent never said
 *                         it stood down (killed, frozen, cut off: its session's expiry is then
 *                         part of detection)
 *   detection             the start of the fault that came last before the acquisition (after
 *                         the previous activation) .. the old active stood down (or the lock)
 */
import fs from 'node:fs';
import type {
  TimelineModel,
  TimelinePhase,
  TimelineRole,
  TimelineSegment,
} from '../src/cli/render/timeline-html.js';

export interface AgentLine {
  t: number;
  msg: string;
  epoch?: string;
  durationMs?: number;
}

export function readAgentLog(file: string): AgentLine[] {
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const out: AgentLine[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const o = JSON.parse(line) as Record<string, unknown>;
      const t = Date.parse(String(o.time));
      if (Number.isNaN(t) || typeof o.msg !== 'string') continue;
      out.push({
        t,
        msg: o.msg,
        ...(typeof o.epoch === 'string' ? { epoch: o.epoch } : {}),
        ...(typeof o.durationMs === 'number' ? { durationMs: o.durationMs } : {}),
      });
    } catch {
      // A line cut by a kill -9: skip it.
    }
  }
  return out;
}

const ROLE_RE = /^role (\w+) -> (\w+)$/;

function asRole(s: string): TimelineRole {
  return s === 'active' || s === 'standby' || s === 'neutral' || s === 'init' ? s : 'unknown';
}

export function roleSegments(lines: AgentLine[], endMs: number): TimelineSegment[] {
  const segs: TimelineSegment[] = [];
  let cur: TimelineSegment | null = null;
  const close = (t: number): void => {
    if (cur) {
      cur.to = t;
      if (cur.to > cur.from) segs.push(cur);
    }
    cur = null;
  };
  for (const l of lines) {
    if (l.msg === 'hafc agent starting') {
      close(l.t);
      cur = { from: l.t, to: l.t, role: 'init', epoch: null, note: 'agent (re)started' };
      continue;
    }
    const m = ROLE_RE.exec(l.msg);
    if (!m) continue;
    close(l.t);
    const role = asRole(m[2]!);
    cur = { from: l.t, to: l.t, role, epoch: role === 'active' ? (l.epoch ?? null) : null };
  }
  close(endMs);
  return segs;
}

export interface FaultSpan {
  id: string;
  label: string;
  lane: string | null;
  from: number;
  to: number;
}

export function failovers(logs: Map<string, AgentLine[]>, faults: FaultSpan[]): TimelineModel['failovers'] {
  const activations: { lane: string; t: number; epoch: string | null; idx: number }[] = [];
  for (const [lane, lines] of logs) {
    lines.forEach((l, idx) => {
      const m = ROLE_RE.exec(l.msg);
      if (m && m[2] === 'active') activations.push({ lane, t: l.t, epoch: l.epoch ?? null, idx });
    });
  }
  activations.sort((a, b) => a.t - b.t);
  const out: TimelineModel['failovers'] = [];
  let prevT = -Infinity;
  for (const a of activations) {
    const lines = logs.get(a.lane)!;
    const phases: TimelinePhase[] = [];
    const before = lines.slice(0, a.idx + 1).reverse();
    const sameEpoch = (l: AgentLine): boolean => a.epoch !== null && l.epoch === a.epoch;
    const hook = before.find((l) => l.msg === 'service -> active' && sameEpoch(l));
    const acquired = before.find((l) => l.msg === 'acquired the lock' && sameEpoch(l));
    const fenceStart = before.filter((l) => l.msg === 'fencing the previous active' && sameEpoch(l)).pop();
    const fenced = before.find((l) => /^fenced \S+ by method /.test(l.msg) && sameEpoch(l));
    if (acquired) {
      let stoodDown: number | null = null;
      for (const [lane, other] of logs) {
        if (lane === a.lane) continue;
        for (const l of other) {
          const m = ROLE_RE.exec(l.msg);
          if (m && m[1] === 'active' && l.t > prevT && l.t <= acquired.t)
            stoodDown = Math.max(stoodDown ?? 0, l.t);
        }
      }
      const trigger = faults
        .filter((f) => f.from > prevT && f.from <= acquired.t)
        .reduce<number | null>((best, f) => (best === null || f.from > best ? f.from : best), null);
      const detectEnd = stoodDown ?? acquired.t;
      if (trigger !== null && trigger < detectEnd)
        phases.push({ name: 'detection', from: trigger, to: detectEnd });
      if (stoodDown !== null) phases.push({ name: 'lock hand-over', from: stoodDown, to: acquired.t });
    }
    if (fenceStart && fenced && fenced.t >= fenceStart.t)
      phases.push({ name: 'fencing', from: fenceStart.t, to: fenced.t });
    if (hook) phases.push({ name: 'to-active hook', from: hook.t - (hook.durationMs ?? 0), to: hook.t });
    out.push({ lane: a.lane, epoch: a.epoch, phases });
    prevT = a.t;
  }
  return out;
}

/**
 * Cuts `segs` where the agent process was not running (between one life's end and the next
 * one's start) and fills those gaps with "down": a killed agent's last role line is not its role.
 */
export function withDownSpans(
  segs: TimelineSegment[],
  lives: { from: number; to: number | null }[],
  endMs: number,
): TimelineSegment[] {
  const sorted = [...lives].sort((a, b) => a.from - b.from);
  const gaps: { from: number; to: number }[] = [];
  for (let i = 0; i < sorted.length; i++) {
    const end = sorted[i]!.to;
    if (end === null) continue;
    const next = sorted[i + 1]?.from ?? endMs;
    if (next > end) gaps.push({ from: end, to: next });
  }
  let out = segs;
  for (const g of gaps) {
    const cut: TimelineSegment[] = [];
    for (const s of out) {
      if (s.to <= g.from || s.from >= g.to) {
        cut.push(s);
        continue;
      }
      if (s.from < g.from) cut.push({ ...s, to: g.from });
      if (s.to > g.to) cut.push({ ...s, from: g.to });
    }
    cut.push({ from: g.from, to: g.to, role: 'down', epoch: null, note: 'agent process not running' });
    out = cut.sort((a, b) => a.from - b.from);
  }
  return out;
}
