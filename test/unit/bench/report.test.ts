import { describe, expect, it } from 'vitest';
import { buildRow, renderOverhead, renderTable, targetFor } from '../../../bench/report.js';

const trials = (...ms: number[]): { failoverMs: number; outageMs: number }[] =>
  ms.map((m) => ({ failoverMs: m, outageMs: m + 10 }));

describe('targetFor', () => {
  it('holds the fast profile, not the default one, to 150 ms on a service crash', () => {
    expect(targetFor('serviceCrash', 'fast', 4000)).toEqual({ kind: 'within', ms: 150, label: '< 150 ms' });
    expect(targetFor('serviceCrash', 'default', 4000)).toBeNull();
  });

  it('bounds agent crash and node freeze by the session timeout plus 300 ms', () => {
    expect(targetFor('agentKill', 'default', 4000)).toMatchObject({ kind: 'within', ms: 4300 });
    expect(targetFor('nodeFreeze', 'fast', 6000)).toMatchObject({ kind: 'within', ms: 6300 });
  });

  it('has no target where the issue sets none', () => {
    for (const fc of ['serviceHang', 'partition', 'zkLeaderLoss', 'cleanStop'] as const) {
      expect(targetFor(fc, 'fast', 4000)).toBeNull();
    }
  });
});

describe('buildRow', () => {
  it('meets a bound only when every trial is under it', () => {
    expect(buildRow('fast', 'serviceCrash', trials(80, 90, 140), 0, 4000).met).toBe(true);
    expect(buildRow('fast', 'serviceCrash', trials(80, 90, 150), 0, 4000).met).toBe(false);
  });

  it('fails a target on any split-brain violation, however fast', () => {
    const r = buildRow('default', 'switchover', trials(10, 12), 1, 4000);
    expect(r.met).toBe(false);
    expect(r.violations).toBe(1);
  });

  it('judges an agent restart by the failovers, not by the time to resume', () => {
    const quiet = buildRow(
      'default',
      'agentRestart',
      [{ failoverMs: 900, outageMs: 30, failovers: 0 }],
      0,
      4000,
    );
    expect(quiet).toMatchObject({ met: true, failovers: 0 });
    const moved = buildRow(
      'default',
      'agentRestart',
      [
        { failoverMs: 900, outageMs: 30, failovers: 0 },
        { failoverMs: 950, outageMs: 4000, failovers: 1 },
      ],
      0,
      4000,
    );
    expect(moved).toMatchObject({ met: false, failovers: 1 });
  });

  it('leaves the verdict open without a target or without trials', () => {
    expect(buildRow('default', 'partition', trials(4200), 0, 4000).met).toBeNull();
    expect(buildRow('default', 'agentKill', [], 0, 4000).met).toBeNull();
  });

  it('summarises outages apart from failovers and counts the open ones', () => {
    const r = buildRow(
      'default',
      'nodeFreeze',
      [
        { failoverMs: 4100, outageMs: 4500 },
        { failoverMs: 4200, outageMs: null },
        { failoverMs: 4150, outageMs: 9000, outageOpen: true },
      ],
      0,
      4000,
    );
    expect(r.failover).toMatchObject({ n: 3, median: 4150, max: 4200 });
    expect(r.outage).toMatchObject({ n: 2, median: 6750, max: 9000 });
    expect(r.outageOpen).toBe(1);
  });
});

describe('renderTable', () => {
  const rows = [
    buildRow('fast', 'serviceCrash', trials(80, 90, 140), 0, 4000),
    buildRow('fast', 'agentKill', trials(4400), 0, 4000),
    buildRow('fast', 'partition', [], 0, 4000, 'network namespaces need root'),
    buildRow('fast', 'agentRestart', [{ failoverMs: 700, outageMs: 25, failovers: 0 }], 0, 4000),
  ];
  const lines = renderTable(rows).split('\n');

  it('is a Markdown table with one row per class, its columns lined up', () => {
    expect(lines[0]).toMatch(/^\| profile \| fault class +\| +n \| failover median \| +p95 \|/);
    expect(lines[1]).toMatch(/^\| -+ \| -+ \| -+: \|/);
    const widths = lines.slice(0, 6).map((l) => l.length);
    expect(new Set(widths).size).toBe(1);
  });

  it('shows the figures, the target and the verdict', () => {
    expect(lines[2]).toMatch(
      /\| fast +\| serviceCrash +\| +3 \| +90 ms \| +140 ms \| +140 ms \| +100 ms \| +150 ms \| < 150 ms +\| yes +\|$/,
    );
    expect(lines[3]).toMatch(/\| < T \+ 300 = 4300 ms \| NO +\|$/);
    expect(lines[5]).toMatch(/\| no failover +\| yes \(0 failover\(s\)\) \|$/);
  });

  it('says why a class was not run, rather than leave it out', () => {
    expect(lines[4]).toMatch(/\| partition +\| +0 \| +- \|.*\| not run +\|$/);
    expect(lines[6]).toBe('fast partition not run: network namespaces need root');
  });
});

describe('renderOverhead', () => {
  it('gives MiB, CPU seconds per idle hour and ZooKeeper rates per agent', () => {
    const text = renderOverhead([
      {
        profile: 'default',
        idleSeconds: 20,
        rssKiB: { active: 61_440, standby: 58_368 },
        cpuSecondsPerIdleHour: { active: 36, standby: 27.54 },
        zkRequestsPerSecPerAgent: 3.3,
        zkWritesPerSecPerAgent: 0.25,
      },
    ]);
    const [head, rule, row] = text.split('\n');
    expect(head).toMatch(/^\| profile \| idle window \| RSS active \|/);
    expect(rule).toMatch(/^\| -+ \| -+: \|/);
    expect(row).toMatch(
      /^\| default \| +20 s \| +60\.0 MiB \| +57\.0 MiB \| +36\.0 \| +27\.5 \| +3\.30 \| +0\.25 \|$/,
    );
  });
});
