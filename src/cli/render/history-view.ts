/**
 * The history znode's entries as `hafc history` shows them. decodeHistory already dropped what
 * is not an entry at all; this also drops entries whose time does not parse and turns every
 * optional field that is not of its type into null, so one odd entry (another hafc version, a
 * hand edit) neither crashes the verb nor hides the others.
 */
import type { HistoryEntry } from '../../election/records.js';

export interface HistoryItem {
  at: string;
  event: string;
  node: string | null;
  from: string | null;
  to: string | null;
  cause: string;
  epoch: string | null;
  fenced: string[] | null;
  durations: {
    lockWaitMs: number | null;
    fencingMs: number | null;
    hookMs: number | null;
    handoverMs: number | null;
  };
  reason: string | null;
  by: string | null;
  switchover: string | null;
}

export interface HistoryJson {
  schemaVersion: 1;
  cluster: string;
  path: string;
  /** Entries are oldest first; `--limit N` keeps the newest N. */
  order: 'oldest-first';
  /** Usable entries in the znode (before --limit). */
  total: number;
  /** Entries in the znode that could not be used. */
  skipped: number;
  entries: HistoryItem[];
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const ms = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : null);

export function normaliseHistory(entries: readonly HistoryEntry[]): {
  items: HistoryItem[];
  skipped: number;
} {
  const items: HistoryItem[] = [];
  let skipped = 0;
  for (const e of entries) {
    const t = Date.parse(e.at);
    if (Number.isNaN(t)) {
      skipped++;
      continue;
    }
    const raw = e as unknown as Record<string, unknown>;
    const d =
      typeof raw.durations === 'object' && raw.durations !== null
        ? (raw.durations as Record<string, unknown>)
        : {};
    items.push({
      at: new Date(t).toISOString(),
      event: e.event,
      node: str(raw.node),
      from: str(raw.from),
      to: str(raw.to),
      cause: e.cause,
      epoch: str(raw.epoch),
      fenced:
        Array.isArray(raw.fenced) && raw.fenced.every((f) => typeof f === 'string')
          ? (raw.fenced as string[])
          : null,
      durations: {
        lockWaitMs: ms(d.lockWaitMs),
        fencingMs: ms(d.fencingMs),
        hookMs: ms(d.hookMs),
        handoverMs: ms(d.handoverMs),
      },
      reason: str(raw.reason),
      by: str(raw.by),
      switchover: str(raw.switchover),
    });
  }
  return { items, skipped };
}

/** The newest `limit` items, still oldest first (like `tail`). */
export function newest<T>(items: readonly T[], limit: number | undefined): T[] {
  return limit === undefined ? [...items] : items.slice(Math.max(0, items.length - limit));
}
