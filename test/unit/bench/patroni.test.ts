/**
 * The unit-testable halves of `npm run bench:patroni`: the Patroni YAML the harness writes (and
 * the timing it refuses) and the folding of trial results into rows and ratios.
 */
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import {
  checkPatroniTiming,
  PATRONI_DEFAULT_TIMING,
  PATRONI_FAST_TIMING,
  patroniConfigYaml,
} from '../../../harness/patroni.js';
import { aggregate, median, ratios, renderTables, type TrialResult } from '../../../bench/patroni-report.js';

const base = {
  scope: 'b1',
  name: 'pg1',
  dir: '/tmp/hafc-patroni-x',
  restPort: 8008,
  pgPort: 5433,
  zkConnect: '127.0.0.1:2181,127.0.0.1:2182',
  timing: PATRONI_FAST_TIMING,
  synchronous: true,
  maximumLagOnFailover: 1048576,
};

interface Doc {
  bootstrap: { dcs: Record<string, unknown> };
  zookeeper: { hosts: string[] };
  restapi: { listen: string };
  postgresql: { listen: string; data_dir: string; parameters: Record<string, unknown> };
}

describe('patroniConfigYaml', () => {
  it('writes the timing into the bootstrap DCS section and the addresses on loopback', () => {
    const doc = YAML.parse(patroniConfigYaml(base)) as Doc;
    expect(doc.bootstrap.dcs).toMatchObject({
      ttl: 20,
      loop_wait: 1,
      retry_timeout: 3,
      primary_start_timeout: 0,
      synchronous_mode: true,
      synchronous_mode_strict: true,
    });
    expect(doc.zookeeper.hosts).toEqual(['127.0.0.1:2181', '127.0.0.1:2182']);
    expect(doc.restapi.listen).toBe('127.0.0.1:8008');
    expect(doc.postgresql.listen).toBe('127.0.0.1:5433');
    expect(doc.postgresql.data_dir).toBe('/tmp/hafc-patroni-x/pg1');
    expect(doc.postgresql.parameters.unix_socket_directories).toBe('/tmp/hafc-patroni-x');
  });

  it('asynchronous when asked', () => {
    const doc = YAML.parse(patroniConfigYaml({ ...base, synchronous: false })) as Doc;
    expect(doc.bootstrap.dcs.synchronous_mode).toBe(false);
    expect(doc.bootstrap.dcs.synchronous_mode_strict).toBe(false);
  });

  it('refuses an empty ZooKeeper connect string', () => {
    expect(() => patroniConfigYaml({ ...base, zkConnect: '' })).toThrow(/zookeeper hosts: empty/);
  });
});

describe('checkPatroniTiming', () => {
  it('accepts the defaults and the documented minimums', () => {
    expect(() => checkPatroniTiming(PATRONI_DEFAULT_TIMING)).not.toThrow();
    expect(() => checkPatroniTiming(PATRONI_FAST_TIMING)).not.toThrow();
  });

  it('refuses values below the documented minimums, naming them', () => {
    expect(() => checkPatroniTiming({ ...PATRONI_FAST_TIMING, ttl: 19 })).toThrow(
      /ttl must be an integer >= 20.*19/,
    );
    expect(() => checkPatroniTiming({ ...PATRONI_FAST_TIMING, loopWait: 0 })).toThrow(/loop_wait .*>= 1/);
    expect(() => checkPatroniTiming({ ...PATRONI_FAST_TIMING, retryTimeout: 2.5 })).toThrow(/retry_timeout/);
  });

  it('refuses timing that breaks loop_wait + 2 x retry_timeout <= ttl', () => {
    expect(() => checkPatroniTiming({ ...PATRONI_FAST_TIMING, loopWait: 10, retryTimeout: 6 })).toThrow(
      /10 \+ 2 x 6 > 20/,
    );
  });
});

const trial = (over: Partial<TrialResult>): TrialResult => ({
  setup: 'hafc-fast',
  fault: 'crash',
  promotedMs: 1000,
  failoverMs: 2000,
  outageMs: 2500,
  staleWrites: 0,
  ackedLost: 0,
  checkerViolations: 0,
  endedOn: 'other',
  ...over,
});

describe('aggregate and ratios', () => {
  it('median of odd and even counts, null for none', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(3);
    expect(median([])).toBeNull();
  });

  it('folds trials per setup and fault; failed trials are counted apart, never in the numbers', () => {
    const rows = aggregate(
      [
        trial({ failoverMs: 1000, outageMs: 1500 }),
        trial({ failoverMs: 3000, outageMs: 2500, staleWrites: 2 }),
        trial({ failoverMs: null, outageMs: 99_999, error: 'timed out' }),
        trial({ fault: 'freeze', failoverMs: null, endedOn: 'same', ackedLost: 1 }),
      ],
      ['hafc-fast'],
    );
    const crash = rows.find((r) => r.fault === 'crash')!;
    expect(crash).toMatchObject({
      trials: 2,
      errors: 1,
      failoverMsMedian: 2000,
      failoverMsMax: 3000,
      outageMsMax: 2500,
      staleWritesTotal: 2,
      failedOver: 2,
    });
    const freeze = rows.find((r) => r.fault === 'freeze')!;
    expect(freeze).toMatchObject({ trials: 1, failoverMsMedian: null, failedOver: 0, ackedLostTotal: 1 });
    expect(rows.find((r) => r.fault === 'agentKill')).toMatchObject({ trials: 0, failoverMsMedian: null });
  });

  it('ratios divide patroni-fast by hafc-fast per fault and render as a table', () => {
    const rows = aggregate(
      [
        trial({ failoverMs: 1000, outageMs: 2000 }),
        trial({ setup: 'patroni-fast', failoverMs: 8000, outageMs: 3000 }),
      ],
      ['patroni-fast', 'hafc-fast'],
    );
    const rs = ratios(rows);
    expect(rs.find((r) => r.fault === 'crash')).toEqual({ fault: 'crash', failover: 8, outage: 1.5 });
    expect(rs.find((r) => r.fault === 'freeze')).toEqual({ fault: 'freeze', failover: null, outage: null });
    const table = renderTables(rows, { 'hafc-fast': { processes: 2, cpuPercent: 0.5, rssKiB: 100 } }, rs);
    expect(table).toContain('| crash | 8x | 1.5x |');
    expect(table).toContain('| hafc-fast | 2 | 0.5 | 100 |');
  });
});
