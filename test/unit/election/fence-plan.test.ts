import { describe, expect, it } from 'vitest';
import { fencePlan, type FencePlanInput } from '../../../src/election/fence-plan.js';
import { FORMAT_VERSION, type BreadcrumbRecord } from '../../../src/election/records.js';
import { createLogger } from '../../../src/log.js';

const me = { id: 'a', host: '10.0.0.1', port: 8020 };
const bc = (over: Partial<BreadcrumbRecord> = {}): BreadcrumbRecord => ({
  formatVersion: FORMAT_VERSION,
  kind: 'breadcrumb',
  cluster: 'c',
  id: 'b',
  host: '10.0.0.2',
  port: 8020,
  epoch: '41',
  writtenAt: '',
  session: '00000000000000bb',
  ...over,
});
function plan(over: Partial<FencePlanInput>) {
  return fencePlan({
    breadcrumb: null,
    node: me,
    sessionId: '00000000000000aa',
    pastSessions: new Set(['00000000000000a0']),
    seenHolder: null,
    log: createLogger({ write: () => {} }),
    ...over,
  });
}
const ids = (p: ReturnType<typeof fencePlan>) => ('targets' in p ? p.targets.map((t) => t.id) : p.error);

describe('fencePlan', () => {
  it('fences the breadcrumb holder, with its control port when it recorded one', () => {
    const p = plan({ breadcrumb: { record: bc({ controlPort: 8008 }), version: 0 } });
    expect(p).toEqual({
      targets: [
        { id: 'b', host: '10.0.0.2', port: 8020, address: '10.0.0.2:8020', epoch: 41n, controlPort: 8008 },
      ],
    });
  });

  it('nothing to fence when the breadcrumb holder stood down cleanly', () => {
    expect(ids(plan({ breadcrumb: { record: bc({ demoted: true }), version: 0 } }))).toEqual([]);
  });

  it('skips only a breadcrumb that is provably ours: same id, host, port and one of our sessions', () => {
    const ours = { ...me, session: '00000000000000aa' };
    expect(ids(plan({ breadcrumb: { record: bc(ours), version: 0 } }))).toEqual([]);
    expect(
      ids(plan({ breadcrumb: { record: bc({ ...ours, session: '00000000000000a0' }), version: 0 } })),
    ).toEqual([]);
    for (const twin of [
      { ...ours, host: '10.0.0.9' },
      { ...ours, port: 1 },
      { ...ours, session: 'ffffffffffffffff' },
      { ...me, session: undefined },
    ]) {
      expect(ids(plan({ breadcrumb: { record: bc(twin), version: 0 } }))).toEqual(['a']);
    }
  });

  it('no breadcrumb: the last holder seen is fenced, unless it was one of our own sessions', () => {
    const seen = { owner: '00000000000000cc', epoch: 50n, identity: { id: 'c', host: 'h', port: 1 } };
    expect(ids(plan({ seenHolder: seen }))).toEqual(['c']);
    expect(ids(plan({ seenHolder: { ...seen, owner: '00000000000000a0' } }))).toEqual([]);
    expect(ids(plan({ seenHolder: { owner: '00000000000000cc', epoch: 50n } }))).toEqual([]);
    expect(ids(plan({}))).toEqual([]);
  });

  it('an unreadable breadcrumb: no promotion, and the reason names it', () => {
    expect(plan({ breadcrumb: { error: 'znode /x: not JSON', version: 3 } })).toEqual({
      error: 'cannot tell which node to fence: znode /x: not JSON',
    });
  });
});
