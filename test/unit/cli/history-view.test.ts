import { describe, expect, it } from 'vitest';
import type { HistoryEntry } from '../../../src/election/records.js';
import { renderHistory } from '../../../src/cli/render/history-text.js';
import { newest, normaliseHistory, type HistoryJson } from '../../../src/cli/render/history-view.js';

const entries: HistoryEntry[] = [
  {
    at: '2026-12-01T10:00:00.000Z',
    event: 'activated',
    node: 'a',
    cause: 'won election',
    epoch: '14',
    fenced: [],
    durations: { lockWaitMs: 16, fencingMs: 2, hookMs: 14 },
  },
  { at: 'not a time', event: 'demoted', cause: 'x' },
  {
    at: '2026-12-01T10:05:00.000Z',
    event: 'activated',
    node: 'b',
    from: 'a',
    to: 'b',
    cause: 'switchover so-1 to b requested by bob@h2',
    epoch: '27',
    fenced: ['a'],
    durations: { lockWaitMs: 0, fencingMs: 5, hookMs: 4, handoverMs: 130 },
    reason: 'patch a',
    by: 'bob@h2',
    switchover: 'so-1',
  },
  // Another version's odd fields: typed null, not a crash.
  {
    at: '2026-12-01T10:06:00.000Z',
    event: 'paused',
    cause: 'paused',
    by: 7,
    durations: 'fast',
  } as unknown as HistoryEntry,
];

describe('history', () => {
  it('normalises entries, dropping those whose time does not parse', () => {
    const { items, skipped } = normaliseHistory(entries);
    expect(skipped).toBe(1);
    expect(items.map((e) => e.event)).toEqual(['activated', 'activated', 'paused']);
    expect(items[2]).toMatchObject({ by: null, node: null, durations: { hookMs: null } });
    expect(items[1]!.durations).toEqual({ lockWaitMs: 0, fencingMs: 5, hookMs: 4, handoverMs: 130 });
  });

  it('--limit keeps the newest, oldest first', () => {
    expect(newest([1, 2, 3, 4], 2)).toEqual([3, 4]);
    expect(newest([1, 2], 5)).toEqual([1, 2]);
    expect(newest([1, 2], undefined)).toEqual([1, 2]);
  });

  it('renders one row per entry with timings, manual details and the skipped count', () => {
    const { items, skipped } = normaliseHistory(entries);
    const h: HistoryJson = {
      schemaVersion: 1,
      cluster: 'toy',
      path: '/hafc/toy',
      order: 'oldest-first',
      total: items.length,
      skipped,
      entries: newest(items, 2),
    };
    expect(renderHistory(h).split('\n')).toEqual([
      'history of cluster toy at /hafc/toy: the newest 2 of 3 entries, oldest first',
      '',
      'TIME                      EVENT      NODE  FROM -> TO  EPOCH  TIMINGS                                                   DETAIL',
      '2026-12-01T10:05:00.000Z  activated  b     a -> b      27     lock wait 0 ms, fencing 5 ms, hook 4 ms, handover 130 ms  switchover so-1 to b requested by bob@h2; fenced a; reason: patch a; by bob@h2; switchover so-1',
      '2026-12-01T10:06:00.000Z  paused     -     -           -      -                                                         paused',
      '',
      '(1 unreadable entry skipped)',
      '',
    ]);
  });

  it('an empty history says so', () => {
    const h: HistoryJson = {
      schemaVersion: 1,
      cluster: 'toy',
      path: '/hafc/toy',
      order: 'oldest-first',
      total: 0,
      skipped: 0,
      entries: [],
    };
    expect(renderHistory(h)).toBe('history of cluster toy at /hafc/toy: 0 entries, oldest first\n');
  });
});
