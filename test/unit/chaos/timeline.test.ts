import { describe, expect, it } from 'vitest';
import { failovers, roleSegments, withDownSpans, type AgentLine } from '../../../chaos/timeline.js';
import { historyTimeline } from '../../../src/cli/render/history-timeline.js';
import type { HistoryItem } from '../../../src/cli/render/history-view.js';
import { renderTimelineHtml } from '../../../src/cli/render/timeline-html.js';

const L = (t: number, msg: string, extra: Partial<AgentLine> = {}): AgentLine => ({ t, msg, ...extra });

/** nn1 active (epoch 10); a fault at 1000; nn1 stands down at 1400; nn2 takes the lock, fences, promotes. */
const nn1 = [
  L(0, 'hafc agent starting'),
  L(100, 'role init -> active', { epoch: '10' }),
  L(1400, 'role active -> neutral'),
];
const nn2 = [
  L(0, 'hafc agent starting'),
  L(120, 'role init -> standby'),
  L(1500, 'acquired the lock', { epoch: '20' }),
  L(1510, 'fencing the previous active', { epoch: '20' }),
  L(1530, 'fenced nn1 by method graceful', { epoch: '20' }),
  L(1545, 'service -> active', { epoch: '20', durationMs: 10 }),
  L(1546, 'role standby -> active', { epoch: '20' }),
];

describe('the chaos timeline model', () => {
  it('turns role lines into segments, and a dead agent into a down span', () => {
    expect(roleSegments(nn1, 3000).map((s) => [s.role, s.from, s.to, s.epoch])).toEqual([
      ['init', 0, 100, null],
      ['active', 100, 1400, '10'],
      ['neutral', 1400, 3000, null],
    ]);
    const cut = withDownSpans(
      roleSegments(nn1, 3000),
      [
        { from: 0, to: 2000 },
        { from: 2500, to: null },
      ],
      3000,
    );
    expect(cut.map((s) => [s.role, s.from, s.to])).toEqual([
      ['init', 0, 100],
      ['active', 100, 1400],
      ['neutral', 1400, 2000],
      ['down', 2000, 2500],
      ['neutral', 2500, 3000],
    ]);
  });

  it('finds each failover phase from the log lines that mark it', () => {
    const logs = new Map([
      ['nn1', nn1],
      ['nn2', nn2],
    ]);
    const fo = failovers(logs, [{ id: 'f1', label: 'f1 service-crash', lane: 'nn1', from: 1000, to: 2000 }]);
    expect(fo[1]).toEqual({
      lane: 'nn2',
      epoch: '20',
      phases: [
        { name: 'detection', from: 1000, to: 1400 },
        { name: 'lock hand-over', from: 1400, to: 1500 },
        { name: 'fencing', from: 1510, to: 1530 },
        { name: 'to-active hook', from: 1535, to: 1545 },
      ],
    });
  });
});

describe('hafc history --html', () => {
  const item = (at: number, event: string, node: string, extra: Partial<HistoryItem> = {}): HistoryItem => ({
    at: new Date(at).toISOString(),
    event,
    node,
    from: null,
    to: null,
    cause: 'won election',
    epoch: null,
    fenced: null,
    durations: { lockWaitMs: null, fencingMs: null, hookMs: null, handoverMs: null },
    reason: null,
    by: null,
    switchover: null,
    ...extra,
  });
  const t = Date.parse('2026-12-01T12:00:00Z');
  const h = {
    schemaVersion: 1 as const,
    cluster: 'toy',
    path: '/hafc/toy',
    order: 'oldest-first' as const,
    total: 3,
    skipped: 0,
    entries: [
      item(t, 'activated', 'nn1', {
        epoch: '19',
        durations: { lockWaitMs: 17, fencingMs: 7, hookMs: 9, handoverMs: null },
      }),
      item(t + 4000, 'activation-failed', 'nn2', { cause: 'fencing failed' }),
      item(t + 5000, 'activated', 'nn2', {
        epoch: '32',
        durations: { lockWaitMs: 10, fencingMs: 7, hookMs: 3, handoverMs: null },
      }),
    ],
  };

  it('draws activations as active spans with their phases laid back from the recorded durations', () => {
    const m = historyTimeline(h, t + 10_000);
    expect(m.lanes.map((l) => l.id)).toEqual(['nn1', 'nn2']);
    const active = m.lanes.flatMap((l) =>
      l.segments.filter((s) => s.role === 'active').map((s) => [l.id, s.from - t, s.to - t, s.epoch]),
    );
    expect(active).toEqual([
      ['nn1', 0, 5000, '19'],
      ['nn2', 5000, 10_000, '32'],
    ]);
    expect(m.failovers[1]!.phases.map((p) => [p.name, p.from - t, p.to - t])).toEqual([
      ['lock hand-over', 4980, 4990],
      ['fencing', 4990, 4997],
      ['to-active hook', 4997, 5000],
    ]);
    expect(m.markers).toEqual([{ at: t + 4000, lane: 'nn2', text: 'activation-failed: fencing failed' }]);
  });

  it('renders a self-contained page that escapes what it shows', () => {
    const m = historyTimeline({ ...h, cluster: '<b>x</b>' }, t + 10_000);
    const html = renderTimelineHtml(m);
    expect(html).toContain('hafc history of cluster &lt;b&gt;x&lt;/b&gt;');
    expect(html).not.toContain('<b>x</b>');
    expect(html.replace('xmlns="http://www.w3.org/2000/svg"', '')).not.toMatch(/\bsrc=|\bhref=|https?:\/\//);
    expect(html.match(/class="phase"/g)).toHaveLength(6);
    expect(html.match(/class="role role-active"/g)).toHaveLength(2);
  });
});
