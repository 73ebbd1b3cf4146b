/** The human form of `hafc history`: one row per transition, oldest first. */
import type { HistoryItem, HistoryJson } from './history-view.js';
import { clean, table } from './text.js';

function transition(e: HistoryItem): string {
  if (e.from === null && e.to === null) return '-';
  return `${clean(e.from ?? '?', 64)} -> ${clean(e.to ?? e.node ?? '?', 64)}`;
}

function timings(e: HistoryItem): string {
  const d = e.durations;
  const parts: string[] = [];
  if (d.lockWaitMs !== null) parts.push(`lock wait ${Math.round(d.lockWaitMs)} ms`);
  if (d.fencingMs !== null) parts.push(`fencing ${Math.round(d.fencingMs)} ms`);
  if (d.hookMs !== null) parts.push(`hook ${Math.round(d.hookMs)} ms`);
  if (d.handoverMs !== null) parts.push(`handover ${Math.round(d.handoverMs)} ms`);
  return parts.length ? parts.join(', ') : '-';
}

function detail(e: HistoryItem): string {
  const parts = [clean(e.cause, 300)];
  if (e.fenced && e.fenced.length > 0) parts.push(`fenced ${e.fenced.map((f) => clean(f, 64)).join(', ')}`);
  if (e.reason !== null) parts.push(`reason: ${clean(e.reason)}`);
  if (e.by !== null) parts.push(`by ${clean(e.by)}`);
  if (e.switchover !== null) parts.push(`switchover ${clean(e.switchover, 64)}`);
  return parts.join('; ');
}

export function renderHistory(h: HistoryJson): string {
  const lines: string[] = [];
  const shown =
    h.entries.length < h.total
      ? `the newest ${h.entries.length} of ${h.total} entries`
      : `${h.total} entries`;
  lines.push(`history of cluster ${clean(h.cluster)} at ${clean(h.path)}: ${shown}, oldest first`);
  if (h.entries.length > 0) {
    lines.push('');
    const rows = h.entries.map((e) => [
      e.at,
      clean(e.event, 40),
      e.node !== null ? clean(e.node, 64) : '-',
      transition(e),
      e.epoch !== null ? clean(e.epoch, 24) : '-',
      timings(e),
      detail(e),
    ]);
    lines.push(...table(['TIME', 'EVENT', 'NODE', 'FROM -> TO', 'EPOCH', 'TIMINGS', 'DETAIL'], rows));
  }
  if (h.skipped > 0)
    lines.push('', `(${h.skipped} unreadable ${h.skipped === 1 ? 'entry' : 'entries'} skipped)`);
  return lines.join('\n') + '\n';
}
