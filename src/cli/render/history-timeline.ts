/**
 * `hafc history --html`: the history znode's entries as a timeline model (timeline-html.ts). The
 * history records activations and demotions, not every role, so a lane is "active" from an
 * activation to its node's demotion or the next activation elsewhere, and "unknown" otherwise.
 * Each activation's phases are laid back from its time by the durations it recorded: the
 * to-active hook ends at the activation, fencing before it, the lock wait (free to acquired)
 * before that. Detection is not in the history, so it is not drawn.
 */
import type { HistoryItem, HistoryJson } from './history-view.js';
import type { TimelineModel, TimelinePhase, TimelineSegment } from './timeline-html.js';

export function historyTimeline(h: HistoryJson, nowMs: number): TimelineModel {
  const items = h.entries;
  const times = items.map((e) => Date.parse(e.at));
  const first = times.length ? Math.min(...times) : nowMs - 60_000;
  const last = Math.max(nowMs, ...times);
  const lead = Math.max(2000, (last - first) * 0.03);
  const startMs = first - lead;
  const ids = [...new Set(items.flatMap((e) => (e.node === null ? [] : [e.node])))].sort();
  const segs = new Map<string, TimelineSegment[]>(ids.map((id) => [id, []]));
  const failovers: TimelineModel['failovers'] = [];
  const markers: NonNullable<TimelineModel['markers']> = [];
  let open: { node: string; from: number; epoch: string | null } | null = null;
  const close = (t: number, note?: string): void => {
    if (!open) return;
    segs
      .get(open.node)
      ?.push({ from: open.from, to: t, role: 'active', epoch: open.epoch, ...(note ? { note } : {}) });
    open = null;
  };
  items.forEach((e: HistoryItem, i) => {
    const t = times[i]!;
    if (e.event === 'activated' && e.node !== null) {
      close(t, `until ${e.node} took over`);
      open = { node: e.node, from: t, epoch: e.epoch };
      const d = e.durations;
      const phases: TimelinePhase[] = [];
      let cursor = t;
      if (d.hookMs !== null) {
        phases.unshift({ name: 'to-active hook', from: cursor - d.hookMs, to: cursor });
        cursor -= d.hookMs;
      }
      if (d.fencingMs !== null) {
        phases.unshift({ name: 'fencing', from: cursor - d.fencingMs, to: cursor });
        cursor -= d.fencingMs;
      }
      if (d.lockWaitMs !== null)
        phases.unshift({ name: 'lock hand-over', from: cursor - d.lockWaitMs, to: cursor });
      failovers.push({ lane: e.node, epoch: e.epoch, phases });
    } else if (e.event === 'demoted' && e.node !== null && open?.node === e.node) {
      close(t, e.cause);
    } else {
      markers.push({
        at: t,
        lane: e.node,
        text: `${e.event}: ${e.cause}${e.reason ? ` (${e.reason})` : ''}`,
      });
    }
  });
  close(last, 'still active at the last entry');
  const lanes = ids.map((id) => {
    const active = segs.get(id)!.sort((a, b) => a.from - b.from);
    const filled: TimelineSegment[] = [];
    let cursor = startMs;
    for (const s of active) {
      if (s.from > cursor)
        filled.push({
          from: cursor,
          to: s.from,
          role: 'unknown',
          epoch: null,
          note: 'not active (the history records activations and demotions only)',
        });
      filled.push(s);
      cursor = Math.max(cursor, s.to);
    }
    if (cursor < last) filled.push({ from: cursor, to: last, role: 'unknown', epoch: null });
    return { id, segments: filled };
  });
  return {
    title: `hafc history of cluster ${h.cluster}`,
    subtitle: `${h.total} entries at ${h.path}${h.skipped ? `, ${h.skipped} unreadable skipped` : ''}`,
    startMs,
    endMs: last,
    lanes,
    faults: [],
    failovers,
    violations: [],
    markers,
    notes: ['phases are laid back from each activation by its recorded durations; detection is not recorded'],
  };
}
